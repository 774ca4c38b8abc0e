// DICOMweb retrieve (WADO-RS) and DICOM query/retrieve end to end: the real `yilian serve`,
// studies sent by two clinics, WADO-RS read with an HTTP client, and C-FIND/C-MOVE/C-GET
// driven with DCMTK's findscu, movescu (to a storescp started here) and getscu.
#include <gtest/gtest.h>

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcmetinf.h>
#include <dcmtk/dcmdata/dcpixel.h>
#include <dcmtk/dcmdata/dcpixseq.h>
#include <dcmtk/dcmdata/dcpxitem.h>
#include <dcmtk/dcmdata/dcrledrg.h>
#include <dcmtk/dcmjpeg/djdecode.h>
#include <dcmtk/dcmjpls/djdecode.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "dicom_client.h"
#include "postgres.h"
#include "server_process.h"
#include "synthetic.h"
#include "test_util.h"
#include "yilian/pacs/dicomweb.h"

namespace yilian {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::pixel_bytes;
using testing::ServerProcess;

const fs::path kPydicom = PYDICOM_TEST_FILES;
constexpr const char* kMrUid = "1.3.6.1.4.1.5962.1.1.4.1.1.20040826185059.5457";
constexpr const char* kMrStudy = "1.3.6.1.4.1.5962.1.2.4.20040826185059.5457";
constexpr const char* kMrSeries = "1.3.6.1.4.1.5962.1.3.4.1.20040826185059.5457";

// A frame's bitstream in compressed syntax `xfer`, decoded by DCMTK's own decoders with the
// image attributes of `like`: its native pixel bytes (empty when it does not decode).
std::string decode_frame(const fs::path& like, std::string_view bitstream, E_TransferSyntax xfer) {
  DJDecoderRegistration::registerCodecs();
  DJLSDecoderRegistration::registerCodecs();
  DcmRLEDecoderRegistration::registerCodecs();
  DcmFileFormat ff;
  if (ff.loadFile(like.c_str()).bad()) return {};
  DcmDataset* ds = ff.getDataset();
  ds->findAndDeleteElement(DCM_PixelData);
  auto* seq = new DcmPixelSequence(DCM_PixelSequenceTag);
  seq->insert(new DcmPixelItem(DCM_PixelItemTag));  // empty offset table
  auto* item = new DcmPixelItem(DCM_PixelItemTag);
  std::string even(bitstream);
  if (even.size() % 2) even.push_back('\0');
  item->putUint8Array(reinterpret_cast<const Uint8*>(even.data()), even.size());
  seq->insert(item);
  auto* pixels = new DcmPixelData(DCM_PixelData);
  pixels->putOriginalRepresentation(xfer, nullptr, seq);
  ds->insert(pixels, true);
  if (ds->chooseRepresentation(EXS_LittleEndianExplicit, nullptr).bad()) return {};
  DcmElement* e = nullptr;
  Uint16* w = nullptr;
  if (ds->findAndGetElement(DCM_PixelData, e).bad() || e->getUint16Array(w).bad() || !w) return {};
  return std::string(reinterpret_cast<const char*>(w), e->getLength());
}

std::string dicom_string(const fs::path& file, const DcmTagKey& tag) {
  DcmFileFormat ff;
  OFString v;
  if (ff.loadFile(file.c_str()).bad() || ff.getDataset()->findAndGetOFString(tag, v).bad())
    return {};
  return v.c_str();
}

// Every test runs on the embedded database and on PostgreSQL (a server the test starts).
class DicomWebQrTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    ASSERT_TRUE(start_peer()) << "no storescp could listen";
    fs::path cfg = dir_.path() / "yilian.toml";
    std::ofstream(cfg) << R"(
[dicom]
reject_unknown_ae = true
max_find_matches = 3   # township A has 2 studies and 3 CT instances: a test adds more

[[institutions]]
code = "ta"
name = "Township A Health Centre"
ae_titles = ["TA_CT", "TA_WS"]

[[institutions]]
code = "tb"
name = "Township B Health Centre"
ae_titles = ["TB_CT", "TB_WS"]

[[dicom_peers]]
ae_title = "TA_WS"
host = "127.0.0.1"
port = )" << peer_port_ << R"(

[[dicom_peers]]
ae_title = "TB_WS"
host = "127.0.0.1"
port = )" << peer_port_ << "\n";
    std::vector<std::string> args{"--config", cfg.string()};
    std::string why;
    ASSERT_TRUE(testing::add_backend_args(GetParam(), args, &why)) << why;
    server_ = std::make_unique<ServerProcess>(dir_.path() / "data", args);
    ASSERT_TRUE(server_->start()) << server_->log();

    testing::CtSeriesSpec spec;
    spec.count = 3;
    spec.rows = spec.columns = 16;
    spec.patient_id = "TA-0001";
    auto a = testing::write_ct_series(dir_.path() / "a", spec);
    spec.patient_id = "TB-0001";
    auto b = testing::write_ct_series(dir_.path() / "b", spec);
    ASSERT_TRUE(a.ok() && b.ok());
    ct_ = *a;
    ct_b_ = *b;
    ASSERT_EQ(testing::storescu(*server_, "TA_CT", a->files), 0);
    ASSERT_EQ(testing::storescu(*server_, "TB_CT", b->files), 0);
    std::string out;
    ASSERT_EQ(testing::run_command("dcmsend -aet TA_CT -aec YILIAN 127.0.0.1 " +
                                       std::to_string(server_->dicom_port()) + " '" +
                                       (kPydicom / "MR_small_jpeg_ls_lossless.dcm").string() + "'",
                                   &out),
              0)
        << out;
    ta_ = server_->add_user("ta-doctor", {"township_doctor"}, "ta");
    tb_ = server_->add_user("tb-doctor", {"township_doctor"}, "tb");
    ASSERT_FALSE(ta_.empty() || tb_.empty());
  }
  void TearDown() override {
    if (server_) {
      EXPECT_EQ(server_->stop(), 0) << server_->log();
    }
    if (!peer_pid_.empty()) testing::run_command("kill " + peer_pid_);
  }

  // The destination workstation (a storescp, answering as TA_WS and TB_WS) is started before
  // the hub, whose configuration names its port. storescp cannot report a port the system
  // chose, so a free port is picked and the peer is confirmed to answer on it; when another
  // process took the port in between, another one is tried.
  bool start_peer() {
    peer_dir_ = dir_.path() / "received";
    fs::create_directories(peer_dir_);
    peer_pid_ = testing::start_background(
        [&] {
          peer_port_ = testing::free_port();
          return "timeout 600 storescp -aet TA_WS -od '" + peer_dir_.string() + "' " +
                 std::to_string(peer_port_) + " >/dev/null 2>&1 & echo $!";
        },
        [&] {
          return testing::run_command("echoscu -aec TA_WS 127.0.0.1 " +
                                      std::to_string(peer_port_)) == 0;
        },
        10);
    return !peer_pid_.empty();
  }

  testing::HttpResult get(const std::string& token, const std::string& target,
                          const std::string& accept = {}) {
    testing::Headers h{{"Authorization", "Bearer " + token}};
    if (!accept.empty()) h.emplace_back("Accept", accept);
    return testing::http_request(server_->http_port(), "GET", target, "", h);
  }
  std::string instance_path(std::size_t i) const {
    return "/dicom-web/studies/" + ct_.study_uid + "/series/" + ct_.series_uid + "/instances/" +
           ct_.sop_instance_uids[i];
  }
  std::string mr_path() const {
    return std::string("/dicom-web/studies/") + kMrStudy + "/series/" + kMrSeries + "/instances/" +
           kMrUid;
  }
  // The parts of a multipart/related response.
  std::vector<pacs::BodyPart> parts(const testing::HttpResult& r) {
    auto p = pacs::split_multipart(r.header("content-type"), r.body);
    EXPECT_TRUE(p.ok()) << r.head;
    return p.ok() ? *p : std::vector<pacs::BodyPart>{};
  }

  // Runs a DCMTK tool; its exit status, its output in `out`.
  int tool(const std::string& args, std::string* out) { return testing::run_command(args, out); }
  std::string dicom_args(const std::string& aet) const {
    return " -aet " + aet + " -aec YILIAN 127.0.0.1 " + std::to_string(server_->dicom_port());
  }

  testing::TempDir dir_;
  std::unique_ptr<ServerProcess> server_;
  testing::WrittenSeries ct_, ct_b_;
  std::string ta_, tb_;
  std::uint16_t peer_port_ = 0;
  fs::path peer_dir_;     // what the peer received
  std::string peer_pid_;  // of its storescp
};

