#include "yilian/pacs/dicom_server.h"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmnet/assoc.h>
#include <dcmtk/dcmnet/diutil.h>
#include <dcmtk/dcmnet/scpthrd.h>
#include <dcmtk/oflog/oflog.h>
#include <dcmtk/oflog/spi/filter.h>
#include <dcmtk/oflog/spi/logevent.h>

#include "association.h"

#include <spdlog/spdlog.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>

namespace yilian::pacs {

namespace {

namespace log4 = dcmtk::log4cplus;

class MetaInDataSetFilter : public log4::spi::Filter {
 public:
  log4::spi::FilterResult decide(const log4::spi::InternalLoggingEvent& event) const override {
    return std::strstr(event.getMessage().c_str(), "Invalid Element (0002,") ? log4::spi::DENY
                                                                             : log4::spi::NEUTRAL;
  }
};

}  // namespace

void configure_dcmtk_logging() {
  OFLog::configure(OFLogger::WARN_LOG_LEVEL);
  log4::SharedAppenderPtrList appenders = log4::Logger::getRoot().getAllAppenders();
  for (auto& appender : appenders) {
    log4::spi::FilterPtr filter(new MetaInDataSetFilter);
    if (log4::spi::FilterPtr existing = appender->getFilter()) {
      existing->appendFilter(filter);
    } else {
      appender->setFilter(filter);
    }
  }
}

std::string normalize_ae_title(const std::string& ae) {
  std::size_t b = ae.find_first_not_of(' ');
  if (b == std::string::npos) return {};
  std::size_t e = ae.find_last_not_of(' ');
  return ae.substr(b, e - b + 1);
}

void AeDirectory::add(const std::string& ae_title, std::int64_t institution_id) {
  entries_.emplace_back(normalize_ae_title(ae_title), institution_id);
}

void AeDirectory::name_institution(std::int64_t institution_id, std::string code) {
  codes_.emplace_back(institution_id, std::move(code));
}

std::string AeDirectory::institution_code(std::int64_t institution_id) const {
  for (const auto& [id, code] : codes_) {
    if (id == institution_id) return code;
  }
  return std::to_string(institution_id);
}

void AeDirectory::set_text_decoding(const std::string& ae_title, TextDecoding decoding) {
  text_.emplace_back(normalize_ae_title(ae_title), std::move(decoding));
}

TextDecoding AeDirectory::text_decoding(const std::string& ae_title) const {
  std::string ae = normalize_ae_title(ae_title);
  for (const auto& [title, t] : text_) {
    if (title == ae) return t;
  }
  return default_text_;
}

void AeDirectory::add_peer(const std::string& ae_title, DicomPeer peer) {
  peers_.emplace_back(normalize_ae_title(ae_title), std::move(peer));
}

const DicomPeer* AeDirectory::peer(const std::string& ae_title) const {
  std::string ae = normalize_ae_title(ae_title);
  for (const auto& [title, p] : peers_) {
    if (title == ae) return &p;
  }
  return nullptr;
}

std::optional<std::int64_t> AeDirectory::resolve(const std::string& ae_title) const {
  std::string ae = normalize_ae_title(ae_title);
  for (const auto& [title, id] : entries_) {
    if (title == ae) return id;
  }
  if (reject_unknown_) return std::nullopt;
  return unknown_;
}

// Connections are gated before DCMTK sees them. DCMTK reads an association request with a
// blocking read on the thread that accepted the connection, so a silent socket would hold
// the only accept thread for the whole ACSE timeout. Here one gate thread accepts every
// connection itself, caps them per address and in total, and waits (poll, no thread per
// socket) until the A-ASSOCIATE-RQ PDU has arrived whole; silent or non-DICOM connections
// are closed at their deadline without delaying anyone else. Only then does a worker hand
// the socket to DCMTK (dcmExternalSocketHandle, under a lock held while DCMTK parses bytes
// that are already buffered) and serve the association.
struct DicomServer::Impl {
  // A connection that has not yet sent its whole association request.
  struct Pending {
    int fd = -1;
    std::string address;
    std::chrono::steady_clock::time_point deadline;
  };
  struct Ready {
    int fd = -1;
    std::string address;
  };

  DicomServerOptions options;
  association_detail::Shared shared;
  DcmSharedSCPConfig config;
  T_ASC_Network* net = nullptr;
  int listen_fd = -1;
  std::uint16_t bound_port = 0;

  std::atomic<bool> stop{false};
  std::thread gate;
  std::vector<std::thread> workers;

  mutable std::mutex mu;
  std::condition_variable cv;
  std::deque<Ready> waiting;                    // guarded by mu
  std::map<std::string, unsigned> per_address;  // open connections by address; guarded by mu
  unsigned open_connections = 0;                // pending, waiting and served; guarded by mu
  DicomServerCounters counters;                 // guarded by mu
  std::mutex negotiate_mu;                      // dcmExternalSocketHandle is process-wide

  void release(const std::string& address) {
    std::lock_guard lock(mu);
    if (open_connections > 0) --open_connections;
    auto it = per_address.find(address);
    if (it != per_address.end() && --it->second == 0) per_address.erase(it);
  }

