// DICOM upper-layer service: C-ECHO and C-STORE SCP for every storage SOP class; with
// query/retrieve enabled also C-FIND (patient and study root, every level), C-MOVE to the
// configured peers and C-GET, each limited to what the calling node may see.
//
// One gate thread accepts connections, caps them per address and in total, and waits
// without blocking until each has sent its association request (a silent or non-DICOM
// connection is closed at the ACSE timeout and delays nobody); a fixed pool of worker threads
// then negotiates and runs one association at a time, feeding received objects to the
// Ingestor.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "yilian/common/result.h"
#include "yilian/identity/accounts.h"
#include "yilian/identity/audit.h"
#include "yilian/pacs/index.h"
#include "yilian/pacs/ingest.h"
#include "yilian/storage/clock.h"

namespace yilian::pacs {

// A configured DICOM node: where C-MOVE sends to (host and port), and the roles it queries
// and retrieves with, as a user of its institution would.
struct DicomPeer {
  std::string host;
  std::uint16_t port = 0;  // 0: not a move destination
  std::uint32_t roles = 0;
};

// Calling AE title -> member institution. Decides who may connect.
class AeDirectory {
 public:
  AeDirectory(std::int64_t unknown_institution, bool reject_unknown)
      : unknown_(unknown_institution), reject_unknown_(reject_unknown) {}

  void add(const std::string& ae_title, std::int64_t institution_id);
  // The institution code used in audit records.
  void name_institution(std::int64_t institution_id, std::string code);
  std::string institution_code(std::int64_t institution_id) const;
  // The institution for `ae_title`; the unknown institution, or nullopt when unknown AEs
  // are refused.
  std::optional<std::int64_t> resolve(const std::string& ae_title) const;
  std::int64_t unknown_institution() const { return unknown_; }

  // How text from `ae_title` is decoded (charset.h); `fallback` for AEs without their own.
  void set_text_decoding(const std::string& ae_title, TextDecoding decoding);
  void set_default_text_decoding(TextDecoding decoding) { default_text_ = std::move(decoding); }
  TextDecoding text_decoding(const std::string& ae_title) const;

  void add_peer(const std::string& ae_title, DicomPeer peer);
  // The peer configured under `ae_title`, if any.
  const DicomPeer* peer(const std::string& ae_title) const;

 private:
  std::vector<std::pair<std::string, DicomPeer>> peers_;
  std::vector<std::pair<std::string, TextDecoding>> text_;
  TextDecoding default_text_;
  std::vector<std::pair<std::string, std::int64_t>> entries_;
  std::vector<std::pair<std::int64_t, std::string>> codes_;
  std::int64_t unknown_;
  bool reject_unknown_;
};

// AE titles compare without their space padding and case-sensitively, as DICOM says.
std::string normalize_ae_title(const std::string& ae);

// DCMTK's log for the whole process: warnings and errors only (it logs every association at
// INFO), without the warning for File Meta elements inside a data set (some workstations put
// group 0002 keys in C-FIND identifiers; they are ignored).
void configure_dcmtk_logging();

struct DicomServerOptions {
  std::uint16_t port = 11112;
  std::string ae_title = "YILIAN";
  unsigned max_associations = 16;  // worker threads
  std::uint32_t max_pdu = 131072;  // DCMTK's upper bound (ASC_MAXIMUMPDUSIZE)
  // A connection must have sent its whole association request within this; silent ones are
  // closed without holding anyone else up.
  std::uint32_t acse_timeout_s = 10;
  unsigned max_connections = 256;             // open connections in all
  unsigned max_connections_per_address = 32;  // from one IP address
  std::uint32_t dimse_timeout_s = 60;
  // C-FIND answers at most this many matches; past it the answer ends with "matching
  // terminated" (0xFE00) instead of success.
  std::uint32_t max_find_matches = 5000;
};

struct DicomServerCounters {
  std::uint64_t associations = 0, refused = 0;
};

class DicomServer {
 public:
  // `auditor` records refused associations and, per association and study, what was
  // stored; it may be null (tools that need no audit).
  DicomServer(DicomServerOptions options, Ingestor& ingestor, const AeDirectory& aes,
              identity::Auditor* auditor);
  ~DicomServer();
  DicomServer(const DicomServer&) = delete;
  DicomServer& operator=(const DicomServer&) = delete;

  // Serves C-FIND, C-MOVE and C-GET from `index`; `accounts` gives each node's view (its
  // institution's reading services). Call before start().
  void enable_query_retrieve(pacs::Index& index, identity::Accounts& accounts,
                             storage::Clock clock);

  // Replaces the AE directory (an institution's AE titles or character set changed); new
  // associations use it, running ones finish with the one they started with.
  void set_directory(std::shared_ptr<const AeDirectory> aes);

  // Opens the port and starts the threads. Fails if the port cannot be bound. Port 0 takes a
  // free port; port() tells which.
  Status start();
  std::uint16_t port() const;
  // Stops accepting; in-flight associations finish (bounded by the DIMSE timeout).
  void stop();

  DicomServerCounters counters() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace yilian::pacs
