// The pathology centre on the real `yilian serve`: a county lab's scanner file (a synthetic
// Aperio SVS written with libtiff) imported with `yilian pathology import`, a slide converted
// by Orthanc's WSI dicomizer (Debian orthanc-wsi, a converter nobody here wrote) sent by
// C-STORE, a level sent by STOW-RS; the slide's levels, tiles and label served to the doctors
// who may read the study, and to nobody else.
#include <gtest/gtest.h>

#include <ctime>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <regex>
#include <set>
#include <thread>

#include "consortium.h"
#include "server_process.h"
#include "slides.h"
#include "test_util.h"

namespace yilian {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::ServerProcess;

void expect_tile(const std::string& jpeg, std::array<std::uint8_t, 3> want) {
  const auto got = test::jpeg_mean_rgb(jpeg);
  for (int c = 0; c < 3; ++c) EXPECT_NEAR(got[c], want[c], 6.0) << "channel " << c;
}

std::string field(const std::string& output, const std::string& name) {
  std::smatch m;
  if (std::regex_search(output, m, std::regex(name + ": (\\S+)"))) return m[1];
  return {};
}

class PathologyTest : public ::testing::Test {
 protected:
  // `queue`: more [queue] settings.
  void start(const std::string& queue = "") {
    const fs::path cfg =
        testing::write_consortium_config(dir_.path(), "[queue]\nstable_seconds = 0.3\n" + queue +
                                                          "[limits]\nmax_body_megabytes = 1\n");
    server_ =
        std::make_unique<ServerProcess>(data_, std::vector<std::string>{"--config", cfg.string()});
    ASSERT_TRUE(server_->start()) << server_->log();
    pathologist_ = server_->add_user("dr-zhou", {"pathologist"}, "lead");
    radiologist_ = server_->add_user("dr-sun", {"radiologist"}, "lead");
    other_ = server_->add_user("tb-doctor", {"township_doctor"}, "tb");
    ASSERT_FALSE(pathologist_.empty() || radiologist_.empty());
  }
  json slide(const std::string& study, const std::string& series) {
    auto r = server_->get(pathologist_, "/api/slides/" + study + "/" + series);
    EXPECT_EQ(r.status, 200) << r.body;
    return r.status == 200 ? json::parse(r.body) : json::object();
  }
  // Writes `spec` as `name`.svs and converts it with `yilian pathology import` and `args` (the
  // destination, the patient); the command's output (its "study:" line names the study), or
  // empty when either step failed.
  std::string import_slide(const test::SlideSpec& spec, const std::string& name,
                           const std::string& args) {
    const fs::path file = dir_.path() / (name + ".svs");
    if (!test::write_slide(file, spec)) {
      ADD_FAILURE() << "cannot write " << file;
      return {};
    }
    std::string out;
    const int rc = testing::run_command(
        testing::yilian_binary() + " pathology import '" + file.string() + "' " + args + " 2>&1",
        &out);
    EXPECT_EQ(rc, 0) << out;
    return rc == 0 ? out : std::string{};
  }
  // The SOP Instance UID of the level `width` pixels wide, from the series' DICOMweb metadata.
  std::string level_instance(const std::string& study, const std::string& series, int width) {
    auto r = server_->get(pathologist_,
                          "/dicom-web/studies/" + study + "/series/" + series + "/metadata");
    EXPECT_EQ(r.status, 200) << r.body;
    if (r.status != 200) return {};
    for (const json& m : json::parse(r.body)) {
      if (m.contains("00480006") && m["00480006"]["Value"][0] == width) {
        return m["00080018"]["Value"][0];
      }
    }
    return {};
  }
  // The only series of `study`.
  std::string series_of(const std::string& study) {
    auto r = server_->get(pathologist_, "/api/studies/" + study);
    EXPECT_EQ(r.status, 200) << r.body;
    if (r.status != 200) return {};
    json j = json::parse(r.body);
    EXPECT_EQ(j["series"].size(), 1u);
    return j["series"][0]["seriesInstanceUid"];
  }

