// A private PostgreSQL cluster for tests: initdb in a temp folder, started with pg_ctl on a
// free loopback port, stopped and removed afterwards. PostgreSQL refuses to run as root, so
// when the tests run as root (CI) the server runs as the `postgres` system user.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace yilian::testing {

// One server for a whole test program, started on first use and stopped at exit; null (and
// `why`) when it cannot be started. When YILIAN_TEST_POSTGRES names the folder of a server
// started for the whole test run (`yilian_test_postgres start DIR`, a ctest fixture), that one
// is used instead and left running.
class PostgresServer;
PostgresServer* shared_postgres(std::string* why);

// Appends the `yilian serve` arguments for a test on `backend`: nothing for "sqlite",
// `--database URL` of a new database on shared_postgres() for "postgres". False, with the
// reason, when that server cannot be had.
bool add_backend_args(const std::string& backend, std::vector<std::string>& args, std::string* why);

class PostgresServer {
 public:
  PostgresServer() = default;
  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  // Creates and starts the cluster. False (and `why`) when the PostgreSQL server binaries are
  // not installed or the server would not start.
  bool start(std::string* why);
  // Stops the server (fast shutdown) and removes its folder.
  void stop();
  // A server another process started in `dir` (its port in dir/port); left running.
  bool attach(const std::filesystem::path& dir, std::string* why);
  // Leaves the server running when this object goes (its folder and port are in dir()).
  void release() { dir_.clear(); }
  // Takes over a running server whose folder (dir() of the one that started it) is `dir`:
  // stop() and the destructor stop it and remove the folder.
  void adopt(const std::filesystem::path& dir);
  const std::filesystem::path& dir() const { return dir_; }
  // Stops immediately (as a crash would) and starts it again on the same port and data.
  bool restart(std::string* why);
  // The same in two steps: down (immediate stop) until resume() starts it again.
  bool suspend(std::string* why);
  bool resume(std::string* why) { return launch(why); }

  // Creates a new, empty database and returns its URL; "" on failure.
  std::string fresh_database();
  std::uint16_t port() const { return port_; }
  // Runs `sql` with psql as the superuser in `database`; psql's exit status, its output in
  // `out`.
  int psql(const std::string& sql, std::string* out = nullptr,
           const std::string& database = "postgres") const;

 private:
  bool launch(std::string* why);
  std::string as_owner(const std::string& command) const;

  std::filesystem::path dir_;
  std::filesystem::path bin_;
  std::uint16_t port_ = 0;
  bool running_ = false;
  int databases_ = 0;
};

}  // namespace yilian::testing
