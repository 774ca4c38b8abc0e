#include "yilian/pacs/dataset_limits.h"

#include <gtest/gtest.h>

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcfilefo.h>

#include <fstream>
#include <sstream>

#include "synthetic.h"
#include "test_util.h"
#include "yilian/pacs/dicom_file.h"

namespace yilian::pacs {
namespace {

using testing::slurp;

namespace fs = std::filesystem;

TEST(DatasetLimits, a_sequence_nested_twenty_thousand_deep_is_refused_before_parsing) {
  std::string bytes = testing::nested_sequence_part10(20000, "1.2.3.4", "1.2.3.4.5");
  Status s = check_part10_structure(bytes);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, Errc::invalid_argument);
  EXPECT_NE(s.error().message.find("nested deeper"), std::string::npos) << s.error().message;

  testing::TempDir dir;
  fs::path file = dir.path() / "deep.dcm";
  std::ofstream(file, std::ios::binary) << bytes;
  auto in = read_instance_attributes(file);
  ASSERT_FALSE(in.ok());
  EXPECT_NE(in.error().message.find("nested deeper"), std::string::npos);
}

TEST(DatasetLimits, ordinary_nesting_is_accepted_and_read) {
  std::string bytes = testing::nested_sequence_part10(8, "1.2.3.4", "1.2.3.4.5");
  EXPECT_TRUE(check_part10_structure(bytes).ok());
  testing::TempDir dir;
  fs::path file = dir.path() / "sr.dcm";
  std::ofstream(file, std::ios::binary) << bytes;
  EXPECT_TRUE(check_part10_file(file).ok());
  auto in = read_instance_attributes(file);
  ASSERT_TRUE(in.ok()) << in.error().message;
  EXPECT_EQ(in->sop_instance_uid, "1.2.3.4.5");
}

TEST(DatasetLimits, element_counts_past_the_limit_are_refused) {
  std::string bytes = testing::nested_sequence_part10(30, "1.2.3.4", "1.2.3.4.5");
  DatasetLimits limits;
  limits.max_elements = 40;
  Status s = check_part10_structure(bytes, limits);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("elements"), std::string::npos);
}

TEST(DatasetLimits, many_elements_out_of_tag_order_are_refused_before_the_parser_sorts_them) {
  // Found by fuzzing: tens of thousands of repeated (0000,0000) elements kept DCMTK busy
  // for minutes, each one searched against all before it.
  std::string bytes = testing::nested_sequence_part10(0, "1.2.3.4", "1.2.3.4.5");
  for (int i = 0; i < 40000; ++i) bytes += std::string(8, '\0');
  Status s = check_part10_structure(bytes);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("out of tag order"), std::string::npos) << s.error().message;
  // A few out of order, as old devices write them, pass.
  std::string few = testing::nested_sequence_part10(0, "1.2.3.4", "1.2.3.4.5");
  for (int i = 0; i < 10; ++i)
    few += std::string(
        "\x08\x00\x20\x00"
        "DA\x08\x00"
        "20261122",
        16);
  EXPECT_TRUE(check_part10_structure(few).ok()) << check_part10_structure(few).error().message;
}

TEST(DatasetLimits, truncated_and_malformed_encodings_are_refused_at_every_cut) {
  std::string bytes = testing::nested_sequence_part10(4, "1.2.3.4", "1.2.3.4.5");
  // Every cut inside the nested sequences leaves an open item or sequence, or a short header.
  const std::size_t first_sequence = bytes.find(std::string("\x40\x00\x30\xA7SQ", 6));
  ASSERT_NE(first_sequence, std::string::npos);
  for (std::size_t cut = first_sequence + 1; cut < bytes.size(); ++cut) {
    Status s = check_part10_structure(std::string_view(bytes).substr(0, cut));
    EXPECT_FALSE(s.ok()) << "cut at " << cut;
  }
  // An element whose length runs past the end of the data.
  std::string longer = testing::nested_sequence_part10(0, "1.2.3.4", "1.2.3.4.5");
  longer += std::string("\x10\x00\x10\x00PN\xFF\x00Zhang", 13);
  EXPECT_FALSE(check_part10_structure(longer).ok());
  EXPECT_FALSE(check_part10_structure("not dicom").ok());
  EXPECT_FALSE(check_part10_structure(std::string(132, '\0')).ok());
}

TEST(DatasetLimits, every_pydicom_file_dcmtk_reads_whole_passes_the_check) {
  // Real-world encodings (implicit and big endian, deflated, encapsulated pixel data, private
  // sequences): the check must not refuse what a careful parser accepts.
  int checked = 0;
  for (const auto& e : fs::directory_iterator(PYDICOM_TEST_FILES)) {
    if (!e.is_regular_file()) continue;
    std::string bytes = slurp(e.path());
    if (bytes.size() < 132 || bytes.compare(128, 4, "DICM") != 0) continue;
    DcmFileFormat ff;
    if (ff.loadFile(e.path().c_str(), EXS_Unknown, EGL_noChange, 4096, ERM_fileOnly).bad())
      continue;
    ++checked;
    Status s = check_part10_file(e.path());
    EXPECT_TRUE(s.ok()) << e.path().filename() << ": " << s.error().message;
    EXPECT_EQ(check_part10_structure(bytes).ok(), s.ok()) << e.path().filename();
  }
  EXPECT_GT(checked, 50);
}

}  // namespace
}  // namespace yilian::pacs
