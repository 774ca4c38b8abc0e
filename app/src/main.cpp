// The yilian executable: the one place where modules are wired together.
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include <dcmtk/config/osconfig.h>

#include "admin_system.h"
#include "backup.h"
#include "cli_util.h"
#include "config.h"
#include "data_dir.h"
#include "db_copy.h"
#include "demo.h"
#include "ecg_cli.h"
#include "edge_cli.h"
#include "hub_wiring.h"
#include "identity_setup.h"
#include "pathology_cli.h"
#include "request_limits.h"
#include "yilian/common/text.h"
#include "yilian/ecg/analysis.h"
#include "yilian/ecg/beat_class.h"
#include "yilian/ecg/service/pipeline.h"
#include "yilian/ecg/service/rest.h"
#include "yilian/edge/back_channel.h"
#include "yilian/edge/uploads.h"
#include "yilian/identity/auth.h"
#include "yilian/identity/policy.h"
#include "yilian/identity/rest.h"
#include "yilian/lab/mllp.h"
#include "yilian/lab/rest.h"
#include "yilian/net/http_server.h"
#include "yilian/pacs/charset.h"
#include "yilian/pacs/dicom_server.h"
#include "yilian/pacs/dicomweb.h"
#include "yilian/pacs/ingest.h"
#include "yilian/pacs/rest.h"
#include "yilian/pathology/rest.h"
#include "yilian/reading/measurements.h"
#include "yilian/reading/reading_queue.h"
#include "yilian/reading/worklist_rest.h"
#include "yilian/storage/database.h"
#include "yilian/storage/sql.h"
#include "yilian/teleconsult/calls.h"
#include "yilian/teleconsult/consult_rest.h"
#include "yilian/teleconsult/emergency_rules.h"
#include "yilian/teleconsult/hub.h"
#include "yilian/viewer/render.h"
#include "yilian/viewer/web_assets.h"

#ifndef YILIAN_VERSION
#define YILIAN_VERSION "0.0.0"
#endif

namespace yilian::app {
namespace {

namespace fs = std::filesystem;

struct ServeFlags {
  fs::path data;
  fs::path config;
  int dicom_port = -1;
  int http_port = -1;
  int mllp_port = -1;
  std::string aet;
  int max_associations = -1;
  fs::path port_file;
  std::string database;  // postgresql://...; empty: the config's, or the data directory's
  std::string blobs;     // shared blob directory; empty: the config's, or the data directory's
  std::string node_address;
};

int fail(const Error& e) {
  spdlog::error("{}", e.message);
  return 1;
}

// {"dicom": N, "http": M, "mllp": L}, written to a temporary name and renamed: a reader sees it
// whole.
Status write_port_file(const fs::path& file, std::uint16_t dicom_port, std::uint16_t http_port,
                       std::uint16_t mllp_port) {
  const fs::path tmp = file.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    nlohmann::json ports{{"dicom", dicom_port}, {"http", http_port}};
    if (mllp_port != 0) ports["mllp"] = mllp_port;
    out << json_text(ports) << "\n";
    if (!out) return make_error(Errc::io, "cannot write the port file " + tmp.string());
  }
  std::error_code ec;
  fs::rename(tmp, file, ec);
  if (ec) return make_error(Errc::io, "cannot write the port file " + file.string());
  return Status::Ok();
}

// What `yilian demo` adds to serving: `before` runs on the opened data directory before the
// first administrator would be created; `ready` on its own thread once the hub listens (the
// hub stops only after it returned).
struct ServeHooks {
  std::function<Status(DataDir&)> before;
  std::function<void(std::uint16_t dicom_port, const http::Router&, DataDir&)> ready;
};

int serve(const ServeFlags& flags, const ServeHooks& hooks = {}) {
  // Every live consult connection is a socket: allow as many as the system lets this process
  // have (the soft limit is often 1024; the hard one much higher).
  if (rlimit lim{}; getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &lim);
  }
  Config cfg;
  if (!flags.config.empty()) {
    auto loaded = load_config(flags.config);
    if (!loaded.ok()) return fail(loaded.error());
    cfg = std::move(loaded).value();
  }
  if (flags.dicom_port >= 0) cfg.dicom_port = static_cast<std::uint16_t>(flags.dicom_port);
  if (flags.http_port >= 0) cfg.http_port = static_cast<std::uint16_t>(flags.http_port);
  if (flags.mllp_port >= 0) cfg.mllp_port = static_cast<std::uint16_t>(flags.mllp_port);
  if (!flags.aet.empty()) cfg.ae_title = flags.aet;
  if (flags.max_associations > 0)
    cfg.max_associations = static_cast<unsigned>(flags.max_associations);

