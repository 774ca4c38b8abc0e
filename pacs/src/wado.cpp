#include "wado.h"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcuid.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <mutex>

#include "dicomweb_util.h"
#include "instance_reader.h"
#include "query_retrieve.h"
#include "yilian/common/text.h"
#include "yilian/identity/policy.h"
#include "yilian/pacs/study_access.h"
#include "yilian/viewer/cine.h"
#include "yilian/viewer/render.h"

namespace yilian::pacs {
namespace {

using http::Request;
using http::Response;
using pacs::InstanceLocation;
using namespace web;

constexpr const char* kImplicitLittle = "1.2.840.10008.1.2";
constexpr const char* kExplicitLittle = "1.2.840.10008.1.2.1";

Response no_access() { return Response::error(404, "no instance you may see has these UIDs"); }

std::string instance_url(const InstanceLocation& i) {
  return web::instance_url(i.study_instance_uid, i.series_instance_uid, i.sop_instance_uid);
}

// Everything a WADO-RS resource needs: the index, the files, the audit, the cache.
struct Wado {
  Wado(pacs::Index& i, storage::BlobStore& b, identity::AuthService& a, storage::DiskCache& c,
       FrameIndexCache& f)
      : index(i), blobs(b), auth(a), cache(c), frame_index(f) {}
  pacs::Index& index;
  storage::BlobStore& blobs;
  identity::AuthService& auth;
  storage::DiskCache& cache;
  FrameIndexCache& frame_index;
  std::mutex cine_mu;  // one cine encoding at a time: it takes a core for a while

  void audit(const Request& req, const char* action, const std::string& object, bool ok,
             std::string detail = {}) {
    auth.audit(req, action, "study", object, ok ? "ok" : "denied", std::move(detail));
  }

  // The instances the request's path names, after the access check (audited as `action`).
  // A hidden study answers like a missing one.
  Result<std::vector<InstanceLocation>> instances(const Request& req, Level level,
                                                  const char* action) {
    const std::string& study = req.params.at("study");
    auto visible = may_read_study(index, *req.principal, study, auth.now());
    if (!visible.ok()) return visible.error();
    if (!*visible) {
      audit(req, action, study, false);
      return make_error(Errc::permission_denied, "no instance you may see has these UIDs");
    }
    std::vector<InstanceLocation> out;
    if (level == Level::instance) {
      auto loc = index.locate_instance(req.params.at("instance"));
      if (!loc.ok()) return loc.error();
      if (loc->has_value() && (*loc)->study_instance_uid == study &&
          (*loc)->series_instance_uid == req.params.at("series"))
        out.push_back(std::move(**loc));
    } else {
      auto list = study_instances(index, study,
                                  level == Level::series ? req.params.at("series") : std::string());
      if (!list.ok()) return list.error();
      out = std::move(*list);
    }
    audit(req, action, study, true,
          std::string(level_name(level)) + ": " + std::to_string(out.size()) + " instance(s)");
    if (out.empty()) return make_error(Errc::not_found, "no instances under these UIDs");
    return out;
  }

  std::filesystem::path file(const InstanceLocation& i) const {
    return blobs.blob_path(i.blob_key);
  }

  // The instance as Part 10 bytes transcoded losslessly into `ts`, cached.
  Result<std::string> transcoded(const InstanceLocation& i, const std::string& ts) {
    const std::string key = "ts:" + ts + ":" + i.sop_instance_uid;
    if (auto hit = cache.get(key)) return std::move(*hit);
    auto ff = viewer::transcode(file(i), ts);
    if (!ff.ok()) return ff.error();
    auto bytes = viewer::part10_bytes(**ff, ts);
    if (!bytes.ok()) return bytes.error();
    (void)cache.put(key, *bytes);
    return bytes;
  }

