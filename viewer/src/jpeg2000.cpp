#include "jpeg2000.h"

#include <openjpeg.h>

#include <algorithm>
#include <cstring>
#include <memory>

namespace yilian::viewer {
namespace {

struct Source {
  std::string_view bits;
  std::size_t pos = 0;
};

OPJ_SIZE_T read_fn(void* buffer, OPJ_SIZE_T n, void* user) {
  auto* s = static_cast<Source*>(user);
  if (s->pos >= s->bits.size()) return static_cast<OPJ_SIZE_T>(-1);
  n = std::min<OPJ_SIZE_T>(n, s->bits.size() - s->pos);
  std::memcpy(buffer, s->bits.data() + s->pos, n);
  s->pos += n;
  return n;
}

OPJ_OFF_T skip_fn(OPJ_OFF_T n, void* user) {
  auto* s = static_cast<Source*>(user);
  auto left = static_cast<OPJ_OFF_T>(s->bits.size() - s->pos);
  n = std::clamp<OPJ_OFF_T>(n, -static_cast<OPJ_OFF_T>(s->pos), left);
  s->pos = static_cast<std::size_t>(static_cast<OPJ_OFF_T>(s->pos) + n);
  return n;
}

OPJ_BOOL seek_fn(OPJ_OFF_T n, void* user) {
  auto* s = static_cast<Source*>(user);
  if (n < 0 || static_cast<std::size_t>(n) > s->bits.size()) return OPJ_FALSE;
  s->pos = static_cast<std::size_t>(n);
  return OPJ_TRUE;
}

void quiet(const char*, void*) {}

struct CodecDeleter {
  void operator()(opj_codec_t* c) const { opj_destroy_codec(c); }
};
struct StreamDeleter {
  void operator()(opj_stream_t* s) const { opj_stream_destroy(s); }
};
struct ImageDeleter {
  void operator()(opj_image_t* i) const { opj_image_destroy(i); }
};

Error bad(const char* what) {
  return make_error(Errc::invalid_argument, std::string("JPEG 2000: ") + what);
}

}  // namespace

Result<DecodedFrame> decode_jpeg2000(std::string_view bits) {
  static constexpr unsigned char kJp2Signature[] = {0, 0, 0, 0x0C, 'j', 'P'};
  const bool jp2 = bits.size() >= sizeof kJp2Signature &&
                   std::memcmp(bits.data(), kJp2Signature, sizeof kJp2Signature) == 0;
  std::unique_ptr<opj_codec_t, CodecDeleter> codec(
      opj_create_decompress(jp2 ? OPJ_CODEC_JP2 : OPJ_CODEC_J2K));
  if (!codec) return bad("no decoder");
  opj_set_error_handler(codec.get(), quiet, nullptr);
  opj_set_warning_handler(codec.get(), quiet, nullptr);
  opj_set_info_handler(codec.get(), quiet, nullptr);
  opj_dparameters_t params;
  opj_set_default_decoder_parameters(&params);
  if (!opj_setup_decoder(codec.get(), &params)) return bad("decoder set-up failed");

  Source source{bits, 0};
  std::unique_ptr<opj_stream_t, StreamDeleter> stream(opj_stream_default_create(OPJ_TRUE));
  if (!stream) return bad("no stream");
  opj_stream_set_read_function(stream.get(), read_fn);
  opj_stream_set_skip_function(stream.get(), skip_fn);
  opj_stream_set_seek_function(stream.get(), seek_fn);
  opj_stream_set_user_data(stream.get(), &source, nullptr);
  opj_stream_set_user_data_length(stream.get(), bits.size());

  opj_image_t* raw = nullptr;
  if (!opj_read_header(stream.get(), codec.get(), &raw)) return bad("unreadable header");
  std::unique_ptr<opj_image_t, ImageDeleter> image(raw);
  if (!opj_decode(codec.get(), stream.get(), image.get()) ||
      !opj_end_decompress(codec.get(), stream.get())) {
    return bad("the codestream cannot be decoded");
  }
  const unsigned n = image->numcomps;
  if (n != 1 && n != 3) return bad("only 1 or 3 components are supported");
  const opj_image_comp_t& c0 = image->comps[0];
  for (unsigned i = 0; i < n; ++i) {
    const opj_image_comp_t& c = image->comps[i];
    if (!c.data || c.w != c0.w || c.h != c0.h || c.dx != 1 || c.dy != 1) {
      return bad("subsampled components are not supported");
    }
  }
  DecodedFrame out;
  out.width = static_cast<int>(c0.w);
  out.height = static_cast<int>(c0.h);
  out.components = static_cast<int>(n);
  out.wide = c0.prec > 8;
  const std::size_t samples = static_cast<std::size_t>(c0.w) * c0.h;
  out.pixels.resize(samples * n * (out.wide ? 2 : 1));
  auto* dst = reinterpret_cast<unsigned char*>(out.pixels.data());
  for (std::size_t i = 0; i < samples; ++i) {
    for (unsigned k = 0; k < n; ++k) {
      const std::int32_t v = image->comps[k].data[i];
      if (out.wide) {
        const auto u = static_cast<std::uint16_t>(v);  // two's complement when signed
        *dst++ = static_cast<unsigned char>(u & 0xFF);
        *dst++ = static_cast<unsigned char>(u >> 8);
      } else {
        *dst++ = static_cast<unsigned char>(v);
      }
    }
  }
  return out;
}

}  // namespace yilian::viewer
