#include "yilian/pathology/convert.h"
#include "yilian/pacs/dicom_file.h"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcitem.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <lcms2.h>
#include <openslide/openslide.h>
#include <tiffio.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <memory>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "yilian/pathology/jpeg.h"

namespace yilian::pathology {
namespace {

using pacs::new_uid;

Error bad(std::string why) { return make_error(Errc::invalid_argument, std::move(why)); }

// libtiff's messages for this file, kept to explain a failure instead of printed.
int keep_tiff_message(TIFF*, void* user, const char* module, const char* fmt, va_list ap) {
  char buf[512];
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  auto* last = static_cast<std::string*>(user);
  *last = std::string(module ? module : "libtiff") + ": " + buf;
  return 1;
}
int ignore_tiff_warning(TIFF*, void*, const char*, const char*, va_list) { return 1; }

struct TiffCloser {
  void operator()(TIFF* t) const { TIFFClose(t); }
};
struct SlideCloser {
  void operator()(openslide_t* s) const { openslide_close(s); }
};

struct TiffLevel {
  tdir_t directory = 0;
  std::uint32_t width = 0, height = 0, tile_width = 0, tile_height = 0;
  std::uint16_t compression = 0, photometric = 0, samples = 0, bits = 0;
  std::uint64_t stored_bytes = 0;  // the tiles as stored
};

// The sRGB profile, the colour space of the tiles (the slide's own ICC profile when it has
// one is preferred by the caller).
std::string srgb_profile() {
  cmsHPROFILE p = cmsCreate_sRGBProfile();
  if (!p) return {};
  cmsUInt32Number n = 0;
  std::string out;
  if (cmsSaveProfileToMem(p, nullptr, &n) && n > 0) {
    out.resize(n);
    if (!cmsSaveProfileToMem(p, out.data(), &n)) out.clear();
  }
  cmsCloseProfile(p);
  return out;
}

void put(DcmItem& item, const DcmTagKey& tag, const std::string& value) {
  (void)item.putAndInsertString(tag, value.c_str());
}

void put_code(DcmItem& parent, const DcmTagKey& seq, const char* value, const char* scheme,
              const char* meaning) {
  DcmItem* code = nullptr;
  if (parent.findOrCreateSequenceItem(seq, code, 0).good() && code) {
    put(*code, DCM_CodeValue, value);
    put(*code, DCM_CodingSchemeDesignator, scheme);
    put(*code, DCM_CodeMeaning, meaning);
  }
}

std::string decimal(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.10g", v);
  std::string s = buf;
  if (s.size() > 16) {  // DS holds 16 characters
    std::snprintf(buf, sizeof buf, "%.9e", v);
    s = buf;
    while (s.size() > 16) {
      const auto e = s.find('e');
      s.erase(e - 1, 1);
    }
  }
  return s;
}

struct InstanceSpec {
  SlideImage kind = SlideImage::volume;
  bool original = true;
  std::uint64_t width = 0, height = 0;
  std::uint32_t tile_width = 0, tile_height = 0;
  std::uint64_t frames = 0;
  double spacing_mm = 0;  // square pixels
  std::string photometric = "YBR_FULL_422";
  std::uint32_t instance_number = 1;
};

struct Series {
  const SlideSubject* subject = nullptr;
  std::string study_uid, series_uid, frame_of_reference_uid, container, specimen;
  std::string date, time;  // of the conversion (the content)
  std::string manufacturer, model, icc;
  double mpp = 0;
  std::uint64_t base_width = 0, base_height = 0;
};

// The data set of one instance, all but its pixel data.
void fill_header(DcmDataset& ds, const Series& s, const InstanceSpec& spec,
                 const std::string& sop_uid) {
  const SlideSubject& who = *s.subject;
  put(ds, DCM_SpecificCharacterSet, "ISO_IR 192");
  const char* flavour = spec.kind == SlideImage::label       ? "LABEL"
                        : spec.kind == SlideImage::overview  ? "OVERVIEW"
                        : spec.kind == SlideImage::thumbnail ? "THUMBNAIL"
                                                             : "VOLUME";
  const std::string image_type = std::string(spec.original ? "ORIGINAL" : "DERIVED") +
                                 "\\PRIMARY\\" + flavour + "\\" +
                                 (spec.original ? "NONE" : "RESAMPLED");
  put(ds, DCM_ImageType, image_type);
  put(ds, DCM_SOPClassUID, kWsiStorage);
  put(ds, DCM_SOPInstanceUID, sop_uid);
  put(ds, DCM_StudyDate, s.date);
  put(ds, DCM_StudyTime, s.time);
  put(ds, DCM_ContentDate, s.date);
  put(ds, DCM_ContentTime, s.time);
  put(ds, DCM_AcquisitionDateTime, s.date + s.time);
  put(ds, DCM_AccessionNumber, who.accession_number);
  put(ds, DCM_Modality, "SM");
  put(ds, DCM_Manufacturer, s.manufacturer);
  put(ds, DCM_ManufacturerModelName, s.model);
  put(ds, DCM_DeviceSerialNumber, "unknown");
  put(ds, DCM_SoftwareVersions, "yilian pathology import");
  put(ds, DCM_InstitutionName, who.institution_name);
  put(ds, DCM_ReferringPhysicianName, "");
  put(ds, DCM_StudyDescription, who.study_description);
  put(ds, DCM_SeriesDescription, "Whole slide " + s.container);
  put(ds, DCM_PatientName, who.patient_name);
  put(ds, DCM_PatientID, who.patient_id);
  put(ds, DCM_PatientBirthDate, who.birth_date);
  put(ds, DCM_PatientSex, who.sex);
  put(ds, DCM_StudyInstanceUID, s.study_uid);
  put(ds, DCM_SeriesInstanceUID, s.series_uid);
  put(ds, DCM_StudyID, "1");
  put(ds, DCM_SeriesNumber, "1");
  put(ds, DCM_InstanceNumber, std::to_string(spec.instance_number));
  put(ds, DCM_FrameOfReferenceUID, s.frame_of_reference_uid);
  put(ds, DCM_PositionReferenceIndicator, "SLIDE_CORNER");
  put(ds, DCM_DimensionOrganizationType, "TILED_FULL");
  put(ds, DCM_ContainerIdentifier, s.container);
  (void)ds.insertEmptyElement(DCM_IssuerOfTheContainerIdentifierSequence);
  put_code(ds, DCM_ContainerTypeCodeSequence, "433466003", "SCT", "Microscope slide");
  DcmItem* specimen = nullptr;
  if (ds.findOrCreateSequenceItem(DCM_SpecimenDescriptionSequence, specimen, 0).good() &&
      specimen) {
    put(*specimen, DCM_SpecimenIdentifier, s.specimen);
    put(*specimen, DCM_SpecimenUID, new_uid());
    (void)specimen->insertEmptyElement(DCM_IssuerOfTheSpecimenIdentifierSequence);
    (void)specimen->insertEmptyElement(DCM_SpecimenPreparationSequence);
  }
  // Image.
  (void)ds.putAndInsertUint16(DCM_SamplesPerPixel, 3);
  put(ds, DCM_PhotometricInterpretation, spec.photometric);
  (void)ds.putAndInsertUint16(DCM_PlanarConfiguration, 0);
  put(ds, DCM_NumberOfFrames, std::to_string(spec.frames));
  (void)ds.putAndInsertUint16(DCM_Rows, static_cast<Uint16>(spec.tile_height));
  (void)ds.putAndInsertUint16(DCM_Columns, static_cast<Uint16>(spec.tile_width));
  (void)ds.putAndInsertUint16(DCM_BitsAllocated, 8);
  (void)ds.putAndInsertUint16(DCM_BitsStored, 8);
  (void)ds.putAndInsertUint16(DCM_HighBit, 7);
  (void)ds.putAndInsertUint16(DCM_PixelRepresentation, 0);
  put(ds, DCM_LossyImageCompression, "01");
  put(ds, DCM_LossyImageCompressionMethod, "ISO_10918_1");
  put(ds, DCM_BurnedInAnnotation, spec.kind == SlideImage::volume ? "NO" : "YES");
  put(ds, DCM_SpecimenLabelInImage, spec.kind == SlideImage::volume ? "NO" : "YES");
  put(ds, DCM_VolumetricProperties, "VOLUME");
  put(ds, DCM_FocusMethod, "AUTO");
  put(ds, DCM_ExtendedDepthOfField, "NO");
  (void)ds.putAndInsertUint32(DCM_TotalPixelMatrixColumns, static_cast<Uint32>(spec.width));
  (void)ds.putAndInsertUint32(DCM_TotalPixelMatrixRows, static_cast<Uint32>(spec.height));
  put(ds, DCM_TotalPixelMatrixFocalPlanes, "1");
  (void)ds.putAndInsertString(DCM_ImageOrientationSlide, "0\\-1\\0\\-1\\0\\0");
  const double spacing = spec.spacing_mm;
  put(ds, DCM_ImagedVolumeWidth, decimal(static_cast<double>(spec.width) * spacing));
  put(ds, DCM_ImagedVolumeHeight, decimal(static_cast<double>(spec.height) * spacing));
  put(ds, DCM_ImagedVolumeDepth, "0.001");
  DcmItem* origin = nullptr;
  if (ds.findOrCreateSequenceItem(DCM_TotalPixelMatrixOriginSequence, origin, 0).good() && origin) {
    put(*origin, DCM_XOffsetInSlideCoordinateSystem, "0");
    put(*origin, DCM_YOffsetInSlideCoordinateSystem, "0");
  }
  (void)ds.insertEmptyElement(DCM_AcquisitionContextSequence);
  // Optical path: bright field, full spectrum, the tiles' colour profile.
  DcmItem* path = nullptr;
  if (ds.findOrCreateSequenceItem(DCM_OpticalPathSequence, path, 0).good() && path) {
    put(*path, DCM_OpticalPathIdentifier, "1");
    put_code(*path, DCM_IlluminationTypeCodeSequence, "111744", "DCM", "Brightfield illumination");
    put_code(*path, DCM_IlluminationColorCodeSequence, "414298005", "SCT", "Full Spectrum");
    if (!s.icc.empty()) {
      (void)path->putAndInsertUint8Array(DCM_ICCProfile,
                                         reinterpret_cast<const Uint8*>(s.icc.data()),
                                         static_cast<unsigned long>(s.icc.size()));
      put(*path, DCM_ColorSpace, "SRGB");
    }
  }
  put(ds, DCM_NumberOfOpticalPaths, "1");
  put(ds, DCM_NumberOfFocalPlanes, "1");
  // Shared functional groups: pixel measures, frame type, optical path.
  DcmItem* shared = nullptr;
  if (ds.findOrCreateSequenceItem(DCM_SharedFunctionalGroupsSequence, shared, 0).good() && shared) {
    DcmItem* measures = nullptr;
    if (shared->findOrCreateSequenceItem(DCM_PixelMeasuresSequence, measures, 0).good() &&
        measures) {
      put(*measures, DCM_PixelSpacing, decimal(spacing) + "\\" + decimal(spacing));
      put(*measures, DCM_SliceThickness, "0.001");
    }
    DcmItem* frame_type = nullptr;
    if (shared
            ->findOrCreateSequenceItem(DCM_WholeSlideMicroscopyImageFrameTypeSequence, frame_type,
                                       0)
            .good() &&
        frame_type) {
      put(*frame_type, DCM_FrameType, image_type);
    }
    DcmItem* path_id = nullptr;
    if (shared->findOrCreateSequenceItem(DCM_OpticalPathIdentificationSequence, path_id, 0)
            .good() &&
        path_id) {
      put(*path_id, DCM_OpticalPathIdentifier, "1");
    }
  }
}

// Writes the encapsulated Pixel Data of `frames` tiles after a saved header: the offset table
// is filled once every tile's size is known (left empty past 4 GiB, where it cannot count).
class PixelWriter {
 public:
  PixelWriter(const std::filesystem::path& file, std::uint64_t frames, bool with_table)
      : out_(file, std::ios::binary | std::ios::app), frames_(frames), with_table_(with_table) {
    static constexpr unsigned char kHead[] = {0xE0, 0x7F, 0x10, 0x00, 'O',  'B',
                                              0,    0,    0xFF, 0xFF, 0xFF, 0xFF};
    out_.write(reinterpret_cast<const char*>(kHead), sizeof kHead);
    out_.flush();
    table_at_ = static_cast<std::uint64_t>(out_.tellp());
    item(with_table_ ? static_cast<std::uint32_t>(4 * frames_) : 0);
    if (with_table_) out_.write(std::string(4 * frames_, '\0').data(), 4 * frames_);
    first_item_ = static_cast<std::uint64_t>(out_.tellp());
    offsets_.reserve(with_table_ ? frames_ : 0);
  }
  Status add(std::string_view tile) {
    const std::uint64_t at = static_cast<std::uint64_t>(out_.tellp()) - first_item_;
    if (with_table_) {
      if (at > 0xFFFFFFFFull)
        return make_error(Errc::io, "a level past 4 GiB with an offset table");
      offsets_.push_back(static_cast<std::uint32_t>(at));
    }
    const bool pad = tile.size() % 2 != 0;
    item(static_cast<std::uint32_t>(tile.size() + (pad ? 1 : 0)));
    out_.write(tile.data(), static_cast<std::streamsize>(tile.size()));
    if (pad) out_.put('\0');
    ++written_;
    return out_ ? Status::Ok() : make_error(Errc::io, "cannot write the slide's tiles");
  }
  Status finish() {
    if (written_ != frames_) return make_error(Errc::io, "a level lost tiles on the way");
    static constexpr unsigned char kEnd[] = {0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0};
    out_.write(reinterpret_cast<const char*>(kEnd), sizeof kEnd);
    out_.close();
    return out_ ? Status::Ok() : make_error(Errc::io, "cannot write the slide's tiles");
  }
  const std::vector<std::uint32_t>& offsets() const { return offsets_; }
  std::uint64_t table_offset() const { return table_at_ + 8; }

