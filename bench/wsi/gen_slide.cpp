// Writes a synthetic scanner slide for the whole-slide benchmark: an Aperio-style pyramid of
// JPEG tiles with texture, so that tiles weigh what tissue tiles do.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "slides.h"

int main(int argc, char** argv) {
  CLI::App app{"Synthetic whole slide (SVS layout)"};
  yilian::test::SlideSpec spec;
  std::string out;
  app.add_option("--out", out, "The slide file to write")->required();
  app.add_option("--width", spec.width, "Full-resolution width in pixels");
  app.add_option("--height", spec.height, "Full-resolution height in pixels");
  app.add_option("--levels", spec.levels, "Pyramid levels, each half the one before");
  app.add_option("--noise", spec.noise, "Texture amplitude (0: flat tiles)");
  app.add_option("--quality", spec.jpeg_quality, "JPEG quality");
  CLI11_PARSE(app, argc, argv);
  if (!yilian::test::write_slide(out, spec)) return 1;
  std::printf("%s\n", out.c_str());
  return 0;
}