  void close_connection(int fd, const std::string& address) {
    ::close(fd);
    release(address);
  }

  // Takes every connection waiting on the listening socket.
  void accept_all(std::vector<Pending>& pending) {
    while (true) {
      sockaddr_storage from{};
      socklen_t len = sizeof from;
      int fd = ::accept4(listen_fd, reinterpret_cast<sockaddr*>(&from), &len,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;  // EAGAIN, or a connection that went away meanwhile
      char host[INET6_ADDRSTRLEN] = "";
      if (from.ss_family == AF_INET) {
        ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&from)->sin_addr, host, sizeof host);
      } else if (from.ss_family == AF_INET6) {
        ::inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&from)->sin6_addr, host,
                    sizeof host);
      }
      std::string address = host;
      bool admitted = false;
      {
        std::lock_guard lock(mu);
        unsigned& mine = per_address[address];
        if (open_connections < options.max_connections &&
            mine < options.max_connections_per_address) {
          ++mine;
          ++open_connections;
          admitted = true;
        } else {
          if (mine == 0) per_address.erase(address);
          ++counters.refused;
        }
      }
      if (!admitted) {
        spdlog::warn("DICOM: connection from {} refused: too many open connections", address);
        ::close(fd);
        continue;
      }
      pending.push_back(
          Pending{fd, std::move(address),
                  std::chrono::steady_clock::now() + std::chrono::seconds(options.acse_timeout_s)});
    }
  }

  // 1: the whole association request is buffered; 0: not yet; -1: close the connection.
  static int request_state(int fd) {
    unsigned char h[6];
    ssize_t n = ::recv(fd, h, sizeof h, MSG_PEEK);
    if (n == 0) return -1;  // closed by the peer
    if (n < 0) return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : -1;
    if (h[0] != 0x01) return -1;  // not an A-ASSOCIATE-RQ: not a DICOM requester
    if (n < 6) return 0;
    const std::uint32_t length =
        std::uint32_t{h[2]} << 24 | std::uint32_t{h[3]} << 16 | std::uint32_t{h[4]} << 8 | h[5];
    if (length > association_detail::kMaxAssociateRequest) return -1;
    int available = 0;
    if (::ioctl(fd, FIONREAD, &available) != 0) return -1;
    // A large request may not fit the socket buffer whole; its first 64 KiB must be there.
    const std::uint64_t needed = std::min<std::uint64_t>(6 + std::uint64_t{length}, 65536);
    return static_cast<std::uint64_t>(available) >= needed ? 1 : 0;
  }

  void gate_loop() {
    std::vector<Pending> pending;
    std::vector<pollfd> fds;
    while (!stop.load()) {
      fds.clear();
      fds.push_back(pollfd{listen_fd, POLLIN, 0});
      for (const Pending& p : pending) fds.push_back(pollfd{p.fd, POLLIN, 0});
      int n = ::poll(fds.data(), fds.size(), 200);
      if (n < 0 && errno != EINTR) {
        spdlog::error("DICOM: poll failed: {}", std::strerror(errno));
        break;
      }
      const auto now = std::chrono::steady_clock::now();
      std::vector<Pending> still;
      for (std::size_t i = 0; i < pending.size(); ++i) {
        Pending& p = pending[i];
        const short ev = fds[i + 1].revents;
        int state = 0;
        if (ev & (POLLIN | POLLERR | POLLHUP)) state = request_state(p.fd);
        if (state == 0 && now >= p.deadline) state = -1;  // silent, or too slow
        if (state < 0) {
          close_connection(p.fd, p.address);
        } else if (state > 0) {
          {
            std::lock_guard lock(mu);
            waiting.push_back(Ready{p.fd, std::move(p.address)});
          }
          cv.notify_one();
        } else {
          still.push_back(std::move(p));
        }
      }
      pending = std::move(still);
      if (fds[0].revents & POLLIN) accept_all(pending);
    }
    for (Pending& p : pending) close_connection(p.fd, p.address);
  }

  // Hands the socket to DCMTK, which reads the buffered association request.
  T_ASC_Association* negotiate(int fd) {
    std::lock_guard lock(negotiate_mu);
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) != 0) {
      ::close(fd);  // DCMTK would fail before taking the socket over
      return nullptr;
    }
    // DCMTK reads the socket in blocking mode.
    int flags = ::fcntl(fd, F_GETFL);
    if (flags >= 0) (void)::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    dcmExternalSocketHandle.set(fd);
    T_ASC_Association* assoc = nullptr;
    OFCondition cond = ASC_receiveAssociation(net, &assoc, static_cast<int>(options.max_pdu));
    dcmExternalSocketHandle.set(-1);
    if (cond.bad()) {
      if (assoc) {
        ASC_dropAssociation(assoc);
        ASC_destroyAssociation(&assoc);
      }
      return nullptr;
    }
    return assoc;
  }

  void worker_loop() {
    while (true) {
      Ready next;
      {
        std::unique_lock lock(mu);
        cv.wait(lock, [this] { return stop.load() || !waiting.empty(); });
        if (waiting.empty()) return;  // stopping and nothing left
        next = std::move(waiting.front());
        waiting.pop_front();
        if (stop.load()) {
          lock.unlock();
          close_connection(next.fd, next.address);
          continue;
        }
        ++counters.associations;
      }
      if (T_ASC_Association* assoc = negotiate(next.fd)) {
        association_detail::Association scp(shared, assoc);
        scp.setSharedConfig(config);
        (void)scp.run(assoc);  // negotiates, serves, then drops and destroys the association
        scp.audit_association();
      }
      release(next.address);
    }
  }

  Status listen_on(std::uint16_t port) {
    listen_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (listen_fd < 0) return make_error(Errc::unavailable, "cannot create a DICOM socket");
    int one = 1;
    (void)::setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    a.sin_port = htons(port);
    socklen_t len = sizeof a;
    if (::bind(listen_fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(listen_fd, 128) != 0 ||
        ::getsockname(listen_fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      std::string why = std::strerror(errno);
      ::close(listen_fd);
      listen_fd = -1;
      return make_error(Errc::unavailable,
                        "cannot listen for DICOM on port " + std::to_string(port) + ": " + why);
    }
    bound_port = ntohs(a.sin_port);
    return Status::Ok();
  }
};

DicomServer::DicomServer(DicomServerOptions options, Ingestor& ingestor, const AeDirectory& aes,
                         identity::Auditor* auditor)
    : impl_(std::make_unique<Impl>()) {
  impl_->shared.auditor = auditor;
  impl_->options = std::move(options);
  impl_->shared.ingestor = &ingestor;
  // The caller owns `aes`: it outlives the server.
  impl_->shared.aes = std::shared_ptr<const AeDirectory>(&aes, [](const AeDirectory*) {});
}

void DicomServer::set_directory(std::shared_ptr<const AeDirectory> aes) {
  std::lock_guard lock(impl_->shared.directory_mu);
  impl_->shared.aes = std::move(aes);
}

DicomServer::~DicomServer() { stop(); }

Status DicomServer::start() {
  Impl& m = *impl_;
  m.shared.ae_title = m.options.ae_title;
  m.shared.max_pdu = m.options.max_pdu;
  m.shared.dimse_timeout_s = m.options.dimse_timeout_s;
  DcmSCPConfig cfg;
  cfg.setAETitle(m.options.ae_title.c_str());
  cfg.setRespondWithCalledAETitle(OFTrue);  // accept whatever AE title the SCU calls
  cfg.setMaxReceivePDULength(m.options.max_pdu);
  cfg.setACSETimeout(m.options.acse_timeout_s);
  cfg.setDIMSEBlockingMode(DIMSE_NONBLOCKING);
  cfg.setDIMSETimeout(m.options.dimse_timeout_s);
  cfg.setHostLookupEnabled(OFFalse);
  cfg.setProgressNotificationMode(OFTrue);  // drives early writeback of received files
  m.config = DcmSharedSCPConfig(cfg);

  if (Status st = m.listen_on(m.options.port); !st) return st;
  // An acceptor network without a listening socket of its own: while the external socket
  // handle is set, DCMTK creates none; associations arrive through negotiate().
  OFCondition cond;
  {
    std::lock_guard lock(m.negotiate_mu);
    dcmExternalSocketHandle.set(m.listen_fd);
    cond = ASC_initializeNetwork(NET_ACCEPTOR, m.bound_port,
                                 static_cast<int>(m.options.acse_timeout_s), &m.net);
    dcmExternalSocketHandle.set(-1);
  }
  if (cond.bad()) {
    ::close(m.listen_fd);
    m.listen_fd = -1;
    return make_error(Errc::unavailable,
                      std::string("cannot initialise the DICOM network: ") + cond.text());
  }
  unsigned n = std::max(1u, m.options.max_associations);
  for (unsigned i = 0; i < n; ++i) m.workers.emplace_back([&m] { m.worker_loop(); });
  m.gate = std::thread([&m] { m.gate_loop(); });
  return Status::Ok();
}

void DicomServer::enable_query_retrieve(pacs::Index& index, identity::Accounts& accounts,
                                        storage::Clock clock) {
  impl_->shared.qr =
      std::make_unique<QueryRetrieve>(index, std::move(clock), impl_->options.max_find_matches);
  impl_->shared.accounts = &accounts;
}

void DicomServer::stop() {
  Impl& m = *impl_;
  if (m.stop.exchange(true)) return;
  if (m.gate.joinable()) m.gate.join();
  m.cv.notify_all();
  for (std::thread& t : m.workers) t.join();
  m.workers.clear();
  if (m.net) ASC_dropNetwork(&m.net);
  if (m.listen_fd >= 0) ::close(m.listen_fd);
  m.listen_fd = -1;
}

std::uint16_t DicomServer::port() const { return impl_->bound_port; }

DicomServerCounters DicomServer::counters() const {
  std::lock_guard lock(impl_->mu);
  return impl_->counters;
}

}  // namespace yilian::pacs