 private:
  void item(std::uint32_t length) {
    unsigned char h[8] = {0xFE, 0xFF, 0x00, 0xE0};
    for (int k = 0; k < 4; ++k) h[4 + k] = static_cast<unsigned char>(length >> (8 * k));
    out_.write(reinterpret_cast<const char*>(h), sizeof h);
  }
  std::ofstream out_;
  std::uint64_t frames_;
  bool with_table_;
  std::uint64_t table_at_ = 0, first_item_ = 0, written_ = 0;
  std::vector<std::uint32_t> offsets_;
};

// Fills the offset table written empty by PixelWriter.
Status write_offset_table(const std::filesystem::path& file, std::uint64_t at,
                          const std::vector<std::uint32_t>& offsets) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  if (!f) return make_error(Errc::io, "cannot reopen " + file.string());
  f.seekp(static_cast<std::streamoff>(at));
  std::string bytes(offsets.size() * 4, '\0');
  for (std::size_t i = 0; i < offsets.size(); ++i) {
    for (int k = 0; k < 4; ++k) bytes[4 * i + k] = static_cast<char>(offsets[i] >> (8 * k));
  }
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return f ? Status::Ok() : make_error(Errc::io, "cannot write the offset table");
}

// Saves the header of an instance to `file` (JPEG baseline transfer syntax, no pixel data).
Status save_header(const std::filesystem::path& file, const Series& s, const InstanceSpec& spec,
                   const std::string& sop_uid) {
  DcmFileFormat ff;
  fill_header(*ff.getDataset(), s, spec, sop_uid);
  OFCondition c = ff.saveFile(file.c_str(), EXS_JPEGProcess1, EET_ExplicitLength, EGL_recalcGL,
                              EPD_noChange, 0, 0, EWM_fileformat);
  if (c.bad()) return make_error(Errc::io, std::string("cannot write the slide: ") + c.text());
  return Status::Ok();
}

std::string encode_jpeg(const cv::Mat& bgr, int quality) {
  std::vector<uchar> out;
  cv::imencode(".jpg", bgr, out, {cv::IMWRITE_JPEG_QUALITY, quality});
  return std::string(out.begin(), out.end());
}

// The BGR image of 0xAARRGGBB pixels (OpenSlide's; premultiplied, transparent is white).
cv::Mat from_argb(const std::vector<std::uint32_t>& argb, int width, int height) {
  cv::Mat bgr(height, width, CV_8UC3);
  for (int y = 0; y < height; ++y) {
    auto* row = bgr.ptr<cv::Vec3b>(y);
    for (int x = 0; x < width; ++x) {
      const std::uint32_t p = argb[static_cast<std::size_t>(y) * width + x];
      const unsigned a = p >> 24;
      if (a == 0) {
        row[x] = {255, 255, 255};
        continue;
      }
      auto un = [a](unsigned c) { return static_cast<uchar>(std::min(255u, c * 255 / a)); };
      row[x] = {un(p & 0xFF), un(p >> 8 & 0xFF), un(p >> 16 & 0xFF)};
    }
  }
  return bgr;
}

struct Source {
  std::unique_ptr<TIFF, TiffCloser> tiff;
  std::unique_ptr<openslide_t, SlideCloser> slide;
  std::string tiff_error;
};

// Whether every tile and strip of every directory lies inside the file. OpenSlide reads a tile
// into a buffer of the size the file claims (and aborts when that cannot be allocated), so a
// file that fails this is read by libtiff alone, which bounds its allocations.
bool extents_inside(TIFF* t, std::uint64_t file_size) {
  const tdir_t start = TIFFCurrentDirectory(t);
  bool inside = true;
  if (!TIFFSetDirectory(t, 0)) return false;
  do {
    const bool tiled = TIFFIsTiled(t);
    std::uint64_t* offsets = nullptr;
    std::uint64_t* counts = nullptr;
    const std::uint32_t n = tiled ? TIFFNumberOfTiles(t) : TIFFNumberOfStrips(t);
    if (!TIFFGetField(t, tiled ? TIFFTAG_TILEOFFSETS : TIFFTAG_STRIPOFFSETS, &offsets) ||
        !TIFFGetField(t, tiled ? TIFFTAG_TILEBYTECOUNTS : TIFFTAG_STRIPBYTECOUNTS, &counts) ||
        !offsets || !counts) {
      inside = n == 0;
      continue;
    }
    for (std::uint32_t k = 0; k < n && inside; ++k)
      inside = offsets[k] <= file_size && counts[k] <= file_size - offsets[k];
  } while (inside && TIFFReadDirectory(t));
  (void)TIFFSetDirectory(t, start);
  return inside;
}

// One tile of a level as a complete JPEG stream: copied, or decoded and encoded.
Result<std::string> tile_jpeg(Source& src, const TiffLevel& level, std::uint32_t col,
                              std::uint32_t row, std::string_view tables, bool rgb_jpeg, bool copy,
                              int openslide_level, double downsample, int quality, bool& copied) {
  TIFF* t = src.tiff.get();
  const ttile_t index = TIFFComputeTile(t, col * level.tile_width, row * level.tile_height, 0, 0);
  if (copy) {
    std::uint64_t* counts = nullptr;
    const tmsize_t size =
        TIFFGetField(t, TIFFTAG_TILEBYTECOUNTS, &counts) && counts && index < TIFFNumberOfTiles(t)
            ? static_cast<tmsize_t>(counts[index])
            : 0;
    std::string raw;
    if (size > 0 && size < (64 << 20)) {
      raw.resize(static_cast<std::size_t>(size));
      if (TIFFReadRawTile(t, index, raw.data(), size) != size) raw.clear();
    }
    if (!raw.empty()) {
      auto whole = complete_jpeg(tables, raw);
      if (whole.ok()) {
        copied = true;
        return rgb_jpeg ? mark_rgb(*whole) : std::move(*whole);
      }
    }
    // A missing or broken tile: decoded below if it can be, else an error.
  }
  copied = false;
  const int w = static_cast<int>(level.tile_width), h = static_cast<int>(level.tile_height);
  std::vector<std::uint32_t> rgba(static_cast<std::size_t>(w) * h);
  if (TIFFReadRGBATile(t, col * level.tile_width, row * level.tile_height, rgba.data()) == 1) {
    // Lower-left origin, ABGR packed.
    cv::Mat bgr(h, w, CV_8UC3);
    for (int y = 0; y < h; ++y) {
      auto* out = bgr.ptr<cv::Vec3b>(y);
      const std::uint32_t* in = rgba.data() + static_cast<std::size_t>(h - 1 - y) * w;
      for (int x = 0; x < w; ++x) {
        out[x] = {static_cast<uchar>(TIFFGetB(in[x])), static_cast<uchar>(TIFFGetG(in[x])),
                  static_cast<uchar>(TIFFGetR(in[x]))};
      }
    }
    return encode_jpeg(bgr, quality);
  }
  if (src.slide && openslide_level >= 0) {
    const auto x0 = static_cast<std::int64_t>(std::llround(col * level.tile_width * downsample));
    const auto y0 = static_cast<std::int64_t>(std::llround(row * level.tile_height * downsample));
    openslide_read_region(src.slide.get(), rgba.data(), x0, y0, openslide_level, w, h);
    if (!openslide_get_error(src.slide.get())) return encode_jpeg(from_argb(rgba, w, h), quality);
  }
  return bad("tile " + std::to_string(col) + "," + std::to_string(row) + " of directory " +
             std::to_string(level.directory) + " cannot be read: " + src.tiff_error);
}

}  // namespace

