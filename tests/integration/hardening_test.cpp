// One member's bad data must never take the hub down: text in undeclared or wrongly declared
// character sets, objects nested past any parser's stack, XML entity bombs, megabyte
// usernames, and idle connections on the DICOM port. Each drives the real `yilian serve`.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "dicom_client.h"
#include "postgres.h"
#include "server_process.h"
#include "synthetic.h"
#include "test_util.h"

namespace yilian {
namespace {

using testing::slurp;

namespace fs = std::filesystem;
using nlohmann::json;
using testing::ServerProcess;

const std::string kZhangSanUtf8 = "\xE5\xBC\xA0\xE4\xB8\x89";  // 张三
const std::string kZhangSanGbk = "\xD5\xC5\xC8\xFD";           // 张三 in GBK / GB18030

// Rewrites `file` with `name` as its Patient Name and, when not empty, `charset` declared.
void set_name(const fs::path& file, const std::string& name, const std::string& charset) {
  DcmFileFormat ff;
  ASSERT_TRUE(ff.loadFile(file.c_str()).good());
  DcmDataset* ds = ff.getDataset();
  ds->findAndDeleteElement(DCM_SpecificCharacterSet);
  if (!charset.empty()) {
    ASSERT_TRUE(ds->putAndInsertString(DCM_SpecificCharacterSet, charset.c_str()).good());
  }
  ASSERT_TRUE(ds->putAndInsertString(DCM_PatientName, name.c_str()).good());
  ASSERT_TRUE(ff.saveFile(file.c_str(), EXS_LittleEndianExplicit).good());
}

// Sends `request` on a fresh connection and reads until the server closes or 5 s pass.
std::string raw_exchange(std::uint16_t port, const std::string& request) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::send(fd, request.data(), request.size(), 0) == static_cast<ssize_t>(request.size())) {
    char buf[4096];
    ssize_t n;
    while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t i = text.find(what); i != std::string::npos; i = text.find(what, i + 1)) ++n;
  return n;
}

// A socket connected to the hub's DICOM port that sends nothing; -1 on failure.
int idle_connection(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Every test runs on the embedded database and on PostgreSQL (a server the test starts).
class HardeningTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    fs::path cfg = dir_.path() / "yilian.toml";
    std::ofstream(cfg) << R"(
[dicom]
acse_timeout_seconds = 3
max_connections_per_address = 80

[[dicom.senders]]
ae_title = "LYING_US"
charset = "GBK"
override_declared_charset = true

[[institutions]]
code = "ta"
name = "Township A Health Centre"
ae_titles = ["TA_CT", "LYING_US"]

[[institutions]]
code = "tb"
name = "Township B Health Centre"
ae_titles = ["TB_CT"]
)";
    std::vector<std::string> args{"--config", cfg.string()};
    std::string why;
    ASSERT_TRUE(testing::add_backend_args(GetParam(), args, &why)) << why;
    server_ = std::make_unique<ServerProcess>(dir_.path() / "data", args);
    ASSERT_TRUE(server_->start()) << server_->log();
    doctor_ = server_->add_user("ta-doctor", {"township_doctor"}, "ta");
    ASSERT_FALSE(doctor_.empty());
  }
  void TearDown() override {
    if (server_) {
      EXPECT_EQ(server_->stop(), 0) << server_->log();
    }
  }
  bool alive() const { return testing::http_get(server_->http_port(), "/healthz").status == 200; }
  testing::HttpResult stow(const std::string& token, const std::vector<std::string>& parts) {
    const std::string boundary = "hardening-boundary";
    std::string body;
    for (const std::string& p : parts) {
      body += "--" + boundary + "\r\nContent-Type: application/dicom\r\n\r\n" + p + "\r\n";
    }
    body += "--" + boundary + "--\r\n";
    return testing::http_request(
        server_->http_port(), "POST", "/dicom-web/studies", body,
        {{"Authorization", "Bearer " + token},
         {"Content-Type", "multipart/related; type=\"application/dicom\"; boundary=" + boundary}});
  }
  testing::WrittenSeries ct(const std::string& sub, int count = 1) {
    testing::CtSeriesSpec spec;
    spec.count = count;
    spec.rows = spec.columns = 16;
    auto s = testing::write_ct_series(dir_.path() / sub, spec);
    EXPECT_TRUE(s.ok());
    return *s;
  }

  testing::TempDir dir_;
  std::unique_ptr<ServerProcess> server_;
  std::string doctor_;
};

