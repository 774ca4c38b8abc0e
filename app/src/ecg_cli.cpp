#include "ecg_cli.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <vector>

#include "yilian/ecg/beat_compare.h"
#include "yilian/ecg/qrs.h"
#include "yilian/ecg/wfdb.h"

namespace yilian::app {

int ecg_eval(const std::string& db) {
  std::vector<std::filesystem::path> headers;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(db, ec)) {
    const auto& p = e.path();
    if (p.extension() == ".hea" &&
        std::filesystem::exists(p.parent_path() / (p.stem().string() + ".atr")))
      headers.push_back(p);
  }
  if (ec || headers.empty()) {
    std::fprintf(stderr, "error: no WFDB records with .atr annotations in %s\n", db.c_str());
    return 1;
  }
  std::sort(headers.begin(), headers.end());
  ecg::BeatMatch gross;
  std::printf("%-8s %8s %8s %6s %6s %6s\n", "record", "Se%", "+P%", "TP", "FN", "FP");
  for (const auto& h : headers) {
    auto rec = ecg::read_wfdb(h);
    if (!rec.ok()) {
      std::fprintf(stderr, "error: %s: %s\n", h.string().c_str(), rec.error().message.c_str());
      return 1;
    }
    auto ref = ecg::read_wfdb_annotations(h.parent_path() / (h.stem().string() + ".atr"));
    if (!ref.ok()) {
      std::fprintf(stderr, "error: %s\n", ref.error().message.c_str());
      return 1;
    }
    auto beats = ecg::detect_qrs(*rec);
    ecg::BeatMatch m = ecg::compare_beats(*ref, beats, rec->sampling_hz);
    gross += m;
    std::printf("%-8s %8.2f %8.2f %6lld %6lld %6lld\n", rec->id.c_str(), m.sensitivity(),
                m.positive_predictivity(), static_cast<long long>(m.tp),
                static_cast<long long>(m.fn), static_cast<long long>(m.fp));
  }
  std::printf("gross: Se=%.2f +P=%.2f TP=%lld FN=%lld FP=%lld\n", gross.sensitivity(),
              gross.positive_predictivity(), static_cast<long long>(gross.tp),
              static_cast<long long>(gross.fn), static_cast<long long>(gross.fp));
  return 0;
}

}  // namespace yilian::app
