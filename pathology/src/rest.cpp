#include "yilian/pathology/rest.h"

#include <chrono>
#include <list>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <optional>
#include <unordered_map>

#include "yilian/common/text.h"
#include "yilian/pacs/study_access.h"
#include "yilian/pathology/slide.h"

namespace yilian::pathology {
namespace {

using http::Request;
using http::Response;

// Slides put together, by series; a slide is put together anew when its instances change.
// Tiles (hundreds a minute while a pathologist pans) skip the look at the series' instances
// for a few seconds after it was last made sure of (kFresh).
constexpr std::chrono::seconds kFresh{5};

class SlideCache {
 public:
  struct Entry {
    std::string study, keys;
    std::shared_ptr<const Slide> slide;
    std::chrono::steady_clock::time_point checked;
  };
  std::optional<Entry> find(const std::string& series) {
    std::lock_guard lock(mu_);
    auto it = slides_.find(series);
    if (it == slides_.end()) return std::nullopt;
    return it->second;
  }
  void put(const std::string& series, Entry e) {
    std::lock_guard lock(mu_);
    if (slides_.size() >= kCapacity) slides_.clear();
    slides_[series] = std::move(e);
  }

 private:
  static constexpr std::size_t kCapacity = 64;
  std::mutex mu_;
  std::unordered_map<std::string, Entry> slides_;
};

// Reads of a study granted to a user in the last few seconds (kFresh): a pathologist's tiles
// are not each a query of the study's access facts. Only grants are kept; opening a slide
// always checks (and is audited).
class RecentGrants {
 public:
  bool fresh(std::int64_t user, const std::string& study) {
    std::lock_guard lock(mu_);
    auto it = until_.find(key(user, study));
    return it != until_.end() && std::chrono::steady_clock::now() < it->second;
  }
  void grant(std::int64_t user, const std::string& study) {
    std::lock_guard lock(mu_);
    if (until_.size() >= 4096) until_.clear();
    until_[key(user, study)] = std::chrono::steady_clock::now() + kFresh;
  }

 private:
  static std::string key(std::int64_t user, const std::string& study) {
    return std::to_string(user) + '|' + study;
  }
  std::mutex mu_;
  std::unordered_map<std::string, std::chrono::steady_clock::time_point> until_;
};

// An uncompressed 8-bit colour frame as BGR: RGB or YBR_FULL, colour-by-pixel or by plane;
// empty for anything else (the tile cannot be shown).
cv::Mat native_colour(const pacs::FrameIndex& fi, std::string& bytes) {
  const std::size_t pixels = std::size_t{fi.rows} * fi.columns;
  const bool ybr = fi.photometric == "YBR_FULL";
  if (pixels == 0 || fi.samples_per_pixel != 3 || bytes.size() < pixels * 3 ||
      (!ybr && fi.photometric != "RGB" && !fi.photometric.empty())) {
    return {};
  }
  cv::Mat interleaved(fi.rows, fi.columns, CV_8UC3, bytes.data());
  cv::Mat by_pixel;
  if (fi.planar_configuration == 1) {
    std::vector<cv::Mat> planes;
    for (std::size_t c = 0; c < 3; ++c) {
      planes.emplace_back(fi.rows, fi.columns, CV_8UC1, bytes.data() + c * pixels);
    }
    cv::merge(planes, by_pixel);
  } else {
    by_pixel = interleaved;
  }
  cv::Mat bgr;
  if (ybr) {
    // DICOM's YBR_FULL is Y, Cb, Cr; OpenCV's YCrCb wants Y, Cr, Cb.
    cv::Mat ycrcb;
    cv::mixChannels(std::vector<cv::Mat>{by_pixel},
                    std::vector<cv::Mat>{ycrcb = cv::Mat(by_pixel.size(), CV_8UC3)},
                    {0, 0, 1, 2, 2, 1});
    cv::cvtColor(ycrcb, bgr, cv::COLOR_YCrCb2BGR);
  } else {
    cv::cvtColor(by_pixel, bgr, cv::COLOR_RGB2BGR);
  }
  return bgr;
}

struct Slides {
  pacs::Index& index;
  storage::BlobStore& blobs;
  identity::AuthService& auth;
  pacs::FrameIndexCache& frames;
  SlideCache cache;
  RecentGrants grants;