TEST_P(HardeningTest,
       gbk_names_undeclared_or_wrongly_declared_are_listed_in_utf8_and_the_hub_stays_up) {
  auto undeclared = ct("undeclared");
  set_name(undeclared.files[0], kZhangSanGbk, "");
  auto declared_utf8 = ct("wrong");
  set_name(declared_utf8.files[0], kZhangSanGbk, "ISO_IR 192");
  auto lying = ct("lying");
  set_name(lying.files[0], kZhangSanGbk, "ISO_IR 100");
  ASSERT_EQ(testing::storescu(*server_, "TA_CT", {undeclared.files[0], declared_utf8.files[0]}), 0);
  ASSERT_EQ(testing::storescu(*server_, "LYING_US", {lying.files[0]}), 0);

  auto list = server_->get(doctor_, "/api/studies");
  ASSERT_EQ(list.status, 200) << list.body;
  json studies = json::parse(list.body)["studies"];
  ASSERT_EQ(studies.size(), 3u) << list.body;
  for (const json& s : studies) EXPECT_EQ(s["patient"]["name"], kZhangSanUtf8) << s.dump();

  auto qido = server_->get(doctor_, "/dicom-web/studies");
  ASSERT_EQ(qido.status, 200) << qido.body;
  json q = json::parse(qido.body);
  ASSERT_EQ(q.size(), 3u);
  EXPECT_EQ(q[0]["00100010"]["Value"][0]["Alphabetic"], kZhangSanUtf8);
  // Metadata is read from the stored file (kept as sent) and converted the same way.
  auto meta = server_->get(doctor_, "/dicom-web/studies/" + undeclared.study_uid + "/metadata");
  ASSERT_EQ(meta.status, 200) << meta.body;
  ASSERT_TRUE(json::accept(meta.body)) << meta.body;
  EXPECT_EQ(json::parse(meta.body)[0]["00100010"]["Value"][0]["Alphabetic"], kZhangSanUtf8);
  // The same bytes by STOW-RS, and the hub still answers everything after a restart.
  auto via_stow = ct("stow");
  set_name(via_stow.files[0], kZhangSanGbk, "");
  EXPECT_EQ(stow(doctor_, {slurp(via_stow.files[0])}).status, 200);
  ASSERT_EQ(server_->stop(), 0);
  ASSERT_TRUE(server_->start()) << server_->log();
  doctor_ = server_->login("ta-doctor");
  auto again = server_->get(doctor_, "/api/studies");
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(json::parse(again.body)["studies"].size(), 4u);
}

TEST_P(HardeningTest, stray_bytes_in_a_refused_stow_part_leave_an_audit_trail_that_still_reads) {
  auto bad = ct("bad-uid");
  {
    DcmFileFormat ff;
    ASSERT_TRUE(ff.loadFile(bad.files[0].c_str()).good());
    ff.getDataset()->putAndInsertString(DCM_StudyInstanceUID, ("1.2." + kZhangSanGbk).c_str());
    ASSERT_TRUE(ff.saveFile(bad.files[0].c_str(), EXS_LittleEndianExplicit).good());
  }
  auto r = stow(doctor_, {slurp(bad.files[0])});
  EXPECT_GE(r.status, 400) << r.body;
  EXPECT_TRUE(json::accept(r.body)) << r.body;
  auto audit = server_->get(server_->admin_token(), "/api/audit?limit=500");
  ASSERT_EQ(audit.status, 200) << audit.body;
  EXPECT_TRUE(json::accept(audit.body));
  EXPECT_TRUE(alive());
}

