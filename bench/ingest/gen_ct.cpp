// Writes a synthetic CT series (default 400 slices of 512x512, 16-bit: ~0.5 MB each).
#include <CLI/CLI.hpp>
#include <cstdio>

#include "synthetic.h"
#include "synthetic_ecg.h"

int main(int argc, char** argv) {
  CLI::App app{"Generate a synthetic CT series for benchmarks"};
  std::string out;
  int count = 400, size = 512, series = 1;
  double noise = 0;
  std::string stemi_ecg;
  app.add_option("--out", out, "Output directory")->required();
  app.add_option("--count", count, "Instances per series")->check(CLI::Range(1, 100000));
  app.add_option("--size", size, "Rows and columns")->check(CLI::Range(8, 4096));
  app.add_option("--series", series, "Number of series (one study)")->check(CLI::Range(1, 100));
  app.add_option("--noise", noise,
                 "Head phantom with Gaussian noise of this SD in HU (0: a smooth gradient)")
      ->check(CLI::Range(0.0, 500.0));
  app.add_option("--stemi-ecg", stemi_ecg,
                 "Also write a 12-lead ECG with a suspected STEMI to this file");
  CLI11_PARSE(app, argc, argv);
  if (!stemi_ecg.empty() &&
      yilian::testing::write_stemi_ecg(stemi_ecg, "TA-STEMI", "Li^Hua").empty()) {
    std::fprintf(stderr, "cannot write %s\n", stemi_ecg.c_str());
    return 1;
  }
  std::string study = yilian::testing::new_uid();
  for (int s = 0; s < series; ++s) {
    yilian::testing::CtSeriesSpec spec;
    spec.study_uid = study;
    spec.series_number = s + 1;
    spec.count = count;
    spec.rows = spec.columns = size;
    spec.noise_hu = noise;
    auto r = yilian::testing::write_ct_series(
        std::filesystem::path(out) / ("series" + std::to_string(s + 1)), spec);
    if (!r.ok()) {
      std::fprintf(stderr, "%s\n", r.error().message.c_str());
      return 1;
    }
  }
  std::printf("%s\n", study.c_str());
  return 0;
}