  // The slide of the request's series after the read check; `action` audits it (empty: a
  // tile, not audited, and a grant or a look at the series of the last seconds is enough). A
  // hidden study answers like a missing one.
  Result<std::shared_ptr<const Slide>> slide(const Request& req, const char* action) {
    const std::string& study = req.params.at("study");
    const std::string& series = req.params.at("series");
    const bool tile = *action == '\0';
    const std::int64_t user = req.principal->user_id;
    if (!tile || !grants.fresh(user, study)) {
      auto visible = pacs::may_read_study(index, *req.principal, study, auth.now());
      if (!visible.ok()) return visible.error();
      if (!*visible) {
        if (!tile) auth.audit(req, action, "study", study, "denied");
        return make_error(Errc::not_found, "no slide you may see has these UIDs");
      }
      grants.grant(user, study);
    }
    auto cached = cache.find(series);
    if (tile && cached && cached->study == study &&
        std::chrono::steady_clock::now() - cached->checked < kFresh) {
      return cached->slide;
    }
    auto filed = index.series_study(series);
    if (!filed.ok()) return filed.error();
    if (!filed->has_value() || **filed != study) {
      return make_error(Errc::not_found, "no such series in this study");
    }
    auto list = index.series_instances(series);
    if (!list.ok()) return list.error();
    std::string keys;
    for (const pacs::InstanceLocation& i : *list) {
      if (i.sop_class_uid == kWsiStorage) keys += i.blob_key + ',';
    }
    if (keys.empty()) return make_error(Errc::not_found, "the series holds no whole-slide image");
    if (!tile) auth.audit(req, action, "study", study, "ok", "series " + series);
    if (cached && cached->keys == keys) {
      cached->checked = std::chrono::steady_clock::now();
      cached->study = study;
      cache.put(series, *cached);
      return cached->slide;
    }
    std::vector<WsiInstance> instances;
    for (const pacs::InstanceLocation& i : *list) {
      if (i.sop_class_uid != kWsiStorage) continue;
      auto w = read_wsi_instance(blobs.blob_path(i.blob_key));
      if (!w.ok()) {
        if (w.error().code == Errc::invalid_argument) continue;  // not a usable slide image
        return w.error();
      }
      w->blob_key = i.blob_key;
      instances.push_back(std::move(*w));
    }
    auto made = assemble_slide(std::move(instances));
    if (!made.ok()) return make_error(Errc::not_found, made.error().message);
    auto shared = std::make_shared<const Slide>(std::move(*made));
    // Where every tile lies, found now: the first tiles of a slide are not the slow ones.
    for (const WsiInstance& w : shared->instances) {
      (void)frames.get(w.blob_key, blobs.blob_path(w.blob_key));
    }
    cache.put(series, {study, std::move(keys), shared, std::chrono::steady_clock::now()});
    return shared;
  }

