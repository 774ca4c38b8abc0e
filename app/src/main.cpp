// The yilian executable: the one place where modules are wired together.
#include <signal.h>
#include <unistd.h>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include <dcmtk/config/osconfig.h>
#include <dcmtk/oflog/oflog.h>
#include <libwebsockets.h>

#include "config.h"
#include "data_dir.h"
#include "http_server.h"
#include "yilian/pacs/dicom_server.h"
#include "yilian/pacs/ingest.h"
#include "yilian/pacs/rest.h"

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
  std::string aet;
  int max_associations = -1;
};

// Institutions from the config become rows (by code) and AE titles map to them.
Result<pacs::AeDirectory> build_ae_directory(storage::Index& index, const Config& cfg) {
  auto unknown = index.ensure_institution("unknown", "Unknown sender");
  if (!unknown.ok()) return unknown.error();
  pacs::AeDirectory aes(unknown->id, cfg.reject_unknown_ae);
  for (const InstitutionConfig& ic : cfg.institutions) {
    auto inst = index.ensure_institution(ic.code, ic.name.empty() ? ic.code : ic.name);
    if (!inst.ok()) return inst.error();
    for (const std::string& ae : ic.ae_titles) aes.add(ae, inst->id);
  }
  return aes;
}

int fail(const Error& e) {
  spdlog::error("{}", e.message);
  return 1;
}

int serve(const ServeFlags& flags) {
  Config cfg;
  if (!flags.config.empty()) {
    auto loaded = load_config(flags.config);
    if (!loaded.ok()) return fail(loaded.error());
    cfg = std::move(loaded).value();
  }
  if (flags.dicom_port >= 0) cfg.dicom_port = static_cast<std::uint16_t>(flags.dicom_port);
  if (flags.http_port >= 0) cfg.http_port = static_cast<std::uint16_t>(flags.http_port);
  if (!flags.aet.empty()) cfg.ae_title = flags.aet;
  if (flags.max_associations > 0)
    cfg.max_associations = static_cast<unsigned>(flags.max_associations);

  // Signals are taken by sigwait() below; every thread started from here inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto data = DataDir::open(flags.data);
  if (!data.ok()) return fail(data.error());
  DataDir& dd = **data;

  auto aes = build_ae_directory(dd.index(), cfg);
  if (!aes.ok()) return fail(aes.error());

  pacs::Ingestor ingestor(dd.index(), dd.blobs(), {});
  auto report = ingestor.recover();
  if (!report.ok()) return fail(report.error());
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
  pacs::DicomServer dicom(dopts, ingestor, *aes);
  if (Status s = dicom.start(); !s) return fail(s.error());

  http::Router router;
  router.add("GET", "/healthz", [&](const http::Request&) {
    auto c = ingestor.counters();
    nlohmann::json j = {{"status", "ok"},
                        {"version", YILIAN_VERSION},
                        {"ingest",
                         {{"stored", c.stored},
                          {"duplicates", c.duplicates},
                          {"conflicts", c.conflicts},
                          {"rejected", c.rejected},
                          {"failed", c.failed},
                          {"batches", c.batches}}}};
    return http::Response::json(200, j.dump());
  });
  pacs::register_study_routes(router, dd.index());
  HttpServer http_server(HttpServerOptions{cfg.http_port, cfg.http_bind, 64u << 20}, router);
  if (Status s = http_server.start(); !s) {
    dicom.stop();
    return fail(s.error());
  }
  spdlog::info("yilian {} serving: DICOM {} on port {}, HTTP on port {}, data in {}",
               YILIAN_VERSION, cfg.ae_title, cfg.dicom_port, cfg.http_port, flags.data.string());

  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("received signal {}, shutting down: finishing in-flight stores", sig);
  http_server.stop();
  dicom.stop();
  ingestor.shutdown();
  auto c = ingestor.counters();
  spdlog::info("stopped; this run stored {} instances ({} duplicates, {} rejected)", c.stored,
               c.duplicates, c.rejected);
  return 0;
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
  std::vector<std::pair<fs::path, std::string>> rejected;   // guarded by mu
  std::size_t imported = 0, duplicates = 0, conflicts = 0;  // guarded by mu

  auto progress = [&](std::size_t n) {
    if (!tty) return;
    constexpr int kWidth = 40;
    int filled = files.empty() ? kWidth : static_cast<int>(kWidth * n / files.size());
    std::fprintf(stderr, "\r[%.*s%*s] %zu/%zu files", filled,
                 "########################################", kWidth - filled, "", n, files.size());
    std::fflush(stderr);
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
      pacs::IngestOutcome o = ingestor.ingest_bytes(bytes, pacs::Sender{"", institution_id});
      {
        std::lock_guard lock(mu);
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

  std::printf("imported: %zu\nduplicates: %zu\nconflicts (kept separately): %zu\nrejected: %zu\n",
              imported, duplicates, conflicts, rejected.size());
  for (const auto& [path, why] : rejected) std::printf("  %s: %s\n", path.c_str(), why.c_str());
  return rejected.empty() ? 0 : 2;
}

}  // namespace
}  // namespace yilian::app

int main(int argc, char** argv) {
  using namespace yilian::app;
  auto logger = spdlog::stderr_color_mt("yilian");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  lws_set_log_level(LLL_ERR, nullptr);
  OFLog::configure(OFLogger::WARN_LOG_LEVEL);  // DCMTK logs every association at INFO
  // DCMTK as packaged leaves Nagle's algorithm on unless this is set when the network is
  // created; without it every C-STORE response waits for the delayed ACK (~40 ms).
  setenv("TCP_NODELAY", "1", 0);

  CLI::App app{"Yilian: the consortium's shared diagnostics hub"};
  app.require_subcommand(1);

  ServeFlags serve_flags;
  auto* serve_cmd = app.add_subcommand("serve", "Run the hub: DICOM, HTTP and WebSocket");
  serve_cmd->add_option("--data", serve_flags.data, "Data directory (index and files)")->required();
  serve_cmd->add_option("--config", serve_flags.config, "TOML configuration file")
      ->check(CLI::ExistingFile);
  serve_cmd->add_option("--dicom-port", serve_flags.dicom_port, "DICOM port (default 11112)")
      ->check(CLI::Range(1, 65535));
  serve_cmd->add_option("--http-port", serve_flags.http_port, "HTTP/WebSocket port (default 8080)")
      ->check(CLI::Range(1, 65535));
  serve_cmd->add_option("--aet", serve_flags.aet, "Our DICOM AE title (default YILIAN)");
  serve_cmd
      ->add_option("--max-associations", serve_flags.max_associations,
                   "Concurrent DICOM associations (default 16)")
      ->check(CLI::Range(1, 1024));

  ImportFlags import_flags;
  auto* import_cmd = app.add_subcommand("import", "Import DICOM files and folders into --data");
  import_cmd->add_option("--data", import_flags.data, "Data directory")->required();
  import_cmd->add_option("--institution", import_flags.institution,
                         "Institution code to file the studies under (default: unknown)");
  import_cmd->add_option("--threads", import_flags.threads, "Parallel readers (default 4)")
      ->check(CLI::Range(1, 64));
  import_cmd->add_option("paths", import_flags.paths, "Files or folders")->required();

  auto* version_cmd = app.add_subcommand("version", "Print the version");

  CLI11_PARSE(app, argc, argv);

  if (*serve_cmd) return serve(serve_flags);
  if (*import_cmd) return import_files(import_flags);
  if (*version_cmd) {
    std::printf("yilian %s\n", YILIAN_VERSION);
    return 0;
  }
  return 1;
}
