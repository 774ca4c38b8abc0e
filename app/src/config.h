// Hub configuration: a TOML file, overridden by command-line flags.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "yilian/common/result.h"
#include "yilian/lab/results.h"
#include "yilian/reading/queue_rules.h"
#include "yilian/teleconsult/calls.h"

namespace yilian::app {

struct InstitutionConfig {
  std::string code;
  std::string name;
  std::vector<std::string> ae_titles;
  std::string level = "township";  // lead, county, community, township, village, office
  std::string parent;              // code of the parent institution in the consortium
};

// `provider` reads `service` ("imaging" or "ecg") for each of `clients`.
struct ReadingServiceConfig {
  std::string provider;
  std::string service;
  std::vector<std::string> clients;
};

// Another DICOM node: a move destination when it has a host and port, and the roles its AE
// title queries and retrieves with (as a user of the AE's institution would).
struct DicomPeerConfig {
  std::string ae_title;
  std::string host;
  std::uint16_t port = 0;
  std::uint32_t roles = 0;  // bit (1 << Role); township_doctor when not set
};

// A DICOM sender's text: the character set of a device that declares none (or, with
// override_declared_charset, one that declares a wrong one).
struct SenderConfig {
  std::string ae_title;
  std::string charset;
  bool override_declared_charset = false;
};

struct Config {
  std::uint16_t dicom_port = 11112;
  std::string ae_title = "YILIAN";
  unsigned max_associations = 16;
  bool reject_unknown_ae = false;
  std::uint32_t dimse_timeout_s = 60;
  std::uint32_t max_find_matches = 5000;      // C-FIND matches per answer
  std::uint32_t acse_timeout_s = 10;          // a connection must open its association within this
  std::uint32_t max_dicom_connections = 256;  // open, negotiating or serving
  std::uint32_t max_dicom_connections_per_address = 32;  // from one IP address
  std::string default_charset = "GB18030";  // text of senders that declare no character set
  std::vector<SenderConfig> senders;
  std::uint16_t http_port = 8080;
  std::string http_bind;
  std::string tls_cert;  // PEM files; both set: HTTP and WebSocket are served over TLS
  std::string tls_key;
  std::vector<std::string> cors_origins;      // e.g. ["https://viewer.example.org"] or ["*"]
  std::uint16_t ws_ping_after_idle_s = 30;    // a silent WebSocket is pinged...
  std::uint16_t ws_hangup_after_idle_s = 75;  // ...and closed when nothing answers
  // [limits]: what one client may hold at once (0: no limit); docs/API.md "Limits".
  std::uint32_t ws_connections_per_user = 16;
  std::uint32_t ws_connections_per_address = 1000;
  std::uint32_t ws_messages_per_second = 50;  // a shared viewer's driver scrolls at ~30/s
  std::uint32_t ws_message_burst = 200;
  // Of the HTTP server's 4 workers, one user holds at most these at once.
  std::uint32_t renders_per_user = 3;     // rendered frames, thumbnails, cine, ECG images at once
  std::uint32_t uploads_per_user = 2;     // STOW-RS and ECG uploads at once
  std::uint32_t max_body_megabytes = 64;  // an HTTP request body, kept in memory
  std::uint32_t max_stow_megabytes = 16384;  // a STOW-RS body, kept in a file as it arrives
  // [emergency]: an on-call alert not acknowledged within this escalates (emergency_rules.h).
  std::uint32_t alert_escalation_s = 60;
  // [emergency.targets]: "kind.interval" -> minutes, in place of the defaults.
  std::map<std::string, int> emergency_targets;
  // [edge]: an edge node's unfinished upload untouched for this long is dropped at the hub (its
  // bytes freed); the edge sends that bundle again whole.
  std::uint32_t edge_upload_expiry_h = 168;
  // [lab]: laboratory systems' HL7 v2 over MLLP (2575, the registered HL7 port), and the
  // recognition rules, laboratory qualifications and local code map (lab/results.h).
  std::uint16_t mllp_port = 2575;
  std::string mllp_bind = "0.0.0.0";
  lab::LabOptions lab;
  // [calls]: STUN and TURN servers for consult video calls (teleconsult/calls.h).
  teleconsult::CallOptions calls;
  std::string web_root;   // the built web front end; empty: `web` beside the executable
  std::string ohif_root;  // the installed advanced viewer; empty: `ohif` beside the web root
  std::vector<DicomPeerConfig> dicom_peers;
  // Disk space the data directory's file system keeps free: below it new stores are refused
  // (0xA700, HTTP 507) while reads, reports and chat go on; 0: none.
  std::uint64_t reserve_megabytes = 1024;
  std::uint64_t cache_max_megabytes = 2048;  // rendered frames, cine videos, metadata
  std::vector<InstitutionConfig> institutions;
  std::vector<ReadingServiceConfig> reading_services;
  // [auth]
  std::uint32_t token_ttl_minutes = 12 * 60;
  std::uint32_t viewer_ttl_minutes = 4 * 60;  // the advanced viewer's cookie (identity/auth.h)
  // Cookies carry Secure; always so when the hub serves TLS itself, set it behind a TLS proxy.
  bool secure_cookies = false;
  std::string admin_username = "admin";
  std::string admin_institution = "consortium";  // created as level "office" if missing
  std::string admin_password_file;  // first start only; else a one-time password is printed
  // [queue]
  reading::QueueRules queue;
  std::set<std::string> queue_file_keys;  // the [queue] keys the file sets
  std::string national_id_issuer;  // Issuer of Patient ID that identifies a person everywhere
  // [database]: empty keeps the index and audit trail in SQLite files under --data.
  std::string database_url;  // postgresql://...
  // [cluster]: several nodes on one PostgreSQL database.
  std::string shared_blobs;  // the blob directory every node shares (NFS, CephFS); empty: --data
  std::string node_address;  // how peers and operators reach this node (shown in /healthz)
};

// Reads a config file. Unknown keys are errors, so a typo never silently changes nothing.
Result<Config> load_config(const std::filesystem::path& file);
Result<Config> parse_config(std::string_view toml_text);

}  // namespace yilian::app
