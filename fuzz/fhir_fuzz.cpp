// What a laboratory system posts to /fhir/r4: JSON read as a FHIR R4 Observation or Bundle.
// Whatever the bytes, the reader answers with a report or an issue, and a report it accepts
// has a plain id and patient and at least one result.
#include <cstdint>
#include <string>
#include <variant>

#include <nlohmann/json.hpp>

#include "yilian/lab/fhir.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) return 0;
  auto r = yilian::lab::read_fhir(j, "ta");
  if (const auto* report = std::get_if<yilian::lab::OruReport>(&r)) {
    if (report->control_id.empty() || report->patient_id.empty() || report->observations.empty())
      __builtin_trap();
    for (const auto& o : report->observations) {
      if (o.specimen_time.size() != 24 || o.value.empty()) __builtin_trap();
    }
  }
  (void)yilian::lab::fhir_time(text, 480);
  return 0;
}
