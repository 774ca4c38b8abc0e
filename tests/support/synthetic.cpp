#include "synthetic.h"

#include <algorithm>
#include <cmath>
#include <random>

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcuid.h>

#include <cstdint>
#include <string>
#include <vector>

namespace yilian::testing {

std::string new_uid() {
  char buf[100];
  dcmGenerateUniqueIdentifier(buf, SITE_INSTANCE_UID_ROOT);
  return buf;
}

namespace {

// Slice `i` of `count` through a head: HU + 1024 in 12 bits, with Gaussian noise (seeded by
// the slice, so a series is the same every time).
void head_phantom(std::vector<Uint16>& px, int rows, int cols, int i, int count, double noise) {
  std::mt19937 rng(static_cast<std::uint32_t>(12345 + i));
  std::normal_distribution<double> gauss(0.0, noise);
  // The head narrows towards the top slices.
  const double z = count > 1 ? static_cast<double>(i) / (count - 1) : 0.5;
  const double scale = 0.75 + 0.25 * std::sin(3.14159 * (0.15 + 0.7 * z));
  const double ax = 0.40 * cols * scale, ay = 0.47 * rows * scale;
  const double cx = cols / 2.0, cy = rows / 2.0;
  for (int y = 0; y < rows; ++y) {
    for (int x = 0; x < cols; ++x) {
      const double dx = (x - cx) / ax, dy = (y - cy) / ay;
      const double r = std::sqrt(dx * dx + dy * dy);
      double hu = -1000;
      if (r < 1.0) hu = 30;                              // scalp
      if (r < 0.97) hu = 900 + 300 * (0.97 - r) / 0.07;  // skull
      if (r < 0.90) hu = 36;                             // grey matter
      if (r < 0.70) hu = 26;                             // white matter
      const double vx = std::abs(x - cx) / (0.12 * cols * scale) - 0.6,
                   vy = (y - cy) / (0.18 * rows * scale);
      if (vx * vx + vy * vy < 0.25) hu = 6;  // ventricles
      if (hu > -1000)
        hu += gauss(rng);
      else
        hu += gauss(rng) * 0.3;
      const double v = std::clamp(hu + 1024.0, 0.0, 4095.0);
      px[static_cast<std::size_t>(y) * cols + x] = static_cast<Uint16>(std::lround(v));
    }
  }
}

}  // namespace

Result<WrittenSeries> write_ct_series(const std::filesystem::path& dir, const CtSeriesSpec& spec) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return make_error(Errc::io, "cannot create " + dir.string());
  WrittenSeries out;
  out.study_uid = spec.study_uid.empty() ? new_uid() : spec.study_uid;
  out.series_uid = spec.series_uid.empty() ? new_uid() : spec.series_uid;
  const std::size_t npix =
      static_cast<std::size_t>(spec.rows) * static_cast<std::size_t>(spec.columns);
  std::vector<Uint16> pixels(npix);
  for (int i = 0; i < spec.count; ++i) {
    if (spec.noise_hu > 0) {
      head_phantom(pixels, spec.rows, spec.columns, i, spec.count, spec.noise_hu);
    } else {
      // A gradient that changes per slice: values stay within 12 bits.
      for (int y = 0; y < spec.rows; ++y) {
        for (int x = 0; x < spec.columns; ++x) {
          pixels[static_cast<std::size_t>(y) * spec.columns + x] =
              static_cast<Uint16>((x * 4 + y * 2 + i * 7) & 0x0fff);
        }
      }
    }
    DcmFileFormat ff;
    DcmDataset* ds = ff.getDataset();
    std::string sop = new_uid();
    auto put = [&](const DcmTagKey& tag, const std::string& v) {
      ds->putAndInsertString(tag, v.c_str());
    };
    if (!spec.charset.empty()) put(DCM_SpecificCharacterSet, spec.charset);
    put(DCM_SOPClassUID, UID_CTImageStorage);
    put(DCM_SOPInstanceUID, sop);
    put(DCM_StudyInstanceUID, out.study_uid);
    put(DCM_SeriesInstanceUID, out.series_uid);
    put(DCM_PatientID, spec.patient_id);
    if (!spec.issuer.empty()) put(DCM_IssuerOfPatientID, spec.issuer);
    put(DCM_PatientName, spec.patient_name);
    put(DCM_PatientBirthDate, "19700101");
    put(DCM_PatientSex, "F");
    put(DCM_StudyDate, spec.study_date);
    put(DCM_StudyTime, "081500");
    put(DCM_AccessionNumber, spec.accession);
    put(DCM_StudyDescription, spec.study_description);
    put(DCM_InstitutionName, spec.institution_name);
    put(DCM_Modality, spec.modality);
    put(DCM_BodyPartExamined, "HEAD");
    put(DCM_SeriesNumber, std::to_string(spec.series_number));
    put(DCM_SeriesDescription, "AXIAL 5mm");
    put(DCM_InstanceNumber, std::to_string(i + 1));
    put(DCM_ImagePositionPatient, "0\\0\\" + std::to_string(i * 5));
    put(DCM_ImageOrientationPatient, "1\\0\\0\\0\\1\\0");
    put(DCM_PixelSpacing, "0.5\\0.5");
    put(DCM_SliceThickness, "5");
    put(DCM_PhotometricInterpretation, "MONOCHROME2");
    put(DCM_RescaleIntercept, "-1024");
    put(DCM_RescaleSlope, "1");
    put(DCM_WindowCenter, "40");
    put(DCM_WindowWidth, "80");
    ds->putAndInsertUint16(DCM_SamplesPerPixel, 1);
    ds->putAndInsertUint16(DCM_Rows, static_cast<Uint16>(spec.rows));
    ds->putAndInsertUint16(DCM_Columns, static_cast<Uint16>(spec.columns));
    ds->putAndInsertUint16(DCM_BitsAllocated, 16);
    ds->putAndInsertUint16(DCM_BitsStored, 12);
    ds->putAndInsertUint16(DCM_HighBit, 11);
    ds->putAndInsertUint16(DCM_PixelRepresentation, 0);
    ds->putAndInsertUint16Array(DCM_PixelData, pixels.data(), static_cast<unsigned long>(npix));
    char name[32];
    std::snprintf(name, sizeof name, "CT%05d.dcm", i + 1);
    std::filesystem::path file = dir / name;
    OFCondition c = ff.saveFile(file.c_str(), EXS_LittleEndianExplicit);
    if (c.bad())
      return make_error(Errc::io, std::string("cannot write ") + file.string() + ": " + c.text());
    out.files.push_back(file);
    out.sop_instance_uids.push_back(sop);
  }
  return out;
}

