#include "yilian/ecg/service/pipeline.h"

#include <spdlog/spdlog.h>

#include "yilian/ecg/analysis.h"
#include "yilian/ecg/dicom_waveform.h"
#include "yilian/ecg/service/rest.h"
#include "yilian/identity/policy.h"

namespace yilian::ecg::service {

using namespace yilian::pacs;  // NOLINT(google-build-using-namespace)

EcgPipeline::EcgPipeline(pacs::Index& index, storage::BlobStore& blobs, storage::DiskCache& cache,
                         reading::ReadingQueue& queue, identity::Auditor* auditor)
    : index_(index), blobs_(blobs), cache_(cache), queue_(queue), auditor_(auditor) {}

EcgPipeline::~EcgPipeline() { stop(); }

void EcgPipeline::start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { run(); });
}

void EcgPipeline::stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void EcgPipeline::studies_committed(const std::vector<std::string>& study_uids) {
  {
    std::lock_guard lock(mu_);
    for (const auto& s : study_uids) pending_.push_back(s);
  }
  cv_.notify_one();
}

void EcgPipeline::drain() {
  std::unique_lock lock(mu_);
  idle_cv_.wait(lock, [this] { return (pending_.empty() && !busy_) || stop_; });
}

EcgPipelineCounters EcgPipeline::counters() const {
  std::lock_guard lock(mu_);
  return counters_;
}

void EcgPipeline::run() {
  while (true) {
    std::string study;
    {
      std::unique_lock lock(mu_);
      busy_ = false;
      idle_cv_.notify_all();
      cv_.wait(lock, [this] { return stop_ || !pending_.empty(); });
      if (stop_) return;
      study = std::move(pending_.front());
      pending_.pop_front();
      busy_ = true;
    }
    analyse_study(study);
  }
}

void EcgPipeline::analyse_study(const std::string& study_uid) {
  auto detail = index_.get_study(study_uid);
  if (!detail.ok() || !detail->has_value()) return;
  if (!identity::is_ecg_study((*detail)->study.modalities)) return;
  bool analysed = false, emergency = false;
  for (const auto& series : (*detail)->series) {
    auto list = index_.series_instances(series.series_instance_uid);
    if (!list.ok()) continue;
    for (const auto& inst : *list) {
      const std::string key = ecg_analysis_cache_key(inst.sop_instance_uid);
      if (cache_.path(key)) continue;  // analysed already (a resend)
      auto rec = ecg::read_dicom_waveform(blobs_.blob_path(inst.blob_key));
      if (!rec.ok()) {  // an ECG study may also hold reports or PDFs
        std::lock_guard lock(mu_);
        ++counters_.unreadable;
        continue;
      }
      ecg::Analysis a = ecg::analyze(*rec, rec->patient);
      analysed = true;
      (void)cache_.put(key, ecg_analysis_json(inst.sop_instance_uid, *rec, a));
      bool stemi = false;
      std::string evidence;
      for (const auto& f : a.flags) {
        if (f.code == "suspected_stemi") {
          stemi = true;
          evidence = f.text + ": " + f.evidence;
        }
      }
      {
        std::lock_guard lock(mu_);
        ++counters_.analysed;
        if (stemi) ++counters_.suspected_stemi;
      }
      if (!stemi) continue;
      emergency = true;
      spdlog::warn("ECG {} of study {}: {}", inst.sop_instance_uid, study_uid, evidence);
      auto tasks = queue_.flag_emergency(study_uid, evidence);
      if (!tasks.ok()) {
        spdlog::error("cannot raise study {} to STAT: {}", study_uid, tasks.error().message);
      }
      if (auditor_) {
        identity::AuditEvent ev;
        ev.actor = "automated-analysis";
        ev.action = "ecg.suspected_stemi";
        ev.object_type = "instance";
        ev.object_id = inst.sop_instance_uid;
        ev.outcome = tasks.ok() ? "ok" : "failed";
        ev.detail = evidence;
        (void)auditor_->record(ev);
      }
    }
  }
  // An ECG is complete when it arrives: its task need not wait for the study's stable time.
  if (analysed && !emergency) {
    if (auto tasks = queue_.route_now(study_uid); !tasks.ok()) {
      spdlog::error("cannot route ECG study {}: {}", study_uid, tasks.error().message);
    }
  }
}

}  // namespace yilian::ecg::service
