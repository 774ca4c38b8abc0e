#include "edge_cli.h"

#include <curl/curl.h>
#include <signal.h>

#include <spdlog/spdlog.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>

#include "config.h"
#include "data_dir.h"
#include "edge_page.h"
#include "yilian/common/text.h"
#include "yilian/ecg/service/rest.h"
#include "yilian/edge/node.h"
#include "yilian/identity/auth.h"
#include "yilian/identity/policy.h"
#include "yilian/identity/rest.h"
#include "yilian/net/http_server.h"
#include "yilian/net/json_body.h"
#include "yilian/pacs/charset.h"
#include "yilian/pacs/dicom_server.h"
#include "yilian/pacs/dicomweb.h"
#include "yilian/pacs/ingest.h"
#include "yilian/reading/queue_store.h"
#include "yilian/storage/disk_cache.h"

namespace yilian::app {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

int fail(const Error& e) {
  spdlog::error("{}", e.message);
  return 1;
}

std::string first_line(const fs::path& file) {
  std::ifstream in(file);
  std::string line;
  std::getline(in, line);
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
  return line;
}

json status_json(const edge::EdgeStatus& s) {
  return json{
      {"link", s.link_up ? "up" : "down"},
      {"lastError", s.last_error},
      {"institution", s.institution},
      {"queued", s.queued},
      {"inBundles", s.in_bundles},
      {"sent", s.sent},
      {"failed", s.failed},
      {"bundlesSent", s.bundles_sent},
      {"bytesSent", s.bytes_sent},
      {"resumes", s.resumes},
      {"preempted", s.preempted},
      {"bytesPerSecond", s.bytes_per_second},
      {"priorityRules", s.rules_from_hub ? "hub" : "config"},
      {"routine",
       {{"held", s.routine_cap.held}, {"capKbps", s.routine_cap.bytes_per_second * 8 / 1000}}},
      {"current", s.current_study.empty()
                      ? json(nullptr)
                      : json{{"study", s.current_study},
                             {"priority", s.current_priority == 0 ? "stat" : "routine"},
                             {"offset", s.current_offset},
                             {"length", s.current_length}}}};
}

json queue_json(const std::vector<edge::StudyProgress>& studies) {
  json list = json::array();
  for (const edge::StudyProgress& p : studies) {
    const char* state = p.failed > 0 && p.sent + p.failed == p.instances ? "failed"
                        : p.sent == p.instances                ? (p.complete ? "complete" : "sent")
                        : p.sent > 0 || p.bytes_left < p.bytes ? "sending"
                                                               : "queued";
    list.push_back(json{{"study", p.study_uid},
                        {"priority", p.priority == 0 ? "stat" : "routine"},
                        {"modalities", p.modalities},
                        {"description", p.description},
                        {"studyDate", p.study_date},
                        {"studyTime", p.study_time},
                        {"instances", p.instances},
                        {"sent", p.sent},
                        {"failed", p.failed},
                        {"bytes", p.bytes},
                        {"bytesLeft", p.bytes_left},
                        {"queuedAt", p.queued_at},
                        {"sentAt", p.sent_at.empty() ? json(nullptr) : json(p.sent_at)},
                        {"state", state},
                        {"etaSeconds", p.eta_seconds},
                        {"failures", p.failures}});
  }
  return json{{"studies", list}};
}

json inbox_json(const std::vector<edge::InboxItem>& items, const std::string& last_sync) {
  json list = json::array();
  for (const edge::InboxItem& i : items) {
    const json patient{{"id", i.patient_id}, {"name", i.patient_name}};
    if (i.kind == "consult" || i.kind == "referral") {
      json j{{"kind", i.kind},     {"id", i.hub_id},       {"patient", patient},
             {"status", i.status}, {"urgency", i.urgency}, {"updatedAt", i.created_at}};
      if (i.kind == "consult") {
        j["specialty"] = i.description;
        j["question"] = i.findings;
        j["opinion"] = i.impression;
        j["specialist"] = i.author;
      } else {
        j["direction"] = i.description;
        j["reason"] = i.findings;
        j["answer"] = i.impression;
        j["otherInstitution"] = i.author;
        j["slotDate"] = i.slot_date;
        j["dischargeSummary"] = i.discharge_summary;
        j["followUpPlan"] = i.follow_up_plan;
      }
      list.push_back(std::move(j));
      continue;
    }
    json j{{"kind", i.kind},
           {"id", i.hub_id},
           {"studyInstanceUid", i.study_uid},
           {"patient", patient},
           {"modalities", i.modalities},
           {"impression", i.impression},
           {"createdAt", i.created_at}};
    if (i.kind == "report") {
      j["description"] = i.description;
      j["studyDate"] = i.study_date;
      j["reportKind"] = i.report_kind;
      j["findings"] = i.findings;
      j["critical"] = i.critical;
      j["author"] = i.author;
    } else {
      j["acknowledgedBy"] = i.acknowledged_by.empty() ? json(nullptr) : json(i.acknowledged_by);
      j["acknowledgedAt"] = i.acknowledged_at.empty() ? json(nullptr) : json(i.acknowledged_at);
      j["sentToHub"] = !i.ack_pending;
    }
    list.push_back(std::move(j));
  }
  return json{{"items", list}, {"lastSync", last_sync.empty() ? json(nullptr) : json(last_sync)}};
}

int run_edge(const EdgeFlags& f) {
  Config cfg;
  if (!f.config.empty()) {
    auto loaded = load_config(f.config);
    if (!loaded.ok()) return fail(loaded.error());
    cfg = std::move(loaded).value();
  }
  if (f.dicom_port >= 0) cfg.dicom_port = static_cast<std::uint16_t>(f.dicom_port);
  if (f.http_port >= 0) cfg.http_port = static_cast<std::uint16_t>(f.http_port);
  if (!f.aet.empty()) cfg.ae_title = f.aet;
  const std::string credential = first_line(f.credential_file);
  if (credential.empty()) {
    return fail(make_error(Errc::invalid_argument,
                           "no edge credential in " + f.credential_file +
                               " (issue one at the hub: yilian edge-credential issue)"));
  }
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  curl_global_init(CURL_GLOBAL_DEFAULT);

  auto data = DataDir::open(f.data, "", "");
  if (!data.ok()) return fail(data.error());
  DataDir& dd = **data;
  // Every modality of the clinic stores to the edge, filed here under one local institution;
  // the hub files what the edge sends under the edge's own institution.
  auto local = dd.index().ensure_institution(edge::kLocalInstitution, "this clinic");
  if (!local.ok()) return fail(local.error());
  pacs::AeDirectory aes(local->id, false);
  aes.set_default_text_decoding(pacs::TextDecoding{cfg.default_charset, false});

  edge::EdgeOptions options;
  options.hub_url = f.hub;
  options.credential = credential;
  options.hub_ca_file = f.hub_ca;
  options.outbox_dir = f.data / "outbox";
  options.routine_bytes_per_second = f.routine_kbps * 1000 / 8;
  auto schedule = edge::parse_routine_schedule(f.routine_schedule);
  if (!schedule.ok()) return fail(schedule.error());
  options.routine_schedule = std::move(*schedule);
  options.chunk_bytes = std::max<std::uint64_t>(16, f.chunk_kb) << 10;
  options.max_chunk_bytes = std::max<std::uint64_t>(16, f.max_chunk_kb) << 10;
  options.bundle_bytes = std::max<std::uint64_t>(64, f.bundle_kb) << 10;
  options.rules = cfg.queue;
  if (f.stable_s >= 0) options.stable = std::chrono::seconds(f.stable_s);
  options.sync_period = std::chrono::milliseconds(static_cast<std::int64_t>(f.sync_s * 1000));
  options.accounts = &dd.accounts();
  options.keep_days = f.keep_days;
  // Priors pulled from the hub are stored as the clinic's, like its modalities' objects.
  pacs::Ingestor* ingest_into = nullptr;  // set below, before the node starts its threads
  const pacs::Sender prior_sender{"", local->id, {}};
  options.ingest = [&ingest_into, prior_sender](std::string_view bytes) {
    return ingest_into->ingest_bytes(bytes, prior_sender);
  };
  edge::EdgeNode node(dd.database(), dd.index(), dd.blobs(), options);

  pacs::Ingestor::Options ingest_options;
  ingest_options.reserve_bytes = cfg.reserve_megabytes << 20;
  ingest_options.on_committed = [&node](const std::vector<std::string>& studies) {
    node.studies_committed(studies);
  };
  ingest_options.text = pacs::TextDecoding{cfg.default_charset, false};
  pacs::Ingestor ingestor(dd.index(), dd.blobs(), ingest_options);
  ingest_into = &ingestor;
  auto report = ingestor.recover();
  if (!report.ok()) return fail(report.error());
  if (Status s = node.start(); !s) return fail(s.error());

  pacs::DicomServerOptions dopts;
  dopts.port = cfg.dicom_port;
  dopts.ae_title = cfg.ae_title;
  dopts.max_associations = cfg.max_associations;
  dopts.dimse_timeout_s = cfg.dimse_timeout_s;
  dopts.acse_timeout_s = cfg.acse_timeout_s;
  pacs::DicomServer dicom(dopts, ingestor, std::move(aes), &dd.auditor());
  if (Status s = dicom.start(); !s) {
    node.stop();
    return fail(s.error());
  }

  // The edge's own HTTP side: its state, without patient data, for the clinic's page and
  // monitoring (/edge/...); the back channel under /api/, for the clinic's doctors signed in
  // with their hub accounts (kept here by the back channel, so that they sign in while the
  // link is down), audited here.
  identity::AuthOptions auth_options;
  auth_options.token_ttl = std::chrono::minutes(cfg.token_ttl_minutes);
  auth_options.secure_cookies = cfg.secure_cookies || !cfg.tls_cert.empty();
  identity::AuthService auth(
      dd.accounts(), dd.auditor(), [] { return std::chrono::system_clock::now(); }, auth_options);
  http::Router router;
  identity::register_auth_routes(router, auth);
  // The edge's /api/ routes serve the clinic's doctors only; anyone else (an administrator's
  // account synced from the hub) is audited as refused and answered 403.
  auto doctors_only = [&auth](const http::Request& req, const char* action, const char* type,
                              const std::string& id,
                              const char* refusal) -> std::optional<http::Response> {
    if (identity::has_clinical_role(*req.principal)) return std::nullopt;
    auth.audit(req, action, type, id, "denied", "at the edge; not a clinical user");
    return http::Response::error(403, refusal);
  };
  router.add("GET", "/api/inbox", [&node, &auth, doctors_only](const http::Request& req) {
    if (auto no = doctors_only(req, "edge.inbox.read", "inbox", "",
                               "the clinic's doctors read the inbox"))
      return *no;
    auto items = node.inbox();
    if (!items.ok()) return http::Response::from_error(items.error());
    auth.audit(req, "edge.inbox.read", "inbox", "", "ok", std::to_string(items->size()) + " items");
    return http::Response::json(200, json_text(inbox_json(*items, node.last_sync())));
  });
  router.add(
      "POST", "/api/inbox/critical/{id}/acknowledge",
      [&node, &auth, doctors_only](const http::Request& req) {
        auto id = http::path_id(req, "id", "critical result id");
        if (!id.ok()) return http::Response::from_error(id.error());
        if (auto no = doctors_only(req, "critical.acknowledge", "critical_result",
                                   std::to_string(*id), "the clinic's doctors acknowledge results"))
          return *no;
        auto done = node.acknowledge_critical(*id, req.principal->username);
        if (!done.ok()) return http::Response::from_error(done.error());
        auth.audit(req, "critical.acknowledge", "critical_result", std::to_string(*id),
                   *done ? "ok" : "denied",
                   *done ? "at the edge, to be sent to the hub" : "not open here");
        if (!*done) return http::Response::error(404, "no open critical result has this id");
        return http::Response::json(200, json_text(json{{"id", *id},
                                                        {"acknowledgedBy", req.principal->username},
                                                        {"sentToHub", false}}));
      });
  // The clinic's studies kept here (sent, and priors pulled), for its doctors: DICOMweb, with
  // the hub's access rules (they are of this clinic, as the studies are).
  auto cache = storage::DiskCache::open(f.data / "cache", cfg.cache_max_megabytes << 20);
  if (!cache.ok()) {
    dicom.stop();
    node.stop();
    return fail(cache.error());
  }
  pacs::FrameIndexCache frame_index;
  pacs::register_dicomweb_routes(router, dd.index(), dd.blobs(), ingestor, auth, **cache,
                                 frame_index);
  // ECGs uploaded on the edge's page (HL7 aECG, DICOM, WFDB) are stored here like the
  // modalities' objects, queued to the hub as STAT, and measured and drawn here too (the
  // 12-lead page readable while the link is down).
  reading::QueueStore reports(dd.database());
  ecg::service::register_ecg_routes(router, dd.index(), dd.blobs(), ingestor, auth, **cache,
                                    reports, cfg.lab.utc_offset_minutes);
  router.add("POST", "/api/priors", [&node, &auth, doctors_only](const http::Request& req) {
    auto body = http::json_object_body(req);
    if (!body.ok()) return http::Response::from_error(body.error());
    const std::string patient = http::json_string(*body, "patientId");
    if (auto no = doctors_only(req, "edge.priors.request", "patient", patient,
                               "the clinic's doctors pull priors"))
      return *no;
    auto id = node.request_priors(patient, req.principal->username);
    if (!id.ok()) return http::Response::from_error(id.error());
    auth.audit(req, "edge.priors.request", "patient", patient, "ok",
               "request " + std::to_string(*id));
    return http::Response::json(202, json_text(json{{"id", *id}, {"state", "queued"}}));
  });
  router.add("GET", "/api/priors", [&node, &auth, doctors_only](const http::Request& req) {
    if (auto no =
            doctors_only(req, "edge.priors.read", "priors", "", "the clinic's doctors read priors"))
      return *no;
    auto list = node.prior_requests();
    if (!list.ok()) return http::Response::from_error(list.error());
    json out = json::array();
    for (const edge::PriorRequest& r : *list) {
      out.push_back({{"id", r.id},
                     {"patientId", r.patient_id},
                     {"requestedBy", r.requested_by},
                     {"state", r.state},
                     {"studies", r.studies},
                     {"instances", r.instances},
                     {"detail", r.detail},
                     {"requestedAt", r.requested_at},
                     {"doneAt", r.done_at.empty() ? json(nullptr) : json(r.done_at)},
                     {"studyInstanceUids", r.study_uids}});
    }
    auth.audit(req, "edge.priors.read", "priors", "", "ok",
               std::to_string(out.size()) + " requests");
    return http::Response::json(200, json_text(json{{"requests", std::move(out)}}));
  });
  router.add("GET", "/healthz", [](const http::Request&) {
    return http::Response::json(200, R"({"status":"ok","role":"edge"})");
  });
  router.add("GET", "/edge/status", [&node](const http::Request&) {
    return http::Response::json(200, json_text(status_json(node.status())));
  });
  router.add("GET", "/edge/queue", [&node](const http::Request&) {
    auto q = node.queue();
    if (!q.ok()) return http::Response::from_error(q.error());
    return http::Response::json(200, json_text(queue_json(*q)));
  });
  router.add("GET", "/", [](const http::Request&) {
    http::Response r = http::Response::json(200, kEdgePage);
    r.content_type = "text/html; charset=utf-8";
    return r;
  });
  net::HttpServer http_server(
      // Request bodies as at the hub: ECG and STOW-RS uploads.
      net::HttpServerOptions{.port = cfg.http_port,
                             .bind_address = cfg.http_bind,
                             .max_body_bytes = std::size_t{cfg.max_body_megabytes} << 20,
                             .tls_cert = cfg.tls_cert,
                             .tls_key = cfg.tls_key},
      [&router, &auth](http::Request& req) {
        if (auto denied = auth.admit(req)) return std::move(*denied);
        return router.dispatch(req);
      });
  if (Status s = http_server.start(); !s) {
    dicom.stop();
    node.stop();
    return fail(s.error());
  }
  spdlog::info("yilian edge: DICOM {} on port {}, HTTP on port {}, sending to {}", cfg.ae_title,
               dicom.port(), http_server.port(), f.hub);
  if (!f.port_file.empty()) {
    const fs::path tmp = f.port_file.string() + ".tmp";
    {
      std::ofstream out(tmp, std::ios::trunc);
      out << json_text(json{{"dicom", dicom.port()}, {"http", http_server.port()}}) << "\n";
    }
    std::error_code ec;
    fs::rename(tmp, f.port_file, ec);
  }
  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("received signal {}, stopping the edge", sig);
  http_server.stop();
  dicom.stop();
  ingestor.shutdown();
  node.stop();
  curl_global_cleanup();
  return 0;
}

// The hub's side, on its stopped data directory (the running hub: POST /api/admin/edges).
int edge_credential(const EdgeCommands& c, bool issue, bool revoke) {
  auto data = DataDir::open(c.data, "", "");
  if (!data.ok()) return fail(data.error());
  DataDir& dd = **data;
  identity::AuthService auth(dd.accounts(), dd.auditor(),
                             [] { return std::chrono::system_clock::now(); }, {});
  if (issue) {
    auto made = auth.issue_edge_credential(c.name, c.institution);
    if (!made.ok()) return fail(made.error());
    // The token is shown once; only its hash is kept.
    std::printf("%s\n", made->token.c_str());
    return 0;
  }
  if (revoke) {
    auto done = auth.revoke_edge_credential(c.name);
    if (!done.ok()) return fail(done.error());
    if (!*done) return fail(make_error(Errc::not_found, "no edge node " + c.name));
    return 0;
  }
  auto all = auth.edge_credentials();
  if (!all.ok()) return fail(all.error());
  for (const auto& e : *all) {
    std::printf("%s\t%s\t%s\t%s\n", e.name.c_str(), e.institution_code.c_str(),
                e.created_at.c_str(), e.revoked ? "revoked" : "active");
  }
  return 0;
}

}  // namespace