  testing::TempDir dir_;
  fs::path data_ = dir_.path() / "data";
  std::unique_ptr<ServerProcess> server_;
  std::string pathologist_, radiologist_, other_;
};

TEST_F(PathologyTest, an_imported_svs_slide_is_served_tile_by_tile_as_stored) {
  test::SlideSpec spec;  // 2048 x 1536 in 256 tiles, 3 levels, label and macro, 0.5 um
  const std::string out = import_slide(spec, "frozen",
                                       "--data '" + data_.string() +
                                           "' --institution ta --patient-id TA-WSI-1 "
                                           "--patient-name '王^小明' --study-description 冰冻切片 "
                                           "--slide-id S-2026-001");
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(field(out, "tiles copied"), "64") << out;
  const std::string study = field(out, "study");
  ASSERT_FALSE(study.empty()) << out;
  start();

  const std::string series = series_of(study);
  json s = slide(study, series);
  ASSERT_EQ(s["levels"].size(), 3u) << s.dump();
  EXPECT_EQ(s["containerId"], "S-2026-001");
  EXPECT_EQ(s["levels"][0]["width"], 2048);
  EXPECT_EQ(s["levels"][0]["tilesAcross"], 8);
  EXPECT_NEAR(s["levels"][0]["micronsPerPixel"].get<double>(), 0.5, 1e-9);
  EXPECT_NEAR(s["levels"][2]["micronsPerPixel"].get<double>(), 2.0, 1e-9);
  ASSERT_TRUE(s["images"].contains("label"));
  ASSERT_TRUE(s["images"].contains("overview"));

  // A tile: the stored JPEG, showing the colour of its place.
  const std::string base = "/api/slides/" + study + "/" + series;
  auto tile = server_->get(pathologist_, base + "/tiles/0/3/2");
  ASSERT_EQ(tile.status, 200) << tile.body;
  EXPECT_EQ(tile.header("content-type"), "image/jpeg");
  expect_tile(tile.body, test::tile_colour(0, 3, 2));
  expect_tile(server_->get(pathologist_, base + "/tiles/1/2/1").body, test::tile_colour(1, 2, 1));
  expect_tile(server_->get(pathologist_, base + "/images/label").body, {250, 250, 240});
  EXPECT_EQ(server_->get(pathologist_, base + "/tiles/0/8/0").status, 404);
  EXPECT_EQ(server_->get(pathologist_, base + "/tiles/3/0/0").status, 404);
  EXPECT_EQ(server_->get(pathologist_, base + "/tiles/0/x/0").status, 400);

  // The same frame by DICOMweb: as stored (no decoding), and rendered.
  const std::string level0 = level_instance(study, series, 2048);
  ASSERT_FALSE(level0.empty());
  const std::string frame_url = "/dicom-web/studies/" + study + "/series/" + series +
                                "/instances/" + level0 + "/frames/" + std::to_string(2 * 8 + 3 + 1);
  auto stored = testing::http_request(
      server_->http_port(), "GET", frame_url, {},
      {{"Authorization", "Bearer " + pathologist_},
       {"Accept", "multipart/related; type=\"image/jpeg\"; transfer-syntax=*"}});
  ASSERT_EQ(stored.status, 200) << stored.body;
  EXPECT_NE(stored.body.find(tile.body), std::string::npos) << "the frame is the tile as stored";
  auto rendered = server_->get(pathologist_, frame_url + "/rendered");
  ASSERT_EQ(rendered.status, 200);
  EXPECT_EQ(rendered.body, tile.body);

  // Nobody outside the study's readers sees it; opening the slide is audited.
  EXPECT_EQ(server_->get(other_, base).status, 404);
  EXPECT_EQ(server_->get(other_, base + "/tiles/0/0/0").status, 404);
  json audit =
      json::parse(server_->get(server_->admin_token(), "/api/audit?action=slide.view").body);
  std::set<std::string> seen;
  for (const json& r : audit["records"]) {
    EXPECT_EQ(r["objectId"], study);
    seen.insert(r["actor"].get<std::string>() + " " + r["outcome"].get<std::string>());
  }
  EXPECT_EQ(seen, (std::set<std::string>{"dr-zhou ok", "tb-doctor denied"})) << audit.dump();
}

// A county hospital's frozen section: converted and sent by C-STORE while the surgeon waits.
// The reading queue puts it in the pathology service as STAT, due within the frozen-section
// target (30 minutes) even where other STAT studies are given an hour.
TEST_F(PathologyTest, a_frozen_section_sent_during_surgery_is_a_stat_pathology_task) {
  start("sla_stat_minutes = 60\nsla_frozen_section_minutes = 30\n");
  test::SlideSpec spec;
  spec.levels = 2;
  const fs::path folder = dir_.path() / "fs";
  std::string out = import_slide(spec, "fs",
                                 "--out '" + folder.string() +
                                     "' --patient-id TA-WSI-4 --study-description "
                                     "'术中冰冻切片 乳腺肿物'");
  ASSERT_FALSE(out.empty());
  ASSERT_EQ(testing::run_command("storescu -R -xy -aet TA_CT -aec YILIAN 127.0.0.1 " +
                                     std::to_string(server_->dicom_port()) + " '" +
                                     folder.string() + "'/*.dcm 2>&1",
                                 &out),
            0)
      << out;
  json task;
  for (int i = 0; i < 200 && task.is_null(); ++i) {
    json list = json::parse(server_->get(pathologist_, "/api/worklist").body, nullptr, false);
    if (list.contains("tasks") && !list["tasks"].empty()) task = list["tasks"][0];
    if (task.is_null()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_FALSE(task.is_null()) << server_->log();
  EXPECT_EQ(task["service"], "pathology");
  EXPECT_EQ(task["priority"], "stat");
  EXPECT_EQ(task["priorityReason"], "frozen section: the surgeon is waiting");
  EXPECT_EQ(task["modalities"], "SM");
  const auto minutes = [](const std::string& iso) {
    std::tm tm{};
    strptime(iso.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
    return timegm(&tm) / 60;
  };
  EXPECT_EQ(minutes(task["dueAt"]) - minutes(task["receivedAt"]), 30) << task.dump();
  // The slide is the pathologists' to read: the lead's radiologist neither sees nor takes it.
  EXPECT_TRUE(json::parse(server_->get(radiologist_, "/api/worklist").body)["tasks"].empty());
  const std::string id = std::to_string(task["id"].get<std::int64_t>());
  EXPECT_EQ(server_->request(radiologist_, "POST", "/api/tasks/" + id + "/claim", "").status, 403);
  auto next = server_->request(radiologist_, "POST", "/api/worklist/claim-next", "");
  EXPECT_TRUE(json::parse(next.body, nullptr, false)["task"].is_null()) << next.body;
  auto mine = server_->request(pathologist_, "POST", "/api/tasks/" + id + "/claim", "");
  EXPECT_EQ(mine.status, 200) << mine.body;
}

// Scanners and converters send slides in other encodings than JPEG baseline: JPEG 2000
// (lossless, colour transform RCT), uncompressed RGB, and uncompressed YBR_FULL stored
// colour-by-plane. Each, sent by C-STORE beside the original, shows the same tiles; a
// browser gets each tile as a JPEG.
TEST_F(PathologyTest, a_slide_in_jpeg_2000_or_uncompressed_shows_the_same_tiles) {
  test::SlideSpec spec;
  spec.width = 1024;
  spec.height = 768;
  spec.levels = 2;
  const fs::path folder = dir_.path() / "jpeg";
  std::string out =
      import_slide(spec, "s", "--out '" + folder.string() + "' --patient-id TA-WSI-5");
  ASSERT_FALSE(out.empty());
  const std::string study = field(out, "study");
  ASSERT_FALSE(study.empty()) << out;
  start();
  struct Encoding {
    const char* mode;
    const char* propose;  // storescu's option for the transfer syntax
  };
  for (const Encoding& e :
       {Encoding{"j2k", "-xv"}, Encoding{"rgb", "-xe"}, Encoding{"ybr-planar", "-xe"}}) {
    SCOPED_TRACE(e.mode);
    const fs::path recoded = dir_.path() / e.mode;
    ASSERT_EQ(testing::run_command("/usr/bin/python3 '" + std::string(YILIAN_TESTS_SOURCE) +
                                       "/integration/recode_slide.py' " + e.mode + " '" +
                                       folder.string() + "' '" + recoded.string() + "' 2>&1",
                                   &out),
              0)
        << out;
    const std::string series = out.substr(0, out.find_first_of("\r\n"));
    ASSERT_EQ(
        testing::run_command(
            "storescu -R " + std::string(e.propose) + " -aet TA_CT -aec YILIAN 127.0.0.1 " +
                std::to_string(server_->dicom_port()) + " '" + recoded.string() + "'/*.dcm 2>&1",
            &out),
        0)
        << out;
    json s = slide(study, series);
    ASSERT_EQ(s["levels"].size(), 2u) << s.dump();
    const std::string base = "/api/slides/" + study + "/" + series;
    for (auto [level, col, row] : {std::tuple{0, 3, 2}, {0, 0, 0}, {1, 1, 1}}) {
      auto tile = server_->get(pathologist_, base + "/tiles/" + std::to_string(level) + "/" +
                                                 std::to_string(col) + "/" + std::to_string(row));
      ASSERT_EQ(tile.status, 200) << tile.body;
      EXPECT_EQ(tile.header("content-type"), "image/jpeg");
      expect_tile(tile.body, test::tile_colour(level, col, row));
    }
    // DICOMweb's rendered frame (what a DICOMweb viewer asks for) shows the same.
    const std::string level0 = level_instance(study, series, 1024);
    ASSERT_FALSE(level0.empty());
    auto rendered = server_->get(pathologist_, "/dicom-web/studies/" + study + "/series/" + series +
                                                   "/instances/" + level0 + "/frames/" +
                                                   std::to_string(2 * 4 + 3 + 1) + "/rendered");
    ASSERT_EQ(rendered.status, 200) << rendered.body;
    expect_tile(rendered.body, test::tile_colour(0, 3, 2));
  }
}

TEST_F(PathologyTest, a_slide_from_orthancs_dicomizer_arrives_by_c_store_and_stow) {
  test::SlideSpec spec;
  spec.aperio = false;
  ASSERT_TRUE(test::write_slide(dir_.path() / "county.tif", spec));
  const fs::path dataset = dir_.path() / "dataset.json";
  std::ofstream(dataset) << R"({"PatientID": "TA-WSI-2", "PatientName": "LI^SI",
                               "ContainerIdentifier": "S-2026-002"})";
  const fs::path folder = dir_.path() / "orthanc-wsi";
  fs::create_directories(folder);
  std::string out;
  ASSERT_EQ(testing::run_command("OrthancWSIDicomizer --dataset='" + dataset.string() +
                                     "' --folder='" + folder.string() + "' '" +
                                     (dir_.path() / "county.tif").string() + "' 2>&1",
                                 &out),
            0)
      << out;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(folder)) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  ASSERT_EQ(files.size(), 3u) << out;
  start();

  // Two levels by C-STORE (storescu proposes the objects' own class and JPEG baseline)...
  std::string cmd =
      "storescu -R -xy -aet TA_CT -aec YILIAN 127.0.0.1 " + std::to_string(server_->dicom_port());
  for (std::size_t k = 0; k < 2; ++k) cmd += " '" + files[k].string() + "'";
  ASSERT_EQ(testing::run_command(cmd + " 2>&1", &out), 0) << out;
  // ...and the smallest by STOW-RS, from township A's doctor.
  const std::string ta = server_->add_user("ta-doctor", {"township_doctor"}, "ta");
  const std::string boundary = "wsi-boundary";
  auto stow = testing::http_request(
      server_->http_port(), "POST", "/dicom-web/studies",
      "--" + boundary + "\r\nContent-Type: application/dicom\r\n\r\n" + testing::slurp(files[2]) +
          "\r\n--" + boundary + "--\r\n",
      {{"Authorization", "Bearer " + ta},
       {"Content-Type", "multipart/related; type=\"application/dicom\"; boundary=" + boundary}});
  ASSERT_EQ(stow.status, 200) << stow.body;

  auto studies = json::parse(server_->get(pathologist_, "/api/studies?patientId=TA-WSI-2").body);
  ASSERT_EQ(studies["studies"].size(), 1u) << studies.dump();
  const std::string study = studies["studies"][0]["studyInstanceUid"];
  const std::string series = series_of(study);
  json s = slide(study, series);
  ASSERT_EQ(s["levels"].size(), 3u) << s.dump();
  EXPECT_EQ(s["levels"][0]["tiles"], 48);
  EXPECT_EQ(s["containerId"], "S-2026-002");
  const std::string base = "/api/slides/" + study + "/" + series;
  for (auto [level, col, row] : {std::tuple{0, 5, 4}, {1, 3, 0}, {2, 1, 1}}) {
    auto tile = server_->get(pathologist_, base + "/tiles/" + std::to_string(level) + "/" +
                                               std::to_string(col) + "/" + std::to_string(row));
    ASSERT_EQ(tile.status, 200) << tile.body;
    expect_tile(tile.body, test::tile_colour(level, col, row));
  }
}

// STOW-RS of a level larger than any request body kept in memory (1 MiB here): the hub keeps
// the body in a file as it arrives and stores the level from there; other requests that large
// are still refused.
TEST_F(PathologyTest, a_level_larger_than_a_request_body_arrives_by_stow_through_a_file) {
  start();
  test::SlideSpec spec;
  spec.width = 3072;
  spec.height = 2048;
  spec.levels = 2;
  spec.noise = 24;  // tiles of tissue weight: the full level is a few MiB
  const fs::path folder = dir_.path() / "big";
  const std::string out =
      import_slide(spec, "big", "--out '" + folder.string() + "' --patient-id TA-WSI-5");
  ASSERT_FALSE(out.empty());
  std::string body;
  const std::string boundary = "wsi-big";
  for (const char* name : {"slide-001.dcm", "slide-002.dcm"}) {
    body += "--" + boundary + "\r\nContent-Type: application/dicom\r\n\r\n" +
            testing::slurp(folder / name) + "\r\n";
  }
  body += "--" + boundary + "--\r\n";
  ASSERT_GT(body.size(), 2u << 20) << "the body must be larger than the limit";
  const std::string ta = server_->add_user("ta-doctor", {"township_doctor"}, "ta");
  auto stow = testing::http_request(
      server_->http_port(), "POST", "/dicom-web/studies", body,
      {{"Authorization", "Bearer " + ta},
       {"Content-Type", "multipart/related; type=\"application/dicom\"; boundary=" + boundary}});
  ASSERT_EQ(stow.status, 200) << stow.body;
  EXPECT_EQ(json::parse(stow.body)["00081199"]["Value"].size(), 2u);

  auto studies = json::parse(server_->get(pathologist_, "/api/studies?patientId=TA-WSI-5").body);
  ASSERT_EQ(studies["studies"].size(), 1u);
  const std::string study = studies["studies"][0]["studyInstanceUid"];
  const std::string base = "/api/slides/" + study + "/" + series_of(study);
  auto tile = server_->get(pathologist_, base + "/tiles/0/11/7");
  ASSERT_EQ(tile.status, 200);
  expect_tile(tile.body, test::tile_colour(0, 11, 7));

  // Nothing else is taken that large.
  auto big_json = testing::http_request(
      server_->http_port(), "POST", "/api/consults", std::string(2u << 20, ' '),
      {{"Authorization", "Bearer " + ta}, {"Content-Type", "application/json"}});
  EXPECT_EQ(big_json.status, 413);
  // No body is left behind in the spool.
  std::size_t left = 0;
  for (const auto& e : fs::recursive_directory_iterator(data_)) {
    if (e.path().filename().string().rfind("body-", 0) == 0) ++left;
  }
  EXPECT_EQ(left, 0u);
}

}  // namespace
}  // namespace yilian
