// Starts the real `yilian serve` on free loopback ports, for integration tests.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "process.h"

namespace yilian::testing {

// The DICOM and HTTP ports in a `yilian serve --port-file`, once it is there (bounded wait:
// 60 s); nullopt when it never appears.
std::optional<std::pair<std::uint16_t, std::uint16_t>> read_port_file(
    const std::filesystem::path& file);
std::optional<std::pair<std::uint16_t, std::uint16_t>> wait_for_port_file(
    const std::filesystem::path& file);

struct HttpResult {
  int status = 0;  // 0: no answer
  std::string body;
  std::string head;  // status line and headers, header names in lower case
  // The value of response header `name` (lower case), empty when absent.
  std::string header(const std::string& name) const;
};

using Headers = std::vector<std::pair<std::string, std::string>>;

// Blocking HTTP/1.1 request to 127.0.0.1:port, bounded by a 10 s timeout.
HttpResult http_request(std::uint16_t port, const std::string& method, const std::string& target,
                        const std::string& body = {}, const Headers& headers = {});
inline HttpResult http_get(std::uint16_t port, const std::string& target) {
  return http_request(port, "GET", target);
}

// HTTP/1.1 requests one after another on one kept-alive connection (each answer read by its
// Content-Length; HEAD answers have no body), bounded by 10 s per read.
class KeptAliveClient {
 public:
  explicit KeptAliveClient(std::uint16_t port);
  ~KeptAliveClient();
  KeptAliveClient(const KeptAliveClient&) = delete;
  KeptAliveClient& operator=(const KeptAliveClient&) = delete;
  // status 0 when the connection failed or closed.
  HttpResult request(const std::string& method, const std::string& target,
                     const std::string& body = {}, const Headers& headers = {});

 private:
  int fd_ = -1;
  std::string buffered_;
};

class ServerProcess;
// Sends `files` to the hub's DICOM port with storescu as `aet`; storescu's exit status.
int storescu(const ServerProcess& server, const std::string& aet,
             const std::vector<std::filesystem::path>& files);

class ServerProcess {
 public:
  // How the hub is started: `serve` with the harness administrator made first; `fresh`:
  // `serve` on a directory left as it is (a first start creates its one-time administrator);
  // `demo`: `yilian demo`; `edge`: `yilian edge` (the extra arguments name the hub and the
  // credential).
  enum class Mode { serve, fresh, demo, edge };
  ServerProcess(std::filesystem::path data_dir, std::vector<std::string> extra_args = {},
                Mode mode = Mode::serve);
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  // Starts and waits (bounded) until /healthz answers. Returns false on failure.
  bool start();
  // start() in two steps: the process is started (false: it could not be), then waited for.
  bool launch();
  bool wait_ready();
  // SIGTERM and wait; returns the exit status (or -1).
  int stop();
  // SIGKILL (a crash: nothing is finished or flushed) and wait.
  void kill();

  std::uint16_t dicom_port() const { return dicom_port_; }
  std::uint16_t http_port() const { return http_port_; }
  // The HL7 MLLP port the hub got (serve and demo; 0 when it reported none).
  std::uint16_t mllp_port() const;
  const std::filesystem::path& log_file() const { return log_; }
  std::string log() const;

  // Before its first start the harness creates an administrator with the command line
  // (`yilian user add`); these use it through the REST API.
  static constexpr const char* kAdmin = "harness-admin";
  static constexpr const char* kPassword = "correct-horse-battery";
  // POST /api/auth/login; the token, or "" on failure.
  std::string login(const std::string& username, const std::string& password = kPassword) const;
  const std::string& admin_token() const { return admin_token_; }
  // Creates a user through POST /api/admin/users (password kPassword) and logs them in.
  // Returns their token, or "" on failure.
  std::string add_user(const std::string& username, const std::vector<std::string>& roles,
                       const std::string& institution,
                       const std::vector<std::string>& credentials = {}) const;
  // Requests with a bearer token.
  HttpResult request(const std::string& token, const std::string& method, const std::string& target,
                     const std::string& body = {}) const;
  HttpResult get(const std::string& token, const std::string& target) const {
    return request(token, "GET", target);
  }
  // A user who sees every study filed under the institution "unknown" (senders not in the
  // config), created on first use.
  const std::string& reader_token();

 private:
  std::filesystem::path data_;
  std::vector<std::string> extra_;
  Mode mode_ = Mode::serve;
  std::filesystem::path log_;
  std::filesystem::path port_file_;
  std::uint16_t dicom_port_ = 0, http_port_ = 0;
  pid_t pid_ = -1;
  std::string admin_token_;
  std::string reader_token_;
};

std::string yilian_binary();

}  // namespace yilian::testing
