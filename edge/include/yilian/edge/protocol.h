// The edge-to-hub transfer protocol, free of I/O: tus 1.0 (core and creation) header values,
// and the bundle, the body of one upload: the instances of one study as a multipart/related
// body of application/dicom parts (the STOW-RS form), each part byte for byte the file the
// modality's object was stored as at the edge.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "yilian/common/result.h"

namespace yilian::edge {

inline constexpr std::string_view kTusVersion = "1.0.0";
// Largest upload the hub takes (one bundle) and largest PATCH body.
inline constexpr std::uint64_t kMaxUploadBytes = 256ull << 20;
inline constexpr std::uint64_t kMaxChunkBytes = 16ull << 20;

// A decimal header value (Upload-Offset, Upload-Length) in [0, max]; nullopt when it is not one.
std::optional<std::uint64_t> parse_size(std::string_view value, std::uint64_t max);

// Priors (GET /api/edge/v1/priors): a patient ID as the clinic's doctor typed it, exactly one
// (non-empty, at most 64 bytes of valid UTF-8, no control characters, none of the wildcard
// characters * ? \); and the largest study pulled whole (stored size; the edge writes it to a
// file).
bool plain_patient_id(std::string_view id);
inline constexpr std::uint64_t kMaxPriorBytes = 1ull << 30;

// Upload-Metadata: comma-separated "key base64(value)" pairs (a key alone has an empty value).
// Keys are ASCII without spaces or commas, at most 64; errors: invalid_argument.
Result<std::map<std::string, std::string>> parse_metadata(std::string_view header);
std::string format_metadata(const std::map<std::string, std::string>& pairs);

std::string base64_encode(std::string_view bytes);
std::optional<std::string> base64_decode(std::string_view text);

// The byte shuffle of 16-bit data before compression (as HDF5's and Blosc's shuffle filter):
// the even bytes of `bytes`, then the odd ones. A 16-bit image's high bytes, nearly constant,
// then compress apart from its noisy low bytes. An odd last byte stays last. unshuffle2 undoes
// shuffle2 for every input.
std::string shuffle2(std::string_view bytes);
std::string unshuffle2(std::string_view bytes);

// The bundle encodings of Upload-Metadata `encoding`: "" (as is), "zstd" (one zstd frame of
// the bundle), "zstd-shuffle2" (one zstd frame of a bundle whose parts are each shuffle2'd).
inline constexpr std::string_view kEncodingZstd = "zstd";
inline constexpr std::string_view kEncodingZstdShuffle2 = "zstd-shuffle2";

// Builds a bundle: start with a boundary (random, not found in any part: the caller checks
// with contains_boundary), add parts, then finish.
class BundleWriter {
 public:
  explicit BundleWriter(std::string boundary) : boundary_(std::move(boundary)) {}
  // The Content-Type the hub splits the bundle by.
  std::string content_type() const;
  // Headers of one application/dicom part; its bytes follow, then part_end().
  std::string part_head() const;
  static std::string_view part_end() { return "\r\n"; }
  std::string finish() const;
  const std::string& boundary() const { return boundary_; }

 private:
  std::string boundary_;
};

}  // namespace yilian::edge
