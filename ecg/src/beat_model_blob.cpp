// The trained beat model (ecg/model/beats.yml) built into the library as read-only data, so
// that the executable needs no model file beside it.
#include <string_view>

#ifndef YILIAN_BEAT_MODEL
#error "YILIAN_BEAT_MODEL must name the model file"
#endif

asm(".pushsection .rodata\n"
    ".balign 16\n"
    ".global yilian_beat_model_begin\n"
    "yilian_beat_model_begin:\n"
    ".incbin \"" YILIAN_BEAT_MODEL
    "\"\n"
    ".global yilian_beat_model_end\n"
    "yilian_beat_model_end:\n"
    ".byte 0\n"
    ".popsection\n");

extern "C" const char yilian_beat_model_begin[];
extern "C" const char yilian_beat_model_end[];

namespace yilian::ecg {

std::string_view builtin_beat_model_text() {
  return {yilian_beat_model_begin,
          static_cast<std::size_t>(yilian_beat_model_end - yilian_beat_model_begin)};
}

}  // namespace yilian::ecg