TEST_P(DicomWebQrTest, wado_rs_retrieves_studies_series_and_instances_as_stored) {
  auto study = get(ta_, "/dicom-web/studies/" + ct_.study_uid,
                   "multipart/related; type=\"application/dicom\"; transfer-syntax=*");
  ASSERT_EQ(study.status, 200) << study.body;
  EXPECT_NE(study.header("content-type").find("type=\"application/dicom\""), std::string::npos);
  auto all = parts(study);
  ASSERT_EQ(all.size(), 3u);
  std::set<std::string> uids;
  for (std::size_t k = 0; k < all.size(); ++k) {
    EXPECT_EQ(all[k].content_type.rfind("application/dicom", 0), 0u) << all[k].content_type;
    fs::path f = dir_.path() / ("part" + std::to_string(k) + ".dcm");
    std::ofstream(f, std::ios::binary) << all[k].bytes;
    uids.insert(dicom_string(f, DCM_SOPInstanceUID));
  }
  EXPECT_EQ(uids,
            std::set<std::string>(ct_.sop_instance_uids.begin(), ct_.sop_instance_uids.end()));

  auto one = get(ta_, instance_path(1));
  ASSERT_EQ(one.status, 200);
  auto single = parts(one);
  ASSERT_EQ(single.size(), 1u);
  fs::path f = dir_.path() / "one.dcm";
  std::ofstream(f, std::ios::binary) << single[0].bytes;
  // Byte for byte the pixels that were sent.
  EXPECT_EQ(pixel_bytes(f), pixel_bytes(ct_.files[1]));
  EXPECT_FALSE(pixel_bytes(f).empty());

  auto series = get(ta_, "/dicom-web/studies/" + ct_.study_uid + "/series/" + ct_.series_uid);
  ASSERT_EQ(series.status, 200);
  EXPECT_EQ(parts(series).size(), 3u);
  // HEAD tells the length without the body.
  auto head = testing::http_request(server_->http_port(), "HEAD", instance_path(1), "",
                                    {{"Authorization", "Bearer " + ta_}});
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.header("content-length"), std::to_string(one.body.size()));
  // Instances are sent as stored, or decoded to explicit VR little endian for a client that
  // asks for it (the JPEG-LS MR: lossless, the pixels of MR_small.dcm); another syntax is 406.
  auto native =
      get(ta_, mr_path(),
          "multipart/related; type=\"application/dicom\"; transfer-syntax=1.2.840.10008.1.2.1");
  ASSERT_EQ(native.status, 200);
  auto objects = parts(native);
  ASSERT_EQ(objects.size(), 1u);
  const fs::path got = dir_.path() / "mr-native.dcm";
  std::ofstream(got, std::ios::binary) << objects[0].bytes;
  EXPECT_EQ(pixel_bytes(got), pixel_bytes(kPydicom / "MR_small.dcm"));
  EXPECT_EQ(
      get(ta_, mr_path(),
          "multipart/related; type=\"application/dicom\"; transfer-syntax=1.2.840.10008.1.2.4.50")
          .status,
      406);  // lossy: never
  // The native CT encoded losslessly on request: JPEG-LS, JPEG lossless, RLE; decoded again by
  // DCMTK's own tools, every pixel value is the original's.
  const std::string original = pixel_bytes(ct_.files[0]);
  ASSERT_FALSE(original.empty());
  EXPECT_EQ(
      get(tb_, instance_path(0),
          "multipart/related; type=\"application/dicom\"; transfer-syntax=1.2.840.10008.1.2.4.80")
          .status,
      404);  // another township's: as if missing, transcoded or not
  for (const auto& [ts, decoder] :
       std::vector<std::pair<std::string, std::string>>{{"1.2.840.10008.1.2.4.80", "dcmdjpls"},
                                                        {"1.2.840.10008.1.2.4.70", "dcmdjpeg"},
                                                        {"1.2.840.10008.1.2.5", "dcmdrle"}}) {
    auto r = get(ta_, instance_path(0),
                 "multipart/related; type=\"application/dicom\"; transfer-syntax=" + ts);
    ASSERT_EQ(r.status, 200) << ts << ": " << r.body;
    auto encoded = parts(r);
    ASSERT_EQ(encoded.size(), 1u);
    EXPECT_EQ(encoded[0].content_type, "application/dicom; transfer-syntax=" + ts);
    const fs::path file = dir_.path() / ("encoded-" + ts + ".dcm");
    const fs::path decoded = dir_.path() / ("decoded-" + ts + ".dcm");
    std::ofstream(file, std::ios::binary) << encoded[0].bytes;
    EXPECT_TRUE(pixel_bytes(file).empty()) << ts;  // compressed as asked
    std::string out;
    ASSERT_EQ(tool(decoder + " '" + file.string() + "' '" + decoded.string() + "'", &out), 0)
        << ts << ": " << out;
    EXPECT_EQ(pixel_bytes(decoded), original) << ts;
  }
}