Result<WrittenCine> write_us_cine(const std::filesystem::path& file, int frames, int width,
                                  int height, int fps) {
  WrittenCine out{file, new_uid(), new_uid(), new_uid()};
  DcmFileFormat ff;
  DcmDataset* ds = ff.getDataset();
  auto put = [&](const DcmTagKey& tag, const std::string& v) {
    ds->putAndInsertString(tag, v.c_str());
  };
  put(DCM_SOPClassUID, UID_UltrasoundMultiframeImageStorage);
  put(DCM_SOPInstanceUID, out.sop_instance_uid);
  put(DCM_StudyInstanceUID, out.study_uid);
  put(DCM_SeriesInstanceUID, out.series_uid);
  put(DCM_PatientID, "US0001");
  put(DCM_PatientName, "Cine^Patient");
  put(DCM_StudyDate, "20261122");
  put(DCM_Modality, "US");
  put(DCM_SeriesNumber, "1");
  put(DCM_InstanceNumber, "1");
  put(DCM_NumberOfFrames, std::to_string(frames));
  put(DCM_CineRate, std::to_string(fps));
  put(DCM_FrameTime, std::to_string(1000.0 / fps));
  put(DCM_PhotometricInterpretation, "RGB");
  ds->putAndInsertUint16(DCM_SamplesPerPixel, 3);
  ds->putAndInsertUint16(DCM_PlanarConfiguration, 0);
  ds->putAndInsertUint16(DCM_Rows, static_cast<Uint16>(height));
  ds->putAndInsertUint16(DCM_Columns, static_cast<Uint16>(width));
  ds->putAndInsertUint16(DCM_BitsAllocated, 8);
  ds->putAndInsertUint16(DCM_BitsStored, 8);
  ds->putAndInsertUint16(DCM_HighBit, 7);
  ds->putAndInsertUint16(DCM_PixelRepresentation, 0);
  std::vector<Uint8> pixels(static_cast<std::size_t>(frames) * width * height * 3, 16);
  for (int f = 0; f < frames; ++f) {
    for (int y = 0; y < height; ++y) {
      Uint8* px = &pixels[((static_cast<std::size_t>(f) * height + y) * width + f % width) * 3];
      px[0] = px[1] = px[2] = 235;
    }
  }
  ds->putAndInsertUint8Array(DCM_PixelData, pixels.data(),
                             static_cast<unsigned long>(pixels.size()));
  OFCondition c = ff.saveFile(file.c_str(), EXS_LittleEndianExplicit);
  if (c.bad()) return make_error(Errc::io, std::string("cannot write ") + file.string());
  return out;
}

}  // namespace yilian::testing