  // Series metadata as the elements of a JSON array (no brackets), cached per series and
  // instance count: a series that grows gets a new entry.
  Result<std::string> series_metadata(const std::string& series,
                                      const std::vector<const InstanceLocation*>& members) {
    const std::string key = "meta-" + series + "-" + std::to_string(members.size());
    if (auto hit = cache.get(key)) return std::move(*hit);
    std::string joined;
    for (const InstanceLocation* i : members) {
      auto json = instance_metadata_json(file(*i), instance_url(*i) + "/bulkdata");
      if (!json.ok()) return json.error();
      if (!joined.empty()) joined += ',';
      joined += *json;
    }
    (void)cache.put(key, joined);  // a cache that cannot write only costs time
    return joined;
  }
};

// The cine video of a multi-frame instance, encoded on first request and then served from
// the cache; a Range request gets the bytes it asks for (206), so players can seek.
Response cine(Wado& w, const Request& req, const InstanceLocation& i) {
  const std::string key = "cine-" + i.sop_instance_uid + ".mp4";
  auto path = w.cache.path(key);
  if (!path) {
    std::lock_guard lock(w.cine_mu);
    path = w.cache.path(key);  // made meanwhile by another request?
    if (!path) {
      std::filesystem::path tmp = w.cache.temp_path();
      auto info = viewer::encode_cine(w.file(i), tmp);
      if (!info.ok()) {
        std::error_code ec;
        std::filesystem::remove(tmp, ec);
        return Response::from_error(info.error());
      }
      if (Status s = w.cache.adopt(key, tmp); !s) return Response::from_error(s.error());
      path = w.cache.path(key);
      if (!path) return Response::error(503, "the video was evicted; try again");
    }
  }
  std::error_code ec;
  const std::uint64_t size = std::filesystem::file_size(*path, ec);
  if (ec) return Response::error(503, "the video was evicted; try again");
  Response r;
  r.content_type = "video/mp4";
  r.headers.emplace_back("Accept-Ranges", "bytes");
  http::BodyPiece piece;
  piece.file = path->string();
  piece.length = size;
  if (auto range = parse_range(req.range, size)) {
    if (range->unsatisfiable) {
      Response bad = Response::error(416, "the range is past the end");
      bad.headers.emplace_back("Content-Range", "bytes */" + std::to_string(size));
      return bad;
    }
    r.status = 206;
    piece.offset = range->first;
    piece.length = range->last - range->first + 1;
    r.headers.emplace_back("Content-Range", "bytes " + std::to_string(range->first) + "-" +
                                                std::to_string(range->last) + "/" +
                                                std::to_string(size));
  }
  if (piece.length > 0) r.pieces.push_back(std::move(piece));
  return r;
}

Response error_response(const Error& e) {
  if (e.code == Errc::permission_denied) return no_access();
  return Response::from_error(e);
}

// Whether the Accept header lets `type` through with the stored transfer syntax `ts`.
// Absent transfer-syntax parameters are read as "as stored" (documented in API.md).
bool accepts_as_stored(const std::vector<MediaRange>& ranges, const std::string& type,
                       const std::string& ts) {
  if (ranges.empty()) return true;
  for (const MediaRange& m : ranges) {
    if (m.type == "*/*") return true;
    if (m.type == type || (m.type == "multipart/related" &&
                           (!m.params.count("type") || ascii_lower(m.params.at("type")) == type))) {
      auto t = m.params.find("transfer-syntax");
      if (t == m.params.end() || t->second == "*" || t->second == ts) return true;
    }
  }
  return false;
}

// The first lossless syntax an Accept names for whole instances (none: nullopt).
std::optional<std::string> transcode_target(const std::vector<MediaRange>& ranges) {
  for (const MediaRange& m : ranges) {
    const bool dicom =
        m.type == "application/dicom" ||
        (m.type == "multipart/related" &&
         (!m.params.count("type") || ascii_lower(m.params.at("type")) == "application/dicom"));
    auto t = m.params.find("transfer-syntax");
    if (dicom && t != m.params.end() && viewer::lossless_target(t->second)) return t->second;
  }
  return std::nullopt;
}

// window, viewport, quality, bandwidth and Accept -> render options; a 400 response on bad
// input.
std::optional<Response> parse_render(const Request& req, viewer::RenderOptions& o, bool thumbnail) {
  if (auto w = req.query_value("window"); w && viewer::window_preset(*w)) {
    o.window = viewer::window_preset(*w);
  } else if (w) {
    auto parts = split(*w, ',');
    double c = 0, width = 0;
    if (parts.size() < 2 || parts.size() > 3 || !to_double(parts[0], c) ||
        !to_double(parts[1], width) || width <= 0 || (parts.size() == 3 && parts[2] != "linear")) {
      return Response::error(400,
                             "window is center,width[,linear] with width > 0, or a preset: brain, "
                             "subdural, stroke, lung, mediastinum, bone, abdomen, liver");
    }
    o.window = viewer::Window{c, width};
  }
  if (thumbnail) o.max_width = o.max_height = 128;
  if (auto v = req.query_value("viewport")) {
    auto parts = split(*v, ',');
    int vw = 0, vh = 0;
    if (parts.size() != 2 || !to_int(parts[0], vw) || !to_int(parts[1], vh) || vw < 1 || vh < 1 ||
        vw > 8192 || vh > 8192) {
      return Response::error(400, "viewport is width,height (1..8192)");
    }
    o.max_width = vw;
    o.max_height = vh;
  }
  if (auto q = req.query_value("quality")) {
    if (!to_int(*q, o.quality) || o.quality < 1 || o.quality > 100) {
      return Response::error(400, "quality is 1..100");
    }
  }
  const std::string& a = req.accept;
  bool png = a.find("image/png") != std::string::npos;
  bool jpeg = a.empty() || a.find("image/jpeg") != std::string::npos ||
              a.find("image/*") != std::string::npos || a.find("*/*") != std::string::npos;
  if (!png && !jpeg) {
    return Response::error(406, "rendered media types: image/jpeg, image/png");
  }
  o.jpeg = !(png && a.find("image/jpeg") == std::string::npos);
  if (auto b = req.query_value("bandwidth")) {
    if (*b != "low" && *b != "normal") {
      return Response::error(400, "bandwidth is low or normal");
    }
    if (*b == "low") {
      // Township links: at most 512 pixels a side, JPEG at a quality that keeps a CT slice
      // near 20 KB.
      constexpr int kLowSide = 512;
      o.max_width = o.max_width ? std::min(o.max_width, kLowSide) : kLowSide;
      o.max_height = o.max_height ? std::min(o.max_height, kLowSide) : kLowSide;
      if (!req.query_value("quality")) o.quality = 60;
      o.jpeg = true;
    }
  }
  return std::nullopt;
}

std::string render_key(const std::string& instance, const viewer::RenderOptions& o) {
  char buf[160];
  if (o.window) {
    std::snprintf(buf, sizeof buf, "-f%u-%dx%d-w%.6g,%.6g-q%d.%s", o.frame, o.max_width,
                  o.max_height, o.window->center, o.window->width, o.quality,
                  o.jpeg ? "jpg" : "png");
  } else {
    std::snprintf(buf, sizeof buf, "-f%u-%dx%d-q%d.%s", o.frame, o.max_width, o.max_height,
                  o.quality, o.jpeg ? "jpg" : "png");
  }
  return "r-" + instance + buf;
}

// "1,3,5" -> frame numbers (1-based, at most 1000 of them).
std::optional<std::vector<std::uint32_t>> frame_list(const std::string& s) {
  std::vector<std::uint32_t> out;
  for (const std::string& f : split(s, ',')) {
    int n = 0;
    if (!to_int(f, n) || n < 1) return std::nullopt;
    out.push_back(static_cast<std::uint32_t>(n));
  }
  if (out.empty() || out.size() > 1000) return std::nullopt;
  return out;
}

}  // namespace

void register_wado_routes(http::Router& router, pacs::Index& index, storage::BlobStore& blobs,
                          identity::AuthService& auth, storage::DiskCache& cache,
                          FrameIndexCache& frames) {
  auto w = std::make_shared<Wado>(index, blobs, auth, cache, frames);
  const std::string study = "/dicom-web/studies/{study}";
  const std::string series = study + "/series/{series}";
  const std::string instance = series + "/instances/{instance}";

  // Retrieve: the Part 10 files as stored, one part each, streamed from the blob store.
  auto retrieve = [w](Level level) {
    return [w, level](const Request& req) -> Response {
      auto ranges = parse_accept(req.accept);
      auto list = w->instances(req, level, "wado.retrieve");
      if (!list.ok()) return error_response(list.error());
      Multipart body;
      for (const InstanceLocation& i : *list) {
        if (!accepts_as_stored(ranges, "application/dicom", i.transfer_syntax_uid)) {
          // Not as stored: transcoded losslessly into the first syntax the client names that
          // can be.
          auto target = transcode_target(ranges);
          if (!target) {
            return Response::error(
                406, "instances are sent as stored (" + i.transfer_syntax_uid +
                         ") or losslessly transcoded (explicit or implicit VR little endian, "
                         "JPEG-LS lossless, JPEG lossless SV1, RLE); accept "
                         "multipart/related; type=\"application/dicom\"; transfer-syntax=* "
                         "or one of those");
          }
          auto bytes = w->transcoded(i, *target);
          if (!bytes.ok()) return Response::from_error(bytes.error());
          body.add("application/dicom; transfer-syntax=" + *target, std::move(*bytes),
                   instance_url(i));
          continue;
        }
        std::error_code ec;
        std::filesystem::path f = w->file(i);
        auto size = std::filesystem::file_size(f, ec);
        if (ec) return Response::error(500, "a stored instance cannot be read");
        body.add_file("application/dicom; transfer-syntax=" + i.transfer_syntax_uid, f.string(), 0,
                      size, instance_url(i));
      }
      return body.finish("application/dicom");
    };
  };
  router.add("GET", study, retrieve(Level::study));
  router.add("GET", series, retrieve(Level::series));
  router.add("GET", instance, retrieve(Level::instance));

  // Metadata: DICOM JSON of every instance, bulk data by reference.
  auto metadata = [w](Level level) {
    return [w, level](const Request& req) -> Response {
      auto list = w->instances(req, level, "wado.metadata");
      if (!list.ok()) return error_response(list.error());
      if (level == Level::instance) {
        const InstanceLocation& i = list->front();
        auto json = instance_metadata_json(w->file(i), instance_url(i) + "/bulkdata");
        if (!json.ok()) return Response::from_error(json.error());
        return dicom_json_response("[" + *json + "]");
      }
      std::string out = "[";
      std::size_t begin = 0;
      while (begin < list->size()) {  // instances come grouped by series
        std::vector<const InstanceLocation*> members;
        std::size_t end = begin;
        for (; end < list->size() &&
               (*list)[end].series_instance_uid == (*list)[begin].series_instance_uid;
             ++end)
          members.push_back(&(*list)[end]);
        auto part = w->series_metadata((*list)[begin].series_instance_uid, members);
        if (!part.ok()) return Response::from_error(part.error());
        if (out.size() > 1 && !part->empty()) out += ',';
        out += *part;
        begin = end;
      }
      return dicom_json_response(out + "]");
    };
  };
  router.add("GET", study + "/metadata", metadata(Level::study));
  router.add("GET", series + "/metadata", metadata(Level::series));
  router.add("GET", instance + "/metadata", metadata(Level::instance));

  router.add("GET", instance + "/frames/{frames}", [w](const Request& req) -> Response {
    auto numbers = frame_list(req.params.at("frames"));
    if (!numbers) {
      return Response::error(400, "frames is a comma-separated list of frame numbers from 1");
    }
    auto list = w->instances(req, Level::instance, "wado.frames");
    if (!list.ok()) return error_response(list.error());
    const InstanceLocation& i = list->front();
    auto choice = choose_frame_syntax(parse_accept(req.accept), i.transfer_syntax_uid,
                                      frame_media_type(i.transfer_syntax_uid));
    if (!choice) {
      return Response::error(406, "frames are available as stored (" + i.transfer_syntax_uid +
                                      ", transfer-syntax=*), as application/octet-stream, or "
                                      "losslessly encoded as image/jls, image/dicom-rle or "
                                      "image/jpeg; transfer-syntax=1.2.840.10008.1.2.4.70");
    }
    // As stored, or native little endian pixels stored as such: byte ranges of the file by
    // the frame index, nothing decoded and nothing else of the instance read.
    const bool native_le =
        i.transfer_syntax_uid == kImplicitLittle || i.transfer_syntax_uid == kExplicitLittle;
    if (choice->how == FrameChoice::How::stored ||
        (choice->how == FrameChoice::How::native && native_le)) {
      auto index = w->frame_index.get(i.blob_key, w->file(i));
      if (index.ok()) {
        const std::string ts = native_le ? kExplicitLittle : i.transfer_syntax_uid;
        const std::string media =
            native_le ? "application/octet-stream" : frame_media_type(i.transfer_syntax_uid);
        Multipart body;
        for (std::uint32_t n : *numbers) {
          if (n > (*index)->frames.size()) {
            return Response::error(404, "frame " + std::to_string(n) + " of " +
                                            std::to_string((*index)->frames.size()) +
                                            " does not exist");
          }
          body.add_file(media + "; transfer-syntax=" + ts, w->file(i).string(),
                        (*index)->frames[n - 1], instance_url(i) + "/frames/" + std::to_string(n));
        }
        return body.finish(media);
      }
      if (index.error().code == Errc::io) return Response::from_error(index.error());
      // Frames the index cannot address are read through DCMTK below.
    }
    Result<std::vector<Frame>> frames = std::vector<Frame>{};
    if (choice->how == FrameChoice::How::transcode) {
      auto bytes = w->transcoded(i, choice->transfer_syntax);
      if (!bytes.ok()) {
        if (bytes.error().code != Errc::invalid_argument)
          return Response::from_error(bytes.error());
        return Response::error(
            406, bytes.error().message + "; ask for transfer-syntax=* or application/octet-stream");
      }
      frames = read_frames(*bytes, *numbers);
    } else {
      frames = read_frames(w->file(i), *numbers, choice->how == FrameChoice::How::stored);
    }
    if (!frames.ok()) {
      if (frames.error().code == Errc::invalid_argument &&
          choice->how != FrameChoice::How::stored) {
        return Response::error(406, frames.error().message + "; ask for transfer-syntax=*");
      }
      return Response::from_error(frames.error());
    }
    Multipart body;
    const std::string type = frames->front().media_type;
    for (std::size_t k = 0; k < frames->size(); ++k) {
      Frame& f = (*frames)[k];
      body.add(f.media_type + "; transfer-syntax=" + f.transfer_syntax_uid, std::move(f.bytes),
               instance_url(i) + "/frames/" + std::to_string((*numbers)[k]));
    }
    return body.finish(type);
  });

  router.add("GET", instance + "/bulkdata/{tag}", [w](const Request& req) -> Response {
    const std::string& t = req.params.at("tag");
    std::uint32_t tag = 0;
    if (t.size() != 8 || t.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
      return Response::error(400, "the bulk data tag is 8 hex digits");
    }
    tag = static_cast<std::uint32_t>(std::stoul(t, nullptr, 16));
    auto list = w->instances(req, Level::instance, "wado.bulkdata");
    if (!list.ok()) return error_response(list.error());
    auto parts = read_bulk_data(w->file(list->front()), tag);
    if (!parts.ok()) return Response::from_error(parts.error());
    Multipart body;
    const std::string type = parts->front().media_type;
    for (Frame& f : *parts) {
      body.add(f.media_type + "; transfer-syntax=" + f.transfer_syntax_uid, std::move(f.bytes));
    }
    return body.finish(type);
  });

  // Rendered frames and thumbnails, cached on disk by instance and rendering parameters. A
  // study or series renders as one image per instance (multipart/related; objects without
  // pixel data are left out); its thumbnail is the middle image of its (first) series.
  auto rendered = [w](Level level, bool thumbnail, bool with_frame) {
    return [w, level, thumbnail, with_frame](const Request& req) -> Response {
      if (level == Level::instance && !thumbnail && !with_frame &&
          req.accept.find("video/mp4") != std::string::npos &&
          req.accept.find("image/") == std::string::npos) {
        auto list = w->instances(req, Level::instance, "instance.cine");
        if (!list.ok()) return error_response(list.error());
        return cine(*w, req, list->front());
      }
      viewer::RenderOptions o;
      if (auto bad = parse_render(req, o, thumbnail)) return *bad;
      if (with_frame) {
        int frame = 0;
        if (!to_int(req.params.at("frame"), frame) || frame < 1) {
          return Response::error(400, "frame numbers start at 1");
        }
        o.frame = static_cast<std::uint32_t>(frame - 1);
      }
      const std::string action =
          std::string(level_name(level)) + (thumbnail ? ".thumbnail" : ".rendered");
      auto list = w->instances(req, level, action.c_str());
      if (!list.ok()) return error_response(list.error());
      if (with_frame && req.query.empty() && req.accept.find("image/png") == std::string::npos) {
        // A colour JPEG frame (a slide's tile) rendered as asked is the stored frame itself.
        const InstanceLocation& i = list->front();
        auto index = w->frame_index.get(i.blob_key, w->file(i));
        if (index.ok() && browser_ready_jpeg(**index)) {
          if (o.frame >= (*index)->frames.size()) return Response::error(404, "no such frame");
          Response r;
          r.content_type = "image/jpeg";
          for (const ByteSpan& span : (*index)->frames[o.frame]) {
            r.pieces.push_back({{}, w->file(i).string(), span.offset, span.length});
          }
          r.headers.emplace_back("Cache-Control", "private, max-age=86400");
          return r;
        }
      }
      auto render = [&](const InstanceLocation& i) -> Result<std::string> {
        const std::string key = render_key(i.sop_instance_uid, o);
        if (auto hit = w->cache.get(key)) return std::move(*hit);
        auto img = viewer::render_frame(w->file(i), o);
        if (!img.ok()) return img.error();
        (void)w->cache.put(key, img->bytes);
        return std::move(img->bytes);
      };
      const std::string type = o.jpeg ? "image/jpeg" : "image/png";
      if (level == Level::instance || thumbnail) {
        std::size_t pick = 0;
        if (level != Level::instance) {  // the middle of the first series (instances come grouped)
          std::size_t n = 0;
          while (n < list->size() &&
                 (*list)[n].series_instance_uid == list->front().series_instance_uid)
            ++n;
          pick = n / 2;
        }
        auto img = render((*list)[pick]);
        if (!img.ok()) return Response::from_error(img.error());
        Response r;
        r.status = 200;
        r.content_type = type;
        r.body = std::move(*img);
        return r;
      }
      Multipart body;
      std::size_t parts = 0;
      for (const InstanceLocation& i : *list) {
        auto img = render(i);
        if (!img.ok()) {
          if (img.error().code == Errc::invalid_argument) continue;  // no image in it
          return Response::from_error(img.error());
        }
        body.add(type, std::move(*img), instance_url(i) + "/rendered");
        ++parts;
      }
      if (parts == 0) return Response::error(404, "nothing under these UIDs can be rendered");
      return body.finish(type);
    };
  };
  router.add("GET", study + "/rendered", rendered(Level::study, false, false));
  router.add("GET", series + "/rendered", rendered(Level::series, false, false));
  router.add("GET", instance + "/rendered", rendered(Level::instance, false, false));
  router.add("GET", instance + "/frames/{frame}/rendered", rendered(Level::instance, false, true));
  router.add("GET", study + "/thumbnail", rendered(Level::study, true, false));
  router.add("GET", series + "/thumbnail", rendered(Level::series, true, false));
  router.add("GET", instance + "/thumbnail", rendered(Level::instance, true, false));
}

}  // namespace yilian::pacs