Result<ConvertedSlide> convert_slide(const std::filesystem::path& path,
                                     const ConvertOptions& options) {
  if (!options.next_file) return bad("no place to write the slide");
  Source src;
  TIFFOpenOptions* opts = TIFFOpenOptionsAlloc();
  TIFFOpenOptionsSetErrorHandlerExtR(opts, keep_tiff_message, &src.tiff_error);
  TIFFOpenOptionsSetWarningHandlerExtR(opts, ignore_tiff_warning, nullptr);
  TIFFOpenOptionsSetMaxSingleMemAlloc(opts, 256 << 20);
  src.tiff.reset(TIFFOpenExt(path.c_str(), "r", opts));
  TIFFOpenOptionsFree(opts);
  if (!src.tiff) {
    return bad(path.string() + " is not a TIFF or SVS slide" +
               (src.tiff_error.empty() ? "" : " (" + src.tiff_error + ")"));
  }
  TIFF* t = src.tiff.get();

  ConvertedSlide result;
  // OpenSlide knows the vendors' formats: the pixel size, the label and macro images. It is
  // given only a file whose tiles and strips all lie inside it.
  std::error_code size_error;
  const std::uintmax_t file_size = std::filesystem::file_size(path, size_error);
  if (const char* vendor = openslide_detect_vendor(path.c_str())) {
    if (!size_error && extents_inside(t, file_size)) {
      src.slide.reset(openslide_open(path.c_str()));
      if (src.slide && openslide_get_error(src.slide.get())) src.slide.reset();
    }
    result.format = vendor;
  }
  if (result.format.empty()) result.format = "tiff";

  // Pyramid levels: tiled directories, each smaller than the one before, of the same shape.
  std::vector<TiffLevel> levels;
  std::string icc;
  do {
    if (!TIFFIsTiled(t)) continue;
    TiffLevel l;
    l.directory = TIFFCurrentDirectory(t);
    TIFFGetField(t, TIFFTAG_IMAGEWIDTH, &l.width);
    TIFFGetField(t, TIFFTAG_IMAGELENGTH, &l.height);
    TIFFGetField(t, TIFFTAG_TILEWIDTH, &l.tile_width);
    TIFFGetField(t, TIFFTAG_TILELENGTH, &l.tile_height);
    TIFFGetFieldDefaulted(t, TIFFTAG_COMPRESSION, &l.compression);
    TIFFGetFieldDefaulted(t, TIFFTAG_PHOTOMETRIC, &l.photometric);
    TIFFGetFieldDefaulted(t, TIFFTAG_SAMPLESPERPIXEL, &l.samples);
    TIFFGetFieldDefaulted(t, TIFFTAG_BITSPERSAMPLE, &l.bits);
    std::uint64_t* counts = nullptr;
    if (TIFFGetField(t, TIFFTAG_TILEBYTECOUNTS, &counts) && counts) {
      for (ttile_t k = 0; k < TIFFNumberOfTiles(t); ++k) l.stored_bytes += counts[k];
    }
    if (l.width == 0 || l.height == 0 || l.tile_width == 0 || l.tile_height == 0 ||
        l.tile_width > 4096 || l.tile_height > 4096) {
      continue;
    }
    if (!levels.empty()) {
      const TiffLevel& prev = levels.back();
      const double shape =
          std::abs(static_cast<double>(l.width) / l.height -
                   static_cast<double>(levels.front().width) / levels.front().height);
      if (l.width >= prev.width || shape > 0.05 * levels.front().width / levels.front().height) {
        continue;
      }
    } else {
      std::uint32_t n = 0;
      void* data = nullptr;
      if (TIFFGetField(t, TIFFTAG_ICCPROFILE, &n, &data) && n > 0 && data) {
        icc.assign(static_cast<const char*>(data), n);
      }
    }
    levels.push_back(l);
  } while (TIFFReadDirectory(t));
  if (levels.empty()) return bad(path.string() + " has no tiled image (a pyramidal TIFF or SVS)");

  // Pixel size: given, else OpenSlide's (the vendor's metadata), else the TIFF resolution.
  double mpp = options.microns_per_pixel;
  if (mpp <= 0 && src.slide) {
    if (const char* v =
            openslide_get_property_value(src.slide.get(), OPENSLIDE_PROPERTY_NAME_MPP_X)) {
      mpp = std::atof(v);
    }
  }
  if (mpp <= 0) {
    TIFFSetDirectory(t, levels.front().directory);
    float xres = 0;
    std::uint16_t unit = RESUNIT_INCH;
    if (TIFFGetField(t, TIFFTAG_XRESOLUTION, &xres) && xres > 0) {
      TIFFGetFieldDefaulted(t, TIFFTAG_RESOLUTIONUNIT, &unit);
      if (unit == RESUNIT_CENTIMETER) mpp = 10000.0 / xres;
      if (unit == RESUNIT_INCH) mpp = 25400.0 / xres;
      if (mpp > 100) mpp = 0;  // a screen resolution (72 dpi), not a microscope's
    }
  }
  if (!(mpp > 0 && mpp < 100)) {
    return bad("the slide does not say its pixel size: give it in microns per pixel");
  }
  result.microns_per_pixel = mpp;

  Series series;
  series.subject = &options.subject;
  series.study_uid =
      options.subject.study_instance_uid.empty() ? new_uid() : options.subject.study_instance_uid;
  series.series_uid = new_uid();
  series.frame_of_reference_uid = new_uid();
  series.container =
      options.subject.container_id.empty() ? path.stem().string() : options.subject.container_id;
  series.specimen =
      options.subject.specimen_id.empty() ? series.container : options.subject.specimen_id;
  {
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    localtime_r(&now, &tm);
    char d[16], tt[16];
    std::strftime(d, sizeof d, "%Y%m%d", &tm);
    std::strftime(tt, sizeof tt, "%H%M%S", &tm);
    series.date = d;
    series.time = tt;
  }
  series.manufacturer = result.format == "aperio" ? "Aperio" : "";
  series.model = result.format;
  series.icc = icc.empty() ? srgb_profile() : icc;
  series.mpp = mpp;
  series.base_width = levels.front().width;
  series.base_height = levels.front().height;
  result.study_instance_uid = series.study_uid;
  result.series_instance_uid = series.series_uid;

  std::uint64_t total = 0, done = 0;
  for (const TiffLevel& l : levels) {
    total += std::uint64_t{(l.width + l.tile_width - 1) / l.tile_width} *
             ((l.height + l.tile_height - 1) / l.tile_height);
  }
  if (options.progress) options.progress(0, total);

  std::uint32_t number = 1;
  for (std::size_t k = 0; k < levels.size(); ++k) {
    const TiffLevel& l = levels[k];
    if (!TIFFSetDirectory(t, l.directory)) return make_error(Errc::io, src.tiff_error);
    const std::uint32_t across = (l.width + l.tile_width - 1) / l.tile_width;
    const std::uint32_t down = (l.height + l.tile_height - 1) / l.tile_height;
    // JPEG tiles of 8-bit colour are copied; the shared tables go in front of each.
    std::string tables;
    bool copy = l.compression == COMPRESSION_JPEG && l.samples == 3 && l.bits == 8;
    if (copy) {
      std::uint32_t n = 0;
      void* data = nullptr;
      if (TIFFGetField(t, TIFFTAG_JPEGTABLES, &n, &data) && n > 0 && data) {
        tables.assign(static_cast<const char*>(data), n);
      }
    }
    const bool rgb_jpeg = copy && l.photometric == PHOTOMETRIC_RGB;
    // OpenSlide's level of the same size, to read tiles libtiff cannot decode.
    int os_level = -1;
    double downsample = 1;
    if (src.slide) {
      for (int32_t j = 0; j < openslide_get_level_count(src.slide.get()); ++j) {
        int64_t w = 0, h = 0;
        openslide_get_level_dimensions(src.slide.get(), j, &w, &h);
        if (w == l.width && h == l.height) {
          os_level = j;
          downsample = openslide_get_level_downsample(src.slide.get(), j);
        }
      }
    }
    InstanceSpec spec;
    spec.kind = SlideImage::volume;
    spec.original = k == 0;
    spec.width = l.width;
    spec.height = l.height;
    spec.tile_width = l.tile_width;
    spec.tile_height = l.tile_height;
    spec.frames = std::uint64_t{across} * down;
    spec.spacing_mm = mpp / 1000.0 * static_cast<double>(series.base_width) / l.width;
    spec.instance_number = number++;
    // The first tile decides the photometric interpretation and that copying is possible.
    if (copy) {
      bool copied = false;
      auto first = tile_jpeg(src, l, 0, 0, tables, rgb_jpeg, true, os_level, downsample,
                             options.jpeg_quality, copied);
      const JpegSize size = first.ok() ? jpeg_size(*first) : JpegSize{};
      copy = copied && size.sof == 0xC0 && size.components == 3 &&
             static_cast<std::uint32_t>(size.width) == l.tile_width &&
             static_cast<std::uint32_t>(size.height) == l.tile_height;
    }
    spec.photometric = copy && rgb_jpeg ? "RGB" : "YBR_FULL_422";

    auto file = options.next_file();
    if (!file.ok()) return file.error();
    ConvertedInstance made;
    made.sop_instance_uid = new_uid();
    made.kind = spec.kind;
    made.width = spec.width;
    made.height = spec.height;
    made.frames = spec.frames;
    if (Status s = save_header(*file, series, spec, made.sop_instance_uid); !s) return s.error();
    const bool with_table = (copy ? l.stored_bytes : spec.width * spec.height / 4) < (3ull << 30);
    std::uint64_t table_at = 0;
    {
      PixelWriter out(*file, spec.frames, with_table);
      table_at = out.table_offset();
      for (std::uint32_t row = 0; row < down; ++row) {
        for (std::uint32_t col = 0; col < across; ++col) {
          bool copied = false;
          auto tile = tile_jpeg(src, l, col, row, tables, rgb_jpeg, copy, os_level, downsample,
                                options.jpeg_quality, copied);
          if (!tile.ok()) return tile.error();
          ++(copied ? made.tiles_copied : made.tiles_encoded);
          if (Status s = out.add(*tile); !s) return s.error();
          if (options.progress && (++done % 64 == 0 || done == total)) {
            options.progress(done, total);
          }
        }
      }
      if (Status s = out.finish(); !s) return s.error();
      if (with_table) {
        if (Status s = write_offset_table(*file, table_at, out.offsets()); !s) return s.error();
      }
    }
    if (options.written) {
      if (Status s = options.written(*file, made); !s) return s.error();
    }
    result.instances.push_back(made);
  }
  if (options.progress) options.progress(total, total);

  // The label and the macro (overview) image, as OpenSlide reads them.
  if (src.slide) {
    const char* const* names = openslide_get_associated_image_names(src.slide.get());
    for (; names && *names; ++names) {
      const std::string name = *names;
      const SlideImage kind = name == "label"   ? SlideImage::label
                              : name == "macro" ? SlideImage::overview
                                                : SlideImage::thumbnail;
      if (kind == SlideImage::thumbnail) continue;  // the pyramid has its own small levels
      int64_t w = 0, h = 0;
      openslide_get_associated_image_dimensions(src.slide.get(), name.c_str(), &w, &h);
      if (w <= 0 || h <= 0 || w > 65535 || h > 65535 || w * h > (64 << 20)) continue;
      std::vector<std::uint32_t> argb(static_cast<std::size_t>(w * h));
      openslide_read_associated_image(src.slide.get(), name.c_str(), argb.data());
      if (openslide_get_error(src.slide.get())) break;
      const std::string jpeg = encode_jpeg(
          from_argb(argb, static_cast<int>(w), static_cast<int>(h)), options.jpeg_quality);
      InstanceSpec spec;
      spec.kind = kind;
      spec.width = static_cast<std::uint64_t>(w);
      spec.height = static_cast<std::uint64_t>(h);
      spec.tile_width = static_cast<std::uint32_t>(w);
      spec.tile_height = static_cast<std::uint32_t>(h);
      spec.frames = 1;
      spec.spacing_mm = 0.01;  // a camera's image of the whole glass, not the microscope's
      spec.instance_number = number++;
      auto file = options.next_file();
      if (!file.ok()) return file.error();
      ConvertedInstance made;
      made.sop_instance_uid = new_uid();
      made.kind = kind;
      made.width = spec.width;
      made.height = spec.height;
      made.frames = 1;
      made.tiles_encoded = 1;
      if (Status s = save_header(*file, series, spec, made.sop_instance_uid); !s) return s.error();
      PixelWriter out(*file, 1, false);
      if (Status s = out.add(jpeg); !s) return s.error();
      if (Status s = out.finish(); !s) return s.error();
      if (options.written) {
        if (Status s = options.written(*file, made); !s) return s.error();
      }
      result.instances.push_back(made);
    }
  }
  return result;
}

}  // namespace yilian::pathology
