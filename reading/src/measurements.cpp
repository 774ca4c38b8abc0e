// Readers' measurements kept with the study: the pure check, the store and the REST routes.
#include "yilian/reading/measurements.h"

#include <cmath>

#include <nlohmann/json.hpp>

#include "yilian/common/text.h"
#include "yilian/identity/policy.h"
#include "yilian/net/json_body.h"
#include "yilian/pacs/study_access.h"
#include "yilian/storage/sql.h"

namespace yilian::reading {

namespace sql = storage::sql;
using http::Request;
using http::Response;
using nlohmann::json;

std::optional<std::string> measurement_problem(const Measurement& m) {
  std::size_t points = 0;
  if (m.kind == "length") {
    points = 2;
    if (m.unit != "mm" && m.unit != "px") return "a length is in mm or px";
  } else if (m.kind == "angle") {
    points = 3;
    if (m.unit != "deg") return "an angle is in deg";
  } else {
    return "kind is length or angle";
  }
  if (m.points.size() != points) {
    return m.kind == "angle" ? "an angle has 3 points" : "a length has 2 points";
  }
  for (const auto& p : m.points) {
    for (double c : p) {
      if (!std::isfinite(c) || c < 0 || c > 65535) {
        return "a point is x, y in the image's pixels (0 to 65535)";
      }
    }
  }
  const double most = m.unit == "deg" ? 180.0 : 1e6;
  if (!std::isfinite(m.value) || m.value < 0 || m.value > most) {
    return "value is a number from 0 to " + std::string(m.unit == "deg" ? "180" : "1000000");
  }
  if (m.frame < 1 || m.frame > 100000) return "frame is 1-based";
  return std::nullopt;
}

namespace {

std::string points_text(const std::vector<std::array<double, 2>>& points) {
  json out = json::array();
  for (const auto& p : points) out.push_back({p[0], p[1]});
  return out.dump();
}

std::vector<std::array<double, 2>> points_of(const std::string& text) {
  std::vector<std::array<double, 2>> out;
  const json parsed = json::parse(text, nullptr, false);
  if (!parsed.is_array()) return out;
  for (const json& p : parsed) {
    if (p.is_array() && p.size() == 2 && p[0].is_number() && p[1].is_number()) {
      out.push_back({p[0].get<double>(), p[1].get<double>()});
    }
  }
  return out;
}

}  // namespace

MeasurementStore::MeasurementStore(storage::Database& db) : db_(db) {}

Result<std::vector<Measurement>> MeasurementStore::of_study(std::string_view study_uid) {
  std::vector<Measurement> out;
  if (Status s = storage::read(
          db_,
          [&](sql::Db& c) {
            return sql::query(
                c,
                "SELECT m.id, m.study_uid, m.instance_uid, m.frame, m.kind, m.points, m.value, "
                "m.unit, m.created_by, i.code, m.created_at FROM study_measurements m JOIN "
                "institutions i ON i.id = m.institution_id WHERE m.study_uid = ?1 ORDER BY m.id",
                [&](sql::Stmt& st) { st.bind(1, study_uid); },
                [&](sql::Stmt& st) {
                  Measurement m;
                  m.id = st.int64(0);
                  m.study_uid = st.text(1);
                  m.instance_uid = st.text(2);
                  m.frame = st.int64(3);
                  m.kind = st.text(4);
                  m.points = points_of(st.text(5));
                  m.value = std::strtod(st.text(6).c_str(), nullptr);
                  m.unit = st.text(7);
                  m.by = st.text(8);
                  m.institution = st.text(9);
                  m.at = st.text(10);
                  out.push_back(std::move(m));
                });
          });
      !s)
    return s.error();
  return out;
}

Result<std::int64_t> MeasurementStore::add(const Measurement& m, std::int64_t institution_id) {
  return storage::write(db_, [&](sql::Db& c) -> Result<std::int64_t> {
    std::int64_t held = 0;
    if (Status s = sql::query(
            c, "SELECT count(*) FROM study_measurements WHERE study_uid = ?1",
            [&](sql::Stmt& st) { st.bind(1, m.study_uid); },
            [&](sql::Stmt& st) { held = st.int64(0); });
        !s)
      return s.error();
    if (held >= static_cast<std::int64_t>(kMaxMeasurementsPerStudy)) {
      return make_error(Errc::conflict, "the study holds " +
                                            std::to_string(kMaxMeasurementsPerStudy) +
                                            " measurements already; remove some first");
    }
    std::int64_t id = 0;
    if (Status s = sql::query(
            c,
            "INSERT INTO study_measurements(study_uid, instance_uid, frame, kind, points, value, "
            "unit, created_by, institution_id, created_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, "
            "?9, ?10) RETURNING id",
            [&](sql::Stmt& st) {
              st.bind(1, m.study_uid);
              st.bind(2, m.instance_uid);
              st.bind(3, m.frame);
              st.bind(4, m.kind);
              st.bind(5, points_text(m.points));
              st.bind(6, json(m.value).dump());
              st.bind(7, m.unit);
              st.bind(8, m.by);
              st.bind(9, institution_id);
              st.bind(10, m.at);
            },
            [&](sql::Stmt& st) { id = st.int64(0); });
        !s)
      return s.error();
    return id;
  });
}

Status MeasurementStore::remove(std::int64_t id, std::string_view study_uid, std::string_view by) {
  return storage::write(db_, [&](sql::Db& c) -> Status {
    std::optional<std::string> author;
    if (Status s = sql::query(
            c, "SELECT created_by FROM study_measurements WHERE id = ?1 AND study_uid = ?2",
            [&](sql::Stmt& st) {
              st.bind(1, id);
              st.bind(2, study_uid);
            },
            [&](sql::Stmt& st) { author = st.text(0); });
        !s)
      return s;
    if (!author) return make_error(Errc::not_found, "no such measurement on this study");
    if (*author != by) {
      return make_error(Errc::permission_denied, "only " + *author + " may remove this one");
    }
    return sql::run(c, "DELETE FROM study_measurements WHERE id = ?1",
                    [&](sql::Stmt& st) { st.bind(1, id); });
  });
}

namespace {

json measurement_json(const Measurement& m, const std::string& caller) {
  json points = json::array();
  for (const auto& p : m.points) points.push_back({{"x", p[0]}, {"y", p[1]}});
  return {{"id", m.id},
          {"instance", m.instance_uid},
          {"frame", m.frame},
          {"kind", m.kind},
          {"points", points},
          {"value", m.value},
          {"unit", m.unit},
          {"by", m.by},
          {"institution", m.institution},
          {"at", m.at},
          {"mine", m.by == caller}};
}

// The measurement in a POST body; the points as [{"x", "y"}].
Result<Measurement> measurement_of(const json& body) {
  Measurement m;
  m.instance_uid = http::json_string(body, "instance");
  if (m.instance_uid.empty() || m.instance_uid.size() > 64) {
    return make_error(Errc::invalid_argument, "instance is the SOP Instance UID measured on");
  }
  m.kind = http::json_string(body, "kind");
  m.unit = http::json_string(body, "unit");
  auto frame = body.find("frame");
  if (frame != body.end()) {
    if (!frame->is_number_integer()) {
      return make_error(Errc::invalid_argument, "frame is a whole number");
    }
    m.frame = frame->get<std::int64_t>();
  }
  auto value = body.find("value");
  if (value == body.end() || !value->is_number()) {
    return make_error(Errc::invalid_argument, "value is the measured number");
  }
  m.value = value->get<double>();
  auto points = body.find("points");
  if (points == body.end() || !points->is_array() || points->size() > 3) {
    return make_error(Errc::invalid_argument, "points is a list of {x, y}");
  }
  for (const json& p : *points) {
    if (!p.is_object() || !p.contains("x") || !p.contains("y") || !p["x"].is_number() ||
        !p["y"].is_number()) {
      return make_error(Errc::invalid_argument, "a point is {x, y}, numbers");
    }
    m.points.push_back({p["x"].get<double>(), p["y"].get<double>()});
  }
  if (auto problem = measurement_problem(m)) {
    return make_error(Errc::invalid_argument, *problem);
  }
  return m;
}

}  // namespace

void register_measurement_routes(http::Router& router, MeasurementStore& store, pacs::Index& index,
                                 identity::AuthService& auth) {
  // The study, if the caller may read it; a hidden study answers like a missing one.
  auto readable = [&index, &auth](const Request& req,
                                  const char* action) -> std::optional<Response> {
    const std::string& uid = req.params.at("uid");
    auto may = pacs::may_read_study(index, *req.principal, uid, auth.now());
    if (!may.ok()) return Response::from_error(may.error());
    if (!*may) {
      auth.audit(req, action, "study", uid, "denied");
      return Response::error(404, "no study you may see has this UID");
    }
    return std::nullopt;
  };

  router.add("GET", "/api/studies/{uid}/measurements",
             [&store, &auth, readable](const Request& req) {
               if (auto no = readable(req, "measurement.list")) return *no;
               const std::string& uid = req.params.at("uid");
               auto all = store.of_study(uid);
               if (!all.ok()) return Response::from_error(all.error());
               json list = json::array();
               for (const Measurement& m : *all)
                 list.push_back(measurement_json(m, req.principal->username));
               auth.audit(req, "measurement.list", "study", uid, "ok", std::to_string(all->size()));
               return Response::json(200, json_text(json{{"measurements", list}}));
             });

  router.add("POST", "/api/studies/{uid}/measurements",
             [&store, &index, &auth, readable](const Request& req) {
               const std::string& uid = req.params.at("uid");
               if (!identity::has_clinical_role(*req.principal)) {
                 auth.audit(req, "measurement.create", "study", uid, "denied");
                 return Response::error(403, "measurements are made by clinicians");
               }
               if (auto no = readable(req, "measurement.create")) return *no;
               auto body = http::json_object_body(req);
               if (!body.ok()) return Response::from_error(body.error());
               auto m = measurement_of(*body);
               if (m.ok()) {
                 // The instance and frame must be the study's own.
                 auto at = index.locate_instance(m->instance_uid);
                 if (!at.ok()) return Response::from_error(at.error());
                 if (!at->has_value() || (*at)->study_instance_uid != uid) {
                   m = make_error(Errc::invalid_argument, "instance is not one of this study's");
                 } else if (m->frame > (*at)->number_of_frames) {
                   m = make_error(
                       Errc::invalid_argument,
                       "the instance has " + std::to_string((*at)->number_of_frames) + " frames");
                 }
               }
               if (!m.ok()) {
                 auth.audit(req, "measurement.create", "study", uid, "refused", m.error().message);
                 return Response::from_error(m.error());
               }
               m->study_uid = uid;
               m->by = req.principal->username;
               m->institution = req.principal->institution_code;
               m->at = auth.now();
               auto id = store.add(*m, req.principal->institution_id);
               if (!id.ok()) {
                 auth.audit(req, "measurement.create", "study", uid, "refused", id.error().message);
                 return Response::from_error(id.error());
               }
               m->id = *id;
               auth.audit(req, "measurement.create", "study", uid, "ok",
                          m->kind + " " + std::to_string(*id));
               return Response::json(201, json_text(measurement_json(*m, m->by)));
             });

  router.add("DELETE", "/api/studies/{uid}/measurements/{id}",
             [&store, &auth, readable](const Request& req) {
               if (auto no = readable(req, "measurement.remove")) return *no;
               const std::string& uid = req.params.at("uid");
               auto id = http::path_id(req, "id", "measurement id");
               if (!id.ok()) return Response::from_error(id.error());
               Status s = store.remove(*id, uid, req.principal->username);
               auth.audit(req, "measurement.remove", "study", uid, s.ok() ? "ok" : "refused",
                          s.ok() ? std::to_string(*id) : s.error().message);
               if (!s) return Response::from_error(s.error());
               return Response::json(200, json_text(json{{"removed", *id}}));
             });
}

}  // namespace yilian::reading