  // Signals are taken by sigwait() below; every thread started from here inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto data = DataDir::open(flags.data, flags.database.empty() ? cfg.database_url : flags.database,
                            flags.blobs.empty() ? cfg.shared_blobs : flags.blobs);
  if (!data.ok()) return fail(data.error());
  DataDir& dd = **data;
  if (!dd.database_url().empty()) spdlog::info("database: PostgreSQL");
  if (dd.blobs().shared()) spdlog::info("blobs: shared, in {}", dd.blobs().root().string());
  if (!flags.node_address.empty()) cfg.node_address = flags.node_address;

  if (Status s = apply_identity_config(dd, cfg); !s) return fail(s.error());
  if (hooks.before) {
    if (Status s = hooks.before(dd); !s) return fail(s.error());
  }
  auto aes = build_ae_directory(dd, cfg);
  if (!aes.ok()) return fail(aes.error());

  identity::AuthOptions auth_options;
  auth_options.token_ttl = std::chrono::minutes(cfg.token_ttl_minutes);
  auth_options.viewer_ttl = std::chrono::minutes(cfg.viewer_ttl_minutes);
  auth_options.secure_cookies = cfg.secure_cookies || !cfg.tls_cert.empty();
  identity::AuthService auth(
      dd.accounts(), dd.auditor(), [] { return std::chrono::system_clock::now(); }, auth_options);
  {
    std::optional<std::string> password;
    if (!cfg.admin_password_file.empty()) {
      std::ifstream in(cfg.admin_password_file);
      std::string line;
      if (!in || !std::getline(in, line)) {
        return fail(make_error(Errc::invalid_argument,
                               "cannot read auth.admin_password_file " + cfg.admin_password_file));
      }
      password = line;
    }
    auto created = auth.ensure_first_admin(cfg.admin_username, cfg.admin_institution, password);
    if (!created.ok()) return fail(created.error());
    if (created->has_value()) {
      // Shown once, on the console of the person who started the hub; never stored.
      std::fprintf(stderr,
                   "\n  First start: created administrator '%s' with the one-time password\n"
                   "      %s\n  Sign in with it: the first sign-in asks for a new password.\n\n",
                   cfg.admin_username.c_str(), (*created)->c_str());
    }
  }

  reading::EventBus events;
  reading::ReadingQueue queue(
      dd.queue(), dd.index(), dd.accounts(), cfg.queue,
      [] { return std::chrono::system_clock::now(); }, events, cfg.national_id_issuer);
  auto cache = storage::DiskCache::open(flags.data / "cache", cfg.cache_max_megabytes << 20);
  if (!cache.ok()) return fail(cache.error());
  pacs::FrameIndexCache frame_index;  // where each stored frame lies in its file
  // The beat classifier's model is read now, not by the first ECG (which must alert fast).
  if (ecg::BeatModel::builtin().training_records.empty())
    spdlog::warn("the built-in beat classifier is missing: beats are not classified");
  ecg::service::EcgPipeline ecg_pipeline(dd.index(), dd.blobs(), **cache, queue, &dd.auditor());
  ecg_pipeline.start();
  pacs::Ingestor::Options ingest_options;
  ingest_options.reserve_bytes = cfg.reserve_megabytes << 20;
  ingest_options.on_committed = [&queue, &ecg_pipeline](const std::vector<std::string>& studies) {
    queue.studies_touched(studies);
    ecg_pipeline.studies_committed(studies);
  };
  ingest_options.text = pacs::TextDecoding{cfg.default_charset, false};
  pacs::Ingestor ingestor(dd.index(), dd.blobs(), ingest_options);
  auto report = ingestor.recover();
  if (!report.ok()) return fail(report.error());
  if (Status s = queue.start(); !s) return fail(s.error());
  spdlog::info(
      "recovery: {} temp files removed, {} unacknowledged orphan files removed, "
      "{} index rows without file removed",
      report->temp_files_removed, report->orphan_files_removed, report->missing_files);
  if (report->missing_files > 0) {
    spdlog::error("{} indexed instances had lost their files; their rows were removed",
                  report->missing_files);
  }

  pacs::DicomServerOptions dopts;
  dopts.port = cfg.dicom_port;
  dopts.ae_title = cfg.ae_title;
  dopts.max_associations = cfg.max_associations;
  dopts.dimse_timeout_s = cfg.dimse_timeout_s;
  dopts.max_find_matches = cfg.max_find_matches;
  dopts.acse_timeout_s = cfg.acse_timeout_s;
  dopts.max_connections = cfg.max_dicom_connections;
  dopts.max_connections_per_address = cfg.max_dicom_connections_per_address;
  pacs::DicomServer dicom(dopts, ingestor, *aes, &dd.auditor());
  dicom.enable_query_retrieve(dd.index(), dd.accounts(),
                              [] { return std::chrono::system_clock::now(); });
  if (Status s = dicom.start(); !s) return fail(s.error());

  http::Router router;
  identity::register_auth_routes(router, auth);
  // An administrator's change of AE titles or character sets reaches the DICOM side at once:
  // new associations use the directory built again from the accounts.
  // One rebuild at a time, so two changes in quick succession cannot swap in the older one last.
  std::mutex directory_mu;
  identity::AdminHooks admin_hooks{
      [](std::string_view charset) { return pacs::is_supported_charset(charset); },
      [&dd, &cfg, &dicom, &directory_mu] {
        std::lock_guard lock(directory_mu);
        auto rebuilt = build_ae_directory(dd, cfg);
        if (!rebuilt.ok()) {
          spdlog::error("AE directory: {}", rebuilt.error().message);
          return;
        }
        dicom.set_directory(std::make_shared<const pacs::AeDirectory>(std::move(*rebuilt)));
      },
      {},
      {}};
  for (const InstitutionConfig& i : cfg.institutions) admin_hooks.file_institutions.insert(i.code);
  for (const ReadingServiceConfig& rs : cfg.reading_services) {
    for (const std::string& client : rs.clients) {
      admin_hooks.file_reading_services.insert(rs.provider + ":" + client + ":" + rs.service);
    }
  }
  identity::register_admin_routes(router, auth, admin_hooks);
  reading::register_queue_settings_routes(router, queue, auth, cfg.queue_file_keys);
  register_admin_system_routes(router, auth, dd.database(), dd.queue(),
                               SystemFacts{flags.data, dd.blobs().root(), YILIAN_VERSION,
                                           storage::to_iso8601(std::chrono::system_clock::now()),
                                           cfg.ae_title, cfg.dicom_peers});
  pacs::register_study_routes(router, dd.index(), auth);
  reading::register_worklist_routes(router, queue, auth, [](std::string_view code) {
    const auto& catalogue = ecg::statement_catalogue();
    return std::any_of(catalogue.begin(), catalogue.end(),
                       [code](const ecg::Statement& s) { return s.code == code; });
  });
  reading::MeasurementStore measurements(dd.database());
  reading::register_measurement_routes(router, measurements, dd.index(), auth);
  pacs::register_dicomweb_routes(router, dd.index(), dd.blobs(), ingestor, auth, **cache,
                                 frame_index);
  pathology::register_slide_routes(router, dd.index(), dd.blobs(), auth, frame_index);
  ecg::service::register_ecg_routes(router, dd.index(), dd.blobs(), ingestor, auth, **cache,
                                    queue.store(), cfg.lab.utc_offset_minutes);
  // Township edge nodes' resumable uploads; kept beside the blobs, so on several nodes sharing
  // them any node resumes an upload another one began.
  auto edge_uploads = edge::register_upload_routes(
      router, dd.database(), ingestor, auth,
      edge::UploadServiceOptions{
          dd.blobs().root() / "uploads",
          [&queue](const Principal& p, const std::string& uid) -> Result<std::size_t> {
            auto tasks = queue.study_complete(p, uid);
            if (!tasks.ok()) return tasks.error();
            return tasks->size();
          },
          [&queue](const std::string& uid) {
            if (auto r = queue.study_arriving(uid); !r.ok())
              spdlog::warn("reading queue: study {} arriving: {}", uid, r.error().message);
          },
          4, std::chrono::hours(cfg.edge_upload_expiry_h)});
  if (!edge_uploads.ok()) return fail(edge_uploads.error());
  // What a township clinic must read while its link is down: pulled by its edge node.
  edge::register_back_channel_routes(router, dd.database(), dd.accounts(), queue, auth, dd.index(),
                                     dd.blobs(), cfg.national_id_issuer);
  teleconsult::Hub hub(
      dd.teleconsult_stores(),
      [&auth](std::string_view authorization) { return auth.authenticate(authorization); },
      &dd.auditor(), [] { return std::chrono::system_clock::now(); },
      teleconsult::HubOptions{
          .max_connections_per_user = cfg.ws_connections_per_user,
          .max_connections_per_address = cfg.ws_connections_per_address,
          .messages_per_second = static_cast<double>(cfg.ws_messages_per_second),
          .message_burst = static_cast<double>(cfg.ws_message_burst),
          .alert_escalation = std::chrono::seconds(cfg.alert_escalation_s),
          .case_targets = cfg.emergency_targets});
  teleconsult::register_consult_routes(router, dd.consults(), hub, dd.index(), queue, dd.accounts(),
                                       auth);
  teleconsult::register_call_routes(router, cfg.calls, auth);
  teleconsult::register_case_routes(router, dd.cases(), dd.index(), hub, auth,
                                    cfg.lab.utc_offset_minutes);
  teleconsult::register_oncall_routes(router, dd.cases(), auth);
  // Laboratory results: HL7 v2 over MLLP from the members' laboratory systems.
  lab::LabStore lab_store(dd.database());
  lab::Hl7Receiver hl7(lab_store, dd.accounts(), cfg.lab,
                       [] { return std::chrono::system_clock::now(); });
  lab::PatientSources patient_sources;
  patient_sources.reach = [&dd](const Principal& p,
                                std::string_view patient) -> Result<std::vector<std::int64_t>> {
    auto referred =
        dd.referrals().referring_institutions(patient, identity::served_institutions(p));
    if (!referred.ok()) return referred.error();
    auto consulted = dd.consults().consulting_institutions(patient, p.user_id);
    if (!consulted.ok()) return consulted.error();
    referred->insert(referred->end(), consulted->begin(), consulted->end());
    return *referred;
  };
  patient_sources.reports = [&queue](std::string_view patient,
                                     const std::vector<std::int64_t>& institutions)
      -> Result<std::vector<lab::ImagingReport>> {
    auto studies = queue.store().reported_studies(patient, institutions);
    if (!studies.ok()) return studies.error();
    std::vector<lab::ImagingReport> out;
    for (const reading::ReportedStudy& s : *studies) {
      out.push_back({s.task_id, s.study_uid, s.study_date, s.modality, s.description,
                     s.institution_code, s.read_by, s.final_at, s.impression});
    }
    return out;
  };
  patient_sources.reads =
      [&queue](std::string_view patient) -> Result<std::vector<lab::StudyRead>> {
    auto reads = queue.store().patient_reads(patient);
    if (!reads.ok()) return reads.error();
    std::vector<lab::StudyRead> out;
    for (reading::PatientRead& r : *reads) {
      out.push_back({std::move(r.study_uid), r.task_id, r.is_ecg, std::move(r.service),
                     std::move(r.modality), std::move(r.status),
                     reading::priority_name(static_cast<reading::Priority>(r.priority)),
                     std::move(r.priority_reason), std::move(r.final_at), std::move(r.impression),
                     std::move(r.read_by), r.critical});
    }
    return out;
  };
  patient_sources.care_most = teleconsult::kPatientListMost;
  patient_sources.care =
      [&dd](const Principal& p, std::string_view patient,
            const std::vector<std::int64_t>& institutions) -> Result<std::vector<lab::CareEvent>> {
    std::vector<lab::CareEvent> out;
    auto consults = dd.consults().patient_consults(patient, institutions);
    if (!consults.ok()) return consults.error();
    for (teleconsult::ConsultRow& c : *consults) {
      auto who = dd.consults().participants(c.id);
      if (!who.ok()) return who.error();
      const bool takes_part = std::any_of(who->begin(), who->end(),
                                          [&](const auto& w) { return w.user_id == p.user_id; });
      // A concluded consult's answer is its opinion; a declined or cancelled one's, why.
      std::string answer = c.status == "concluded" ? c.opinion : c.reason;
      lab::CareEvent e;
      e.kind = lab::EntryKind::consult;
      e.id = c.id;
      e.at = std::move(c.created_at);
      e.institution = std::move(c.institution_code);
      e.patient_name = std::move(c.patient_name);
      e.other = std::move(c.specialty);
      e.urgency = std::move(c.urgency);
      e.status = std::move(c.status);
      e.text = std::move(c.question);
      e.answer = std::move(answer);
      e.by = std::move(c.assignee);
      e.open = takes_part;
      out.push_back(std::move(e));
    }
    auto referrals = dd.referrals().patient_referrals(patient, institutions);
    if (!referrals.ok()) return referrals.error();
    for (teleconsult::ReferralRow& r : *referrals) {
      lab::CareEvent e;
      e.kind = lab::EntryKind::referral;
      e.id = r.id;
      e.at = std::move(r.created_at);
      e.institution = std::move(r.from_code);
      e.patient_name = std::move(r.patient_name);
      e.other = std::move(r.to_code);
      e.direction = std::move(r.direction);
      e.urgency = std::move(r.urgency);
      e.status = std::move(r.status);
      e.text = std::move(r.reason);
      e.answer = std::move(r.answer);
      e.by = std::move(r.requested_by);
      out.push_back(std::move(e));
    }
    auto cases = dd.cases().patient_cases(patient, institutions);
    if (!cases.ok()) return cases.error();
    std::vector<std::int64_t> case_ids;
    for (const teleconsult::CaseRow& c : *cases) case_ids.push_back(c.id);
    auto case_points = dd.cases().time_points(case_ids);
    if (!case_points.ok()) return case_points.error();
    for (teleconsult::CaseRow& c : *cases) {
      const std::vector<teleconsult::TimePointRow>& points = (*case_points)[c.id];
      lab::CareEvent e;
      e.kind = lab::EntryKind::emergency;
      e.id = c.id;
      e.open = teleconsult::may_see_case(p, c);
      e.at = std::move(c.opened_at);
      e.institution = std::move(c.institution_code);
      e.patient_name = std::move(c.patient_name);
      e.other = std::move(c.kind);
      e.urgency = "emergency";
      e.status = std::move(c.status);
      e.text = std::move(c.reason);
      e.by = std::move(c.opened_by);
      e.source = std::move(c.source);
      e.acknowledged_by = std::move(c.acknowledged_by);
      e.acknowledged_at = std::move(c.acknowledged_at);
      e.closed_at = std::move(c.closed_at);
      // The newest record of a point is its value (a correction is a newer record).
      for (const auto& [point, at] : teleconsult::current_points(points))
        e.points.push_back({point, storage::to_iso8601(at)});
      std::stable_sort(e.points.begin(), e.points.end(),
                       [](const lab::CareEvent::Point& a, const lab::CareEvent::Point& b) {
                         return a.at < b.at;
                       });
      out.push_back(std::move(e));
    }
    return out;
  };
  patient_sources.index = &dd.index();
  patient_sources.national_issuer = cfg.national_id_issuer;
  lab::register_lab_routes(router, lab_store, cfg.lab, auth, patient_sources);
  lab::MllpServer mllp(lab::MllpOptions{.port = cfg.mllp_port, .bind = cfg.mllp_bind},
                       [&hl7](std::string_view message) { return hl7.receive(message); });
  teleconsult::register_notification_routes(router, dd.notifications(), auth);
  teleconsult::register_referral_routes(router, dd.referrals(), hub, dd.index(), dd.accounts(),
                                        auth);
  // What the hub needs from the reading queue and the accounts; queue events reach it here.
  hub.set_sources({[&dd](std::int64_t id) { return dd.queue().task(id); },
                   [&dd]() -> Result<std::vector<Principal>> {
                     auto users = dd.accounts().users();
                     if (!users.ok()) return users.error();
                     std::vector<Principal> out;
                     for (const auto& u : *users) {
                       if (u.disabled) continue;
                       auto p = dd.accounts().principal(u.id);
                       if (p.ok()) out.push_back(std::move(*p));
                     }
                     return out;
                   }});
  events.subscribe([&hub](const reading::TaskEvent& e) { hub.task_event(e); });
  // The other nodes on the same database: periodic work on one of them, live traffic to all.
  storage::Cluster cluster(dd.database(), {.node_id = dd.node_id(), .address = cfg.node_address});
  cluster.subscribe("hub", [&hub](const std::string& envelope) { hub.relayed(envelope); });
  if (cluster.shared()) {
    hub.set_relay(
        cluster.node_id(),
        [&cluster](std::string envelope) {
          if (Status s = cluster.publish("hub", envelope); !s)
            spdlog::warn("relay to other nodes: {}", s.error().message);
        },
        [&cluster] {
          std::vector<std::string> ids;
          for (const auto& p : cluster.peers()) ids.push_back(p.id);
          return ids;
        });
  }
  hub.set_leader([&cluster] { return cluster.leader(); });
  queue.set_leader([&cluster] { return cluster.leader(); });
  net::HttpServerOptions hopts{cfg.http_port, cfg.http_bind,
                               std::size_t{cfg.max_body_megabytes} << 20, cfg.tls_cert,
                               cfg.tls_key};
  // STOW-RS bodies (whole-slide levels run to gigabytes) are kept in a file beside the blobs
  // as they arrive, not in memory.
  hopts.spool = [](const http::Request& r) {
    return r.method == "POST" && r.path.rfind("/dicom-web/studies", 0) == 0;
  };
  hopts.spool_dir = dd.blobs().temp_path("spool").parent_path().string();
  hopts.max_spooled_bytes = std::uint64_t{cfg.max_stow_megabytes} << 20;
  http::Cors cors(cfg.cors_origins);
  RequestLimits limits(cfg.renders_per_user, cfg.uploads_per_user);
  net::HttpServer http_server(hopts, [&](http::Request& req) {
    if (auto preflight = cors.preflight(req)) return *preflight;
    http::Response r;
    if (auto denied = auth.admit(req)) {
      r = std::move(*denied);
    } else {
      r = limits.run(req, [&router](http::Request& q) { return router.dispatch(q); });
    }
    cors.decorate(req, r);
    return r;
  });
  // /ws: the server carries the frames, the hub decides what they mean.
  WsTransport transport(http_server);
  http_server.enable_websockets(
      ws_handler(hub), net::WsOptions{.max_message_bytes = teleconsult::protocol::kMaxMessageBytes,
                                      .ping_after_idle_s = cfg.ws_ping_after_idle_s,
                                      .hangup_after_idle_s = cfg.ws_hangup_after_idle_s});
  register_health_route(router, YILIAN_VERSION, ingestor, http_server, hub, dd.database(), cluster);
  // The web front end, built beside the executable unless the config names another place.
  std::error_code exe_ec;
  const fs::path web_root = !cfg.web_root.empty()
                                ? fs::path(cfg.web_root)
                                : fs::read_symlink("/proc/self/exe", exe_ec).parent_path() / "web";
  if (Status s = viewer::register_web_routes(router, web_root); !s) {
    spdlog::warn("{}: REST, DICOMweb and /ws are served without the web screens",
                 s.error().message);
  }
  const fs::path ohif_root =
      !cfg.ohif_root.empty() ? fs::path(cfg.ohif_root) : web_root.parent_path() / "ohif";
  if (Status s = viewer::register_ohif_routes(router, ohif_root); !s) {
    spdlog::warn("{}: the advanced viewer (/ohif/) is not served", s.error().message);
  }
  Status started = cluster.start();
  if (started) hub.start(transport);
  if (started) started = http_server.start();
  if (started) started = mllp.start();
  if (!started) {
    http_server.stop();
    mllp.stop();
    hub.stop();
    dicom.stop();
    ecg_pipeline.stop();
    queue.stop();
    return fail(started.error());
  }
  if (cfg.node_address.empty()) {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    cluster.set_address(std::string(host) + ":" + std::to_string(http_server.port()));
  }
  spdlog::info(
      "yilian {} serving: DICOM {} on port {}, {} on port {}, HL7 MLLP on port {}, data in {}, "
      "node {}",
      YILIAN_VERSION, cfg.ae_title, dicom.port(), cfg.tls_cert.empty() ? "HTTP" : "HTTPS",
      http_server.port(), mllp.port(), flags.data.string(), dd.node_id());
  if (!flags.port_file.empty()) {
    // For whoever started the hub on port 0 (tests, supervisors): the ports it got.
    if (Status s = write_port_file(flags.port_file, dicom.port(), http_server.port(), mllp.port());
        !s) {
      spdlog::error("{}", s.error().message);
    }
  }

  std::thread ready;
  if (hooks.ready) {
    ready =
        std::thread([&hooks, &router, &dd, port = dicom.port()] { hooks.ready(port, router, dd); });
  }
  int sig = 0;
  sigwait(&signals, &sig);
  if (ready.joinable()) ready.join();
  spdlog::info("received signal {}, shutting down: finishing in-flight stores", sig);
  http_server.stop();
  mllp.stop();
  hub.stop();
  dicom.stop();
  ingestor.shutdown();
  ecg_pipeline.stop();
  queue.stop();
  cluster.stop();
  auto c = ingestor.counters();
  spdlog::info("stopped; this run stored {} instances ({} duplicates, {} rejected)", c.stored,
               c.duplicates, c.rejected);
  return 0;
}

