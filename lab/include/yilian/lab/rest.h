// The laboratory's REST routes: results posted as FHIR R4 (Observation, Bundle), a patient's
// results with their recognition, a doctor taking a recognised result instead of repeating the
// test, and the repeats avoided by institution.
#pragma once

#include <vector>

#include "yilian/lab/results.h"
#include "yilian/net/http.h"

namespace yilian::identity {
class AuthService;
}

namespace yilian::lab {

void register_lab_routes(http::Router& router, LabStore& store, const LabOptions& options,
                         identity::AuthService& auth);

}  // namespace yilian::lab
