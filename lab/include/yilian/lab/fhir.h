// FHIR R4 laboratory results as county laboratory systems post them: one Observation, or a
// Bundle (transaction, batch or collection) of Observations with the DiagnosticReport that
// groups them and, optionally, the Patient. Read into the same report as an HL7 ORU^R01, so
// both are stored alike. Pure: no I/O.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include <nlohmann/json.hpp>

#include "yilian/lab/hl7.h"

namespace yilian::lab {

// What is wrong with a posted resource, as a FHIR OperationOutcome issue says it: `code` from
// the issue-type value set (structure, required, value, not-supported, business-rule),
// `expression` the FHIRPath of the element.
struct FhirIssue {
  int status = 400;
  std::string code = "invalid";
  std::string expression;
  std::string text;
};

// The report in `resource`, from the member institution `sender_code`. Its id (the report's
// control id) is the Bundle's identifier, else the DiagnosticReport's, else the Observation's
// ("system|value"): required, so that a resend is recognised.
std::variant<OruReport, FhirIssue> read_fhir(const nlohmann::json& resource,
                                             std::string_view sender_code,
                                             int utc_offset_minutes = 480);

// A FHIR dateTime (YYYY, YYYY-MM, YYYY-MM-DD, or with a time and a zone) in ISO 8601 UTC with
// milliseconds; a date alone is midnight local time.
std::optional<std::string> fhir_time(std::string_view text, int utc_offset_minutes);

// An OperationOutcome with one issue.
nlohmann::json operation_outcome(std::string_view severity, std::string_view code,
                                 std::string_view text, std::string_view expression = {});

}  // namespace yilian::lab