// `yilian demo`: the demo consortium in `flags.data` (created, or one made by an earlier demo),
// served like `serve`.
int demo(ServeFlags flags) {
  std::error_code ec;
  if (fs::exists(flags.data / "index.sqlite", ec) && !fs::exists(flags.data / "demo.toml", ec)) {
    return fail(make_error(
        Errc::invalid_argument,
        flags.data.string() + " holds a hub's data that is not a demo's; give a new directory"));
  }
  auto config = write_demo_config(flags.data);
  if (!config.ok()) return fail(config.error());
  flags.config = *config;
  ServeHooks hooks;
  hooks.before = [](DataDir& dd) { return add_demo_users(dd); };
  hooks.ready = [data = flags.data](std::uint16_t port, const http::Router& router, DataDir& dd) {
    if (demo_seeded(data)) return;
    spdlog::info("demo: sending the demo studies");
    if (Status s = seed_demo(data, port, router, dd); !s) {
      spdlog::error("demo: {}", s.error().message);
      return;
    }
    spdlog::info("demo: ready (studies, reports, a consult, a stroke and a chest-pain case)");
  };
  return serve(flags, hooks);
}

struct ImportFlags {
  fs::path data;
  std::vector<fs::path> paths;
  std::string institution;
  int threads = 4;
};

