#include "server_process.h"

#include <arpa/inet.h>
#include <linux/close_range.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

namespace yilian::testing {

std::string yilian_binary() { return YILIAN_BINARY; }

std::string HttpResult::header(const std::string& name) const {
  // `head` is lower case; header values here (types, lengths) compare case-insensitively.
  std::size_t at = head.find("\r\n" + name + ":");
  if (at == std::string::npos) return {};
  at += name.size() + 3;
  std::size_t end = head.find("\r\n", at);
  std::string v = head.substr(at, end == std::string::npos ? std::string::npos : end - at);
  v.erase(0, v.find_first_not_of(' '));
  return v;
}

int storescu(const ServerProcess& s, const std::string& aet,
             const std::vector<std::filesystem::path>& files) {
  std::string cmd = "TCP_NODELAY=1 storescu -aet " + aet + " -aec YILIAN 127.0.0.1 " +
                    std::to_string(s.dicom_port());
  for (const auto& f : files) cmd += " '" + f.string() + "'";
  std::string out;
  return run_command(cmd, &out);
}

KeptAliveClient::KeptAliveClient(std::uint16_t port) {
  fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd_ < 0) return;
  timeval tv{10, 0};
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

KeptAliveClient::~KeptAliveClient() {
  if (fd_ >= 0) ::close(fd_);
}

HttpResult KeptAliveClient::request(const std::string& method, const std::string& target,
                                    const std::string& body, const Headers& headers) {
  HttpResult r;
  if (fd_ < 0) return r;
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH")
    req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  for (const auto& [name, value] : headers) req += name + ": " + value + "\r\n";
  req += "\r\n" + body;
  if (::send(fd_, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size()))
    return r;
  char buf[16384];
  auto fill = [&] {
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) return false;
    buffered_.append(buf, static_cast<std::size_t>(n));
    return true;
  };
  std::size_t end;
  while ((end = buffered_.find("\r\n\r\n")) == std::string::npos) {
    if (!fill()) return r;
  }
  std::string head = buffered_.substr(0, end);
  for (char& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  buffered_.erase(0, end + 4);
  r.head = head;
  const std::size_t sp = head.find(' ');
  if (sp == std::string::npos) return r;
  std::size_t length = 0;
  if (method != "HEAD") {
    const std::string cl = r.header("content-length");
    length = cl.empty() ? 0 : std::stoul(cl);
  }
  while (buffered_.size() < length) {
    if (!fill()) return r;
  }
  r.body = buffered_.substr(0, length);
  buffered_.erase(0, length);
  r.status = std::atoi(head.c_str() + sp + 1);
  return r;
}

HttpResult http_request(std::uint16_t port, const std::string& method, const std::string& target,
                        const std::string& body, const Headers& headers) {
  HttpResult r;
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return r;
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return r;
  }
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  if (!body.empty() || method == "POST" || method == "PUT") {
    bool typed = false;
    for (const auto& h : headers) typed = typed || h.first == "Content-Type";
    if (!typed) req += "Content-Type: application/json\r\n";
    req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  for (const auto& [name, value] : headers) req += name + ": " + value + "\r\n";
  req += "\r\n" + body;
  if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    ::close(fd);
    return r;
  }
  std::string resp;
  char buf[16384];
  while (true) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    resp.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  std::size_t sp = resp.find(' ');
  std::size_t hdr_end = resp.find("\r\n\r\n");
  if (sp == std::string::npos || hdr_end == std::string::npos) return r;
  r.status = std::atoi(resp.c_str() + sp + 1);
  std::string head = resp.substr(0, hdr_end);
  std::string payload = resp.substr(hdr_end + 4);
  // Decode a chunked body if the server chose chunked encoding.
  std::string lower = head;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  r.head = lower;
  if (lower.find("transfer-encoding: chunked") != std::string::npos) {
    std::string out;
    std::size_t i = 0;
    while (i < payload.size()) {
      std::size_t eol = payload.find("\r\n", i);
      if (eol == std::string::npos) break;
      std::size_t n = std::stoul(payload.substr(i, eol - i), nullptr, 16);
      if (n == 0) break;
      out += payload.substr(eol + 2, n);
      i = eol + 2 + n + 2;
    }
    payload = out;
  }
  r.body = payload;
  return r;
}

ServerProcess::ServerProcess(std::filesystem::path data_dir, std::vector<std::string> extra_args,
                             Mode mode)
    : data_(std::move(data_dir)), extra_(std::move(extra_args)), mode_(mode) {
  log_ = data_.string() + ".server.log";
}

ServerProcess::~ServerProcess() { stop(); }

std::optional<std::pair<std::uint16_t, std::uint16_t>> read_port_file(
    const std::filesystem::path& file) {
  std::ifstream in(file);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto number = [&](const std::string& key) -> int {
    std::size_t i = text.find("\"" + key + "\":");
    if (i == std::string::npos) return 0;
    return std::atoi(text.c_str() + i + key.size() + 3);
  };
  int dicom = number("dicom"), http = number("http");
  if (dicom <= 0 || http <= 0 || dicom > 65535 || http > 65535) return std::nullopt;
  return std::make_pair(static_cast<std::uint16_t>(dicom), static_cast<std::uint16_t>(http));
}