TEST_P(HardeningTest,
       a_data_set_nested_twenty_thousand_deep_is_refused_by_c_store_stow_and_c_find) {
  const std::string study = testing::new_uid();
  fs::path deep = dir_.path() / "deep.dcm";
  std::ofstream(deep, std::ios::binary)
      << testing::nested_sequence_part10(20000, study, study + ".9");
  testing::StoreRequest req;
  req.file = deep;
  req.calling_ae = "TA_CT";
  auto stored = testing::send_file(server_->dicom_port(), req);
  ASSERT_TRUE(stored.associated) << stored.error;
  EXPECT_EQ(stored.status & 0xF000, 0xC000) << std::hex << stored.status;
  EXPECT_NE(stored.error_comment.find("nested"), std::string::npos) << stored.error_comment;

  auto r = stow(doctor_, {slurp(deep)});
  EXPECT_EQ(r.status, 409) << r.body;
  EXPECT_TRUE(alive());
  EXPECT_TRUE(testing::echo(server_->dicom_port(), "TA_CT"));
  // The same shape as a C-FIND identifier, which DCMTK would otherwise parse in memory.
  const std::string part10 = testing::nested_sequence_part10(20000, study, study + ".7");
  const auto* len = reinterpret_cast<const unsigned char*>(part10.data() + 140);
  const std::size_t dataset_at = 144 + (len[0] | len[1] << 8 | len[2] << 16 | len[3] << 24);
  auto found = testing::find_raw(server_->dicom_port(), "TA_CT", part10.substr(dataset_at));
  ASSERT_TRUE(found.associated) << found.error;
  EXPECT_EQ(found.status, 0xA900) << std::hex << found.status << " " << found.error;
  EXPECT_NE(found.error_comment.find("nested"), std::string::npos) << found.error_comment;
  EXPECT_TRUE(testing::echo(server_->dicom_port(), "TA_CT"));
  // Ordinary nesting still lands.
  fs::path sr = dir_.path() / "sr.dcm";
  std::ofstream(sr, std::ios::binary) << testing::nested_sequence_part10(6, study, study + ".8");
  req.file = sr;
  EXPECT_EQ(testing::send_file(server_->dicom_port(), req).status, 0x0000);
}

TEST_P(HardeningTest, an_aecg_that_declares_entities_is_refused_without_expanding_them) {
  std::string bomb = R"(<?xml version="1.0"?>
<!DOCTYPE AnnotatedECG [
 <!ENTITY a "0 0 0 0 0 0 0 0 0 0">
 <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
 <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
 <!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">
 <!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;">
 <!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">
]>
<AnnotatedECG xmlns="urn:hl7-org:v3"><component><series><code code="RHYTHM"/><component>
<sequenceSet><component><sequence><code code="TIME_ABSOLUTE"/><value><increment value="0.002" unit="s"/></value></sequence></component>
<component><sequence><code code="MDC_ECG_LEAD_I"/><value><origin value="0" unit="uV"/><scale value="1" unit="uV"/><digits>&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;</digits></value></sequence></component>
</sequenceSet></component></series></component></AnnotatedECG>)";
  auto r = testing::http_request(
      server_->http_port(), "POST", "/api/ecg?patientId=P1", bomb,
      {{"Authorization", "Bearer " + doctor_}, {"Content-Type", "application/xml"}});
  EXPECT_EQ(r.status, 400) << r.body;
  // A small declaration that expands to nothing much is refused all the same.
  std::string small = bomb;
  small.replace(small.find(" <!ENTITY b"), small.find("]>") - small.find(" <!ENTITY b"), "");
  std::string::size_type f;
  while ((f = small.find("&f;")) != std::string::npos) small.replace(f, 3, "&a;");
  r = testing::http_request(
      server_->http_port(), "POST", "/api/ecg?patientId=P1", small,
      {{"Authorization", "Bearer " + doctor_}, {"Content-Type", "application/xml"}});
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("document type declaration"), std::string::npos) << r.body;
  EXPECT_TRUE(alive());
}

TEST_P(HardeningTest, megabyte_usernames_are_refused_unstored_and_one_address_is_limited) {
  const std::string huge(1 << 20, 'u');
  for (int i = 0; i < 10; ++i) {
    auto r = testing::http_request(server_->http_port(), "POST", "/api/auth/login",
                                   json{{"username", huge}, {"password", "x"}}.dump());
    EXPECT_EQ(r.status, 400) << r.body;
  }
  // Ten refusals add ten short records, not ten megabytes (read back on either backend).
  auto trail = server_->get(server_->admin_token(), "/api/audit?action=auth.login&limit=10");
  ASSERT_EQ(trail.status, 200) << trail.body;
  const json records = json::parse(trail.body)["records"];
  ASSERT_EQ(records.size(), 10u);
  for (const json& r : records) {
    EXPECT_EQ(r["outcome"], "denied");
    EXPECT_LT(r.dump().size(), 4096u);
  }
  // Guessing many usernames from one address is cut off, whatever the names.
  int limited = 0;
  for (int i = 0; i < 40 && limited == 0; ++i) {
    auto r = testing::http_request(
        server_->http_port(), "POST", "/api/auth/login",
        json{{"username", "guess-" + std::to_string(i)}, {"password", "wrong"}}.dump());
    if (r.status == 429) {
      ++limited;
    } else {
      EXPECT_EQ(r.status, 401) << r.body;
    }
  }
  EXPECT_EQ(limited, 1);
  EXPECT_TRUE(alive());
}

