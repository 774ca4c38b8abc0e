// The consortium admins' routes for the recognition table (see recognition_admin.cpp).
#pragma once

#include "yilian/lab/results.h"
#include "yilian/net/http.h"

namespace yilian::identity {
class AuthService;
}

namespace yilian::lab {

void register_recognition_admin(http::Router& router, LabStore& store, const LabOptions& options,
                                identity::AuthService& auth);

}  // namespace yilian::lab
