#include "identity_setup.h"

#include <termios.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cstdio>
#include <iostream>

#include "yilian/identity/auth.h"

namespace yilian::app {
namespace {

int fail(const Error& e) {
  spdlog::error("{}", e.message);
  return 1;
}

Status ensure_institution(identity::Accounts& accounts, const std::string& code,
                          const std::string& name, const std::string& level) {
  auto found = accounts.find_institution(code);
  if (!found.ok()) return found.error();
  if (found->has_value()) return Status::Ok();
  auto made = accounts.put_institution({0, code, name, level, "", {}, {}});
  if (!made.ok()) return made.error();
  return Status::Ok();
}

// Reads a password from stdin: one line; without echo on a terminal.
std::string read_password(const char* prompt) {
  bool tty = ::isatty(STDIN_FILENO) == 1;
  termios old{};
  if (tty) {
    std::fprintf(stderr, "%s", prompt);
    std::fflush(stderr);
    tcgetattr(STDIN_FILENO, &old);
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  }
  std::string line;
  std::getline(std::cin, line);
  if (tty) {
    tcsetattr(STDIN_FILENO, TCSANOW, &old);
    std::fprintf(stderr, "\n");
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

identity::AuditEvent cli_event(const char* action, const char* type, const std::string& id) {
  identity::AuditEvent ev;
  ev.actor = "cli";
  ev.address = "local";
  ev.action = action;
  ev.object_type = type;
  ev.object_id = id;
  return ev;
}

// An AuthService over a data directory, for the commands that hash passwords.
struct CliAuth {
  explicit CliAuth(DataDir& dd)
      : auth(dd.accounts(), dd.auditor(), [] { return std::chrono::system_clock::now(); }, {}) {}
  identity::AuthService auth;
};

Result<std::unique_ptr<DataDir>> open_data(const std::string& data,
                                           const std::string& database = {}) {
  auto dd = DataDir::open(data, database);
  if (!dd.ok()) return dd.error();
  if (Status s = apply_identity_config(**dd, Config{}); !s) return s.error();
  return dd;
}

}  // namespace

Status apply_identity_config(DataDir& dd, const Config& cfg) {
  identity::Accounts& accounts = dd.accounts();
  if (Status s = ensure_institution(accounts, "unknown", "Unknown sender", "external"); !s)
    return s;
  if (Status s = ensure_institution(accounts, cfg.admin_institution, "Consortium office", "office");
      !s)
    return s;
  // Two passes, so a parent may be listed after its children.
  for (int pass = 0; pass < 2; ++pass) {
    for (const InstitutionConfig& ic : cfg.institutions) {
      // The character set set on the administration screen stays: the file has none.
      auto known = accounts.find_institution(ic.code);
      if (!known.ok()) return known.error();
      identity::InstitutionInfo info{0,
                                     ic.code,
                                     ic.name,
                                     ic.level,
                                     pass == 0 ? std::string() : ic.parent,
                                     ic.ae_titles,
                                     known->has_value() ? (*known)->charset : std::string()};
      auto made = accounts.put_institution(info);
      if (!made.ok()) {
        return make_error(made.error().code,
                          "config: institution " + ic.code + ": " + made.error().message);
      }
    }
  }
  for (const ReadingServiceConfig& rs : cfg.reading_services) {
    for (const std::string& client : rs.clients) {
      if (Status s = accounts.add_reading_service({rs.provider, client, rs.service}); !s) {
        return make_error(s.error().code, "config: reading service " + rs.provider + " -> " +
                                              client + ": " + s.error().message);
      }
    }
  }
  return Status::Ok();
}

Result<pacs::AeDirectory> build_ae_directory(DataDir& dd, const Config& cfg) {
  auto all = dd.accounts().institutions();
  if (!all.ok()) return all.error();
  std::int64_t unknown = 0;
  for (const auto& i : *all) {
    if (i.code == "unknown") unknown = i.id;
  }
  pacs::AeDirectory aes(unknown, cfg.reject_unknown_ae);
  for (const auto& i : *all) {
    aes.name_institution(i.id, i.code);
    for (const std::string& ae : i.ae_titles) aes.add(ae, i.id);
  }
  aes.set_default_text_decoding(pacs::TextDecoding{cfg.default_charset, false});
  for (const SenderConfig& s : cfg.senders) {
    aes.set_text_decoding(s.ae_title, pacs::TextDecoding{s.charset, s.override_declared_charset});
  }
  // An institution's own character set for its AE titles; a [[dicom.senders]] entry for the
  // same AE title (above: the first entry of an AE title counts) says otherwise.
  for (const auto& i : *all) {
    if (i.charset.empty()) continue;
    for (const std::string& ae : i.ae_titles) {
      aes.set_text_decoding(ae, pacs::TextDecoding{i.charset, false});
    }
  }
  for (const DicomPeerConfig& p : cfg.dicom_peers) {
    aes.add_peer(p.ae_title, pacs::DicomPeer{p.host, p.port, p.roles});
  }
  return aes;
}

int user_add(const UserFlags& f) {
  auto dd = open_data(f.data, f.database);
  if (!dd.ok()) return fail(dd.error());
  identity::NewUser u;
  u.username = f.username;
  u.display_name = f.display_name;
  u.institution_code = f.institution;
  u.credential_codes = f.credentials;
  for (const std::string& r : f.roles) {
    auto role = parse_role(r);
    if (!role) {
      std::string known;
      for (Role k : kAllRoles) known += std::string(known.empty() ? "" : ", ") + role_name(k);
      return fail(
          make_error(Errc::invalid_argument, "unknown role " + r + " (one of " + known + ")"));
    }
    u.roles |= 1u << static_cast<unsigned>(*role);
  }
  std::string password = read_password("password: ");
  CliAuth cli(**dd);
  auto made = cli.auth.add_user(u, password);
  identity::AuditEvent ev = cli_event("user.create", "user", f.username);
  ev.outcome = made.ok() ? "ok" : "failed";
  ev.detail = made.ok() ? "roles " + roles_to_string(u.roles) : made.error().message;
  (void)(*dd)->auditor().record(ev);
  if (!made.ok()) return fail(made.error());
  std::printf("created user %s (%s) at %s\n", made->username.c_str(),
              roles_to_string(made->roles).c_str(), made->institution_code.c_str());
  return 0;
}

int user_list(const std::string& data) {
  auto dd = open_data(data);
  if (!dd.ok()) return fail(dd.error());
  auto users = (*dd)->accounts().users();
  if (!users.ok()) return fail(users.error());
  std::printf("%-20s %-14s %-40s %s\n", "USERNAME", "INSTITUTION", "ROLES", "STATE");
  for (const auto& u : *users) {
    std::string inst = u.institution_code;
    for (const auto& c : u.credentialed_codes) inst += "+" + c;
    std::printf("%-20s %-14s %-40s %s\n", u.username.c_str(), inst.c_str(),
                roles_to_string(u.roles).c_str(), u.disabled ? "disabled" : "active");
  }
  return 0;
}

int user_disable(const std::string& data, const std::string& username) {
  auto dd = open_data(data);
  if (!dd.ok()) return fail(dd.error());
  Status s = (*dd)->accounts().set_disabled(username, true, storage::now_utc_iso8601());
  identity::AuditEvent ev = cli_event("user.disable", "user", username);
  ev.outcome = s.ok() ? "ok" : "failed";
  (void)(*dd)->auditor().record(ev);
  if (!s) return fail(s.error());
  std::printf("disabled %s; their sessions are revoked\n", username.c_str());
  return 0;
}

int user_passwd(const std::string& data, const std::string& username) {
  auto dd = open_data(data);
  if (!dd.ok()) return fail(dd.error());
  std::string password = read_password("new password: ");
  CliAuth cli(**dd);
  Status s = cli.auth.set_password(username, password);
  identity::AuditEvent ev = cli_event("user.password", "user", username);
  ev.outcome = s.ok() ? "ok" : "failed";
  (void)(*dd)->auditor().record(ev);
  if (!s) return fail(s.error());
  std::printf("password of %s changed; their sessions are revoked\n", username.c_str());
  return 0;
}

int institution_add(const InstitutionFlags& f) {
  auto dd = open_data(f.data);
  if (!dd.ok()) return fail(dd.error());
  auto made =
      (*dd)->accounts().put_institution({0, f.code, f.name, f.level, f.parent, f.ae_titles, {}});
  identity::AuditEvent ev = cli_event("institution.put", "institution", f.code);
  ev.outcome = made.ok() ? "ok" : "failed";
  if (!made.ok()) ev.detail = made.error().message;
  (void)(*dd)->auditor().record(ev);
  if (!made.ok()) return fail(made.error());
  std::printf("institution %s (%s)\n", made->code.c_str(), made->level.c_str());
  return 0;
}

int institution_list(const std::string& data) {
  auto dd = open_data(data);
  if (!dd.ok()) return fail(dd.error());
  auto all = (*dd)->accounts().institutions();
  if (!all.ok()) return fail(all.error());
  std::printf("%-16s %-10s %-16s %-30s %s\n", "CODE", "LEVEL", "PARENT", "NAME", "AE TITLES");
  for (const auto& i : *all) {
    std::string aes;
    for (const auto& a : i.ae_titles) aes += (aes.empty() ? "" : ",") + a;
    std::printf("%-16s %-10s %-16s %-30s %s\n", i.code.c_str(), i.level.c_str(),
                i.parent_code.c_str(), i.name.c_str(), aes.c_str());
  }
  return 0;
}

int audit_verify(const std::string& data) {
  auto dd = DataDir::open(data);
  if (!dd.ok()) return fail(dd.error());
  auto anchor = (*dd)->accounts().audit_anchor();
  if (!anchor.ok()) return fail(anchor.error());
  auto report = identity::verify_chain((*dd)->auditor().log(), *anchor);
  if (!report.ok()) return fail(report.error());
  if (report->intact) {
    std::printf("audit trail intact: %lld records\n", static_cast<long long>(report->records));
    return 0;
  }
  std::printf("audit trail BROKEN at record %lld: %s\n",
              static_cast<long long>(report->first_bad_seq), report->problem.c_str());
  return 3;
}

}  // namespace yilian::app
