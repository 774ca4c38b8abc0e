#include "postgres.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <system_error>
#include <vector>

#include "process.h"

namespace yilian::testing {
namespace {

// The newest installed server's binaries (Debian: /usr/lib/postgresql/<major>/bin).
std::filesystem::path server_binaries() {
  std::filesystem::path best;
  int best_major = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
    const int major = std::atoi(e.path().filename().c_str());
    if (major > best_major && std::filesystem::exists(e.path() / "bin" / "pg_ctl")) {
      best_major = major;
      best = e.path() / "bin";
    }
  }
  return best;
}

std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

}  // namespace

PostgresServer::~PostgresServer() { stop(); }

std::string PostgresServer::as_owner(const std::string& command) const {
  if (::geteuid() != 0) return command;
  return "runuser -u postgres -- sh -c " + quote(command);
}

bool PostgresServer::start(std::string* why) {
  bin_ = server_binaries();
  if (bin_.empty()) {
    *why = "no PostgreSQL server under /usr/lib/postgresql (apt-get install postgresql)";
    return false;
  }
  char tmpl[] = "/tmp/yilian-pg-XXXXXX";
  if (!::mkdtemp(tmpl)) {
    *why = "cannot create a temp folder";
    return false;
  }
  dir_ = tmpl;
  std::string out;
  if (::geteuid() == 0 &&
      run_command("chown postgres:postgres " + quote(dir_.string()), &out) != 0) {
    *why = "chown to postgres failed (is there a postgres user?): " + out;
    return false;
  }
  const std::string initdb = (bin_ / "initdb").string() + " -D " + quote((dir_ / "data").string()) +
                             " -U postgres -A trust -E UTF8 --no-locale --no-sync";
  if (run_command(as_owner(initdb), &out) != 0) {
    *why = "initdb failed: " + out;
    return false;
  }
  // A port taken between free_port() and the start is retried with another one.
  for (int attempt = 0; attempt < 5; ++attempt) {
    port_ = free_port();
    if (launch(why)) break;
  }
  return running_;
}

bool PostgresServer::launch(std::string* why) {
  const std::string options = "-p " + std::to_string(port_) + " -k " + quote(dir_.string()) +
                              " -c listen_addresses=127.0.0.1 -c max_connections=200";
  const std::string cmd = (bin_ / "pg_ctl").string() + " -D " + quote((dir_ / "data").string()) +
                          " -l " + quote((dir_ / "server.log").string()) + " -w -t 60 -o " +
                          quote(options) + " start";
  std::string out;
  running_ = run_command(as_owner(cmd), &out) == 0;
  if (!running_) *why = "pg_ctl start failed: " + out;
  return running_;
}

bool PostgresServer::suspend(std::string* why) {
  std::string out;
  const int rc = run_command(as_owner((bin_ / "pg_ctl").string() + " -D " +
                                      quote((dir_ / "data").string()) + " -m immediate -w stop"),
                             &out);
  running_ = false;
  if (rc != 0) *why = "pg_ctl stop failed: " + out;
  return rc == 0;
}

bool PostgresServer::restart(std::string* why) { return suspend(why) && launch(why); }

void PostgresServer::stop() {
  if (dir_.empty()) return;
  if (running_) {
    std::string out;
    run_command(as_owner((bin_ / "pg_ctl").string() + " -D " + quote((dir_ / "data").string()) +
                         " -m fast -w stop"),
                &out);
    running_ = false;
  }
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
  dir_.clear();
}

PostgresServer* shared_postgres(std::string* why) {
  static std::string failure;
  static PostgresServer* server = [] {
    static PostgresServer s;
    if (const char* dir = std::getenv("YILIAN_TEST_POSTGRES"); dir && *dir) {
      return s.attach(dir, &failure) ? &s : nullptr;
    }
    return s.start(&failure) ? &s : nullptr;
  }();
  if (!server) *why = failure;
  return server;
}

void PostgresServer::adopt(const std::filesystem::path& dir) {
  bin_ = server_binaries();
  dir_ = dir;
  running_ = true;
}

bool PostgresServer::attach(const std::filesystem::path& dir, std::string* why) {
  bin_ = server_binaries();
  std::ifstream in(dir / "port");
  int port = 0;
  if (!(in >> port) || port <= 0 || port > 65535) {
    *why = "no server port in " + (dir / "port").string();
    return false;
  }
  port_ = static_cast<std::uint16_t>(port);
  return true;  // dir_ stays empty: this object does not own the server
}

std::string PostgresServer::fresh_database() {
  // Processes sharing one server (a ctest fixture) each name theirs by their pid.
  const std::string name = "db" + std::to_string(::getpid()) + "_" + std::to_string(++databases_);
  std::string out;
  if (psql("CREATE DATABASE " + name, &out) != 0) return {};
  return "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/" + name;
}

int PostgresServer::psql(const std::string& sql, std::string* out,
                         const std::string& database) const {
  return run_command((bin_ / "psql").string() + " -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p " +
                         std::to_string(port_) + " -U postgres -d " + quote(database) + " -c " +
                         quote(sql),
                     out);
}

bool add_backend_args(const std::string& backend, std::vector<std::string>& args,
                      std::string* why) {
  if (backend != "postgres") return true;
  PostgresServer* pg = shared_postgres(why);
  if (!pg) return false;
  const std::string url = pg->fresh_database();
  if (url.empty()) {
    *why = "cannot create a database";
    return false;
  }
  args.insert(args.end(), {"--database", url});
  return true;
}

}  // namespace yilian::testing
