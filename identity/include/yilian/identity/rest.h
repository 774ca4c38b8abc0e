// REST endpoints of identity: login/logout/me, and the admin endpoints for institutions,
// users, reading services and the audit trail.
#pragma once

#include "yilian/identity/auth.h"
#include "yilian/net/http.h"

namespace yilian::identity {

// POST /api/auth/login, POST /api/auth/logout, GET /api/auth/me
void register_auth_routes(http::Router& router, AuthService& auth);

// Admin only (403 otherwise):
// GET/POST /api/admin/institutions, GET/POST /api/admin/users,
// POST /api/admin/users/{username}/disable|enable|password,
// GET/POST /api/admin/reading-services, GET /api/audit
void register_admin_routes(http::Router& router, AuthService& auth);

}  // namespace yilian::identity