TEST_P(DicomWebQrTest, wado_rs_metadata_frames_and_bulk_data_agree_with_the_stored_pixels) {
  auto meta = get(ta_, "/dicom-web/studies/" + ct_.study_uid + "/metadata");
  ASSERT_EQ(meta.status, 200) << meta.body;
  EXPECT_EQ(meta.header("content-type"), "application/dicom+json");
  json j = json::parse(meta.body);
  ASSERT_EQ(j.size(), 3u);
  for (const json& inst : j) {
    EXPECT_EQ(inst["00100020"]["Value"][0], "TA-0001");
    ASSERT_TRUE(inst["7FE00010"].contains("BulkDataURI")) << inst["7FE00010"].dump();
  }
  // The same answer again (now from the per-series cache).
  EXPECT_EQ(get(ta_, "/dicom-web/studies/" + ct_.study_uid + "/metadata").body, meta.body);

  // The bulk data URI of the first instance gives its pixel bytes.
  std::string uri;
  for (const json& inst : j) {
    if (inst["00080018"]["Value"][0] == ct_.sop_instance_uids[0])
      uri = inst["7FE00010"]["BulkDataURI"];
  }
  ASSERT_EQ(uri, instance_path(0) + "/bulkdata/7FE00010");
  auto bulk = get(ta_, uri);
  ASSERT_EQ(bulk.status, 200) << bulk.body;
  auto bulk_parts = parts(bulk);
  ASSERT_EQ(bulk_parts.size(), 1u);
  const std::string want = pixel_bytes(ct_.files[0]);
  EXPECT_EQ(bulk_parts[0].bytes, want);

  // Frames of an uncompressed object: the same bytes.
  auto frame = get(ta_, instance_path(0) + "/frames/1",
                   "multipart/related; type=\"application/octet-stream\"");
  ASSERT_EQ(frame.status, 200) << frame.body;
  auto frame_parts = parts(frame);
  ASSERT_EQ(frame_parts.size(), 1u);
  EXPECT_EQ(frame_parts[0].bytes, want);
  EXPECT_EQ(get(ta_, instance_path(0) + "/frames/2").status, 404);
  EXPECT_EQ(get(ta_, instance_path(0) + "/frames/x").status, 400);

  // A JPEG-LS lossless MR: as stored (image/jls) on request, else decoded to exactly the
  // pixels of the uncompressed original.
  auto stored = get(ta_, mr_path() + "/frames/1",
                    "multipart/related; type=\"application/octet-stream\"; transfer-syntax=*");
  ASSERT_EQ(stored.status, 200) << stored.body;
  auto stored_parts = parts(stored);
  ASSERT_EQ(stored_parts.size(), 1u);
  EXPECT_EQ(stored_parts[0].content_type.rfind("image/jls", 0), 0u);
  ASSERT_GE(stored_parts[0].bytes.size(), 2u);
  EXPECT_EQ(static_cast<unsigned char>(stored_parts[0].bytes[0]), 0xFF);  // SOI
  EXPECT_EQ(static_cast<unsigned char>(stored_parts[0].bytes[1]), 0xD8);
  auto decoded =
      get(ta_, mr_path() + "/frames/1", "multipart/related; type=\"application/octet-stream\"");
  ASSERT_EQ(decoded.status, 200) << decoded.body;
  auto decoded_parts = parts(decoded);
  ASSERT_EQ(decoded_parts.size(), 1u);
  EXPECT_EQ(decoded_parts[0].bytes, pixel_bytes(kPydicom / "MR_small.dcm"));

  auto mr_meta = get(ta_, mr_path() + "/metadata");
  ASSERT_EQ(mr_meta.status, 200);
  EXPECT_EQ(json::parse(mr_meta.body)[0]["00100010"]["Value"][0]["Alphabetic"],
            "CompressedSamples^MR1");
}

// Frames asked for in a compressed syntax they are not stored in are encoded losslessly: the
// client's decoder gets every stored pixel value back.
TEST_P(DicomWebQrTest, frames_come_in_the_lossless_syntax_the_client_asks_for) {
  const std::string want = pixel_bytes(ct_.files[0]);
  struct Ask {
    const char* accept;
    const char* media;
    const char* syntax;
    E_TransferSyntax xfer;
  };
  for (const Ask& a : {Ask{"multipart/related; type=\"image/jls\"", "image/jls",
                           "1.2.840.10008.1.2.4.80", EXS_JPEGLSLossless},
                       Ask{"multipart/related; type=\"image/dicom-rle\"", "image/x-dicom-rle",
                           "1.2.840.10008.1.2.5", EXS_RLELossless},
                       Ask{"multipart/related; type=\"image/jpeg\"; "
                           "transfer-syntax=1.2.840.10008.1.2.4.70",
                           "image/jpeg", "1.2.840.10008.1.2.4.70", EXS_JPEGProcess14SV1}}) {
    SCOPED_TRACE(a.accept);
    auto r = get(ta_, instance_path(0) + "/frames/1", a.accept);
    ASSERT_EQ(r.status, 200) << r.body;
    auto ps = parts(r);
    ASSERT_EQ(ps.size(), 1u);
    EXPECT_EQ(ps[0].content_type.rfind(a.media, 0), 0u) << ps[0].content_type;
    EXPECT_NE(ps[0].content_type.find(std::string("transfer-syntax=") + a.syntax),
              std::string::npos)
        << ps[0].content_type;
    EXPECT_NE(ps[0].bytes, want);  // encoded, not the native bytes
    EXPECT_EQ(decode_frame(ct_.files[0], ps[0].bytes, a.xfer), want);
  }
  // A JPEG-LS object asked for in RLE: decoded and encoded again, every value kept.
  auto rle = get(ta_, mr_path() + "/frames/1", "multipart/related; type=\"image/dicom-rle\"");
  ASSERT_EQ(rle.status, 200) << rle.body;
  auto rle_parts = parts(rle);
  ASSERT_EQ(rle_parts.size(), 1u);
  EXPECT_EQ(decode_frame(kPydicom / "MR_small.dcm", rle_parts[0].bytes, EXS_RLELossless),
            pixel_bytes(kPydicom / "MR_small.dcm"));
  // Lossy JPEG (image/jpeg alone means baseline) and JPEG 2000 are not made here: 406 with
  // what can be had.
  for (const char* accept :
       {"multipart/related; type=\"image/jpeg\"", "multipart/related; type=\"image/jp2\""}) {
    auto r = get(ta_, instance_path(0) + "/frames/1", accept);
    EXPECT_EQ(r.status, 406) << accept;
    EXPECT_NE(json::parse(r.body, nullptr, false)["error"]["message"].get<std::string>().find(
                  "image/jls"),
              std::string::npos);
  }
  // Another township still gets nothing, whatever it asks for.
  EXPECT_EQ(
      get(tb_, instance_path(0) + "/frames/1", "multipart/related; type=\"image/jls\"").status,
      404);
}

