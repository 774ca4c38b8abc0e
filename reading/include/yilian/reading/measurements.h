// A reader's measurements kept with the study: a length or an angle drawn on one frame of one
// instance, in the image's pixels, with the value the viewer measured. Everyone who may read the
// study sees them (the lead's radiologist and the township doctor alike); only their author
// takes one away. See docs/API.md, "Measurements".
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "yilian/common/result.h"
#include "yilian/identity/auth.h"
#include "yilian/net/http.h"
#include "yilian/pacs/index.h"
#include "yilian/storage/database.h"

namespace yilian::reading {

struct Measurement {
  std::int64_t id = 0;
  std::string study_uid, instance_uid;
  std::int64_t frame = 1;  // 1-based
  std::string kind;        // "length" (2 points) or "angle" (3 points, the vertex second)
  std::vector<std::array<double, 2>> points;  // x, y in the frame's pixels
  double value = 0;
  std::string unit;  // "mm" (a length with pixel spacing), "px" (without), "deg" (an angle)
  std::string by, institution, at;
};

// At most this many measurements are kept on one study.
inline constexpr std::size_t kMaxMeasurementsPerStudy = 1000;

// Pure: what is wrong with a measurement as a viewer sends it (kind, point count, coordinates
// inside 0..65535, a finite value in range, a unit that fits the kind), or nothing.
std::optional<std::string> measurement_problem(const Measurement& m);

class MeasurementStore {
 public:
  explicit MeasurementStore(storage::Database& db);
  // The study's measurements, oldest first.
  Result<std::vector<Measurement>> of_study(std::string_view study_uid);
  // Stored with its author's home institution; a conflict when the study holds the most it
  // may. Returns the new id.
  Result<std::int64_t> add(const Measurement& m, std::int64_t institution_id);
  // Removes measurement `id` of the study if `by` made it. Not found: no such measurement on
  // the study; permission denied: someone else's.
  Status remove(std::int64_t id, std::string_view study_uid, std::string_view by);

 private:
  storage::Database& db_;
};

// GET, POST /api/studies/{uid}/measurements; DELETE /api/studies/{uid}/measurements/{id}.
// A study the caller may not read answers 404 like a missing one; every call is audited.
void register_measurement_routes(http::Router& router, MeasurementStore& store, pacs::Index& index,
                                 identity::AuthService& auth);

}  // namespace yilian::reading
