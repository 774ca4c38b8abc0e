#include "pathology_cli.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <memory>

#include "cli_util.h"
#include "data_dir.h"
#include "yilian/identity/audit.h"
#include "yilian/pacs/ingest.h"

namespace yilian::app {
namespace {

namespace fs = std::filesystem;

int fail(const Error& e) {
  spdlog::error("{}", e.message);
  return 1;
}

}  // namespace

int pathology_import(const PathologyImportFlags& flags) {
  if (flags.data.empty() == flags.out.empty()) {
    spdlog::error("pathology import: give either --data (store) or --out (write files)");
    return 1;
  }
  pathology::ConvertOptions options;
  options.subject = flags.subject;
  options.microns_per_pixel = flags.microns_per_pixel;
  if (options.subject.institution_name.empty())
    options.subject.institution_name = flags.institution;
  const bool tty = ::isatty(STDERR_FILENO) == 1;
  if (tty) {
    options.progress = [](std::uint64_t done, std::uint64_t total) {
      show_progress(done, total, "tiles");
    };
  }

  std::unique_ptr<DataDir> dd;
  std::unique_ptr<pacs::Ingestor> ingestor;
  std::int64_t institution_id = 0;
  std::string key;  // of the instance being written into the data directory
  int written = 0;
  if (!flags.data.empty()) {
    auto opened = DataDir::open(flags.data);
    if (!opened.ok()) return fail(opened.error());
    dd = std::move(*opened);
    const std::string code = flags.institution.empty() ? "unknown" : flags.institution;
    auto inst = dd->index().ensure_institution(code, code == "unknown" ? "Unknown sender" : code);
    if (!inst.ok()) return fail(inst.error());
    institution_id = inst->id;
    ingestor =
        std::make_unique<pacs::Ingestor>(dd->index(), dd->blobs(), pacs::Ingestor::Options{});
    if (auto r = ingestor->recover(); !r.ok()) return fail(r.error());
    options.next_file = [&]() -> Result<fs::path> {
      key = dd->blobs().new_key();
      return dd->blobs().temp_path(key);
    };
    options.written = [&](const fs::path&, const pathology::ConvertedInstance&) -> Status {
      // Stored (validated, durable, indexed) before the next level is written.
      pacs::IngestOutcome o = ingestor->ingest(key, pacs::Sender{"", institution_id, {}}, {});
      if (o.status != pacs::IngestStatus::stored && o.status != pacs::IngestStatus::duplicate) {
        return make_error(Errc::invalid_argument, "the hub did not store a level: " + o.message);
      }
      return Status::Ok();
    };
  } else {
    std::error_code ec;
    fs::create_directories(flags.out, ec);
    if (ec) return fail(make_error(Errc::io, "cannot create " + flags.out.string()));
    options.next_file = [&]() -> Result<fs::path> {
      char name[32];
      std::snprintf(name, sizeof name, "slide-%03d.dcm", ++written);
      return flags.out / name;
    };
  }

  auto converted = pathology::convert_slide(flags.slide, options);
  if (tty) std::fprintf(stderr, "\n");
  if (ingestor) ingestor->shutdown();
  if (!converted.ok()) {
    if (!key.empty() && dd) (void)dd->blobs().remove_temp(key);
    return fail(converted.error());
  }
  std::uint64_t copied = 0, encoded = 0;
  for (const auto& i : converted->instances) {
    copied += i.tiles_copied;
    encoded += i.tiles_encoded;
    std::printf("%s %s %llux%llu, %llu tiles\n", pathology::slide_image_name(i.kind),
                i.sop_instance_uid.c_str(), static_cast<unsigned long long>(i.width),
                static_cast<unsigned long long>(i.height),
                static_cast<unsigned long long>(i.frames));
  }
  std::printf(
      "format: %s\nmicrons per pixel: %g\nstudy: %s\nseries: %s\n"
      "tiles copied: %llu\ntiles encoded: %llu\n",
      converted->format.c_str(), converted->microns_per_pixel,
      converted->study_instance_uid.c_str(), converted->series_instance_uid.c_str(),
      static_cast<unsigned long long>(copied), static_cast<unsigned long long>(encoded));
  if (dd) {
    identity::AuditEvent ev =
        cli_study_event(flags.institution, "pathology.import", converted->study_instance_uid);
    ev.detail = flags.slide.filename().string() + ": " +
                std::to_string(converted->instances.size()) + " instance(s)";
    if (Status s = dd->auditor().record(ev); !s) spdlog::error("audit: {}", s.error().message);
  }
  return 0;
}

}  // namespace yilian::app