TEST_P(DicomWebQrTest, qido_rs_finds_series_and_instances_across_the_studies_one_may_see) {
  auto uids = [&](const std::string& target, const char* tag) {
    auto r = get(ta_, target);
    EXPECT_EQ(r.status, 200) << target << ": " << r.body;
    std::vector<std::string> out;
    json j = json::parse(r.body, nullptr, false);
    if (!j.is_array()) return out;
    for (const json& item : j) out.push_back(item[tag]["Value"][0].get<std::string>());
    return out;
  };
  auto series = uids("/dicom-web/series?Modality=CT", "0020000E");
  EXPECT_EQ(series, std::vector<std::string>{ct_.series_uid});  // not township B's
  auto across = get(ta_, "/dicom-web/series?Modality=CT");
  EXPECT_EQ(json::parse(across.body)[0]["00100020"]["Value"][0], "TA-0001");  // study keys too

  EXPECT_EQ(uids("/dicom-web/instances?PatientID=TA-0001", "00080018").size(), 3u);
  EXPECT_EQ(uids("/dicom-web/instances?PatientID=TA-0001&limit=2", "00080018").size(), 2u);
  EXPECT_EQ(uids("/dicom-web/instances?PatientID=TA-0001&limit=2&offset=2", "00080018").size(), 1u);
  EXPECT_EQ(uids("/dicom-web/instances?PatientID=TB-0001", "00080018").size(), 0u);
  // A long UID list (past 1 KiB) is read whole, and the keys after it too.
  std::string list;
  for (int i = 0; i < 30; ++i)
    list += "1.2.826.0.1.3680043.99.1234567890.1234567890." + std::to_string(i) + ",";
  EXPECT_EQ(
      uids("/dicom-web/studies?StudyInstanceUID=" + list + ct_.study_uid + "&PatientID=TA-0001",
           "0020000D"),
      std::vector<std::string>{ct_.study_uid});
  // Every page says how many match in all.
  for (const char* target :
       {"/dicom-web/instances?PatientID=TA-0001&limit=2", "/dicom-web/instances?limit=2&offset=2",
        "/dicom-web/instances?PatientID=TA-0001&limit=1&offset=2"}) {
    auto r = get(ta_, target);
    EXPECT_EQ(r.header("x-total-count"),
              std::string(target).find("TA-0001") != std::string::npos ? "3" : "4")
        << target;  // the CT's 3 instances, and the MR's 1
    EXPECT_TRUE(r.header("warning").empty()) << target;
  }
  EXPECT_EQ(get(ta_, "/dicom-web/series?limit=1").header("x-total-count"), "2");
  EXPECT_EQ(get(ta_, "/dicom-web/studies/" + ct_.study_uid + "/instances?limit=1")
                .header("x-total-count"),
            "3");
  EXPECT_EQ(get(ta_, "/dicom-web/studies/" + ct_.study_uid + "/series").header("x-total-count"),
            "1");
  EXPECT_EQ(uids("/dicom-web/studies/" + ct_.study_uid + "/instances?InstanceNumber=2", "00080018"),
            std::vector<std::string>{ct_.sop_instance_uids[1]});
  EXPECT_EQ(
      uids("/dicom-web/series?SeriesInstanceUID=" + ct_.series_uid + "," + kMrSeries, "0020000E")
          .size(),
      2u);
  EXPECT_EQ(get(tb_, "/dicom-web/studies/" + ct_.study_uid + "/instances").status, 404);
  // A name wildcard finds what the township may see, no more.
  EXPECT_EQ(uids("/dicom-web/studies?PatientName=*", "0020000D"),
            uids("/dicom-web/studies", "0020000D"));
  // Keys that are not UTF-8 are refused on either database, with a JSON error.
  for (const char* key : {"PatientName", "PatientID", "AccessionNumber", "StudyDescription"}) {
    auto bad = get(ta_, std::string("/dicom-web/studies?") + key + "=%FF%FE*");
    EXPECT_EQ(bad.status, 400) << key << ": " << bad.body;
    EXPECT_TRUE(json::parse(bad.body, nullptr, false).contains("error")) << bad.body;
  }
}

TEST_P(DicomWebQrTest, qido_rs_includefield_adds_named_attributes_or_all_of_a_level) {
  auto one = [&](const std::string& target) {
    auto r = get(ta_, target);
    EXPECT_EQ(r.status, 200) << target << ": " << r.body;
    json j = json::parse(r.body, nullptr, false);
    EXPECT_TRUE(j.is_array() && j.size() == 1) << target << ": " << r.body;
    return j.is_array() && !j.empty() ? j[0] : json::object();
  };
  const std::string study = std::string("/dicom-web/studies?StudyInstanceUID=") + kMrStudy;
  EXPECT_FALSE(one(study).contains("00101030"));  // PatientWeight is not in the default set
  json named = one(study + "&includefield=PatientWeight,00104000");
  ASSERT_TRUE(named.contains("00101030")) << named.dump();
  EXPECT_EQ(named["00101030"]["vr"], "DS");
  EXPECT_EQ(named["00101030"]["Value"][0], 80);
  // Asked for but not in the object: there, empty.
  EXPECT_EQ(named["00104000"], json({{"vr", "LT"}})) << named.dump();
  // all: the study level's attributes, not the series' or the instance's.
  json all = one(study + "&includefield=all");
  EXPECT_TRUE(all.contains("00101030") && all.contains("00081060")) << all.dump();
  EXPECT_FALSE(all.contains("00080070") || all.contains("00180050")) << all.dump();
  json series = one(std::string("/dicom-web/studies/") + kMrStudy + "/series?includefield=all");
  EXPECT_TRUE(series.contains("00080070") && series.contains("00081090")) << series.dump();
  EXPECT_FALSE(series.contains("00180050") || series.contains("00101030")) << series.dump();
  // Repeated, as some clients send it; an instance gives its own attributes.
  json instance = one(std::string("/dicom-web/studies/") + kMrStudy +
                      "/instances?includefield=SliceThickness&includefield=00080070");
  EXPECT_TRUE(instance.contains("00180050") && instance.contains("00080070")) << instance.dump();
  EXPECT_FALSE(instance.contains("7FE00010")) << instance.dump();  // never bulk data
  for (const char* field : {"NoSuchAttribute", "%FF%FE", "0010001"}) {
    auto bad = get(ta_, study + "&includefield=" + field);
    EXPECT_EQ(bad.status, 400) << field << ": " << bad.body;
    EXPECT_TRUE(json::parse(bad.body, nullptr, false).contains("error")) << bad.body;
  }
  // Another township reads nothing of it, whatever it asks to include.
  EXPECT_EQ(get(tb_, study + "&includefield=all").body, "[]");
  EXPECT_EQ(get(tb_, std::string("/dicom-web/studies/") + kMrStudy + "/instances?includefield=all")
                .status,
            404);
}

