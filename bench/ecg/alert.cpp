// End-to-end STEMI alert time: ECGs are posted to a running hub at a set rate (`POST /api/ecg`,
// DICOM 12-lead ECGs, one in `--stemi-every` with anterior ST elevation) as the township
// doctor, while the on-call cardiologist holds a `/ws` connection. Measured per suspected
// STEMI: from the moment the last byte of the upload has been handed to the kernel to the
// moment the `alert` notification for that patient has been read from the cardiologist's
// socket (one process, one steady clock). The cardiologist acknowledges each alert
// (`case.ack`), as the one tap would.
//
// Users (made by the caller, same password): `doctor` (township doctor of the township),
// `oncall` (a cardiologist of the lead hospital), `chief` (an admin; puts `oncall` on the
// cardiology roster when nobody is on it).
//
//   yilian_ecg_alert --port P --password PW --seconds 60 --per-minute 50 --stemi-every 2
//       --label idle          (prints one JSON line: count, p50/p99/max ms, misses)
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "synthetic.h"
#include "yilian/ecg/dicom_waveform.h"
#include "yilian/ecg/synthetic.h"

namespace {

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

int connect_to(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{30, 0};  // nothing here waits for ever
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool send_all(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0) return false;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

struct HttpResult {
  int status = 0;
  std::string body;
  Clock::time_point last_byte_sent{};
};

// One request on its own connection (as a device uploads); the response read to its end.
HttpResult http(int port, const std::string& method, const std::string& path,
                const std::string& content_type, const std::string& body,
                const std::string& token = "") {
  HttpResult r;
  const int fd = connect_to(port);
  if (fd < 0) return r;
  std::string head = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  if (!token.empty()) head += "Authorization: Bearer " + token + "\r\n";
  if (!content_type.empty()) head += "Content-Type: " + content_type + "\r\n";
  head += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
  if (!send_all(fd, head.data(), head.size()) || !send_all(fd, body.data(), body.size())) {
    ::close(fd);
    return r;
  }
  r.last_byte_sent = Clock::now();
  std::string in;
  char buf[16384];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    in.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  if (in.size() > 12 && in.rfind("HTTP/1.", 0) == 0) r.status = std::atoi(in.c_str() + 9);
  const auto end = in.find("\r\n\r\n");
  if (end != std::string::npos) r.body = in.substr(end + 4);
  return r;
}

std::optional<json> parse(const std::string& s) {
  auto j = json::parse(s, nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

std::string login(int port, const std::string& user, const std::string& password) {
  auto r = http(port, "POST", "/api/auth/login", "application/json",
                json{{"username", user}, {"password", password}}.dump());
  auto j = parse(r.body);
  if (r.status != 200 || !j || !j->contains("token")) {
    std::fprintf(stderr, "login %s: HTTP %d %s\n", user.c_str(), r.status, r.body.c_str());
    std::exit(2);
  }
  return (*j)["token"].get<std::string>();
}

std::string iso(std::chrono::system_clock::time_point t) {
  const std::time_t s = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&s, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// A minimal WebSocket client (RFC 6455) for one connection: text frames out (masked), text
// frames in, pings answered.
class WsClient {
 public:
  bool open(int port, const std::string& token) {
    fd_ = connect_to(port);
    if (fd_ < 0) return false;
    const std::string req =
        "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: eWlsaWFuLWFsZXJ0LWJlbmNo\r\nSec-WebSocket-Version: 13\r\n\r\n";
    if (!send_all(fd_, req.data(), req.size())) return false;
    while (buf_.find("\r\n\r\n") == std::string::npos) {
      if (!fill()) return false;
    }
    if (buf_.rfind("HTTP/1.1 101", 0) != 0) return false;
    buf_.erase(0, buf_.find("\r\n\r\n") + 4);
    return send_text(json{{"type", "hello"}, {"token", token}}.dump());
  }

  bool send_text(const std::string& text, std::uint8_t opcode = 0x1) {
    std::lock_guard lock(send_mu_);
    std::string f;
    f.push_back(static_cast<char>(0x80 | opcode));
    if (text.size() < 126) {
      f.push_back(static_cast<char>(0x80 | text.size()));
    } else {
      f.push_back(static_cast<char>(0x80 | 126));
      f.push_back(static_cast<char>((text.size() >> 8) & 0xff));
      f.push_back(static_cast<char>(text.size() & 0xff));
    }
    const std::uint32_t key = rng_();
    char mask[4];
    std::memcpy(mask, &key, 4);
    f.append(mask, 4);
    for (std::size_t i = 0; i < text.size(); ++i)
      f.push_back(static_cast<char>(text[i] ^ mask[i % 4]));
    return send_all(fd_, f.data(), f.size());
  }

  // The next text message (fragments joined); nullopt when the connection ends or times out.
  std::optional<std::string> next() {
    std::string message;
    for (;;) {
      if (!need(2)) return std::nullopt;
      const auto b0 = static_cast<std::uint8_t>(buf_[0]), b1 = static_cast<std::uint8_t>(buf_[1]);
      std::size_t header = 2;
      std::uint64_t len = b1 & 0x7f;
      if (len == 126) {
        if (!need(4)) return std::nullopt;
        len = (static_cast<std::uint8_t>(buf_[2]) << 8) | static_cast<std::uint8_t>(buf_[3]);
        header = 4;
      } else if (len == 127) {
        if (!need(10)) return std::nullopt;
        len = 0;
        for (int i = 0; i < 8; ++i) len = (len << 8) | static_cast<std::uint8_t>(buf_[2 + i]);
        header = 10;
      }
      if (len > (64u << 20) || !need(header + len)) return std::nullopt;
      std::string payload = buf_.substr(header, len);
      buf_.erase(0, header + len);
      const int opcode = b0 & 0x0f;
      if (opcode == 0x8) return std::nullopt;  // close
      if (opcode == 0x9) {                     // ping: pong with the same payload
        send_text(payload, 0xA);
        continue;
      }
      if (opcode == 0xA) continue;
      message += payload;
      if (b0 & 0x80) return message;
    }
  }

  void close() {
    if (fd_ >= 0) ::shutdown(fd_, SHUT_RDWR);
  }
  bool closed() const { return closed_; }
  ~WsClient() {
    if (fd_ >= 0) ::close(fd_);
  }

 private:
  bool fill() {
    char b[65536];
    const ssize_t n = ::recv(fd_, b, sizeof b, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
      closed_ = true;
    if (n <= 0) return false;
    buf_.append(b, static_cast<std::size_t>(n));
    return true;
  }
  bool need(std::size_t n) {
    while (buf_.size() < n) {
      if (!fill()) return false;
    }
    return true;
  }

  int fd_ = -1;
  bool closed_ = false;
  std::string buf_;
  std::mutex send_mu_;
  std::mt19937 rng_{20261204};
};

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto i = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"STEMI alert time from an ECG upload to the on-call cardiologist's socket"};
  int port = 0, seconds = 60, per_minute = 50, stemi_every = 2;
  std::string password, label = "run", prefix = "ALERT";
  app.add_option("--port", port)->required();
  app.add_option("--password", password, "of the users doctor, oncall and chief")->required();
  app.add_option("--seconds", seconds, "how long ECGs are posted");
  app.add_option("--per-minute", per_minute, "ECG uploads per minute");
  app.add_option("--stemi-every", stemi_every, "one upload in this many is a suspected STEMI");
  app.add_option("--label", label);
  app.add_option("--prefix", prefix, "patient ID prefix (distinct per run on one hub)");
  CLI11_PARSE(app, argc, argv);
  per_minute = std::max(1, per_minute);
  stemi_every = std::max(1, stemi_every);

  const std::string doctor = login(port, "doctor", password);
  const std::string oncall = login(port, "oncall", password);
  const std::string admin = login(port, "chief", password);
  {
    auto now =
        http(port, "GET", "/api/oncall/now?institution=ta&service=cardiology", "", "", admin);
    auto j = parse(now.body);
    if (now.status != 200 || !j || (*j)["primary"].is_null()) {
      const auto t = std::chrono::system_clock::now();
      json shift = {{"institution", "lead"},
                    {"service", "cardiology"},
                    {"role", "primary"},
                    {"user", "oncall"},
                    {"startsAt", iso(t - std::chrono::hours(1))},
                    {"endsAt", iso(t + std::chrono::hours(24))}};
      auto r = http(port, "POST", "/api/oncall", "application/json", shift.dump(), admin);
      if (r.status != 201) {
        std::fprintf(stderr, "roster: HTTP %d %s\n", r.status, r.body.c_str());
        return 2;
      }
    }
  }

  // The ECGs, made before the clock runs: anterior ST elevation or a normal 12-lead.
  const auto dir =
      std::filesystem::temp_directory_path() / ("yilian-alert-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const int total = std::max(1, seconds * per_minute / 60);
  struct Upload {
    std::string patient, bytes;
    bool stemi = false;
    Clock::time_point sent{};
    int status = 0;
  };
  std::vector<Upload> uploads(static_cast<std::size_t>(total));
  for (int i = 0; i < total; ++i) {
    Upload& u = uploads[static_cast<std::size_t>(i)];
    u.stemi = i % stemi_every == 0;
    u.patient = prefix + "-" + std::to_string(i) + (u.stemi ? "-S" : "-N");
    yilian::ecg::Synthetic s;
    if (u.stemi) {
      for (const char* lead : {"V2", "V3", "V4"}) {
        yilian::ecg::LeadShape shape;
        shape.st = 0.35;
        s.leads[lead] = shape;
      }
    }
    auto rec = yilian::ecg::make_ecg(s);
    rec.patient = {60, 'M'};
    yilian::ecg::DicomEcgIdentity id{u.patient,
                                     "Bench^Patient",
                                     yilian::testing::new_uid(),
                                     yilian::testing::new_uid(),
                                     yilian::testing::new_uid(),
                                     "20261204",
                                     "081500",
                                     "Township A"};
    const auto file = dir / (u.patient + ".dcm");
    if (auto st = yilian::ecg::write_dicom_waveform(rec, id, file); !st) {
      std::fprintf(stderr, "ECG: %s\n", st.error().message.c_str());
      return 2;
    }
    std::ifstream in(file, std::ios::binary);
    u.bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  std::filesystem::remove_all(dir);

  // The cardiologist's socket: alerts by patient, each acknowledged.
  WsClient ws;
  if (!ws.open(port, oncall)) {
    std::fprintf(stderr, "no /ws connection\n");
    return 2;
  }
  std::mutex mu;
  std::map<std::string, Clock::time_point> alerted;
  std::atomic<bool> stop{false};
  std::thread reader([&] {
    while (!stop) {
      auto m = ws.next();
      if (!m) {
        if (stop || ws.closed()) break;
        continue;  // a quiet spell past the receive timeout
      }
      const auto at = Clock::now();
      auto j = parse(*m);
      if (!j || j->value("type", "") != "notification" || j->value("kind", "") != "alert") continue;
      const auto& p = (*j)["payload"];
      if (p.value("stage", "") != "on_call") continue;
      {
        std::lock_guard lock(mu);
        alerted.emplace(p["patient"].value("id", ""), at);
      }
      ws.send_text(json{{"type", "case.ack"}, {"case", p["case"]}}.dump());
    }
  });

  const auto interval = std::chrono::microseconds(60'000'000 / per_minute);
  const auto start = Clock::now();
  int failed = 0;
  for (int i = 0; i < total; ++i) {
    std::this_thread::sleep_until(start + i * interval);
    Upload& u = uploads[static_cast<std::size_t>(i)];
    auto r = http(port, "POST", "/api/ecg", "application/dicom", u.bytes, doctor);
    u.sent = r.last_byte_sent;
    u.status = r.status;
    if (r.status != 201) {
      ++failed;
      std::fprintf(stderr, "upload %s: HTTP %d %s\n", u.patient.c_str(), r.status,
                   r.body.substr(0, 200).c_str());
    }
  }
  // The last alerts (bounded wait).
  auto expected = [&] {
    int n = 0;
    for (const auto& u : uploads) n += u.stemi && u.status == 201;
    return n;
  };
  for (auto until = Clock::now() + std::chrono::seconds(10); Clock::now() < until;) {
    {
      std::lock_guard lock(mu);
      if (static_cast<int>(alerted.size()) >= expected()) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  stop = true;
  ws.close();
  reader.join();

  std::vector<double> ms;
  int missed = 0, unexpected = 0;
  {
    std::lock_guard lock(mu);
    for (const auto& u : uploads) {
      auto it = alerted.find(u.patient);
      if (!u.stemi) {
        unexpected += it != alerted.end();
        continue;
      }
      if (u.status != 201) continue;
      if (it == alerted.end()) {
        ++missed;
        continue;
      }
      ms.push_back(std::chrono::duration<double, std::milli>(it->second - u.sent).count());
    }
  }
  json out = {{"label", label},
              {"uploads", total},
              {"perMinute", per_minute},
              {"failedUploads", failed},
              {"stemi", expected()},
              {"alerts", ms.size()},
              {"missed", missed},
              {"unexpected", unexpected},
              {"p50_ms", percentile(ms, 0.5)},
              {"p99_ms", percentile(ms, 0.99)},
              {"max_ms", percentile(ms, 1.0)}};
  std::printf("%s\n", out.dump().c_str());
  return failed == 0 && missed == 0 && unexpected == 0 ? 0 : 1;
}
