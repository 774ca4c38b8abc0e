// The frame index: where each frame of a stored object lies in its file (frames served as
// byte ranges, nothing decoded), checked against DCMTK reading the same frames.
#include <gtest/gtest.h>

#include <fstream>

#include "instance_reader.h"
#include "synthetic.h"
#include "test_util.h"
#include "yilian/pacs/frame_index.h"

namespace yilian::pacs {
namespace {

namespace fs = std::filesystem;
const fs::path kPydicom = PYDICOM_TEST_FILES;

std::string bytes_at(const fs::path& file, const std::vector<ByteSpan>& spans) {
  std::ifstream in(file, std::ios::binary);
  std::string out;
  for (const ByteSpan& s : spans) {
    std::string part(s.length, '\0');
    in.seekg(static_cast<std::streamoff>(s.offset));
    in.read(part.data(), static_cast<std::streamsize>(part.size()));
    out += part;
  }
  return out;
}

PixelDataLayout encapsulated(std::vector<ByteSpan> items) {
  PixelDataLayout l;
  l.encapsulated = true;
  l.fragments = std::move(items);
  return l;
}

std::string table(std::vector<std::uint32_t> offsets) {
  std::string out;
  for (std::uint32_t o : offsets) {
    for (int k = 0; k < 4; ++k) out += static_cast<char>(o >> (8 * k));
  }
  return out;
}

TEST(FrameIndex, encapsulated_frames_are_told_apart_by_table_items_or_count) {
  // Offset table at 100 (8 bytes), then items of 10, 20 and 30 bytes (headers of 8).
  const auto layout = encapsulated({{100, 8}, {116, 10}, {134, 20}, {162, 30}});
  auto by_table = frames_of_layout(layout, table({0, 18}), 2, 0);
  ASSERT_TRUE(by_table.ok()) << by_table.error().message;
  ASSERT_EQ(by_table->size(), 2u);
  EXPECT_EQ((*by_table)[0].size(), 1u);
  ASSERT_EQ((*by_table)[1].size(), 2u) << "frame 2 spans two fragments";
  EXPECT_EQ((*by_table)[1][0].offset, 134u);
  EXPECT_EQ((*by_table)[1][1].offset, 162u);

  auto one_each = frames_of_layout(layout, "", 3, 0);
  ASSERT_TRUE(one_each.ok());
  EXPECT_EQ((*one_each)[2][0].length, 30u);
  auto single = frames_of_layout(layout, "", 1, 0);
  ASSERT_TRUE(single.ok());
  EXPECT_EQ((*single)[0].size(), 3u);

  EXPECT_FALSE(frames_of_layout(layout, "", 2, 0).ok()) << "3 fragments, 2 frames, no table";
  EXPECT_FALSE(frames_of_layout(layout, table({0}), 2, 0).ok()) << "a short table";
  EXPECT_FALSE(frames_of_layout(layout, table({18, 0}), 2, 0).ok()) << "not ascending";
  EXPECT_FALSE(frames_of_layout(layout, table({0, 5}), 2, 0).ok()) << "inside a fragment";
  EXPECT_FALSE(frames_of_layout(layout, table({0, 500}), 2, 0).ok()) << "past the fragments";
}

TEST(FrameIndex, native_frames_follow_each_other_in_the_one_value) {
  PixelDataLayout l;
  l.fragments = {{1000, 300}};
  auto frames = frames_of_layout(l, "", 3, 100);
  ASSERT_TRUE(frames.ok());
  EXPECT_EQ((*frames)[2][0].offset, 1200u);
  EXPECT_FALSE(frames_of_layout(l, "", 4, 100).ok()) << "the value is shorter than 4 frames";
  EXPECT_FALSE(frames_of_layout(l, "", 3, 0).ok()) << "frames of less than a byte";
}

TEST(FrameIndex, frames_found_in_files_are_the_frames_dcmtk_reads) {
  testing::TempDir dir;
  auto cine = testing::write_us_cine(dir.path() / "cine.dcm", 5, 32, 24, 10);
  ASSERT_TRUE(cine.ok());
  struct Case {
    fs::path file;
    bool stored;  // compare with the stored (compressed) frames, else the decoded ones
  };
  for (const Case& c : {Case{cine->file, false}, Case{kPydicom / "SC_rgb_rle_2frame.dcm", true},
                        Case{kPydicom / "SC_rgb_jpeg_dcmtk.dcm", true},
                        Case{kPydicom / "emri_small_jpeg_2k_lossless.dcm", true}}) {
    if (!fs::exists(c.file)) continue;
    auto index = build_frame_index(c.file);
    ASSERT_TRUE(index.ok()) << c.file << ": " << index.error().message;
    std::vector<std::uint32_t> all;
    for (std::uint32_t k = 1; k <= index->frames.size(); ++k) all.push_back(k);
    auto dcmtk = read_frames(c.file, all, c.stored);
    ASSERT_TRUE(dcmtk.ok()) << c.file;
    ASSERT_EQ(dcmtk->size(), index->frames.size()) << c.file;
    for (std::size_t k = 0; k < all.size(); ++k) {
      std::string ours = bytes_at(c.file, index->frames[k]);
      std::string theirs = (*dcmtk)[k].bytes;
      // A fragment's pad byte is part of the stored item.
      if (ours.size() == theirs.size() + 1) ours.pop_back();
      EXPECT_EQ(ours, theirs) << c.file << " frame " << k + 1;
    }
  }
  EXPECT_EQ(build_frame_index(kPydicom / "no_such.dcm").error().code, Errc::io);
}

TEST(FrameIndex, the_cache_keeps_the_most_recent_files) {
  testing::TempDir dir;
  auto a = testing::write_us_cine(dir.path() / "a.dcm", 2, 8, 8, 10);
  auto b = testing::write_us_cine(dir.path() / "b.dcm", 3, 8, 8, 10);
  ASSERT_TRUE(a.ok() && b.ok());
  FrameIndexCache cache(3);  // frames: a's 2, then b's 3 leave room for b alone
  auto first = cache.get("a", a->file);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ((*first)->frames.size(), 2u);
  EXPECT_EQ(cache.get("a", a->file)->get(), first->get()) << "served from the cache";
  ASSERT_TRUE(cache.get("b", b->file).ok());
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_NE(cache.get("a", a->file)->get(), first->get()) << "a was dropped for b";
}

}  // namespace
}  // namespace yilian::pacs