// Every pydicom test file, good and malformed, in one STOW-RS request: each gets its own
// answer, and what was stored can be read back.
TEST_P(DicomWebQrTest, stow_rs_of_every_pydicom_test_file_answers_each_part) {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(kPydicom)) {
    if (e.path().extension() == ".dcm") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  ASSERT_GT(files.size(), 50u);
  const std::string boundary = "pydicom-files";
  std::string body;
  for (const fs::path& f : files) {
    std::ifstream in(f, std::ios::binary);
    body += "--" + boundary + "\r\nContent-Type: application/dicom\r\n\r\n" +
            std::string(std::istreambuf_iterator<char>(in), {}) + "\r\n";
  }
  body += "--" + boundary + "--\r\n";
  auto r = testing::http_request(
      server_->http_port(), "POST", "/dicom-web/studies", body,
      {{"Authorization", "Bearer " + ta_},
       {"Content-Type", "multipart/related; type=\"application/dicom\"; boundary=" + boundary}});
  ASSERT_EQ(r.status, 202) << r.body;  // some stored, some refused
  json j = json::parse(r.body);
  const std::size_t stored = j["00081199"]["Value"].size();
  const std::size_t failed = j["00081198"]["Value"].size();
  EXPECT_EQ(stored + failed, files.size());
  EXPECT_GT(stored, 30u);
  EXPECT_GT(failed, 0u);  // no_meta, truncated and the like
  // Each stored instance is listed with its own Retrieve URL (PS3.18 10.5.3), which gives it.
  for (const json& item : j["00081199"]["Value"]) {
    const std::string url = item["00081190"]["Value"][0];
    const std::string sop = item["00081155"]["Value"][0];
    EXPECT_TRUE(url.ends_with("/instances/" + sop)) << url;
    auto meta = get(ta_, url + "/metadata");
    ASSERT_EQ(meta.status, 200) << url;
    json m = json::parse(meta.body);
    ASSERT_EQ(m.size(), 1u) << url;
    EXPECT_EQ(m[0]["00080018"]["Value"][0], sop);
  }
  EXPECT_TRUE(j["00081190"]["Value"][0].get<std::string>().starts_with("/dicom-web/studies/"));
  EXPECT_EQ(server_->get(ta_, "/healthz").status, 200);
}

TEST_P(DicomWebQrTest, a_multi_component_name_reads_alike_in_qido_and_in_the_metadata) {
  testing::CtSeriesSpec spec;
  spec.count = 1;
  spec.rows = spec.columns = 16;
  spec.charset = "ISO_IR 192";
  spec.patient_id = "TA-JP";
  spec.patient_name = "Yamada^Tarou=山田^太郎=やまだ^たろう";
  auto jp = testing::write_ct_series(dir_.path() / "jp", spec);
  spec.patient_id = "TA-ZH";
  spec.patient_name = "张三^";
  auto zh = testing::write_ct_series(dir_.path() / "zh", spec);
  ASSERT_TRUE(jp.ok() && zh.ok());
  ASSERT_EQ(testing::storescu(*server_, "TA_CT", {jp->files[0], zh->files[0]}), 0);
  for (const auto* series : {&*jp, &*zh}) {
    auto found =
        json::parse(get(ta_, "/dicom-web/studies?StudyInstanceUID=" + series->study_uid).body);
    ASSERT_EQ(found.size(), 1u) << found.dump();
    auto meta = json::parse(get(ta_, "/dicom-web/studies/" + series->study_uid + "/metadata").body);
    ASSERT_EQ(meta.size(), 1u);
    EXPECT_EQ(found[0]["00100010"], meta[0]["00100010"]) << found[0]["00100010"].dump();
  }
  auto found = json::parse(get(ta_, "/dicom-web/studies?PatientID=TA-JP").body);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0]["00100010"]["Value"][0],
            json::parse(R"({"Alphabetic":"Yamada^Tarou","Ideographic":"山田^太郎",
                           "Phonetic":"やまだ^たろう"})"));
  found = json::parse(get(ta_, "/dicom-web/studies?PatientID=TA-ZH").body);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0]["00100010"]["Value"][0], json::parse(R"({"Alphabetic":"张三"})"));
}

TEST_P(DicomWebQrTest, wado_rs_answers_a_hidden_study_like_a_missing_one) {
  for (const std::string suffix : {"", "/metadata"}) {
    EXPECT_EQ(get(tb_, "/dicom-web/studies/" + ct_.study_uid + suffix).status, 404) << suffix;
    EXPECT_EQ(get(tb_, "/dicom-web/studies/1.2.3.4" + suffix).status, 404) << suffix;
  }
  EXPECT_EQ(get(tb_, instance_path(0) + "/frames/1").status, 404);
  EXPECT_EQ(get(tb_, instance_path(0) + "/bulkdata/7FE00010").status, 404);
  EXPECT_EQ(testing::http_get(server_->http_port(), instance_path(0)).status, 401);
  // A study the caller may see, but no such series in it.
  EXPECT_EQ(get(ta_, "/dicom-web/studies/" + ct_.study_uid + "/series/1.2.3").status, 404);
}

TEST_P(DicomWebQrTest, low_bandwidth_renders_are_jpegs_served_again_from_the_cache) {
  auto r = get(ta_, instance_path(0) + "/rendered?bandwidth=low&viewport=1024,1024");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.header("content-type"), "image/jpeg");
  EXPECT_EQ(get(ta_, instance_path(0) + "/rendered?bandwidth=slow").status, 400);
  // Served again from the render cache: the same bytes.
  EXPECT_EQ(get(ta_, instance_path(0) + "/rendered?bandwidth=low&viewport=1024,1024").body, r.body);
}