namespace yilian::testing {
namespace {

void put16(std::string& out, std::uint16_t v) {
  out += static_cast<char>(v & 0xFF);
  out += static_cast<char>(v >> 8);
}
void put32(std::string& out, std::uint32_t v) {
  put16(out, static_cast<std::uint16_t>(v & 0xFFFF));
  put16(out, static_cast<std::uint16_t>(v >> 16));
}
// An explicit VR little endian element with a short (16-bit) length, padded to even length.
void put_short(std::string& out, std::uint16_t group, std::uint16_t element, const char* vr,
               std::string value, char pad) {
  if (value.size() % 2) value += pad;
  put16(out, group);
  put16(out, element);
  out += vr;
  put16(out, static_cast<std::uint16_t>(value.size()));
  out += value;
}

}  // namespace

std::string nested_sequence_part10(int depth, const std::string& study_uid,
                                   const std::string& sop_instance_uid) {
  const std::string sop_class = "1.2.840.10008.5.1.4.1.1.88.11";  // Basic Text SR
  std::string meta;
  put16(meta, 0x0002);
  put16(meta, 0x0001);
  meta += "OB";
  put16(meta, 0);
  put32(meta, 2);
  meta += std::string("\0\1", 2);
  put_short(meta, 0x0002, 0x0002, "UI", sop_class, '\0');
  put_short(meta, 0x0002, 0x0003, "UI", sop_instance_uid, '\0');
  put_short(meta, 0x0002, 0x0010, "UI", "1.2.840.10008.1.2.1", '\0');
  std::string out(128, '\0');
  out += "DICM";
  put16(out, 0x0002);
  put16(out, 0x0000);
  out += "UL";
  put16(out, 4);
  put32(out, static_cast<std::uint32_t>(meta.size()));
  out += meta;
  put_short(out, 0x0008, 0x0016, "UI", sop_class, '\0');
  put_short(out, 0x0008, 0x0018, "UI", sop_instance_uid, '\0');
  put_short(out, 0x0008, 0x0060, "CS", "SR", ' ');
  put_short(out, 0x0010, 0x0020, "LO", "NEST-1", ' ');
  put_short(out, 0x0020, 0x000D, "UI", study_uid, '\0');
  put_short(out, 0x0020, 0x000E, "UI", study_uid + ".1", '\0');
  for (int i = 0; i < depth; ++i) {
    put16(out, 0x0040);  // Content Sequence
    put16(out, 0xA730);
    out += "SQ";
    put16(out, 0);
    put32(out, 0xFFFFFFFFu);
    put16(out, 0xFFFE);  // item
    put16(out, 0xE000);
    put32(out, 0xFFFFFFFFu);
  }
  for (int i = 0; i < depth; ++i) {
    put16(out, 0xFFFE);  // item delimitation
    put16(out, 0xE00D);
    put32(out, 0);
    put16(out, 0xFFFE);  // sequence delimitation
    put16(out, 0xE0DD);
    put32(out, 0);
  }
  return out;
}

}  // namespace yilian::testing