void add_edge_commands(CLI::App& app, EdgeCommands& c) {
  EdgeFlags& f = c.flags;
  c.edge = app.add_subcommand(
      "edge", "Run a township edge node: store from the clinic's modalities, send to the hub");
  c.edge->add_option("--data", f.data, "The edge's data directory")->required();
  c.edge->add_option("--hub", f.hub, "The hub's URL (https://hub:port)")->required();
  c.edge
      ->add_option("--credential-file", f.credential_file,
                   "File holding the edge credential (yilian edge-credential issue)")
      ->required()
      ->check(CLI::ExistingFile);
  c.edge->add_option("--hub-ca", f.hub_ca, "PEM certificate(s) to verify the hub with")
      ->check(CLI::ExistingFile);
  c.edge->add_option("--config", f.config, "TOML configuration file (ports, [queue] rules)")
      ->check(CLI::ExistingFile);
  c.edge->add_option("--dicom-port", f.dicom_port, "DICOM port (default 11112; 0: any free)")
      ->check(CLI::Range(0, 65535));
  c.edge->add_option("--http-port", f.http_port, "HTTP port (default 8080; 0: any free)")
      ->check(CLI::Range(0, 65535));
  c.edge->add_option("--aet", f.aet, "The edge's DICOM AE title (default YILIAN)");
  c.edge->add_option("--port-file", f.port_file,
                     "Once listening, write the ports as JSON {\"dicom\":N,\"http\":M} here");
  c.edge->add_option("--routine-kbps", f.routine_kbps,
                     "Bandwidth cap for routine transfers in kbit/s (0: none; STAT is never held)");
  c.edge->add_option(
      "--routine-schedule", f.routine_schedule,
      "Time-of-day windows for routine transfers, in the edge's local time: "
      "\"08:00-12:00=2000,12:00-14:00=off\" (kbit/s, or off: held; --routine-kbps outside)");
  c.edge
      ->add_option("--sync-seconds", f.sync_s,
                   "How often the clinic's reports, critical results and accounts are pulled "
                   "from the hub (default 15)")
      ->check(CLI::Range(0.1, 3600.0));
  c.edge
      ->add_option("--keep-days", f.keep_days,
                   "Days sent studies and pulled priors stay viewable at the edge (default 30; "
                   "0: kept for ever)")
      ->check(CLI::Range(0.0, 36500.0));
  c.edge->add_option("--stable-seconds", f.stable_s,
                     "No new instance for this long: the study is complete (default 10)");
  c.edge->add_option("--chunk-kb", f.chunk_kb,
                     "Bytes of the first upload request, in KiB (default 256); later ones carry "
                     "about a second of the link's throughput");
  c.edge->add_option("--max-chunk-kb", f.max_chunk_kb,
                     "Most bytes per upload request, in KiB (default 4096)");
  c.edge->add_option("--bundle-kb", f.bundle_kb, "Bytes per bundle, in KiB (default 16384)");

  auto* cred = app.add_subcommand("edge-credential",
                                  "Edge node credentials, on a stopped hub's data directory");
  cred->require_subcommand(1);
  c.issue = cred->add_subcommand("issue", "Issue a credential; prints the token once");
  c.issue->add_option("--data", c.data, "The hub's data directory")->required();
  c.issue->add_option("--name", c.name, "The edge node's name (letters, digits, '-')")->required();
  c.issue->add_option("--institution", c.institution, "Its institution's code")->required();
  c.list = cred->add_subcommand("list", "List edge nodes");
  c.list->add_option("--data", c.data, "The hub's data directory")->required();
  c.revoke = cred->add_subcommand("revoke", "Revoke an edge node's credential");
  c.revoke->add_option("--data", c.data, "The hub's data directory")->required();
  c.revoke->add_option("--name", c.name, "The edge node's name")->required();
}

int run_edge_commands(const EdgeCommands& c) {
  if (c.edge && *c.edge) return run_edge(c.flags);
  if (c.issue && *c.issue) return edge_credential(c, true, false);
  if (c.revoke && *c.revoke) return edge_credential(c, false, true);
  if (c.list && *c.list) return edge_credential(c, false, false);
  return -1;
}

}  // namespace yilian::app