TEST_P(DicomWebQrTest, a_study_and_a_series_render_one_image_per_instance_and_have_a_thumbnail) {
  const std::string study = "/dicom-web/studies/" + ct_.study_uid;
  const std::string series = study + "/series/" + ct_.series_uid;
  for (const std::string& target : {study + "/rendered", series + "/rendered"}) {
    auto r = get(ta_, target, "multipart/related; type=\"image/jpeg\"");
    ASSERT_EQ(r.status, 200) << target << ": " << r.body;
    auto images = parts(r);
    ASSERT_EQ(images.size(), ct_.sop_instance_uids.size()) << target;
    for (std::size_t i = 0; i < images.size(); ++i) {
      EXPECT_EQ(images[i].content_type, "image/jpeg");
      EXPECT_EQ(images[i].bytes.substr(0, 2), "\xFF\xD8") << target;  // a JPEG
      // The same image as the instance's own rendering.
      EXPECT_EQ(images[i].bytes, get(ta_, instance_path(i) + "/rendered").body) << i;
    }
  }
  auto thumb = get(ta_, series + "/thumbnail");
  ASSERT_EQ(thumb.status, 200) << thumb.body;
  EXPECT_EQ(thumb.header("content-type"), "image/jpeg");
  EXPECT_EQ(thumb.body, get(ta_, instance_path(1) + "/thumbnail").body);  // the middle one
  EXPECT_EQ(get(ta_, study + "/thumbnail").body, thumb.body);
  // Another township's study: as if missing.
  EXPECT_EQ(get(tb_, study + "/rendered").status, 404);
  EXPECT_EQ(get(tb_, series + "/thumbnail").status, 404);
}

TEST_P(DicomWebQrTest, a_multiframe_ultrasound_plays_as_mp4_with_range_requests) {
  auto us = testing::write_us_cine(dir_.path() / "us.dcm", 40, 96, 64, 25);
  ASSERT_TRUE(us.ok());
  ASSERT_EQ(testing::storescu(*server_, "TA_CT", {us->file}), 0);
  const std::string path = "/dicom-web/studies/" + us->study_uid + "/series/" + us->series_uid +
                           "/instances/" + us->sop_instance_uid + "/rendered";
  auto video = get(ta_, path, "video/mp4");
  ASSERT_EQ(video.status, 200) << video.body;
  EXPECT_EQ(video.header("content-type"), "video/mp4");
  EXPECT_EQ(video.header("accept-ranges"), "bytes");
  ASSERT_GT(video.body.size(), 100u);
  EXPECT_EQ(video.body.substr(4, 4), "ftyp");

  auto get_range = [&](const std::string& range) {
    return testing::http_request(
        server_->http_port(), "GET", path, "",
        {{"Authorization", "Bearer " + ta_}, {"Accept", "video/mp4"}, {"Range", range}});
  };
  const std::string total = std::to_string(video.body.size());
  auto head = get_range("bytes=0-99");
  EXPECT_EQ(head.status, 206);
  EXPECT_EQ(head.header("content-range"), "bytes 0-99/" + total);
  EXPECT_EQ(head.body, video.body.substr(0, 100));
  auto tail = get_range("bytes=-10");
  EXPECT_EQ(tail.status, 206);
  EXPECT_EQ(tail.body, video.body.substr(video.body.size() - 10));
  EXPECT_EQ(get_range("bytes=" + total + "-").status, 416);
  // Encoded once: the second answer is the cached file, byte for byte.
  EXPECT_EQ(get(ta_, path, "video/mp4").body, video.body);

  EXPECT_EQ(get(tb_, path, "video/mp4").status, 404);
  EXPECT_EQ(get(ta_, instance_path(0) + "/rendered", "video/mp4").status, 400);  // one frame
}

TEST_P(DicomWebQrTest, c_find_answers_every_level_within_the_nodes_institution) {
  std::string out;
  ASSERT_EQ(tool("findscu -S" + dicom_args("TA_WS") +
                     " -k QueryRetrieveLevel=STUDY -k StudyInstanceUID -k PatientID"
                     " -k NumberOfStudyRelatedInstances",
                 &out),
            0)
      << out;
  EXPECT_NE(out.find(ct_.study_uid), std::string::npos) << out;
  EXPECT_NE(out.find(kMrStudy), std::string::npos) << out;
  EXPECT_EQ(out.find(ct_b_.study_uid), std::string::npos) << out;  // township B's
  EXPECT_NE(out.find("[3 ]"), std::string::npos) << out;           // instances of the CT

  ASSERT_EQ(tool("findscu -S" + dicom_args("TB_WS") +
                     " -k QueryRetrieveLevel=STUDY -k StudyInstanceUID -k PatientID=TA*",
                 &out),
            0);
  EXPECT_EQ(out.find(ct_.study_uid), std::string::npos) << out;

  ASSERT_EQ(tool("findscu -P" + dicom_args("TA_WS") +
                     " -k QueryRetrieveLevel=PATIENT -k PatientID=TA-0001 -k PatientName"
                     " -k NumberOfPatientRelatedStudies",
                 &out),
            0);
  EXPECT_NE(out.find("TA-0001"), std::string::npos) << out;

  ASSERT_EQ(tool("findscu -S" + dicom_args("TA_WS") +
                     " -k QueryRetrieveLevel=SERIES -k StudyInstanceUID=" + ct_.study_uid +
                     " -k SeriesInstanceUID -k Modality -k NumberOfSeriesRelatedInstances",
                 &out),
            0);
  EXPECT_NE(out.find(ct_.series_uid), std::string::npos) << out;
  EXPECT_NE(out.find("[CT]"), std::string::npos) << out;

  ASSERT_EQ(tool("findscu -S" + dicom_args("TA_WS") +
                     " -k QueryRetrieveLevel=IMAGE -k StudyInstanceUID=" + ct_.study_uid +
                     " -k SeriesInstanceUID=" + ct_.series_uid + " -k SOPInstanceUID",
                 &out),
            0);
  for (const std::string& uid : ct_.sop_instance_uids) {
    EXPECT_NE(out.find(uid), std::string::npos) << out;
  }
  // A SERIES query without its study is refused with a failure status.
  tool("findscu -v -S" + dicom_args("TA_WS") + " -k QueryRetrieveLevel=SERIES -k Modality", &out);
  EXPECT_NE(out.find("Final Find Response (Error: DataSetDoesNotMatchSOPClass)"), std::string::npos)
      << out;
}

