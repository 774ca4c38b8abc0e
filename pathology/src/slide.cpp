#include "yilian/pathology/slide.h"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcitem.h>
#include <dcmtk/dcmdata/dcsequen.h>
#include <dcmtk/dcmdata/dcxfer.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <tuple>

#include "yilian/common/text.h"

namespace yilian::pathology {
namespace {

constexpr std::uint32_t kOff = std::numeric_limits<std::uint32_t>::max();

Error bad(std::string why) { return make_error(Errc::invalid_argument, std::move(why)); }

std::string str(DcmItem& item, const DcmTagKey& tag, unsigned long pos = 0) {
  OFString v;
  if (item.findAndGetOFString(tag, v, pos).bad()) return {};
  return v.c_str();
}

std::uint64_t number(DcmItem& item, const DcmTagKey& tag) {
  Uint32 v32 = 0;
  if (item.findAndGetUint32(tag, v32).good()) return v32;
  Uint16 v16 = 0;
  if (item.findAndGetUint16(tag, v16).good()) return v16;
  Sint32 s = 0;
  if (item.findAndGetSint32(tag, s).good() && s > 0) return static_cast<std::uint64_t>(s);
  return 0;
}

// The first item of sequence `tag` in `item`, or null.
DcmItem* first_item(DcmItem& item, const DcmTagKey& tag) {
  DcmItem* out = nullptr;
  if (item.findAndGetSequenceItem(tag, out, 0).bad()) return nullptr;
  return out;
}

}  // namespace

const char* slide_image_name(SlideImage kind) {
  switch (kind) {
    case SlideImage::volume:
      return "volume";
    case SlideImage::label:
      return "label";
    case SlideImage::overview:
      return "overview";
    case SlideImage::thumbnail:
      return "thumbnail";
  }
  return "volume";
}

Result<WsiInstance> read_wsi_instance(const std::filesystem::path& file) {
  DcmFileFormat ff;
  OFCondition c = ff.loadFile(file.c_str(), EXS_Unknown, EGL_noChange, 256);
  if (c.bad()) return make_error(Errc::io, std::string("cannot read the slide: ") + c.text());
  DcmDataset& ds = *ff.getDataset();
  if (str(ds, DCM_SOPClassUID) != kWsiStorage) return bad("not a whole-slide microscopy image");
  WsiInstance w;
  w.sop_instance_uid = str(ds, DCM_SOPInstanceUID);
  w.transfer_syntax_uid = DcmXfer(ds.getOriginalXfer()).getXferID();
  w.photometric = str(ds, DCM_PhotometricInterpretation);
  const std::string flavour = str(ds, DCM_ImageType, 2);
  w.kind = flavour == "LABEL"       ? SlideImage::label
           : flavour == "OVERVIEW"  ? SlideImage::overview
           : flavour == "THUMBNAIL" ? SlideImage::thumbnail
                                    : SlideImage::volume;
  w.tile_columns = static_cast<std::uint32_t>(number(ds, DCM_Columns));
  w.tile_rows = static_cast<std::uint32_t>(number(ds, DCM_Rows));
  w.total_columns = number(ds, DCM_TotalPixelMatrixColumns);
  w.total_rows = number(ds, DCM_TotalPixelMatrixRows);
  if (w.total_columns == 0) w.total_columns = w.tile_columns;  // a one-frame label or overview
  if (w.total_rows == 0) w.total_rows = w.tile_rows;
  w.frames = std::max<std::uint64_t>(number(ds, DCM_NumberOfFrames), 1);
  // Outside text: shown and put into JSON, so valid UTF-8 of a sane length whatever was sent.
  w.container_id = clip_utf8(str(ds, DCM_ContainerIdentifier), 256);
  if (w.tile_columns == 0 || w.tile_rows == 0) return bad("the slide's tiles have no size");
  if (w.total_columns > (1ull << 24) || w.total_rows > (1ull << 24)) {
    return bad("the slide's matrix is larger than any scanner makes");
  }
  // TILED_SPARSE gives each frame's position; so do converters that predate the attribute
  // (Orthanc's WSI dicomizer 1.1 writes positions and no organisation type).
  const std::string organisation = str(ds, DCM_DimensionOrganizationType);
  DcmSequenceOfItems* per_frame = nullptr;
  const bool positioned =
      ds.findAndGetSequence(DCM_PerFrameFunctionalGroupsSequence, per_frame).good() && per_frame &&
      per_frame->card() > 0 && per_frame->getItem(0) &&
      first_item(*per_frame->getItem(0), DCM_PlanePositionSlideSequence) != nullptr;
  w.sparse = organisation == "TILED_SPARSE" || (organisation != "TILED_FULL" && positioned);

  if (DcmItem* shared = first_item(ds, DCM_SharedFunctionalGroupsSequence)) {
    if (DcmItem* measures = first_item(*shared, DCM_PixelMeasuresSequence)) {
      Float64 r = 0, col = 0;
      if (measures->findAndGetFloat64(DCM_PixelSpacing, r, 0).good() &&
          measures->findAndGetFloat64(DCM_PixelSpacing, col, 1).good() && r > 0 && col > 0 &&
          std::isfinite(r) && std::isfinite(col)) {
        w.row_spacing_mm = r;
        w.column_spacing_mm = col;
      }
    }
  }
  const std::uint64_t across = (w.total_columns + w.tile_columns - 1) / w.tile_columns;
  const std::uint64_t down = (w.total_rows + w.tile_rows - 1) / w.tile_rows;
  if (w.sparse) {
    if (!per_frame || per_frame->card() != w.frames) {
      return bad("a TILED_SPARSE slide without one position per frame");
    }
    w.positions.assign(w.frames, {kOff, kOff});
    std::string first_path;
    Float64 first_z = 0;
    for (unsigned long k = 0; k < per_frame->card(); ++k) {
      DcmItem* item = per_frame->getItem(k);
      DcmItem* pos = item ? first_item(*item, DCM_PlanePositionSlideSequence) : nullptr;
      if (!pos) return bad("a frame of a TILED_SPARSE slide has no position");
      Sint32 col = 0, row = 0;
      if (pos->findAndGetSint32(DCM_ColumnPositionInTotalImagePixelMatrix, col).bad() ||
          pos->findAndGetSint32(DCM_RowPositionInTotalImagePixelMatrix, row).bad() || col < 1 ||
          row < 1 || static_cast<std::uint64_t>(col) > w.total_columns ||
          static_cast<std::uint64_t>(row) > w.total_rows) {
        return bad("a frame's position lies off the slide's matrix");
      }
      // Frames of another optical path or focal plane than the first frame's are not tiles
      // of this level's first plane.
      std::string path_id;
      if (DcmItem* path = first_item(*item, DCM_OpticalPathIdentificationSequence)) {
        path_id = str(*path, DCM_OpticalPathIdentifier);
      }
      Float64 z = 0;
      (void)pos->findAndGetFloat64(DCM_ZOffsetInSlideCoordinateSystem, z);
      if (k == 0) {
        first_path = path_id;
        first_z = z;
      } else if (path_id != first_path || z != first_z) {
        continue;
      }
      w.positions[k] = {static_cast<std::uint32_t>((col - 1) / w.tile_columns),
                        static_cast<std::uint32_t>((row - 1) / w.tile_rows)};
    }
  } else if (w.kind == SlideImage::volume && w.frames < across * down) {
    return bad("a TILED_FULL slide with fewer frames than tiles");
  }
  return w;
}

std::optional<TileRef> Slide::tile(std::size_t level, std::uint32_t column,
                                   std::uint32_t row) const {
  if (level >= levels.size()) return std::nullopt;
  const SlideLevel& l = levels[level];
  if (column >= l.tiles_across || row >= l.tiles_down) return std::nullopt;
  const std::uint64_t t = std::uint64_t{row} * l.tiles_across + column;
  if (l.full && t < l.full_frames) return TileRef{*l.full, static_cast<std::uint32_t>(t)};
  auto it = l.tiles.find(t);
  if (it == l.tiles.end()) return std::nullopt;
  return it->second;
}

Result<Slide> assemble_slide(std::vector<WsiInstance> instances) {
  Slide slide;
  slide.instances = std::move(instances);
  // Volume instances grouped by matrix and tile size, largest matrix first.
  std::map<std::tuple<std::uint64_t, std::uint64_t, std::uint32_t, std::uint32_t>,
           std::vector<std::size_t>, std::greater<>>
      groups;
  for (std::size_t i = 0; i < slide.instances.size(); ++i) {
    const WsiInstance& w = slide.instances[i];
    if (slide.container_id.empty()) slide.container_id = w.container_id;
    switch (w.kind) {
      case SlideImage::label:
        if (!slide.label) slide.label = i;
        continue;
      case SlideImage::overview:
        if (!slide.overview) slide.overview = i;
        continue;
      case SlideImage::thumbnail:
        if (!slide.thumbnail) slide.thumbnail = i;
        continue;
      case SlideImage::volume:
        break;
    }
    groups[{w.total_columns, w.total_rows, w.tile_columns, w.tile_rows}].push_back(i);
  }
  if (groups.empty()) return bad("the series holds no whole-slide volume image");
  for (const auto& [key, members] : groups) {
    SlideLevel l;
    std::tie(l.width, l.height, l.tile_width, l.tile_height) = key;
    l.tiles_across = static_cast<std::uint32_t>((l.width + l.tile_width - 1) / l.tile_width);
    l.tiles_down = static_cast<std::uint32_t>((l.height + l.tile_height - 1) / l.tile_height);
    l.instances = members;
    for (std::size_t i : members) {
      const WsiInstance& w = slide.instances[i];
      if (l.row_spacing_mm == 0) {
        l.row_spacing_mm = w.row_spacing_mm;
        l.column_spacing_mm = w.column_spacing_mm;
      }
      if (!w.sparse && !l.full) {
        l.full = i;
        // Number of Frames is an IS: no object holds more than 2^31 - 1.
        l.full_frames = std::min(
            {std::uint64_t{l.tiles_across} * l.tiles_down, w.frames, std::uint64_t{0x7FFFFFFF}});
      }
    }
    for (std::size_t i : members) {
      const WsiInstance& w = slide.instances[i];
      if (!w.sparse) continue;
      for (std::uint32_t f = 0; f < w.positions.size(); ++f) {
        const auto [col, row] = w.positions[f];
        const std::uint64_t t = std::uint64_t{row} * l.tiles_across + col;
        if (col == kOff || t < l.full_frames) continue;
        l.tiles.try_emplace(t, TileRef{i, f});
      }
    }
    slide.levels.push_back(std::move(l));
  }
  // Levels whose spacing was not given: from the finest level's by their size ratio.
  const SlideLevel& base = slide.levels.front();
  for (SlideLevel& l : slide.levels) {
    if (l.row_spacing_mm == 0 && base.row_spacing_mm > 0) {
      l.row_spacing_mm = base.row_spacing_mm * static_cast<double>(base.height) / l.height;
      l.column_spacing_mm = base.column_spacing_mm * static_cast<double>(base.width) / l.width;
    }
  }
  return slide;
}

}  // namespace yilian::pathology
