// Renders one frame of a stored DICOM object to PNG or JPEG for viewers on thin links.
//
// Grey-scale: the modality LUT (rescale slope/intercept or a LUT), then the VOI window —
// explicit, else the object's first window, else its VOI LUT, else the frame's min/max —
// with the linear function of PS3.3 C.11.2.1.2; MONOCHROME1 comes out inverted. Colour
// (RGB, YBR, palette) is converted to RGB. Compressed transfer syntaxes that DCMTK decodes
// (JPEG baseline/extended/lossless, JPEG-LS, RLE) are supported, and JPEG 2000 through
// OpenJPEG.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "yilian/common/result.h"

class DcmFileFormat;

namespace yilian::viewer {

struct Window {
  double center = 0;
  double width = 1;
};

// The reading room's CT window presets (centre, width in HU): brain, subdural, stroke, lung,
// mediastinum, bone, abdomen, liver. nullopt for an unknown name.
std::optional<Window> window_preset(std::string_view name);

struct RenderOptions {
  std::uint32_t frame = 0;       // 0-based
  std::optional<Window> window;  // in output (modality) units, e.g. HU for CT
  int max_width = 0;             // fit within this box keeping the aspect ratio; 0: any
  int max_height = 0;
  bool jpeg = true;  // else PNG
  int quality = 90;  // JPEG quality 1..100
};

struct RenderedImage {
  std::string bytes;
  std::string content_type;  // image/jpeg or image/png
  int width = 0, height = 0;
};

// Registers DCMTK's decoders (JPEG, JPEG-LS, RLE) and quiets FFmpeg's logging. Call once at
// start-up, before rendering.
void register_codecs();
void unregister_codecs();

// `file` is a Part 10 file. Errors: not_found (no such frame), invalid_argument (no pixel
// data, or a format that cannot be rendered).
Result<RenderedImage> render_frame(const std::filesystem::path& file, const RenderOptions& opts);

// Whether a transfer syntax is one of the JPEG 2000 ones (which DCMTK cannot decode).
bool is_jpeg2000(const std::string& transfer_syntax_uid);
// The object in `file` with its pixel data decoded to native pixels (explicit VR little endian),
// every frame: JPEG 2000 with OpenJPEG, JPEG, JPEG-LS and RLE with DCMTK's decoders; a native
// object comes back as it is. Errors: io, invalid_argument (a syntax nothing here decodes).
Result<std::unique_ptr<DcmFileFormat>> decode_to_native(const std::filesystem::path& file);
// The lossless syntaxes an object can be transcoded into: explicit and implicit VR little
// endian, JPEG-LS lossless, JPEG lossless (process 14, SV1), RLE lossless.
bool lossless_target(const std::string& transfer_syntax_uid);
// The object in `file` decoded (decode_to_native) and, for a compressed target, encoded again
// losslessly: every pixel value as stored. Errors: invalid_argument (not a lossless target, or
// pixels the encoder cannot take), io.
Result<std::unique_ptr<DcmFileFormat>> transcode(const std::filesystem::path& file,
                                                 const std::string& transfer_syntax_uid);
// `ff` as Part 10 bytes in a transfer syntax its data set can be written in (the File Meta
// Information updated). Errors: invalid_argument (not in that syntax).
Result<std::string> part10_bytes(DcmFileFormat& ff, const std::string& transfer_syntax_uid);

}  // namespace yilian::viewer
