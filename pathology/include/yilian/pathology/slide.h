// A whole-slide image as the hub serves it: the VL Whole Slide Microscopy instances of one
// series (one or several per pyramid level, TILED_FULL or TILED_SPARSE, and the label,
// overview and thumbnail images) put together into levels of tiles. Reading an instance
// takes its attributes only (DCMTK, values not loaded); putting a slide together is pure.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "yilian/common/result.h"

namespace yilian::pathology {

inline constexpr const char* kWsiStorage = "1.2.840.10008.5.1.4.1.1.77.1.6";

enum class SlideImage { volume, label, overview, thumbnail };
const char* slide_image_name(SlideImage kind);

// One stored VL Whole Slide Microscopy instance, by its attributes.
struct WsiInstance {
  std::string sop_instance_uid;
  std::string blob_key;  // filled by the caller (the index's key of the stored file)
  SlideImage kind = SlideImage::volume;
  std::uint32_t tile_columns = 0, tile_rows = 0;    // Columns, Rows
  std::uint64_t total_columns = 0, total_rows = 0;  // Total Pixel Matrix Columns/Rows
  std::uint64_t frames = 1;
  bool sparse = false;  // TILED_SPARSE: each frame's position is given
  // Per frame of a sparse instance: its tile's column and row (0-based, tile units); frames on
  // another focal plane or optical path than the first are left out (UINT32_MAX).
  std::vector<std::pair<std::uint32_t, std::uint32_t>> positions;
  double row_spacing_mm = 0, column_spacing_mm = 0;  // 0: not given
  std::string container_id;                          // the slide's identifier
  std::string photometric, transfer_syntax_uid;
};

// The attributes of a stored instance. invalid_argument when it is not a whole-slide image
// or its tiling is inconsistent (sizes of 0, positions off the matrix).
Result<WsiInstance> read_wsi_instance(const std::filesystem::path& file);

// Where a tile is: which instance (index into Slide::instances) and which frame (0-based).
struct TileRef {
  std::size_t instance = 0;
  std::uint32_t frame = 0;
};

struct SlideLevel {
  std::uint64_t width = 0, height = 0;  // pixels
  std::uint32_t tile_width = 0, tile_height = 0;
  std::uint32_t tiles_across = 0, tiles_down = 0;
  double row_spacing_mm = 0, column_spacing_mm = 0;
  std::vector<std::size_t> instances;  // into Slide::instances
  // A TILED_FULL instance of the level (into Slide::instances): tile t (row * tiles_across +
  // column) is its frame t, for the first `full_frames` tiles; nothing is listed for them.
  std::optional<std::size_t> full;
  std::uint64_t full_frames = 0;
  // Tiles that sparse instances give, by row * tiles_across + column (beyond the full
  // instance's); absent ones are not in it.
  std::unordered_map<std::uint64_t, TileRef> tiles;

  // How many tiles the level has.
  std::uint64_t present() const { return full_frames + tiles.size(); }
};

struct Slide {
  std::vector<WsiInstance> instances;
  std::vector<SlideLevel> levels;                         // the largest (finest) first
  std::optional<std::size_t> label, overview, thumbnail;  // into instances
  std::string container_id;

  // The tile at (column, row) of `level`; nullopt off the level or where a sparse level has
  // no tile.
  std::optional<TileRef> tile(std::size_t level, std::uint32_t column, std::uint32_t row) const;
};

// Puts instances of one series together: volume instances of the same matrix and tile size
// are one level (a level split into several instances is merged; a TILED_FULL instance gives
// the tiles it has frames for, and otherwise where two give the same tile, the first wins).
// invalid_argument when there is no volume image.
Result<Slide> assemble_slide(std::vector<WsiInstance> instances);

}  // namespace yilian::pathology