int import_files(const ImportFlags& flags) {
  std::vector<fs::path> files;
  for (const fs::path& p : flags.paths) {
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
      for (fs::recursive_directory_iterator it(p, ec), end; !ec && it != end; it.increment(ec)) {
        if (it->is_regular_file(ec)) files.push_back(it->path());
      }
    } else if (fs::is_regular_file(p, ec)) {
      files.push_back(p);
    } else {
      spdlog::error("{}: no such file or directory", p.string());
      return 1;
    }
  }
  std::sort(files.begin(), files.end());

  auto data = DataDir::open(flags.data);
  if (!data.ok()) return fail(data.error());
  DataDir& dd = **data;
  std::int64_t institution_id = 0;
  {
    std::string code = flags.institution.empty() ? "unknown" : flags.institution;
    auto inst = dd.index().ensure_institution(code, code == "unknown" ? "Unknown sender" : code);
    if (!inst.ok()) return fail(inst.error());
    institution_id = inst->id;
  }
  pacs::Ingestor ingestor(dd.index(), dd.blobs(), {});
  auto report = ingestor.recover();
  if (!report.ok()) return fail(report.error());

  const bool tty = ::isatty(STDERR_FILENO) == 1;
  std::atomic<std::size_t> next{0}, done{0};
  std::mutex mu;
  std::vector<std::pair<fs::path, std::string>> rejected;       // guarded by mu
  std::size_t imported = 0, duplicates = 0, conflicts = 0;      // guarded by mu
  std::map<std::string, std::map<std::string, int>> per_study;  // guarded by mu; for the audit

  auto progress = [&](std::size_t n) {
    if (tty) show_progress(n, files.size(), "files");
  };

  auto work = [&] {
    while (true) {
      std::size_t i = next++;
      if (i >= files.size()) return;
      std::string bytes;
      {
        FILE* f = std::fopen(files[i].c_str(), "rb");
        if (f) {
          char buf[1 << 16];
          std::size_t n;
          while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) bytes.append(buf, n);
          std::fclose(f);
        }
      }
      pacs::IngestOutcome o = ingestor.ingest_bytes(bytes, pacs::Sender{"", institution_id, {}});
      {
        std::lock_guard lock(mu);
        if (!o.study_instance_uid.empty()) {
          ++per_study[o.study_instance_uid][pacs::ingest_status_name(o.status)];
        }
        switch (o.status) {
          case pacs::IngestStatus::stored:
            ++imported;
            break;
          case pacs::IngestStatus::duplicate:
            ++duplicates;
            break;
          case pacs::IngestStatus::conflict:
            ++conflicts;
            break;
          default:
            rejected.emplace_back(files[i], o.message);
            break;
        }
      }
      std::size_t n = ++done;
      if (n % 16 == 0 || n == files.size()) {
        std::lock_guard lock(mu);
        progress(n);
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 0; t < std::max(1, flags.threads); ++t) pool.emplace_back(work);
  for (std::thread& t : pool) t.join();
  ingestor.shutdown();
  if (tty) std::fprintf(stderr, "\n");
  for (const auto& [study, counts] : per_study) {
    identity::AuditEvent ev = cli_study_event(flags.institution, "dicom.import", study);
    for (const auto& [what, n] : counts) {
      ev.detail += (ev.detail.empty() ? "" : ", ") + std::to_string(n) + " " + what;
    }
    if (Status s = dd.auditor().record(ev); !s) spdlog::error("audit: {}", s.error().message);
  }

  // PostgreSQL plans by its statistics, which autovacuum refreshes only a while after a bulk
  // load: a hub started right after an import would plan its searches for the tables as they
  // were before it.
  if (storage::is_postgres_url(dd.database_url()) && imported > 0) {
    if (Status s =
            storage::write(dd.database(), [](storage::sql::Db& db) { return db.exec("ANALYZE"); });
        !s)
      spdlog::warn("import: could not refresh the planner statistics: {}", s.error().message);
  }
  std::printf("imported: %zu\nduplicates: %zu\nconflicts (kept separately): %zu\nrejected: %zu\n",
              imported, duplicates, conflicts, rejected.size());
  for (const auto& [path, why] : rejected) std::printf("  %s: %s\n", path.c_str(), why.c_str());
  return rejected.empty() ? 0 : 2;
}

}  // namespace
}  // namespace yilian::app