TEST_P(DicomWebQrTest, c_find_past_its_match_limit_says_matching_was_terminated) {
  // A one-image study of township A for `patient`.
  auto add_study = [&](const char* patient) {
    testing::CtSeriesSpec spec;
    spec.count = 1;
    spec.rows = spec.columns = 16;
    spec.patient_id = patient;
    auto more = testing::write_ct_series(dir_.path() / patient, spec);
    ASSERT_TRUE(more.ok());
    ASSERT_EQ(testing::storescu(*server_, "TA_CT", more->files), 0);
  };
  // Two more studies for township A (four in all, three patients), past the limit of three.
  for (const char* patient : {"TA-0002", "TA-0001"}) {
    add_study(patient);
    if (HasFatalFailure()) return;
  }
  auto responses = [](const std::string& out) {
    std::size_t n = 0;
    for (std::size_t at = out.find("Find Response:"); at != std::string::npos;
         at = out.find("Find Response:", at + 1))
      ++n;
    return n;
  };
  std::string out;
  tool("findscu -v -S" + dicom_args("TA_WS") + " -k QueryRetrieveLevel=STUDY -k StudyInstanceUID",
       &out);
  EXPECT_EQ(responses(out), 3u) << out;
  EXPECT_NE(out.find("Final Find Response (Cancel: MatchingTerminatedDueToCancelRequest)"),
            std::string::npos)
      << out;
  // PATIENT level: three patients fit; each still counts all of its studies.
  tool("findscu -v -P" + dicom_args("TA_WS") +
           " -k QueryRetrieveLevel=PATIENT -k PatientID -k NumberOfPatientRelatedStudies",
       &out);
  EXPECT_EQ(responses(out), 3u) << out;
  EXPECT_NE(out.find("Final Find Response (Success)"), std::string::npos) << out;
  EXPECT_NE(out.find("[2 ]"), std::string::npos) << out;  // TA-0001: two studies
  // A fourth patient: past the limit, said so; the three answered still count all their studies.
  add_study("TA-0003");
  if (HasFatalFailure()) return;
  tool("findscu -v -P" + dicom_args("TA_WS") +
           " -k QueryRetrieveLevel=PATIENT -k PatientID -k NumberOfPatientRelatedStudies",
       &out);
  EXPECT_EQ(responses(out), 3u) << out;
  EXPECT_NE(out.find("Final Find Response (Cancel: MatchingTerminatedDueToCancelRequest)"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("TA-0003"), std::string::npos) << out;  // the most recent patient first
  // Within the limit: success, as before.
  tool("findscu -v -S" + dicom_args("TA_WS") +
           " -k QueryRetrieveLevel=STUDY -k StudyInstanceUID -k PatientID=TA-0001",
       &out);
  EXPECT_EQ(responses(out), 2u) << out;
  EXPECT_NE(out.find("Final Find Response (Success)"), std::string::npos) << out;
  // File Meta keys some senders put in an identifier are left out of the answers.
  tool("findscu -v -S" + dicom_args("TA_WS") +
           " -k QueryRetrieveLevel=STUDY -k PatientID=TA-0002 -k StudyInstanceUID"
           " -k 0002,0010=1.2.840.10008.1.2.1 -k 0002,0016=TA_WS",
       &out);
  EXPECT_EQ(responses(out), 1u) << out;
  EXPECT_NE(out.find("Final Find Response (Success)"), std::string::npos) << out;
  const std::string answer = out.substr(std::min(out.find("Find Response: 1"), out.size()));
  EXPECT_NE(answer.find("TA-0002"), std::string::npos) << out;
  EXPECT_EQ(answer.find("(0002,"), std::string::npos) << out;
  EXPECT_EQ(server_->log().find("Invalid Element"), std::string::npos) << server_->log();
}

TEST_P(DicomWebQrTest, a_c_move_whose_destination_is_down_fails_and_says_why_in_the_log) {
  ASSERT_EQ(testing::run_command("kill " + peer_pid_), 0);
  peer_pid_.clear();
  std::string out;
  const std::string echo = "echoscu -aet TA_CT -aec TA_WS 127.0.0.1 " + std::to_string(peer_port_);
  for (int i = 0; i < 200 && tool(echo, &out) == 0; ++i) {  // until the peer is gone
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  tool("movescu -v -S" + dicom_args("TA_WS") + " -aem TA_WS -k QueryRetrieveLevel=STUDY" +
           " -k StudyInstanceUID=" + ct_.study_uid,
       &out);
  EXPECT_NE(out.find("Final Move Response (Refused: OutOfResourcesSubOperations)"),
            std::string::npos)
      << out;
  const std::string log = server_->log();
  for (const std::string& uid : ct_.sop_instance_uids) {
    EXPECT_NE(log.find("C-MOVE to TA_WS: instance " + uid + " not sent: no association"),
              std::string::npos)
        << log;
  }
}

// A JPEG 2000 object (lossless, of the same image as MR_small.dcm) to clients that take only
// native pixels: WADO-RS in explicit VR little endian, frames as octet-stream, C-MOVE to a
// receiver that accepts only uncompressed syntaxes.
TEST_P(DicomWebQrTest, a_jpeg_2000_object_reaches_clients_that_take_only_native_pixels) {
  const fs::path j2k = dir_.path() / "j2k.dcm";
  fs::copy_file(kPydicom / "MR_small_jp2klossless.dcm", j2k);
  std::string out;
  ASSERT_EQ(
      tool("dcmodify -nb -gst -gse -gin -i '(0010,0020)=TA-J2K' '" + j2k.string() + "'", &out), 0)
      << out;
  ASSERT_EQ(tool("dcmsend -aet TA_CT -aec YILIAN 127.0.0.1 " +
                     std::to_string(server_->dicom_port()) + " '" + j2k.string() + "'",
                 &out),
            0)
      << out;
  const std::string expected = pixel_bytes(kPydicom / "MR_small.dcm");
  ASSERT_FALSE(expected.empty());
  const std::string study = dicom_string(j2k, DCM_StudyInstanceUID);
  const std::string path = "/dicom-web/studies/" + study + "/series/" +
                           dicom_string(j2k, DCM_SeriesInstanceUID) + "/instances/" +
                           dicom_string(j2k, DCM_SOPInstanceUID);
  // As stored unless asked otherwise; 406 for a syntax it cannot be sent in (lossy JPEG).
  EXPECT_EQ(
      get(ta_, path,
          "multipart/related; type=\"application/dicom\"; transfer-syntax=1.2.840.10008.1.2.4.50")
          .status,
      406);
  auto r =
      get(ta_, path,
          "multipart/related; type=\"application/dicom\"; transfer-syntax=1.2.840.10008.1.2.1");
  ASSERT_EQ(r.status, 200) << r.body;
  auto objects = parts(r);
  ASSERT_EQ(objects.size(), 1u);
  EXPECT_NE(objects[0].content_type.find("transfer-syntax=1.2.840.10008.1.2.1"), std::string::npos);
  const fs::path got = dir_.path() / "native.dcm";
  std::ofstream(got, std::ios::binary) << objects[0].bytes;
  {
    DcmFileFormat ff;
    OFString ts;
    ASSERT_TRUE(ff.loadFile(got.c_str()).good());
    ff.getMetaInfo()->findAndGetOFString(DCM_TransferSyntaxUID, ts);
    EXPECT_EQ(std::string(ts.c_str()), "1.2.840.10008.1.2.1");
  }
  EXPECT_EQ(pixel_bytes(got), expected);  // lossless: every pixel value as in the original
  auto frame = get(ta_, path + "/frames/1", "multipart/related; type=\"application/octet-stream\"");
  ASSERT_EQ(frame.status, 200) << frame.body;
  auto frames = parts(frame);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].bytes, expected);
  // The workstation (storescp with its default, uncompressed syntaxes only) gets it decoded.
  ASSERT_EQ(tool("movescu -S" + dicom_args("TA_WS") + " -aem TA_WS -k QueryRetrieveLevel=STUDY" +
                     " -k StudyInstanceUID=" + study,
                 &out),
            0)
      << out;
  bool received = false;
  for (const auto& e : fs::directory_iterator(peer_dir_)) {
    if (dicom_string(e.path(), DCM_StudyInstanceUID) != study) continue;
    received = true;
    EXPECT_EQ(pixel_bytes(e.path()), expected) << e.path();
  }
  EXPECT_TRUE(received) << out;
}

