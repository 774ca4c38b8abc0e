// Writes a synthetic archive for the DICOMweb benchmark: N single-instance studies (8x8
// pixels) of N/2 patients with common Chinese surnames (pinyin), study dates over seven
// years and mixed modalities, spread over several folders for parallel sending; and one
// 512x512 CT series for rendering. Deterministic for a given --seed.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <random>

#include "synthetic.h"

int main(int argc, char** argv) {
  CLI::App app{"Generate the DICOMweb benchmark archive"};
  std::string out;
  int studies = 100000, folders = 4, ct_count = 50;
  unsigned seed = 20261122;
  app.add_option("--out", out, "Output directory")->required();
  app.add_option("--studies", studies, "Number of small studies")->check(CLI::Range(1, 10000000));
  app.add_option("--folders", folders, "Folders to spread them over")->check(CLI::Range(1, 64));
  app.add_option("--ct", ct_count, "Slices of the 512x512 CT series")->check(CLI::Range(1, 1000));
  app.add_option("--seed", seed, "Random seed");
  CLI11_PARSE(app, argc, argv);

  static const char* kSurnames[] = {"WANG", "LI",  "ZHANG", "LIU", "CHEN", "YANG", "HUANG",
                                    "ZHAO", "WU",  "ZHOU",  "XU",  "SUN",  "MA",   "ZHU",
                                    "HU",   "GUO", "HE",    "LIN", "GAO",  "LUO"};
  static const char* kGiven[] = {"WEI",   "FANG", "NA",   "XIUYING", "MIN", "JING", "LEI",
                                 "QIANG", "JUN",  "YANG", "YONG",    "YAN", "JIE",  "TAO"};
  static const char* kModalities[] = {"CT", "DX", "US", "MR", "CR", "CT", "DX", "US"};
  std::mt19937 rng(seed);
  for (int i = 0; i < studies; ++i) {
    yilian::testing::CtSeriesSpec spec;
    const int patient = i / 2;
    std::mt19937 prng(static_cast<unsigned>(patient) * 2654435761u + seed);
    char id[16];
    std::snprintf(id, sizeof id, "P%07d", patient);
    spec.patient_id = id;
    spec.patient_name = std::string(kSurnames[prng() % 20]) + "^" + kGiven[prng() % 14];
    std::uniform_int_distribution<int> day(0, 7 * 365 - 1);
    int d = day(rng);
    int year = 2019 + d / 365, month = 1 + (d % 365) / 31, dom = 1 + (d % 365) % 31 % 28;
    char date[32];
    std::snprintf(date, sizeof date, "%04d%02d%02d", year, month > 12 ? 12 : month, dom);
    spec.study_date = date;
    spec.modality = kModalities[rng() % 8];
    spec.accession = "A" + std::to_string(i);
    spec.count = 1;
    spec.rows = spec.columns = 8;
    auto r = yilian::testing::write_ct_series(
        std::filesystem::path(out) / ("f" + std::to_string(i % folders)) / std::to_string(i), spec);
    if (!r.ok()) {
      std::fprintf(stderr, "%s\n", r.error().message.c_str());
      return 1;
    }
  }
  yilian::testing::CtSeriesSpec ct;
  ct.patient_id = "RENDER01";
  ct.patient_name = "RENDER^CT";
  ct.count = ct_count;
  ct.rows = ct.columns = 512;
  auto r = yilian::testing::write_ct_series(std::filesystem::path(out) / "ct512", ct);
  if (!r.ok()) {
    std::fprintf(stderr, "%s\n", r.error().message.c_str());
    return 1;
  }
  std::printf("%s %s\n", r->study_uid.c_str(), r->series_uid.c_str());
  return 0;
}
