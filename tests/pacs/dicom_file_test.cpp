#include "yilian/pacs/dicom_file.h"

#include <gtest/gtest.h>

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcspchrs.h>
#include <dcmtk/dcmdata/dcuid.h>

#include <fstream>

#include "synthetic.h"
#include "test_util.h"

namespace yilian::pacs {
namespace {

namespace fs = std::filesystem;

TEST(IsValidUid, accepts_dotted_digits_and_rejects_everything_else) {
  EXPECT_TRUE(is_valid_uid("1.2.840.10008.5.1.4.1.1.2"));
  EXPECT_TRUE(is_valid_uid("1.0.2"));
  EXPECT_FALSE(is_valid_uid(""));
  EXPECT_FALSE(is_valid_uid("1..2"));
  EXPECT_FALSE(is_valid_uid("1.2."));
  EXPECT_FALSE(is_valid_uid("1.02"));
  EXPECT_FALSE(is_valid_uid("1.2.a"));
  EXPECT_FALSE(is_valid_uid(std::string(65, '1')));
}

TEST(ReadInstanceAttributes, reads_identity_patient_study_series_and_offsets) {
  testing::TempDir dir;
  testing::CtSeriesSpec spec;
  spec.count = 1;
  spec.rows = spec.columns = 64;
  spec.patient_name = "Wang^Wu";
  auto series = testing::write_ct_series(dir.path(), spec);
  ASSERT_TRUE(series.ok());
  auto in = read_instance_attributes(series->files[0]);
  ASSERT_TRUE(in.ok()) << in.error().message;
  EXPECT_EQ(in->sop_class_uid, UID_CTImageStorage);
  EXPECT_EQ(in->sop_instance_uid, series->sop_instance_uids[0]);
  EXPECT_EQ(in->study_instance_uid, series->study_uid);
  EXPECT_EQ(in->series_instance_uid, series->series_uid);
  EXPECT_EQ(in->patient_name, "Wang^Wu");
  EXPECT_EQ(in->patient_id, "TS0001");
  EXPECT_EQ(in->modality, "CT");
  EXPECT_EQ(in->body_part, "HEAD");
  EXPECT_EQ(in->instance_number, 1);
  EXPECT_EQ(in->transfer_syntax_uid, UID_LittleEndianExplicitTransferSyntax);
  EXPECT_EQ(in->size_bytes, static_cast<std::int64_t>(fs::file_size(series->files[0])));
  // The data set starts right after the meta group: its first tag is (0008,xxxx).
  std::ifstream f(series->files[0], std::ios::binary);
  f.seekg(in->dataset_offset);
  unsigned char tag[2] = {0, 0};
  f.read(reinterpret_cast<char*>(tag), 2);
  EXPECT_EQ(tag[0], 0x08);
  EXPECT_EQ(tag[1], 0x00);
}

TEST(ReadInstanceAttributes, rejects_a_data_set_without_study_instance_uid) {
  testing::TempDir dir;
  DcmFileFormat ff;
  ff.getDataset()->putAndInsertString(DCM_SOPClassUID, UID_SecondaryCaptureImageStorage);
  ff.getDataset()->putAndInsertString(DCM_SOPInstanceUID, "1.2.3.4.5");
  ff.getDataset()->putAndInsertString(DCM_SeriesInstanceUID, "1.2.3.4.6");
  fs::path p = dir.path() / "nostudy.dcm";
  ASSERT_TRUE(ff.saveFile(p.c_str(), EXS_LittleEndianExplicit).good());
  auto in = read_instance_attributes(p);
  ASSERT_FALSE(in.ok());
  EXPECT_EQ(in.error().code, Errc::invalid_argument);
  EXPECT_NE(in.error().message.find("Study Instance UID"), std::string::npos);
}

TEST(ReadInstanceAttributes, rejects_an_invalid_uid) {
  testing::TempDir dir;
  DcmFileFormat ff;
  ff.getDataset()->putAndInsertString(DCM_SOPClassUID, UID_SecondaryCaptureImageStorage);
  ff.getDataset()->putAndInsertString(DCM_SOPInstanceUID, "1.2.abc");
  ff.getDataset()->putAndInsertString(DCM_StudyInstanceUID, "1.2.3");
  ff.getDataset()->putAndInsertString(DCM_SeriesInstanceUID, "1.2.4");
  fs::path p = dir.path() / "baduid.dcm";
  ASSERT_TRUE(ff.saveFile(p.c_str(), EXS_LittleEndianExplicit).good());
  auto in = read_instance_attributes(p);
  ASSERT_FALSE(in.ok());
  EXPECT_NE(in.error().message.find("invalid SOP Instance UID"), std::string::npos);
}

TEST(ReadInstanceAttributes, rejects_truncated_files) {
  for (const char* name : {"MR_truncated.dcm", "rtplan_truncated.dcm"}) {
    auto in = read_instance_attributes(fs::path(PYDICOM_TEST_FILES) / name);
    EXPECT_FALSE(in.ok()) << name;
    if (!in.ok()) {
      EXPECT_EQ(in.error().code, Errc::invalid_argument) << name;
    }
  }
}

TEST(ReadInstanceAttributes, rejects_files_without_file_meta_information) {
  auto in = read_instance_attributes(fs::path(PYDICOM_TEST_FILES) / "no_meta.dcm");
  ASSERT_FALSE(in.ok());
  EXPECT_EQ(in.error().code, Errc::invalid_argument);
}

TEST(ReadInstanceAttributes, reads_real_world_compressed_and_waveform_files) {
  struct Case {
    const char* file;
    const char* ts;
  };
  for (const Case& c : {Case{"MR_small_jpeg_ls_lossless.dcm", UID_JPEGLSLosslessTransferSyntax},
                        Case{"JPEG2000.dcm", UID_JPEG2000TransferSyntax},
                        Case{"MR_small_RLE.dcm", UID_RLELosslessTransferSyntax},
                        Case{"image_dfl.dcm", UID_DeflatedExplicitVRLittleEndianTransferSyntax},
                        Case{"waveform_ecg.dcm", UID_LittleEndianExplicitTransferSyntax}}) {
    auto in = read_instance_attributes(fs::path(PYDICOM_TEST_FILES) / c.file);
    ASSERT_TRUE(in.ok()) << c.file << ": " << in.error().message;
    EXPECT_EQ(in->transfer_syntax_uid, c.ts) << c.file;
  }
}

TEST(ReadInstanceAttributes, converts_gb18030_names_to_utf8) {
  if (!DcmSpecificCharacterSet::isConversionAvailable()) GTEST_SKIP() << "no charset support";
  testing::TempDir dir;
  DcmFileFormat ff;
  DcmDataset* ds = ff.getDataset();
  ds->putAndInsertString(DCM_SpecificCharacterSet, "GB18030");
  ds->putAndInsertString(DCM_SOPClassUID, UID_SecondaryCaptureImageStorage);
  ds->putAndInsertString(DCM_SOPInstanceUID, "1.2.3.4.5");
  ds->putAndInsertString(DCM_StudyInstanceUID, "1.2.3.4");
  ds->putAndInsertString(DCM_SeriesInstanceUID, "1.2.3.4.1");
  // "张三" in GB18030.
  ds->putAndInsertString(DCM_PatientName, "\xD5\xC5\xC8\xFD");
  fs::path p = dir.path() / "gb.dcm";
  ASSERT_TRUE(ff.saveFile(p.c_str(), EXS_LittleEndianExplicit).good());
  auto in = read_instance_attributes(p);
  ASSERT_TRUE(in.ok());
  EXPECT_EQ(in->patient_name, "\xE5\xBC\xA0\xE4\xB8\x89");  // UTF-8
}

}  // namespace
}  // namespace yilian::pacs