TEST_P(HardeningTest, idle_connections_on_the_dicom_port_hold_up_nobody) {
  std::vector<int> idle;
  for (int i = 0; i < 50; ++i) {
    int fd = idle_connection(server_->dicom_port());
    ASSERT_GE(fd, 0);
    idle.push_back(fd);
  }
  // Fifty silent sockets: echo and a store still go through at once.
  EXPECT_TRUE(testing::echo(server_->dicom_port(), "TA_CT"));
  auto series = ct("busy", 2);
  EXPECT_EQ(testing::storescu(*server_, "TA_CT", series.files), 0);
  // A connection that speaks something else than DICOM is closed.
  int garbage = idle_connection(server_->dicom_port());
  ASSERT_GE(garbage, 0);
  const char get[] = "GET / HTTP/1.1\r\n\r\n";
  ASSERT_EQ(::send(garbage, get, sizeof get - 1, 0), static_cast<ssize_t>(sizeof get - 1));
  char buf[16];
  EXPECT_LE(::recv(garbage, buf, sizeof buf, 0), 0);  // closed: EOF or reset
  ::close(garbage);
  for (int fd : idle) ::close(fd);
  EXPECT_TRUE(alive());
}

TEST_P(HardeningTest, connections_past_the_per_address_cap_are_closed_and_others_still_served) {
  std::vector<int> idle;
  for (int i = 0; i < 80; ++i) {
    int fd = idle_connection(server_->dicom_port());
    ASSERT_GE(fd, 0);
    idle.push_back(fd);
  }
  // The 81st from this address is closed at once; silent ones go at the ACSE timeout, after
  // which the address may connect again.
  int extra = idle_connection(server_->dicom_port());
  ASSERT_GE(extra, 0);
  char buf[1];
  EXPECT_LE(::recv(extra, buf, sizeof buf, 0), 0);
  ::close(extra);
  bool echoed = false;
  for (int i = 0; i < 100 && !echoed; ++i) {  // the idle ones time out after 3 s
    echoed = testing::echo(server_->dicom_port(), "TA_CT");
    if (!echoed) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_TRUE(echoed);
  for (int fd : idle) ::close(fd);
}

TEST_P(HardeningTest, http_edge_cases_get_an_answer_instead_of_a_dropped_connection) {
  const std::uint16_t port = server_->http_port();
  // A chunked body is refused at once with 411 and a JSON error, not left waiting.
  std::string chunked =
      raw_exchange(port,
                   "POST /api/auth/login HTTP/1.1\r\nHost: hub\r\nTransfer-Encoding: chunked\r\n"
                   "Content-Type: application/json\r\n\r\n5\r\n{\"a\":\r\n0\r\n\r\n");
  EXPECT_NE(chunked.find("HTTP/1.1 411"), std::string::npos) << chunked;
  EXPECT_NE(chunked.find("length_required"), std::string::npos) << chunked;
  // PUT with an empty body is answered (here: 401 without a token).
  std::string put = raw_exchange(port,
                                 "PUT /api/admin/referral-quotas/ta HTTP/1.1\r\nHost: hub\r\n"
                                 "Content-Length: 0\r\nConnection: close\r\n\r\n");
  EXPECT_NE(put.find("HTTP/1.1 401"), std::string::npos) << put;
  // Pipelined requests are each answered.
  std::string two = raw_exchange(port,
                                 "GET /healthz HTTP/1.1\r\nHost: hub\r\n\r\n"
                                 "GET /healthz HTTP/1.1\r\nHost: hub\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(count_of(two, "HTTP/1.1 200"), 2u) << two;
  // An over-long URL, in the path or the query, gets 414 with a JSON error (up to the 48 KiB
  // request head lws reads; a NUL in the request line or a longer head is still closed by
  // lws 4.1 without a status, see docs/API.md).
  for (const std::string& url : {"/api/studies/" + std::string(20000, 'a'),
                                 "/dicom-web/studies?PatientID=" + std::string(20000, '1')}) {
    std::string reply =
        raw_exchange(port, "GET " + url + " HTTP/1.1\r\nHost: hub\r\nConnection: close\r\n\r\n");
    EXPECT_NE(reply.find("HTTP/1.1 414"), std::string::npos) << reply.substr(0, 200);
    EXPECT_NE(reply.find("uri_too_long"), std::string::npos) << reply.substr(0, 200);
  }
  // A STOW-RS part with no header fields (RFC 2046) is taken as the multipart's type.
  auto series = ct("headerless");
  const std::string boundary = "bare";
  std::string body =
      "--" + boundary + "\r\n\r\n" + slurp(series.files[0]) + "\r\n--" + boundary + "--\r\n";
  auto r = testing::http_request(
      port, "POST", "/dicom-web/studies", body,
      {{"Authorization", "Bearer " + doctor_},
       {"Content-Type", "multipart/related; type=\"application/dicom\"; boundary=" + boundary}});
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(alive());
}

TEST_P(HardeningTest,
       a_series_uid_reused_under_another_study_is_refused_and_leaves_the_owner_intact) {
  auto a = ct("owner", 2);
  ASSERT_EQ(testing::storescu(*server_, "TA_CT", a.files), 0);
  // Township B sends an object that reuses A's series UID under a study of its own.
  auto b = ct("intruder");
  {
    DcmFileFormat ff;
    ASSERT_TRUE(ff.loadFile(b.files[0].c_str()).good());
    ff.getDataset()->putAndInsertString(DCM_SeriesInstanceUID, a.series_uid.c_str());
    ASSERT_TRUE(ff.saveFile(b.files[0].c_str(), EXS_LittleEndianExplicit).good());
  }
  testing::StoreRequest req;
  req.file = b.files[0];
  req.calling_ae = "TB_CT";
  auto r = testing::send_file(server_->dicom_port(), req);
  ASSERT_TRUE(r.associated) << r.error;
  EXPECT_NE(r.status & 0xF000, 0x0000) << std::hex << r.status;
  EXPECT_NE(r.error_comment.find("another study"), std::string::npos) << r.error_comment;
  auto detail = server_->get(doctor_, "/api/studies/" + a.study_uid);
  ASSERT_EQ(detail.status, 200);
  json d = json::parse(detail.body);
  EXPECT_EQ(d["numberOfInstances"], 2);
  EXPECT_EQ(d["series"].size(), 1u);
}

TEST_P(HardeningTest,
       an_emergency_naming_another_institutions_study_reveals_nothing_and_is_audited) {
  auto a = ct("a-study");
  ASSERT_EQ(testing::storescu(*server_, "TA_CT", a.files), 0);
  auto opened = server_->request(doctor_, "POST", "/api/emergencies",
                                 json{{"kind", "chest_pain"},
                                      {"patientId", "TS0001"},
                                      {"patientName", "A^Patient"},
                                      {"studyInstanceUid", a.study_uid},
                                      {"reason", "STEMI?"}}
                                     .dump());
  ASSERT_EQ(opened.status, 201) << opened.body;
  const std::string tb = server_->add_user("tb-doctor", {"township_doctor"}, "tb");
  auto probe = server_->request(
      tb, "POST", "/api/emergencies",
      json{{"kind", "chest_pain"}, {"patientId", "X"}, {"studyInstanceUid", a.study_uid}}.dump());
  EXPECT_EQ(probe.status, 404) << probe.body;
  EXPECT_EQ(probe.body.find("A^Patient"), std::string::npos);
  EXPECT_EQ(probe.body.find("STEMI"), std::string::npos);
  // Township A's own list still holds exactly its case.
  auto mine = json::parse(server_->get(doctor_, "/api/emergencies").body);
  EXPECT_EQ(mine["cases"].size(), 1u);
  auto trail = json::parse(
      server_->get(server_->admin_token(), "/api/audit?action=case.open&limit=50").body);
  bool denied = false;
  for (const json& r : trail["records"])
    denied |= r["outcome"] == "denied" && r["actor"] == "tb-doctor";
  EXPECT_TRUE(denied) << trail.dump();
}

INSTANTIATE_TEST_SUITE_P(Backends, HardeningTest, ::testing::Values("sqlite", "postgres"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
}  // namespace yilian
