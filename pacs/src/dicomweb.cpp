#include "yilian/pacs/dicomweb.h"

#include <charconv>
#include <cstdlib>

#include "yilian/identity/policy.h"
#include "yilian/viewer/render.h"

namespace yilian::pacs {
namespace {

using http::Request;
using http::Response;

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::size_t b = 0;
  while (true) {
    std::size_t e = s.find(sep, b);
    out.push_back(s.substr(b, e == std::string::npos ? std::string::npos : e - b));
    if (e == std::string::npos) return out;
    b = e + 1;
  }
}

bool to_double(const std::string& s, double& out) {
  char* end = nullptr;
  out = std::strtod(s.c_str(), &end);
  return !s.empty() && end == s.c_str() + s.size() && std::isfinite(out);
}

bool to_int(const std::string& s, int& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

// window, viewport, quality and Accept -> render options; a 400 response on bad input.
std::optional<Response> parse_render(const Request& req, viewer::RenderOptions& o, bool thumbnail) {
  if (auto w = req.query_value("window")) {
    auto parts = split(*w, ',');
    double c = 0, width = 0;
    if (parts.size() < 2 || parts.size() > 3 || !to_double(parts[0], c) ||
        !to_double(parts[1], width) || width <= 0 || (parts.size() == 3 && parts[2] != "linear")) {
      return Response::error(400, "invalid_argument",
                             "window is center,width[,linear] with width > 0");
    }
    o.window = viewer::Window{c, width};
  }
  if (thumbnail) o.max_width = o.max_height = 128;
  if (auto v = req.query_value("viewport")) {
    auto parts = split(*v, ',');
    int vw = 0, vh = 0;
    if (parts.size() != 2 || !to_int(parts[0], vw) || !to_int(parts[1], vh) || vw < 1 || vh < 1 ||
        vw > 8192 || vh > 8192) {
      return Response::error(400, "invalid_argument", "viewport is width,height (1..8192)");
    }
    o.max_width = vw;
    o.max_height = vh;
  }
  if (auto q = req.query_value("quality")) {
    if (!to_int(*q, o.quality) || o.quality < 1 || o.quality > 100) {
      return Response::error(400, "invalid_argument", "quality is 1..100");
    }
  }
  const std::string& a = req.accept;
  bool png = a.find("image/png") != std::string::npos;
  bool jpeg = a.empty() || a.find("image/jpeg") != std::string::npos ||
              a.find("image/*") != std::string::npos || a.find("*/*") != std::string::npos;
  if (!png && !jpeg) {
    return Response::error(406, "not_acceptable", "rendered media types: image/jpeg, image/png");
  }
  o.jpeg = !(png && a.find("image/jpeg") == std::string::npos);
  return std::nullopt;
}

Response no_access() {
  return Response::error(403, "forbidden", "no instance you may see has these UIDs");
}

}  // namespace

void register_dicomweb_routes(http::Router& router, storage::Index& index,
                              storage::BlobStore& blobs, identity::AuthService& auth) {
  auto rendered = [&index, &blobs, &auth](bool thumbnail, bool with_frame) {
    return [&index, &blobs, &auth, thumbnail, with_frame](const Request& req) -> Response {
      const Principal& p = *req.principal;
      const std::string& study = req.params.at("study");
      const std::string& instance = req.params.at("instance");
      viewer::RenderOptions o;
      if (auto bad = parse_render(req, o, thumbnail)) return *bad;
      if (with_frame) {
        int frame = 0;
        if (!to_int(req.params.at("frame"), frame) || frame < 1) {
          return Response::error(400, "invalid_argument", "frame numbers start at 1");
        }
        o.frame = static_cast<std::uint32_t>(frame - 1);
      }
      auto loc = index.locate_instance(instance);
      if (!loc.ok()) return Response::from_error(loc.error());
      auto facts =
          index.study_access(study, p.user_id, identity::share_institutions(p), auth.now());
      if (!facts.ok()) return Response::from_error(facts.error());
      bool ok = loc->has_value() && (*loc)->study_instance_uid == study &&
                (*loc)->series_instance_uid == req.params.at("series") && facts->has_value() &&
                identity::may_read_study(p, **facts);
      identity::AuditEvent ev = identity::event_for(p, req.peer);
      ev.action = thumbnail ? "instance.thumbnail" : "instance.rendered";
      ev.object_type = "instance";
      ev.object_id = instance;
      ev.outcome = ok ? "ok" : "denied";
      (void)auth.auditor().record(ev);
      if (!ok) return no_access();
      auto img = viewer::render_frame(blobs.blob_path((*loc)->blob_key), o);
      if (!img.ok()) return Response::from_error(img.error());
      Response r;
      r.status = 200;
      r.content_type = img->content_type;
      r.body = std::move(img->bytes);
      return r;
    };
  };
  const std::string base = "/dicom-web/studies/{study}/series/{series}/instances/{instance}";
  router.add("GET", base + "/rendered", rendered(false, false));
  router.add("GET", base + "/frames/{frame}/rendered", rendered(false, true));
  router.add("GET", base + "/thumbnail", rendered(true, false));
}

}  // namespace yilian::pacs