  // Frame `frame` of `instance` as a browser shows it: the stored JPEG, or decoded and
  // encoded as JPEG.
  Response image(const WsiInstance& instance, std::uint32_t frame) const {
    const std::filesystem::path file = blobs.blob_path(instance.blob_key);
    auto at = frames.get(instance.blob_key, file);
    if (!at.ok()) return Response::from_error(at.error());
    const pacs::FrameIndex& fi = **at;
    if (frame >= fi.frames.size()) return Response::error(404, "no such tile");
    Response r;
    r.content_type = "image/jpeg";
    r.headers.emplace_back("Cache-Control", "private, max-age=86400");
    if (pacs::browser_ready_jpeg(fi)) {
      for (const pacs::ByteSpan& s : fi.frames[frame]) {
        r.pieces.push_back({{}, file.string(), s.offset, s.length});
      }
      return r;
    }
    // Another encoding: the frame's bytes only are read and decoded.
    std::string bytes;
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(file.c_str(), "rb"), &std::fclose);
    for (const pacs::ByteSpan& s : fi.frames[frame]) {
      const std::size_t before = bytes.size();
      bytes.resize(before + s.length);
      if (!f || fseeko(f.get(), static_cast<off_t>(s.offset), SEEK_SET) != 0 ||
          std::fread(bytes.data() + before, 1, s.length, f.get()) != s.length) {
        return Response::error(500, "cannot read the tile");
      }
    }
    cv::Mat bgr;
    if (!fi.encapsulated) {
      bgr = native_colour(fi, bytes);
      if (bgr.empty())
        return Response::error(415, "the slide's tiles are not 8-bit RGB or YBR_FULL");
    } else {
      bgr = cv::imdecode(cv::Mat(1, static_cast<int>(bytes.size()), CV_8UC1, bytes.data()),
                         cv::IMREAD_COLOR);
      if (bgr.empty()) return Response::error(415, "the slide's tiles cannot be decoded here");
    }
    std::vector<uchar> out;
    cv::imencode(".jpg", bgr, out, {cv::IMWRITE_JPEG_QUALITY, 90});
    r.body.assign(out.begin(), out.end());
    return r;
  }
};

bool to_u32(const std::string& s, std::uint32_t& out) {
  if (s.empty() || s.size() > 9 || s.find_first_not_of("0123456789") != std::string::npos) {
    return false;
  }
  out = static_cast<std::uint32_t>(std::stoul(s));
  return true;
}

nlohmann::json slide_json(const Slide& s, const std::string& base) {
  nlohmann::json levels = nlohmann::json::array();
  for (std::size_t k = 0; k < s.levels.size(); ++k) {
    const SlideLevel& l = s.levels[k];
    levels.push_back(
        {{"level", k},
         {"width", l.width},
         {"height", l.height},
         {"tileWidth", l.tile_width},
         {"tileHeight", l.tile_height},
         {"tilesAcross", l.tiles_across},
         {"tilesDown", l.tiles_down},
         {"tiles", l.present()},
         {"instances", l.instances.size()},
         {"micronsPerPixel", l.column_spacing_mm > 0 ? nlohmann::json(l.column_spacing_mm * 1000)
                                                     : nlohmann::json(nullptr)},
         {"pixelSpacingMm", l.row_spacing_mm > 0
                                ? nlohmann::json::array({l.row_spacing_mm, l.column_spacing_mm})
                                : nlohmann::json(nullptr)}});
  }
  nlohmann::json images = nlohmann::json::object();
  auto image = [&](const std::optional<std::size_t>& i, SlideImage kind) {
    if (!i) return;
    const WsiInstance& w = s.instances[*i];
    images[slide_image_name(kind)] = {{"url", base + "/images/" + slide_image_name(kind)},
                                      {"width", w.total_columns},
                                      {"height", w.total_rows}};
  };
  image(s.label, SlideImage::label);
  image(s.overview, SlideImage::overview);
  image(s.thumbnail, SlideImage::thumbnail);
  return {{"containerId", s.container_id},
          {"levels", levels},
          {"images", images},
          {"tileUrl", base + "/tiles/{level}/{column}/{row}"}};
}

}  // namespace

void register_slide_routes(http::Router& router, pacs::Index& index, storage::BlobStore& blobs,
                           identity::AuthService& auth, pacs::FrameIndexCache& frames) {
  auto s = std::shared_ptr<Slides>(new Slides{index, blobs, auth, frames, {}, {}});
  const std::string base = "/api/slides/{study}/{series}";

  router.add("GET", base, [s](const Request& req) {
    auto slide = s->slide(req, "slide.view");
    if (!slide.ok()) return Response::from_error(slide.error());
    nlohmann::json j = slide_json(
        **slide, "/api/slides/" + req.params.at("study") + "/" + req.params.at("series"));
    j["studyInstanceUid"] = req.params.at("study");
    j["seriesInstanceUid"] = req.params.at("series");
    return Response::json(200, json_text(j));
  });

  router.add("GET", base + "/tiles/{level}/{column}/{row}", [s](const Request& req) {
    std::uint32_t level = 0, column = 0, row = 0;
    if (!to_u32(req.params.at("level"), level) || !to_u32(req.params.at("column"), column) ||
        !to_u32(req.params.at("row"), row)) {
      return Response::error(400, "level, column and row are numbers from 0");
    }
    auto slide = s->slide(req, "");
    if (!slide.ok()) return Response::from_error(slide.error());
    auto tile = (*slide)->tile(level, column, row);
    if (!tile) return Response::error(404, "no tile there");
    return s->image((*slide)->instances[tile->instance], tile->frame);
  });

  router.add("GET", base + "/images/{kind}", [s](const Request& req) {
    const std::string& kind = req.params.at("kind");
    auto slide = s->slide(req, "slide.image");
    if (!slide.ok()) return Response::from_error(slide.error());
    const Slide& sl = **slide;
    const std::optional<std::size_t> which = kind == "label"       ? sl.label
                                             : kind == "overview"  ? sl.overview
                                             : kind == "thumbnail" ? sl.thumbnail
                                                                   : std::nullopt;
    if (!which) return Response::error(404, "the slide has no " + kind + " image");
    return s->image(sl.instances[*which], 0);
  });
}

}  // namespace yilian::pathology