namespace yilian::app {
namespace {

// --dicom-port, --http-port and --port-file, as `serve` and `demo` take them.
void add_port_options(CLI::App& cmd, ServeFlags& flags) {
  cmd.add_option("--dicom-port", flags.dicom_port, "DICOM port (default 11112; 0: any free)")
      ->check(CLI::Range(0, 65535));
  cmd.add_option("--http-port", flags.http_port, "HTTP/WebSocket port (default 8080; 0: any free)")
      ->check(CLI::Range(0, 65535));
  cmd.add_option("--mllp-port", flags.mllp_port,
                 "HL7 v2 MLLP port for laboratory results (default 2575; 0: any free)")
      ->check(CLI::Range(0, 65535));
  cmd.add_option(
      "--port-file", flags.port_file,
      "Once listening, write the ports as JSON {\"dicom\":N,\"http\":M,\"mllp\":L} here");
}

}  // namespace
}  // namespace yilian::app

int main(int argc, char** argv) {
  using namespace yilian::app;
  auto logger = spdlog::stderr_color_mt("yilian");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  yilian::net::log_errors_only();
  yilian::pacs::configure_dcmtk_logging();
  // DCMTK as packaged leaves Nagle's algorithm on unless this is set when the network is
  // created; without it every C-STORE response waits for the delayed ACK (~40 ms).
  setenv("TCP_NODELAY", "1", 0);
  yilian::viewer::register_codecs();  // DCMTK's decoders are process-wide registrations

  CLI::App app{"Yilian: the consortium's shared diagnostics hub"};
  app.require_subcommand(1);

  ServeFlags serve_flags;
  auto* serve_cmd = app.add_subcommand("serve", "Run the hub: DICOM, HTTP and WebSocket");
  serve_cmd->add_option("--data", serve_flags.data, "Data directory (index and files)")->required();
  serve_cmd->add_option("--database", serve_flags.database,
                        "PostgreSQL database (postgresql://...) for the index and audit trail; "
                        "the data directory remembers it");
  serve_cmd->add_option("--blobs", serve_flags.blobs,
                        "Blob directory shared by several nodes (NFS, CephFS); the data "
                        "directory remembers it");
  serve_cmd->add_option("--node-address", serve_flags.node_address,
                        "How peers and operators reach this node (shown in /healthz)");
  serve_cmd->add_option("--config", serve_flags.config, "TOML configuration file")
      ->check(CLI::ExistingFile);
  add_port_options(*serve_cmd, serve_flags);
  serve_cmd->add_option("--aet", serve_flags.aet, "Our DICOM AE title (default YILIAN)");
  serve_cmd
      ->add_option("--max-associations", serve_flags.max_associations,
                   "Concurrent DICOM associations (default 16)")
      ->check(CLI::Range(1, 1024));

  ImportFlags import_flags;
  ServeFlags demo_flags;
  auto* demo_cmd = app.add_subcommand(
      "demo", "Fill a new data directory with a demo consortium and its studies, and serve it");
  demo_cmd->add_option("--data", demo_flags.data, "Data directory (new, or an earlier demo's)")
      ->required();
  add_port_options(*demo_cmd, demo_flags);

  auto* import_cmd = app.add_subcommand("import", "Import DICOM files and folders into --data");
  import_cmd->add_option("--data", import_flags.data, "Data directory")->required();
  import_cmd->add_option("--institution", import_flags.institution,
                         "Institution code to file the studies under (default: unknown)");
  import_cmd->add_option("--threads", import_flags.threads, "Parallel readers (default 4)")
      ->check(CLI::Range(1, 64));
  import_cmd->add_option("paths", import_flags.paths, "Files or folders")->required();

  // yilian pathology import SLIDE
  PathologyImportFlags slide_flags;
  auto* pathology_cmd = app.add_subcommand("pathology", "Pathology centre: whole-slide images");
  pathology_cmd->require_subcommand(1);
  auto* slide_import_cmd = pathology_cmd->add_subcommand(
      "import", "Convert a scanner's slide (Aperio SVS, pyramidal TIFF) to DICOM and store it");
  slide_import_cmd->add_option("slide", slide_flags.slide, "The slide file")
      ->required()
      ->check(CLI::ExistingFile);
  slide_import_cmd->add_option("--data", slide_flags.data, "Data directory to store it in");
  slide_import_cmd->add_option("--out", slide_flags.out, "Folder to write the DICOM files to");
  slide_import_cmd->add_option("--institution", slide_flags.institution,
                               "Institution code to file the study under");
  slide_import_cmd->add_option("--patient-id", slide_flags.subject.patient_id, "Patient ID")
      ->required();
  slide_import_cmd->add_option("--patient-name", slide_flags.subject.patient_name,
                               "Patient name (DICOM PN, e.g. 王^小明)");
  slide_import_cmd->add_option("--birth-date", slide_flags.subject.birth_date, "YYYYMMDD");
  slide_import_cmd->add_option("--sex", slide_flags.subject.sex, "M, F or O");
  slide_import_cmd->add_option("--accession", slide_flags.subject.accession_number,
                               "Accession number of the pathology request");
  slide_import_cmd->add_option("--study-description", slide_flags.subject.study_description,
                               "e.g. 冰冻切片 (frozen section)");
  slide_import_cmd->add_option("--study-uid", slide_flags.subject.study_instance_uid,
                               "Add the slide to this study (default: a new study)");
  slide_import_cmd->add_option("--slide-id", slide_flags.subject.container_id,
                               "The slide's identifier (default: the file name)");
  slide_import_cmd->add_option("--specimen", slide_flags.subject.specimen_id,
                               "The specimen's identifier (default: the slide's)");
  slide_import_cmd
      ->add_option("--microns-per-pixel", slide_flags.microns_per_pixel,
                   "Pixel size of the full-resolution level, when the file does not say it")
      ->check(CLI::Range(0.01, 100.0));

  auto* version_cmd = app.add_subcommand("version", "Print the version");

  // yilian user add|list|disable|passwd
  UserFlags user_flags;
  auto* user_cmd = app.add_subcommand("user", "Manage users (the hub must be stopped)");
  user_cmd->require_subcommand(1);
  auto* user_add_cmd =
      user_cmd->add_subcommand("add", "Add a user; the password is read from stdin");
  user_add_cmd->add_option("--data", user_flags.data, "Data directory")->required();
  user_add_cmd->add_option("--database", user_flags.database,
                           "PostgreSQL database (postgresql://...); the data directory "
                           "remembers it");
  user_add_cmd
      ->add_option("--role", user_flags.roles,
                   "township_doctor, radiologist, pathologist, ecg_reader, cardiologist, "
                   "admin, qc_reviewer (repeatable)")
      ->required();
  user_add_cmd->add_option("--institution", user_flags.institution, "Home institution code")
      ->required();
  user_add_cmd->add_option("--credential", user_flags.credentials,
                           "Another institution the user is credentialed at (repeatable)");
  user_add_cmd->add_option("--name", user_flags.display_name, "Display name");
  user_add_cmd->add_option("username", user_flags.username)->required();
  auto* user_list_cmd = user_cmd->add_subcommand("list", "List users");
  user_list_cmd->add_option("--data", user_flags.data, "Data directory")->required();
  auto* user_disable_cmd = user_cmd->add_subcommand("disable", "Disable a user, revoking sessions");
  user_disable_cmd->add_option("--data", user_flags.data, "Data directory")->required();
  user_disable_cmd->add_option("username", user_flags.username)->required();
  auto* user_passwd_cmd =
      user_cmd->add_subcommand("passwd", "Set a user's password from stdin, revoking sessions");
  user_passwd_cmd->add_option("--data", user_flags.data, "Data directory")->required();
  user_passwd_cmd->add_option("username", user_flags.username)->required();

  // yilian institution add|list
  InstitutionFlags inst_flags;
  auto* inst_cmd = app.add_subcommand("institution", "Manage member institutions");
  inst_cmd->require_subcommand(1);
  auto* inst_add_cmd = inst_cmd->add_subcommand("add", "Add or update an institution");
  inst_add_cmd->add_option("--data", inst_flags.data, "Data directory")->required();
  inst_add_cmd->add_option("--name", inst_flags.name, "Name");
  inst_add_cmd->add_option("--level", inst_flags.level,
                           "lead, county, community, township (default), village, office");
  inst_add_cmd->add_option("--parent", inst_flags.parent, "Parent institution code");
  inst_add_cmd->add_option("--ae", inst_flags.ae_titles, "DICOM AE title (repeatable)");
  inst_add_cmd->add_option("code", inst_flags.code)->required();
  auto* inst_list_cmd = inst_cmd->add_subcommand("list", "List institutions");
  inst_list_cmd->add_option("--data", inst_flags.data, "Data directory")->required();

  // yilian audit verify
  std::string audit_data;
  auto* audit_cmd = app.add_subcommand("audit", "The audit trail");
  audit_cmd->require_subcommand(1);
  auto* audit_verify_cmd =
      audit_cmd->add_subcommand("verify", "Check the audit trail's hash chain");
  audit_verify_cmd->add_option("--data", audit_data, "Data directory")->required();

  // yilian db copy
  std::string copy_from, copy_to;
  auto* db_cmd = app.add_subcommand("db", "The hub's database");
  db_cmd->require_subcommand(1);
  auto* db_copy_cmd = db_cmd->add_subcommand(
      "copy", "Move an embedded install (SQLite) to PostgreSQL; the hub must be stopped");
  db_copy_cmd->add_option("--from", copy_from, "Data directory of the embedded install")
      ->required();
  db_copy_cmd->add_option("--to", copy_to, "A new, empty PostgreSQL database (postgresql://...)")
      ->required();

  // yilian backup / restore / fsck
  std::string backup_data, backup_to;
  bool backup_link = false, fsck_quick = false;
  auto* backup_cmd = app.add_subcommand(
      "backup",
      "Back up an embedded install while the hub runs (again into the same folder: "
      "only what is new is copied)");
  backup_cmd->add_option("--data", backup_data, "Data directory")->required();
  backup_cmd->add_option("--to", backup_to, "Backup folder (new, or an earlier backup)")
      ->required();
  backup_cmd->add_flag("--link", backup_link,
                       "Hard-link the stored objects instead of copying (same file system only: "
                       "a snapshot that shares the disk)");
  auto* restore_cmd =
      app.add_subcommand("restore", "Restore a backup into a new data directory and check it");
  restore_cmd->add_option("--from", backup_to, "Backup folder")->required();
  restore_cmd->add_option("--data", backup_data, "New, empty data directory")->required();
  restore_cmd->add_flag("--link", backup_link, "Hard-link the stored objects from the backup");
  auto* fsck_cmd = app.add_subcommand(
      "fsck", "Check every stored object against the index, and the audit trail (the hub may run)");
  fsck_cmd->add_option("--data", backup_data, "Data directory or backup folder")->required();
  fsck_cmd->add_flag("--quick", fsck_quick,
                     "Sizes only: neither hash the objects nor read their headers");

  // yilian ecg eval
  std::string ecg_db;
  auto* ecg_cmd = app.add_subcommand("ecg", "ECG analysis");
  ecg_cmd->require_subcommand(1);
  auto* ecg_eval_cmd = ecg_cmd->add_subcommand(
      "eval", "EC57 beat-by-beat evaluation of QRS detection on a WFDB database");
  ecg_eval_cmd->add_option("--db", ecg_db, "Folder of WFDB records with .atr annotations")
      ->required();
  bool ecg_classes = false;
  ecg_eval_cmd->add_flag("--classes", ecg_classes,
                         "Evaluate beat classification (VEB, SVEB) instead of detection");
  bool ecg_af = false;
  ecg_eval_cmd->add_flag("--af", ecg_af,
                         "Evaluate atrial fibrillation episodes against the rhythm annotations");
  std::string ecg_train_db, ecg_train_out;
  auto* ecg_train_cmd = ecg_cmd->add_subcommand(
      "train", "Train the beat classifier on a WFDB database and write the model file");
  ecg_train_cmd->add_option("--db", ecg_train_db, "Folder of WFDB records with .atr annotations")
      ->required();
  ecg_train_cmd->add_option("-o,--output", ecg_train_out, "Model file (ecg/model/beats.yml)")
      ->required();
  std::string ecg_file, ecg_sex;
  int ecg_age = 0;
  double ecg_mains = 50;
  auto* ecg_analyze_cmd =
      ecg_cmd->add_subcommand("analyze", "Measurements and flags of one ECG, as JSON");
  ecg_analyze_cmd->add_option("file", ecg_file, "WFDB header (.hea) or DICOM ECG waveform")
      ->required();
  ecg_analyze_cmd->add_option("--age", ecg_age, "Patient age in years (STEMI thresholds)");
  ecg_analyze_cmd->add_option("--sex", ecg_sex, "M or F (STEMI and QTc thresholds)");
  ecg_analyze_cmd->add_option("--mains", ecg_mains, "Mains frequency to notch: 50, 60 or 0")
      ->check(CLI::IsMember({0.0, 50.0, 60.0}));

  std::string ecg_detect_file, ecg_detect_out;
  auto* ecg_detect_cmd =
      ecg_cmd->add_subcommand("detect", "Detect the beats and write them as WFDB annotations");
  ecg_detect_cmd->add_option("file", ecg_detect_file, "WFDB header (.hea) or DICOM ECG waveform")
      ->required();
  ecg_detect_cmd
      ->add_option("-o,--output", ecg_detect_out, "Annotation file to write (e.g. 100.qrs)")
      ->required();
  std::string ecg_render_file, ecg_render_out, ecg_layout = "3x4+II";
  auto* ecg_render_cmd =
      ecg_cmd->add_subcommand("render", "Draw an ECG as a PNG (25 mm/s, 10 mm/mV)");
  ecg_render_cmd->add_option("file", ecg_render_file, "WFDB header (.hea) or DICOM ECG waveform")
      ->required();
  ecg_render_cmd->add_option("-o,--output", ecg_render_out, "PNG file to write")->required();
  ecg_render_cmd->add_option("--layout", ecg_layout, "3x4+II (default), 3x4, 6x2 or 12x1");
  std::string ecg_lang = "en";
  ecg_render_cmd->add_option("--lang", ecg_lang, "Statements in en (default) or zh")
      ->check(CLI::IsMember({"en", "zh"}));

  EdgeCommands edge_commands;
  add_edge_commands(app, edge_commands);

  CLI11_PARSE(app, argc, argv);
  if (int rc = run_edge_commands(edge_commands); rc >= 0) return rc;

  if (*user_add_cmd) return user_add(user_flags);
  if (*user_list_cmd) return user_list(user_flags.data);
  if (*user_disable_cmd) return user_disable(user_flags.data, user_flags.username);
  if (*user_passwd_cmd) return user_passwd(user_flags.data, user_flags.username);
  if (*inst_add_cmd) return institution_add(inst_flags);
  if (*inst_list_cmd) return institution_list(inst_flags.data);
  if (*audit_verify_cmd) return audit_verify(audit_data);
  if (*db_copy_cmd) return copy_to_postgres(copy_from, copy_to);
  if (*backup_cmd) return backup_command(backup_data, backup_to, backup_link);
  if (*restore_cmd) return restore_command(backup_to, backup_data, backup_link);
  if (*fsck_cmd) return fsck_command(backup_data, fsck_quick);
  if (*ecg_eval_cmd) return ecg_eval(ecg_db, ecg_classes, ecg_af);
  if (*ecg_train_cmd) return ecg_train(ecg_train_db, ecg_train_out);
  if (*ecg_analyze_cmd) return ecg_analyze(ecg_file, ecg_age, ecg_sex, ecg_mains);
  if (*ecg_render_cmd) return ecg_render(ecg_render_file, ecg_render_out, ecg_layout, ecg_lang);
  if (*ecg_detect_cmd) return ecg_detect(ecg_detect_file, ecg_detect_out);

  if (*serve_cmd) return serve(serve_flags);
  if (*demo_cmd) return demo(demo_flags);
  if (*import_cmd) return import_files(import_flags);
  if (*slide_import_cmd) return pathology_import(slide_flags);
  if (*version_cmd) {
    std::printf("yilian %s\n", YILIAN_VERSION);
    return 0;
  }
  return 1;
}
