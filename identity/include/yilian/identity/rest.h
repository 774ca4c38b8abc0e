// REST endpoints of identity: login/logout/me, and the admin endpoints for institutions,
// users, reading services and the audit trail.
#pragma once

#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "yilian/identity/auth.h"
#include "yilian/net/http.h"

namespace yilian::identity {

// POST /api/auth/login, POST /api/auth/logout, GET /api/auth/me, POST /api/auth/password
void register_auth_routes(http::Router& router, AuthService& auth);

// For admin endpoints of every module: nullopt when `req`'s principal administers; otherwise
// the 403 to send, the denial audited as `action` on `object_type`.
std::optional<http::Response> refuse_non_admin(AuthService& auth, const http::Request& req,
                                               const char* action, const char* object_type);

// What the admin endpoints need from the rest of the hub.
struct AdminHooks {
  // Whether a character set name is one the hub decodes (empty function: any).
  std::function<bool(std::string_view)> charset_known;
  // After an institution's AE titles or character set changed (the DICOM side re-reads them).
  std::function<void()> institutions_changed;
  // What the configuration file defines (set again from it at every start): institution codes,
  // and reading services as "provider:client:service". The lists mark them `"fromFile": true`.
  std::set<std::string> file_institutions;
  std::set<std::string> file_reading_services;
};

// Admin only (403 otherwise):
// GET/POST /api/admin/institutions, GET/POST /api/admin/users, PUT /api/admin/users/{username},
// POST /api/admin/users/{username}/disable|enable|password, GET /api/admin/sessions,
// GET/POST /api/admin/reading-services, GET /api/audit (also as CSV), GET /api/audit/verify
void register_admin_routes(http::Router& router, AuthService& auth, AdminHooks hooks = {});

}  // namespace yilian::identity