std::optional<std::pair<std::uint16_t, std::uint16_t>> wait_for_port_file(
    const std::filesystem::path& file) {
  for (int i = 0; i < 600; ++i) {
    if (auto ports = read_port_file(file)) return ports;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return std::nullopt;
}

bool ServerProcess::start() { return launch() && wait_ready(); }

std::uint16_t ServerProcess::mllp_port() const {
  std::ifstream in(port_file_);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::size_t i = text.find("\"mllp\":");
  if (i == std::string::npos) return 0;
  const int port = std::atoi(text.c_str() + i + 7);
  return port > 0 && port <= 65535 ? static_cast<std::uint16_t>(port) : 0;
}

bool ServerProcess::launch() {
  // An administrator for the harness, made the way an operator would (idempotent: a second
  // start finds the user already there).
  std::string out;
  std::string database;  // the hub's --database, for the command line too
  for (std::size_t i = 0; i + 1 < extra_.size(); ++i) {
    if (extra_[i] == "--database") database = " --database '" + extra_[i + 1] + "'";
  }
  if (mode_ == Mode::serve) {
    (void)run_command("printf '%s\\n' '" + std::string(kPassword) + "' | " + yilian_binary() +
                          " user add --data '" + data_.string() + "'" + database +
                          " --role admin --institution consortium " + kAdmin,
                      &out);
  }
  // The hub binds port 0 and reports the ports it got: a port picked here and released
  // could be taken by another process before the hub binds it.
  port_file_ = data_.parent_path() / (data_.filename().string() + ".ports");
  std::error_code ec;
  std::filesystem::remove(port_file_, ec);
  dicom_port_ = 0;
  http_port_ = 0;
  std::vector<std::string> args = {
      yilian_binary(), mode_ == Mode::demo ? "demo" : mode_ == Mode::edge ? "edge" : "serve",
      "--data",        data_.string(),
      "--dicom-port",  "0",
      "--http-port",   "0",
      "--port-file",   port_file_.string()};
  if (mode_ != Mode::edge) {
    args.push_back("--mllp-port");
    args.push_back("0");
  }
  args.insert(args.end(), extra_.begin(), extra_.end());
  pid_ = ::fork();
  if (pid_ == 0) {
    FILE* f = std::fopen(log_.c_str(), "a");
    if (f) {
      ::dup2(fileno(f), STDOUT_FILENO);
      ::dup2(fileno(f), STDERR_FILENO);
    }
    ::close_range(3, ~0U, 0);  // none of the test's connections live on in the server
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    std::_Exit(127);
  }
  return pid_ > 0;
}

bool ServerProcess::wait_ready() {
  if (pid_ <= 0) return false;
  // Bounded wait for readiness: 600 x 100 ms.
  for (int i = 0; i < 600; ++i) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    if (http_port_ == 0) {
      if (auto ports = read_port_file(port_file_)) {
        dicom_port_ = ports->first;
        http_port_ = ports->second;
      }
    }
    if (http_port_ != 0 && http_get(http_port_, "/healthz").status == 200) {
      if (mode_ == Mode::serve) admin_token_ = login(kAdmin);
      reader_token_.clear();
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  stop();
  return false;
}

void ServerProcess::kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

int ServerProcess::stop() {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  int status = 0;
  // Bounded wait: 600 x 50 ms, then SIGKILL.
  for (int i = 0; i < 600; ++i) {
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  return -1;
}

namespace {
// The string value of "key" in a flat JSON object (enough for tokens; no JSON library here).
std::string json_string(const std::string& body, const std::string& key) {
  std::string needle = "\"" + key + "\":\"";
  std::size_t i = body.find(needle);
  if (i == std::string::npos) return {};
  i += needle.size();
  std::size_t j = body.find('"', i);
  return j == std::string::npos ? std::string() : body.substr(i, j - i);
}

std::string json_list(const std::vector<std::string>& items) {
  std::string out = "[";
  for (const std::string& s : items) out += (out.size() > 1 ? ",\"" : "\"") + s + "\"";
  return out + "]";
}
}  // namespace

std::string ServerProcess::login(const std::string& username, const std::string& password) const {
  HttpResult r =
      http_request(http_port_, "POST", "/api/auth/login",
                   "{\"username\":\"" + username + "\",\"password\":\"" + password + "\"}");
  if (r.status != 200) return {};
  return json_string(r.body, "token");
}

HttpResult ServerProcess::request(const std::string& token, const std::string& method,
                                  const std::string& target, const std::string& body) const {
  return http_request(http_port_, method, target, body, {{"Authorization", "Bearer " + token}});
}

std::string ServerProcess::add_user(const std::string& username,
                                    const std::vector<std::string>& roles,
                                    const std::string& institution,
                                    const std::vector<std::string>& credentials) const {
  std::string body = "{\"username\":\"" + username + "\",\"password\":\"" + kPassword +
                     "\",\"institution\":\"" + institution + "\",\"roles\":" + json_list(roles) +
                     ",\"credentials\":" + json_list(credentials) + "}";
  HttpResult r = request(admin_token_, "POST", "/api/admin/users", body);
  if (r.status != 201 && r.status != 409) return {};
  return login(username);
}

const std::string& ServerProcess::reader_token() {
  if (reader_token_.empty())
    reader_token_ = add_user("unknown-reader", {"township_doctor"}, "unknown");
  return reader_token_;
}

std::string ServerProcess::log() const {
  std::ifstream in(log_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace yilian::testing