TEST_P(DicomWebQrTest, c_move_sends_to_a_configured_peer_and_c_get_on_the_same_association) {
  const fs::path& received = peer_dir_;
  std::string out;
  int rc = tool("movescu -S" + dicom_args("TA_WS") + " -aem TA_WS" +
                    " -k QueryRetrieveLevel=STUDY -k StudyInstanceUID=" + ct_.study_uid,
                &out);
  EXPECT_EQ(rc, 0) << out;
  std::set<std::string> uids;
  for (const auto& e : fs::directory_iterator(received))
    uids.insert(dicom_string(e.path(), DCM_SOPInstanceUID));
  EXPECT_EQ(uids, std::set<std::string>(ct_.sop_instance_uids.begin(), ct_.sop_instance_uids.end()))
      << out;

  // Township B's node cannot move township A's study: nothing is sent.
  tool("movescu -S" + dicom_args("TB_WS") + " -aem TB_WS -k QueryRetrieveLevel=STUDY" +
           " -k StudyInstanceUID=" + ct_.study_uid,
       &out);
  EXPECT_EQ(out.find("Completed Suboperations"), std::string::npos) << out;
  // An unknown destination is refused.
  tool("movescu -S" + dicom_args("TA_WS") + " -aem NOWHERE -k QueryRetrieveLevel=STUDY" +
           " -k StudyInstanceUID=" + ct_.study_uid,
       &out);
  EXPECT_NE(out.find("MoveDestinationUnknown"), std::string::npos) << out;

  // C-GET: the instances come back over the requesting association.
  fs::path got = dir_.path() / "got";
  fs::create_directories(got);
  ASSERT_EQ(tool("getscu -S" + dicom_args("TA_WS") + " -od '" + got.string() +
                     "' -k QueryRetrieveLevel=SERIES -k StudyInstanceUID=" + ct_.study_uid +
                     " -k SeriesInstanceUID=" + ct_.series_uid,
                 &out),
            0)
      << out;
  std::size_t n = 0;
  for (const auto& e : fs::directory_iterator(got)) {
    ++n;
    EXPECT_EQ(pixel_bytes(e.path()).size(), pixel_bytes(ct_.files[0]).size());
  }
  EXPECT_EQ(n, 3u) << out;
  // The JPEG-LS MR is decompressed for a requester that takes only uncompressed syntaxes.
  fs::path mr = dir_.path() / "mr";
  fs::create_directories(mr);
  ASSERT_EQ(tool("getscu -S" + dicom_args("TA_WS") + " -od '" + mr.string() +
                     "' -k QueryRetrieveLevel=IMAGE -k StudyInstanceUID=" + kMrStudy +
                     " -k SeriesInstanceUID=" + kMrSeries + " -k SOPInstanceUID=" + kMrUid,
                 &out),
            0)
      << out;
  std::size_t mr_files = 0;
  for (const auto& e : fs::directory_iterator(mr)) {
    ++mr_files;
    EXPECT_EQ(pixel_bytes(e.path()), pixel_bytes(kPydicom / "MR_small.dcm"));
  }
  EXPECT_EQ(mr_files, 1u) << out;
}

// A series search across studies counts its matches for X-Total-Count, but past a full page it
// reads at most 1,000 more studies: beyond that the answer says there is more (Warning 299,
// PS3.18 8.3.4.1) instead of a total. 1,003 one-image studies, loaded by `yilian import`.
TEST(DicomWebSearch, a_search_past_a_thousand_more_studies_says_there_are_more_results) {
  testing::TempDir dir;
  const fs::path cfg = dir.path() / "yilian.toml";
  std::ofstream(cfg) << "[[institutions]]\ncode = \"ta\"\nname = \"Township A\"\n";
  const fs::path data = dir.path() / "data";
  ServerProcess server(data, {"--config", cfg.string()});
  ASSERT_TRUE(server.start()) << server.log();
  const std::string token = server.add_user("ta-doctor", {"township_doctor"}, "ta");
  ASSERT_FALSE(token.empty());
  ASSERT_EQ(server.stop(), 0) << server.log();
  constexpr int kStudies = 1003;
  testing::CtSeriesSpec spec;
  spec.count = 1;
  spec.rows = spec.columns = 8;
  for (int n = 0; n < kStudies; ++n) {
    spec.patient_id = "P" + std::to_string(n);
    ASSERT_TRUE(testing::write_ct_series(dir.path() / "in" / std::to_string(n), spec).ok());
  }
  std::string out;
  ASSERT_EQ(
      testing::run_command(testing::yilian_binary() + " import --data '" + data.string() +
                               "' --institution ta '" + (dir.path() / "in").string() + "' 2>&1",
                           &out),
      0)
      << out;
  ASSERT_TRUE(server.start()) << server.log();
  auto search = [&](const std::string& target) {
    return testing::http_request(server.http_port(), "GET", target, "",
                                 {{"Authorization", "Bearer " + token}});
  };
  auto more = search("/dicom-web/series?limit=1");
  ASSERT_EQ(more.status, 200) << more.body;
  EXPECT_EQ(json::parse(more.body).size(), 1u);
  EXPECT_EQ(more.header("warning").rfind("299 ", 0), 0u) << more.head;
  EXPECT_EQ(more.header("x-total-count"), "") << more.head;
  // A page with every study counted: the total, and no warning.
  auto counted = search("/dicom-web/series?limit=1&PatientID=P7*");
  ASSERT_EQ(counted.status, 200);
  EXPECT_EQ(counted.header("x-total-count"), "111") << counted.head;  // P7, P70-, P700-P799
  EXPECT_EQ(counted.header("warning"), "");
  auto all = search("/dicom-web/studies?limit=1");
  EXPECT_EQ(all.header("x-total-count"), std::to_string(kStudies)) << all.head;
}

INSTANTIATE_TEST_SUITE_P(Backends, DicomWebQrTest, ::testing::Values("sqlite", "postgres"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
}  // namespace yilian
