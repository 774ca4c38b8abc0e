#include "yilian/pacs/rest.h"

#include <charconv>
#include <nlohmann/json.hpp>

namespace yilian::pacs {
namespace {

using nlohmann::json;

json study_json(const storage::StudySummary& s) {
  return json{
      {"studyInstanceUid", s.study_instance_uid},
      {"patient",
       {{"id", s.patient_id},
        {"issuer", s.issuer_of_patient_id},
        {"name", s.patient_name},
        {"birthDate", s.patient_birth_date},
        {"sex", s.patient_sex}}},
      {"studyDate", s.study_date},
      {"studyTime", s.study_time},
      {"accessionNumber", s.accession_number},
      {"description", s.study_description},
      {"referringPhysician", s.referring_physician},
      {"institutionName", s.institution_name},
      {"institution", s.institution_code},
      {"modalities", s.modalities},
      {"numberOfSeries", s.num_series},
      {"numberOfInstances", s.num_instances},
      {"sizeBytes", s.size_bytes},
      {"firstReceivedAt", s.first_received_at},
      {"lastReceivedAt", s.last_received_at},
  };
}

// Parses a non-negative integer query parameter within [0, max].
Result<std::int64_t> int_param(const http::Request& req, const std::string& name,
                               std::int64_t fallback, std::int64_t max) {
  auto v = req.query_value(name);
  if (!v) return fallback;
  std::int64_t out = 0;
  auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
  if (ec != std::errc() || p != v->data() + v->size() || out < 0 || out > max) {
    return make_error(Errc::invalid_argument,
                      name + " must be an integer from 0 to " + std::to_string(max));
  }
  return out;
}

}  // namespace

void register_study_routes(http::Router& router, storage::Index& index) {
  router.add("GET", "/api/studies", [&index](const http::Request& req) {
    auto limit = int_param(req, "limit", 50, 1000);
    if (!limit.ok()) return http::Response::from_error(limit.error());
    auto offset = int_param(req, "offset", 0, std::int64_t{1} << 40);
    if (!offset.ok()) return http::Response::from_error(offset.error());
    auto page = index.list_studies(*limit, *offset);
    if (!page.ok()) return http::Response::from_error(page.error());
    json studies = json::array();
    for (const auto& s : page->studies) studies.push_back(study_json(s));
    json body = {{"total", page->total},
                 {"limit", *limit},
                 {"offset", *offset},
                 {"studies", std::move(studies)}};
    return http::Response::json(200, body.dump());
  });

  router.add("GET", "/api/studies/{uid}", [&index](const http::Request& req) {
    auto detail = index.get_study(req.params.at("uid"));
    if (!detail.ok()) return http::Response::from_error(detail.error());
    if (!detail->has_value()) return http::Response::error(404, "not_found", "no such study");
    const storage::StudyDetail& d = **detail;
    json body = study_json(d.study);
    json series = json::array();
    for (const auto& s : d.series) {
      series.push_back({{"seriesInstanceUid", s.series_instance_uid},
                        {"modality", s.modality},
                        {"seriesNumber", s.series_number ? json(*s.series_number) : json(nullptr)},
                        {"description", s.series_description},
                        {"bodyPart", s.body_part},
                        {"numberOfInstances", s.num_instances},
                        {"sizeBytes", s.size_bytes},
                        {"lastReceivedAt", s.last_received_at}});
    }
    body["series"] = std::move(series);
    return http::Response::json(200, body.dump());
  });
}

}  // namespace yilian::pacs
