#include "demo.h"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>
#include <vector>

#include "yilian/ecg/dicom_waveform.h"
#include "yilian/ecg/synthetic.h"
#include "yilian/identity/auth.h"
#include "yilian/pacs/dicom_file.h"
#include "yilian/pacs/scu.h"
#include "yilian/pathology/convert.h"
#include "yilian/pathology/synthetic.h"
#include "yilian/storage/blob_store.h"
#include "yilian/storage/clock.h"

namespace yilian::app {
namespace {

using pacs::new_uid;

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kSeededMarker = "demo-seeded.json";

constexpr const char* kConfig =
    R"toml(# The demo consortium (yilian demo): a lead hospital reading imaging and ECGs for two
# township health centres. Institutions, reading services and queue settings can be changed on
# the administration screens as well.
[dicom]
reject_unknown_ae = true
default_charset = "GB18030"

[[institutions]]
code = "lead"
name = "市第一人民医院"
level = "lead"
ae_titles = ["LEAD_CT", "LEAD_SM"]

[[institutions]]
code = "qingshan"
name = "青山镇卫生院"
level = "township"
parent = "lead"
ae_titles = ["QS_CT", "QS_US", "QS_ECG"]

[[institutions]]
code = "baishui"
name = "白水镇卫生院"
level = "township"
parent = "lead"
ae_titles = ["BS_DR", "BS_ECG"]

[[reading_services]]
provider = "lead"
service = "imaging"
clients = ["qingshan", "baishui"]

[[reading_services]]
provider = "lead"
service = "ecg"
clients = ["qingshan", "baishui"]

[lab]
qualifications = { lead = "iso15189", qingshan = "provincial_eqa", baishui = "provincial_eqa" }

[[lab.recognition]]
code = "718-7"        # haemoglobin
qualifications = ["provincial_eqa", "iso15189"]
valid_days = 30

[[lab.recognition]]
code = "2345-7"       # glucose
qualifications = ["provincial_eqa", "iso15189"]
valid_days = 7

[[lab.recognition]]
code = "10839-9"      # troponin I: from ISO 15189 laboratories only
qualifications = ["iso15189"]
valid_days = 1

[[lab.recognition]]
modality = "CT"
qualifications = ["iso15189"]
valid_days = 180

[queue]
stable_seconds = 3

[[queue.routes]]
service = "neuro"
modalities = ["CT", "MR"]
body_parts = ["HEAD", "BRAIN"]

[[queue.routes]]
service = "chest"
modalities = ["CT", "DX", "CR"]
body_parts = ["CHEST"]

[[queue.priority_rules]]
priority = "stat"
reason = "头颅CT 疑似卒中 (stroke)"
modalities = ["CT"]
body_parts = ["HEAD"]
text_contains = ["卒中", "stroke"]
)toml";

struct DemoUser {
  const char* username;
  const char* display_name;
  const char* institution;
  Role role;
  const char* what;
};

constexpr DemoUser kUsers[] = {
    {"office", "医联体办公室 周主任", "consortium", Role::admin, "administrator"},
    {"dr-wang", "王医生（影像科）", "lead", Role::radiologist, "radiologist"},
    {"dr-zhao", "赵医生（心内科）", "lead", Role::cardiologist, "cardiologist"},
    {"dr-sun", "孙医生（急诊科）", "lead", Role::physician, "emergency physician"},
    {"dr-zhou", "周医生（病理科）", "lead", Role::pathologist, "pathologist"},
    {"dr-li", "李医生（青山镇）", "qingshan", Role::township_doctor, "township doctor"},
    {"dr-chen", "陈医生（白水镇）", "baishui", Role::township_doctor, "township doctor"},
};

// Now as the demo consortium's modalities write it: China Standard Time (the hub's default
// `[site] utc_offset_minutes`), as a DICOM date and time.
struct LocalNow {
  std::string date, time;
};
LocalNow local_now() {
  const std::string iso =
      storage::to_iso8601(std::chrono::system_clock::now() + std::chrono::hours(8));
  return {iso.substr(0, 4) + iso.substr(5, 2) + iso.substr(8, 2),
          iso.substr(11, 2) + iso.substr(14, 2) + iso.substr(17, 2)};
}

struct Patient {
  const char* id;
  const char* name;  // as Chinese modalities write it: the name in characters, UTF-8
  const char* sex;
  const char* birth;
};

// What every image of one study shares.
struct StudyHeader {
  Patient patient;
  std::string study_uid = new_uid();
  std::string series_uid = new_uid();
  std::string accession;
  std::string institution;
  std::string description;
  std::string reason;  // Reason for the Requested Procedure: what routing and priority read
  std::string body_part;
  std::string modality;
  std::string sop_class;
};

StudyHeader header(Patient patient, std::string accession, std::string institution,
                   std::string description, std::string reason, std::string body_part,
                   std::string modality, std::string sop_class) {
  StudyHeader h;
  h.patient = patient;
  h.accession = std::move(accession);
  h.institution = std::move(institution);
  h.description = std::move(description);
  h.reason = std::move(reason);
  h.body_part = std::move(body_part);
  h.modality = std::move(modality);
  h.sop_class = std::move(sop_class);
  return h;
}

void put(DcmDataset* ds, const DcmTagKey& tag, const std::string& v) {
  ds->putAndInsertString(tag, v.c_str());
}

void put_header(DcmDataset* ds, const StudyHeader& h, int instance, const std::string& sop) {
  put(ds, DCM_SpecificCharacterSet, "ISO_IR 192");
  put(ds, DCM_SOPClassUID, h.sop_class);
  put(ds, DCM_SOPInstanceUID, sop);
  put(ds, DCM_StudyInstanceUID, h.study_uid);
  put(ds, DCM_SeriesInstanceUID, h.series_uid);
  put(ds, DCM_PatientID, h.patient.id);
  put(ds, DCM_PatientName, h.patient.name);
  put(ds, DCM_PatientSex, h.patient.sex);
  put(ds, DCM_PatientBirthDate, h.patient.birth);
  const LocalNow now = local_now();
  put(ds, DCM_StudyDate, now.date);
  put(ds, DCM_StudyTime, now.time);
  put(ds, DCM_AccessionNumber, h.accession);
  put(ds, DCM_StudyDescription, h.description);
  put(ds, DCM_ReasonForTheRequestedProcedure, h.reason);
  put(ds, DCM_InstitutionName, h.institution);
  put(ds, DCM_Modality, h.modality);
  put(ds, DCM_BodyPartExamined, h.body_part);
  put(ds, DCM_SeriesNumber, "1");
  put(ds, DCM_InstanceNumber, std::to_string(instance));
}

void put_pixels16(DcmDataset* ds, int rows, int cols, const std::vector<Uint16>& px) {
  put(ds, DCM_PhotometricInterpretation, "MONOCHROME2");
  ds->putAndInsertUint16(DCM_SamplesPerPixel, 1);
  ds->putAndInsertUint16(DCM_Rows, static_cast<Uint16>(rows));
  ds->putAndInsertUint16(DCM_Columns, static_cast<Uint16>(cols));
  ds->putAndInsertUint16(DCM_BitsAllocated, 16);
  ds->putAndInsertUint16(DCM_BitsStored, 12);
  ds->putAndInsertUint16(DCM_HighBit, 11);
  ds->putAndInsertUint16(DCM_PixelRepresentation, 0);
  ds->putAndInsertUint16Array(DCM_PixelData, px.data(), static_cast<unsigned long>(px.size()));
}

Status save(DcmFileFormat& ff, const fs::path& file) {
  OFCondition c = ff.saveFile(file.c_str(), EXS_LittleEndianExplicit);
  if (c.bad()) return make_error(Errc::io, "cannot write " + file.string() + ": " + c.text());
  return Status::Ok();
}

// Inside the ellipse centred (cx, cy) with half axes (a, b)?
bool in_ellipse(double x, double y, double cx, double cy, double a, double b) {
  const double dx = (x - cx) / a, dy = (y - cy) / b;
  return dx * dx + dy * dy <= 1.0;
}

// A CT series of `slices` 256x256 slices drawn by `hu(x, y, z)` (Hounsfield units) with
// scanner noise. Returns the files.
Result<std::vector<fs::path>> write_ct(const fs::path& dir, const StudyHeader& h, int slices,
                                       double spacing,
                                       const std::function<double(int, int, int)>& hu,
                                       std::mt19937& rng, const char* window_c,
                                       const char* window_w) {
  constexpr int n = 256;
  std::normal_distribution<double> noise(0, 4);
  std::vector<fs::path> files;
  for (int z = 0; z < slices; ++z) {
    std::vector<Uint16> px(static_cast<std::size_t>(n) * n);
    for (int y = 0; y < n; ++y) {
      for (int x = 0; x < n; ++x) {
        const double v = hu(x, y, z);
        const double stored = std::clamp(v + (v > -900 ? noise(rng) : 0) + 1024, 0.0, 4095.0);
        px[static_cast<std::size_t>(y) * n + x] = static_cast<Uint16>(std::lround(stored));
      }
    }
    DcmFileFormat ff;
    DcmDataset* ds = ff.getDataset();
    put_header(ds, h, z + 1, new_uid());
    put(ds, DCM_SeriesDescription, "AXIAL 5mm");
    put(ds, DCM_ImagePositionPatient, "-115\\-115\\" + std::to_string(z * 5));
    put(ds, DCM_ImageOrientationPatient, "1\\0\\0\\0\\1\\0");
    char ps[32];
    std::snprintf(ps, sizeof ps, "%.2f\\%.2f", spacing, spacing);
    put(ds, DCM_PixelSpacing, ps);
    put(ds, DCM_SliceThickness, "5");
    put(ds, DCM_RescaleIntercept, "-1024");
    put(ds, DCM_RescaleSlope, "1");
    put(ds, DCM_WindowCenter, window_c);
    put(ds, DCM_WindowWidth, window_w);
    put_pixels16(ds, n, n, px);
    char name[32];
    std::snprintf(name, sizeof name, "CT%03d.dcm", z + 1);
    if (Status s = save(ff, dir / name); !s) return s.error();
    files.push_back(dir / name);
  }
  return files;
}

// A head: skull, brain with grey/white contrast, ventricles, and an early ischaemic area (a
// slightly darker wedge in the right middle cerebral artery territory).
double head_hu(int x, int y, int z) {
  const double scale = std::sqrt(std::max(0.0, 1.0 - std::pow((z - 7.0) / 12.0, 2)));
  const double a = 92 * scale, b = 110 * scale;
  if (a < 5 || !in_ellipse(x, y, 128, 128, a + 7, b + 7)) return -1000;
  if (!in_ellipse(x, y, 128, 128, a, b)) return 1100;  // the skull
  if (z >= 6 && z <= 10 && (in_ellipse(x, y, 116, 122, 7, 22) || in_ellipse(x, y, 140, 122, 7, 22)))
    return 8;                                                     // lateral ventricles
  double v = in_ellipse(x, y, 128, 128, a - 9, b - 9) ? 28 : 38;  // white / grey matter
  if (z >= 5 && z <= 11 && x < 100 && y > 95 && y < 165 && in_ellipse(x, y, 128, 128, a, b))
    v -= 9;  // early ischaemia, right hemisphere (image left)
  return v;
}

double chest_hu(int x, int y, int /*z*/) {
  if (y > 205 && y < 212 && x > 30 && x < 226) return 300;  // the table
  if (!in_ellipse(x, y, 128, 122, 118, 82)) return -1000;
  if (!in_ellipse(x, y, 128, 122, 110, 74)) return -100;  // subcutaneous fat
  if (in_ellipse(x, y, 128, 182, 14, 13)) return 700;     // vertebra
  if (in_ellipse(x, y, 140, 118, 30, 28)) return 45;      // heart
  if (in_ellipse(x, y, 84, 118, 36, 52) || in_ellipse(x, y, 172, 118, 36, 52)) {
    if (in_ellipse(x, y, 70, 100, 7, 7)) return 20;  // a nodule in the right upper lobe
    return -850;
  }
  return 40;
}

Result<fs::path> write_dr(const fs::path& dir, const StudyHeader& h, std::mt19937& rng) {
  constexpr int n = 512;
  std::normal_distribution<double> noise(0, 30);
  std::vector<Uint16> px(static_cast<std::size_t>(n) * n);
  for (int y = 0; y < n; ++y) {
    for (int x = 0; x < n; ++x) {
      double v = 300;                                      // air: dark
      if (in_ellipse(x, y, 256, 280, 230, 250)) v = 2400;  // soft tissue
      if (in_ellipse(x, y, 170, 250, 75, 160) || in_ellipse(x, y, 342, 250, 75, 160))
        v = 1100;                                        // lungs
      if (in_ellipse(x, y, 285, 330, 70, 80)) v = 2600;  // heart
      if (std::abs(x - 256) < 18 && y > 60) v = 3100;    // spine
      for (int r = 0; r < 8; ++r) {                      // ribs
        const double ry = 130 + r * 36 + 0.002 * (x - 256) * (x - 256);
        if (std::abs(y - ry) < 5 && std::abs(x - 256) > 25 && std::abs(x - 256) < 200) v += 500;
      }
      px[static_cast<std::size_t>(y) * n + x] =
          static_cast<Uint16>(std::clamp(v + noise(rng), 0.0, 4095.0));
    }
  }
  DcmFileFormat ff;
  DcmDataset* ds = ff.getDataset();
  put_header(ds, h, 1, new_uid());
  put(ds, DCM_PresentationIntentType, "FOR PRESENTATION");
  put(ds, DCM_ViewPosition, "PA");
  put(ds, DCM_ImagerPixelSpacing, "0.7\\0.7");
  put(ds, DCM_PixelSpacing, "0.7\\0.7");
  put(ds, DCM_WindowCenter, "2000");
  put(ds, DCM_WindowWidth, "3600");
  put_pixels16(ds, n, n, px);
  if (Status s = save(ff, dir / "DR001.dcm"); !s) return s.error();
  return dir / "DR001.dcm";
}

// An ultrasound cine: a sector of speckle with a gallbladder that moves with breathing.
Result<fs::path> write_us(const fs::path& dir, const StudyHeader& h, std::mt19937& rng) {
  constexpr int w = 320, ht = 240, frames = 24;
  std::exponential_distribution<double> speckle(1.0);
  std::vector<Uint8> px(static_cast<std::size_t>(frames) * w * ht, 0);
  for (int f = 0; f < frames; ++f) {
    const double shift = 6 * std::sin(2 * 3.14159265 * f / frames);
    for (int y = 0; y < ht; ++y) {
      for (int x = 0; x < w; ++x) {
        const double dx = x - w / 2.0, dy = y + 20.0;
        const double r = std::sqrt(dx * dx + dy * dy), angle = std::atan2(dx, dy);
        if (r < 30 || r > 255 || std::abs(angle) > 0.75) continue;  // outside the sector
        double v = 70 + 40 * speckle(rng) * (1.0 - r / 400);
        if (in_ellipse(x, y, 170 + shift, 130, 38, 22)) v = 6 + 4 * speckle(rng);  // fluid
        if (std::abs(y - (60 + shift * 0.5)) < 3) v = 200;                         // capsule
        px[(static_cast<std::size_t>(f) * ht + y) * w + x] =
            static_cast<Uint8>(std::clamp(v, 0.0, 255.0));
      }
    }
  }
  DcmFileFormat ff;
  DcmDataset* ds = ff.getDataset();
  put_header(ds, h, 1, new_uid());
  put(ds, DCM_NumberOfFrames, std::to_string(frames));
  put(ds, DCM_CineRate, "20");
  put(ds, DCM_FrameTime, "50");
  put(ds, DCM_PhotometricInterpretation, "MONOCHROME2");
  ds->putAndInsertUint16(DCM_SamplesPerPixel, 1);
  ds->putAndInsertUint16(DCM_Rows, ht);
  ds->putAndInsertUint16(DCM_Columns, w);
  ds->putAndInsertUint16(DCM_BitsAllocated, 8);
  ds->putAndInsertUint16(DCM_BitsStored, 8);
  ds->putAndInsertUint16(DCM_HighBit, 7);
  ds->putAndInsertUint16(DCM_PixelRepresentation, 0);
  ds->putAndInsertUint8Array(DCM_PixelData, px.data(), static_cast<unsigned long>(px.size()));
  if (Status s = save(ff, dir / "US001.dcm"); !s) return s.error();
  return dir / "US001.dcm";
}

Result<fs::path> write_ecg(const fs::path& dir, const Patient& p, const std::string& institution,
                           bool stemi, int age, char sex) {
  ecg::Synthetic s;
  s.rr = stemi ? 0.75 : 0.9;
  if (stemi) {
    for (const char* lead : {"II", "III", "aVF"}) s.leads[lead].st = 0.3;
    for (const char* lead : {"I", "aVL"}) s.leads[lead].st = -0.1;
  }
  ecg::Record rec = ecg::make_ecg(s, stemi ? 7u : 3u);
  rec.patient = {age, sex};
  const LocalNow now = local_now();
  ecg::DicomEcgIdentity id{p.id,      p.name,   new_uid(), new_uid(),
                           new_uid(), now.date, now.time,  institution};
  const fs::path file = dir / (std::string(p.id) + ".dcm");
  if (Status st = ecg::write_dicom_waveform(rec, id, file); !st) return st.error();
  return file;
}

// Acts as a demo user through the hub's own handlers.
struct Actor {
  const http::Router& router;
  DataDir& dd;
  Result<json> call(const std::string& username, const std::string& method, const std::string& path,
                    const json& body = nullptr) {
    auto u = dd.accounts().find_user(username);
    if (!u.ok()) return u.error();
    if (!u->has_value()) return make_error(Errc::not_found, "no demo user " + username);
    auto p = dd.accounts().principal((*u)->id);
    if (!p.ok()) return p.error();
    http::Request req;
    req.method = method;
    req.path = path.substr(0, path.find('?'));
    if (const auto q = path.find('?'); q != std::string::npos) {
      for (std::size_t at = q + 1; at < path.size();) {
        const std::size_t end = std::min(path.find('&', at), path.size());
        const std::string pair = path.substr(at, end - at);
        const std::size_t eq = pair.find('=');
        req.query[pair.substr(0, eq)] = eq == std::string::npos ? "" : pair.substr(eq + 1);
        at = end + 1;
      }
    }
    req.peer = "demo";
    req.principal = std::move(*p);
    if (!body.is_null()) {
      req.body = body.dump();
      req.content_type = "application/json";
    }
    http::Response r = router.dispatch(req);
    json j = json::parse(r.body, nullptr, false);
    if (r.status >= 300) {
      return make_error(Errc::internal, method + " " + path + ": " + std::to_string(r.status) +
                                            " " + r.body.substr(0, 200));
    }
    return j;
  }
};

// The reading tasks of a study, once routed (bounded wait).
Result<json> wait_for_task(Actor& as, const std::string& reader, const std::string& study) {
  for (int i = 0; i < 300; ++i) {
    auto list = as.call(reader, "GET", "/api/worklist?status=queued");
    if (!list.ok()) return list.error();
    for (const json& t : (*list)["tasks"]) {
      if (t.value("studyInstanceUid", "") == study) return t;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return make_error(Errc::unavailable, "study " + study + " was not routed within 30 s");
}

}  // namespace

Result<fs::path> write_demo_config(const fs::path& data) {
  std::error_code ec;
  fs::create_directories(data, ec);
  if (ec) return make_error(Errc::io, "cannot create " + data.string() + ": " + ec.message());
  const fs::path file = data / "demo.toml";
  if (Status s = storage::write_file_durably(file, kConfig); !s) return s.error();
  return file;
}

bool demo_seeded(const fs::path& data) {
  std::error_code ec;
  return fs::exists(data / kSeededMarker, ec);
}

Status add_demo_users(DataDir& dd) {
  identity::AuthService auth(dd.accounts(), dd.auditor(),
                             [] { return std::chrono::system_clock::now(); }, {});
  std::printf("\n  The demo consortium: sign in at the hub's address with\n\n");
  for (const DemoUser& d : kUsers) {
    auto known = dd.accounts().find_user(d.username);
    if (!known.ok()) return known.error();
    if (!known->has_value()) {
      identity::NewUser u;
      u.username = d.username;
      u.display_name = d.display_name;
      u.institution_code = d.institution;
      u.roles = 1u << static_cast<unsigned>(d.role);
      if (d.role == Role::cardiologist) u.roles |= 1u << static_cast<unsigned>(Role::ecg_reader);
      auto made = auth.add_user(u, kDemoPassword);
      if (!made.ok()) return made.error();
      identity::AuditEvent ev;
      ev.actor = "demo";
      ev.address = "local";
      ev.action = "user.create";
      ev.object_type = "user";
      ev.object_id = d.username;
      ev.detail = "demo consortium";
      (void)dd.auditor().record(ev);
    }
    std::printf("    %-9s password %s   %s, %s\n", d.username, kDemoPassword, d.what,
                d.institution);
  }
  std::printf("\n");
  std::fflush(stdout);
  return Status::Ok();
}

Status seed_demo(const fs::path& data, std::uint16_t dicom_port, const http::Router& router,
                 DataDir& dd) {
  const fs::path dir = data / "demo-studies";
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir, ec);
  if (ec) return make_error(Errc::io, "cannot create " + dir.string());
  std::mt19937 rng(2026);
  auto send = [&](const char* ae, const std::vector<fs::path>& files) -> Status {
    pacs::ScuPeer peer{ae, "YILIAN", "127.0.0.1", dicom_port, 30};
    auto n = pacs::store_files(peer, files);
    if (!n.ok()) return n.error();
    if (*n != files.size()) {
      return make_error(Errc::internal, std::string(ae) + ": " + std::to_string(*n) + " of " +
                                            std::to_string(files.size()) + " stored");
    }
    return Status::Ok();
  };

  // 0. The lead hospital's on-call roster for the coming week: the cardiologist takes the
  // chest-pain and ECG alerts, the radiologist the stroke CT's.
  Actor as{router, dd};
  const auto now = std::chrono::system_clock::now();
  for (const auto& [service, user] :
       {std::pair{"cardiology", "dr-zhao"}, std::pair{"ecg", "dr-zhao"},
        std::pair{"radiology", "dr-wang"}}) {
    auto shift = as.call("office", "POST", "/api/oncall",
                         {{"institution", "lead"},
                          {"service", service},
                          {"role", "primary"},
                          {"user", user},
                          {"startsAt", storage::to_iso8601(now - std::chrono::hours(1))},
                          {"endsAt", storage::to_iso8601(now + std::chrono::hours(24 * 7))}});
    if (!shift.ok()) return shift.error();
  }

  // 1. The stroke: a head CT from Qingshan, STAT by the priority rule, a stroke case opens.
  const StudyHeader head =
      header({"QS-0001", "张伟", "M", "19580312"}, "QS2026001", "青山镇卫生院", "头颅CT平扫",
             "突发左侧肢体无力2小时，疑似急性脑卒中", "HEAD", "CT", UID_CTImageStorage);
  fs::create_directories(dir / "head", ec);
  auto head_files = write_ct(dir / "head", head, 18, 0.9, head_hu, rng, "40", "80");
  if (!head_files.ok()) return head_files.error();
  if (Status s = send("QS_CT", *head_files); !s) return s;

  // 2. The STEMI: a 12-lead ECG from Qingshan; the pipeline flags it and a chest-pain case opens.
  const Patient stemi{"QS-0002", "赵刚", "M", "19620805"};
  auto stemi_file = write_ecg(dir, stemi, "青山镇卫生院", true, 64, 'M');
  if (!stemi_file.ok()) return stemi_file.error();
  if (Status s = send("QS_ECG", {*stemi_file}); !s) return s;

  // 3. Routine work: a chest CT, an abdominal ultrasound cine, a DR and a normal ECG.
  const StudyHeader chest =
      header({"QS-0003", "李秀英", "F", "19660421"}, "QS2026002", "青山镇卫生院", "胸部CT平扫",
             "咳嗽两周，排除肺部感染", "CHEST", "CT", UID_CTImageStorage);
  fs::create_directories(dir / "chest", ec);
  auto chest_files = write_ct(dir / "chest", chest, 16, 1.4, chest_hu, rng, "-600", "1500");
  if (!chest_files.ok()) return chest_files.error();
  if (Status s = send("QS_CT", *chest_files); !s) return s;

  const StudyHeader us =
      header({"QS-0004", "刘芳", "F", "19900117"}, "QS2026003", "青山镇卫生院", "腹部超声",
             "右上腹痛", "ABDOMEN", "US", UID_UltrasoundMultiframeImageStorage);
  auto us_file = write_us(dir, us, rng);
  if (!us_file.ok()) return us_file.error();
  if (Status s = send("QS_US", {*us_file}); !s) return s;

  const StudyHeader dr =
      header({"BS-0001", "王建国", "M", "19710930"}, "BS2026001", "白水镇卫生院", "胸部正位片",
             "体检", "CHEST", "DX", UID_DigitalXRayImageStorageForPresentation);
  auto dr_file = write_dr(dir, dr, rng);
  if (!dr_file.ok()) return dr_file.error();
  if (Status s = send("BS_DR", {*dr_file}); !s) return s;

  const Patient normal{"BS-0002", "陈静", "F", "19800611"};
  auto normal_file = write_ecg(dir, normal, "白水镇卫生院", false, 46, 'F');
  if (!normal_file.ok()) return normal_file.error();
  if (Status s = send("BS_ECG", {*normal_file}); !s) return s;

  // 3b. The lead's operating theatre: a frozen section of a breast lump, scanned while the
  // surgeon waits (STAT for the pathologist).
  const fs::path section = dir / "frozen-section.tif";
  if (Status s = pathology::write_synthetic_slide(section, {}); !s) return s;
  pathology::ConvertOptions slide;
  slide.subject.patient_id = "LD-0001";
  slide.subject.patient_name = "孙丽";
  slide.subject.birth_date = "19750302";
  slide.subject.sex = "F";
  slide.subject.accession_number = "LD2026001";
  slide.subject.study_description = "冰冻切片 右乳肿物";
  slide.subject.container_id = "S2026-0412";
  slide.subject.institution_name = "市第一人民医院";
  std::vector<fs::path> slide_files;
  slide.next_file = [&]() -> Result<fs::path> {
    slide_files.push_back(dir / ("slide-" + std::to_string(slide_files.size()) + ".dcm"));
    return slide_files.back();
  };
  auto converted = pathology::convert_slide(section, slide);
  if (!converted.ok()) return converted.error();
  if (Status s = send("LEAD_SM", slide_files); !s) return s;

  // 4. What people did: the radiologist reports the DR; the Qingshan doctor asks the lead's
  // radiologists about the chest CT's nodule.
  auto dr_task = wait_for_task(as, "dr-wang", dr.study_uid);
  if (!dr_task.ok()) return dr_task.error();
  const std::string task = "/api/tasks/" + std::to_string((*dr_task)["id"].get<std::int64_t>());
  if (auto r = as.call("dr-wang", "POST", task + "/claim"); !r.ok()) return r.error();
  if (auto r =
          as.call("dr-wang", "POST", task + "/reports",
                  {{"kind", "final"},
                   {"findings", "两肺纹理清晰，未见实变影。心影大小形态正常。双侧肋膈角锐利。"},
                   {"impression", "心肺未见明显异常。"},
                   {"critical", false}});
      !r.ok())
    return r.error();
  if (auto r = wait_for_task(as, "dr-wang", chest.study_uid); !r.ok()) return r.error();
  auto consult = as.call("dr-li", "POST", "/api/consults",
                         {{"patientId", chest.patient.id},
                          {"patientName", chest.patient.name},
                          {"question", "右上肺结节，请协助判断性质及随访建议。"},
                          {"urgency", "routine"},
                          {"specialty", "radiology"},
                          {"studies", {chest.study_uid}}});
  if (!consult.ok()) return consult.error();

  // Qingshan's laboratory sends the STEMI patient's bloods (FHIR R4, its provincial
  // qualification): the haemoglobin and glucose are recognised at the lead, the troponin
  // (recognised from ISO 15189 laboratories only) is not.
  const std::string drawn =
      storage::to_iso8601(std::chrono::system_clock::now() - std::chrono::minutes(40));
  auto observation = [&](const char* code, const char* name, double value, const char* unit,
                         const char* flag) {
    json o = {{"resourceType", "Observation"},
              {"status", "final"},
              {"code",
               {{"coding", {{{"system", "http://loinc.org"}, {"code", code}, {"display", name}}}}}},
              {"subject", {{"identifier", {{"value", stemi.id}}}}},
              {"effectiveDateTime", drawn},
              {"valueQuantity", {{"value", value}, {"unit", unit}}}};
    if (*flag) o["interpretation"] = {{{"coding", {{{"code", flag}}}}}};
    return json{{"resource", o}};
  };
  const json bloods = {{"resourceType", "Bundle"},
                       {"type", "transaction"},
                       {"identifier", {{"system", "urn:lis:qingshan"}, {"value", "QS-LAB-0002"}}},
                       {"entry",
                        {observation("10839-9", "肌钙蛋白I", 2.8, "ng/mL", "H"),
                         observation("718-7", "血红蛋白", 138, "g/L", ""),
                         observation("2345-7", "葡萄糖", 8.9, "mmol/L", "H")}}};
  if (auto r = as.call("dr-li", "POST", "/fhir/r4/Bundle", bloods); !r.ok()) return r.error();

  // The STEMI patient is referred up to the lead hospital for primary PCI.
  auto referral = as.call("dr-li", "POST", "/api/referrals",
                          {{"direction", "up"},
                           {"toInstitution", "lead"},
                           {"urgency", "urgent"},
                           {"patientId", stemi.id},
                           {"patientName", stemi.name},
                           {"reason", "急性下壁心肌梗死，转上级医院行急诊PCI"}});
  if (!referral.ok()) return referral.error();

  const json marker = {{"seededAt", storage::to_iso8601(std::chrono::system_clock::now())},
                       {"studies",
                        {head.study_uid, chest.study_uid, us.study_uid, dr.study_uid,
                         converted->study_instance_uid}},
                       {"consult", (*consult)["id"]}};
  fs::remove_all(dir, ec);  // the hub holds what was sent
  return storage::write_file_durably(data / kSeededMarker, marker.dump(2) + "\n");
}

}  // namespace yilian::app
