// The pathology centre's slide handling: JPEG streams of scanner tiles, the converter (on
// synthetic SVS and generic TIFF slides written with libtiff, read back through OpenSlide
// and libtiff), and slides put together from their instances.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "slides.h"
#include "test_util.h"
#include "yilian/common/text.h"
#include "yilian/pacs/dataset_limits.h"
#include "yilian/pacs/frame_index.h"
#include "yilian/pathology/convert.h"
#include "yilian/pathology/jpeg.h"
#include "yilian/pathology/slide.h"
#include "yilian/pathology/synthetic.h"

namespace yilian::pathology {
namespace {

namespace fs = std::filesystem;

std::string bytes_at(const fs::path& file, const std::vector<pacs::ByteSpan>& spans) {
  std::ifstream in(file, std::ios::binary);
  std::string out;
  for (const pacs::ByteSpan& s : spans) {
    std::string part(s.length, '\0');
    in.seekg(static_cast<std::streamoff>(s.offset));
    in.read(part.data(), static_cast<std::streamsize>(part.size()));
    out += part;
  }
  return out;
}

void expect_colour(const std::string& jpeg, std::array<std::uint8_t, 3> want,
                   const std::string& where) {
  const auto got = test::jpeg_mean_rgb(jpeg);
  for (int c = 0; c < 3; ++c) {
    EXPECT_NEAR(got[c], want[c], 6.0) << where << " channel " << c;
  }
}

class ConvertTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = tmp_.path(); }

  // Converts `slide` into dir_/out, one file per instance; the files in order.
  Result<ConvertedSlide> convert(const fs::path& slide, double mpp = 0) {
    ConvertOptions o;
    o.subject.patient_id = "P-WSI-1";
    o.subject.patient_name = "王^小明";
    o.subject.study_description = "冰冻切片";
    o.microns_per_pixel = mpp;
    fs::create_directories(dir_ / "out");
    files_.clear();
    o.next_file = [this]() -> Result<fs::path> {
      files_.push_back(dir_ / "out" / ("i" + std::to_string(files_.size()) + ".dcm"));
      return files_.back();
    };
    o.progress = [this](std::uint64_t done, std::uint64_t total) {
      last_progress_ = {done, total};
    };
    return convert_slide(slide, o);
  }

  testing::TempDir tmp_;
  fs::path dir_;
  std::vector<fs::path> files_;
  std::pair<std::uint64_t, std::uint64_t> last_progress_;
};

TEST(SlideJpeg, abbreviated_tiles_are_completed_with_the_shared_tables) {
  const std::string tables = std::string("\xFF\xD8\xFF\xDB\x00\x03\x01\xFF\xD9", 9);
  const std::string tile = std::string("\xFF\xD8\xFF\xDA\x00\x02\xAA\xFF\xD9", 9);
  auto whole = complete_jpeg(tables, tile);
  ASSERT_TRUE(whole.ok());
  EXPECT_EQ(*whole, std::string("\xFF\xD8\xFF\xDB\x00\x03\x01\xFF\xDA\x00\x02\xAA\xFF\xD9", 14));
  EXPECT_EQ(*complete_jpeg("", tile), tile);
  EXPECT_FALSE(complete_jpeg(tables, "not a jpeg").ok());
  EXPECT_FALSE(complete_jpeg("\xFF\xD8garbage", tile).ok());
}

TEST(SlideJpeg, rgb_streams_are_marked_once_and_sizes_are_read) {
  cv::Mat img(16, 24, CV_8UC3, cv::Scalar(10, 200, 30));
  std::vector<uchar> buf;
  cv::imencode(".jpg", img, buf);
  const std::string jpeg(buf.begin(), buf.end());
  const std::string marked = mark_rgb(jpeg);
  EXPECT_EQ(marked.size(), jpeg.size() + 16);
  EXPECT_EQ(marked.substr(4, 7), std::string("\x00\x0E"
                                             "Adobe",
                                             7));
  EXPECT_EQ(mark_rgb(marked), marked);
  const JpegSize size = jpeg_size(jpeg);
  EXPECT_EQ(size.width, 24);
  EXPECT_EQ(size.height, 16);
  EXPECT_EQ(size.components, 3);
  EXPECT_EQ(size.sof, 0xC0u);
  EXPECT_EQ(jpeg_size("nothing").width, 0);
}

TEST_F(ConvertTest, an_svs_slide_becomes_one_instance_per_level_with_its_tiles_copied) {
  test::SlideSpec spec;  // 2048 x 1536, 256 tiles, 3 levels, Aperio layout, 0.5 um
  ASSERT_TRUE(test::write_slide(dir_ / "case.svs", spec));
  auto slide = convert(dir_ / "case.svs");
  ASSERT_TRUE(slide.ok()) << slide.error().message;
  EXPECT_EQ(slide->format, "aperio");
  EXPECT_DOUBLE_EQ(slide->microns_per_pixel, 0.5);
  // Three levels, then the label and the macro image OpenSlide found.
  ASSERT_EQ(slide->instances.size(), 5u);
  ASSERT_EQ(files_.size(), 5u);
  EXPECT_EQ(slide->instances[3].kind, SlideImage::label);
  EXPECT_EQ(slide->instances[4].kind, SlideImage::overview);
  const std::uint64_t tiles = 8 * 6 + 4 * 3 + 2 * 2;
  EXPECT_EQ(last_progress_, std::make_pair(tiles, tiles));

  std::vector<WsiInstance> read;
  for (std::size_t k = 0; k < files_.size(); ++k) {
    ASSERT_TRUE(pacs::check_part10_file(files_[k])) << files_[k];
    auto w = read_wsi_instance(files_[k]);
    ASSERT_TRUE(w.ok()) << w.error().message;
    w->blob_key = files_[k].string();
    read.push_back(*w);
  }
  for (int level = 0; level < 3; ++level) {
    const ConvertedInstance& made = slide->instances[level];
    EXPECT_EQ(made.kind, SlideImage::volume);
    EXPECT_EQ(made.tiles_encoded, 0u) << "JPEG tiles are copied, not encoded again";
    EXPECT_EQ(made.tiles_copied, made.frames);
    const WsiInstance& w = read[level];
    EXPECT_EQ(w.total_columns, 2048u >> level);
    EXPECT_EQ(w.total_rows, 1536u >> level);
    EXPECT_EQ(w.tile_columns, 256u);
    EXPECT_NEAR(w.column_spacing_mm, 0.0005 * (1 << level), 1e-9);
    EXPECT_EQ(w.transfer_syntax_uid, "1.2.840.10008.1.2.4.50");
    EXPECT_EQ(w.photometric, "YBR_FULL_422");
    // Every frame is the tile of its place, found by the frame index (an offset table).
    auto index = pacs::build_frame_index(files_[level]);
    ASSERT_TRUE(index.ok()) << index.error().message;
    ASSERT_EQ(index->frames.size(), made.frames);
    EXPECT_TRUE(pacs::browser_ready_jpeg(*index));
    const std::uint32_t across = (w.total_columns + 255) / 256;
    for (std::size_t f = 0; f < index->frames.size(); ++f) {
      const auto col = static_cast<std::uint32_t>(f % across);
      const auto row = static_cast<std::uint32_t>(f / across);
      expect_colour(bytes_at(files_[level], index->frames[f]), test::tile_colour(level, col, row),
                    "level " + std::to_string(level) + " tile " + std::to_string(f));
    }
  }
  auto label = pacs::build_frame_index(files_[3]);
  ASSERT_TRUE(label.ok());
  expect_colour(bytes_at(files_[3], label->frames[0]), {250, 250, 240}, "label");
  EXPECT_EQ(read[3].total_columns, 200u);

  auto assembled = assemble_slide(read);
  ASSERT_TRUE(assembled.ok()) << assembled.error().message;
  ASSERT_EQ(assembled->levels.size(), 3u);
  ASSERT_TRUE(assembled->label.has_value());
  ASSERT_TRUE(assembled->overview.has_value());
  EXPECT_EQ(assembled->container_id, "case");
  EXPECT_EQ(assembled->levels[1].tiles_across, 4u);
  auto t = assembled->tile(1, 3, 2);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->frame, 2u * 4 + 3);
  EXPECT_FALSE(assembled->tile(1, 4, 0).has_value());
  EXPECT_FALSE(assembled->tile(3, 0, 0).has_value());
}

TEST_F(ConvertTest, a_generic_tiff_level_in_lzw_is_encoded_once_and_its_pixel_size_read) {
  test::SlideSpec spec;
  spec.aperio = false;
  spec.microns_per_pixel = 0.25;
  spec.lzw_levels = {1};
  ASSERT_TRUE(test::write_slide(dir_ / "generic.tif", spec));
  auto slide = convert(dir_ / "generic.tif");
  ASSERT_TRUE(slide.ok()) << slide.error().message;
  ASSERT_EQ(slide->instances.size(), 3u);  // no label or macro in a generic TIFF
  EXPECT_NEAR(slide->microns_per_pixel, 0.25, 1e-4);
  EXPECT_EQ(slide->instances[0].tiles_encoded, 0u);
  EXPECT_EQ(slide->instances[1].tiles_copied, 0u);
  EXPECT_EQ(slide->instances[1].tiles_encoded, 12u);
  auto index = pacs::build_frame_index(files_[1]);
  ASSERT_TRUE(index.ok());
  expect_colour(bytes_at(files_[1], index->frames[5]), test::tile_colour(1, 1, 1), "lzw tile");
}

// The demo's synthetic section converts as a scanner's generic TIFF does: every JPEG tile
// copied, the pixel size read; its centre is stained tissue (pink and purple), its corner the
// glass.
TEST_F(ConvertTest, the_synthetic_section_converts_with_its_tiles_copied_and_shows_tissue) {
  SyntheticSlideSpec spec;
  spec.width = 1024;
  spec.height = 768;
  ASSERT_TRUE(write_synthetic_slide(dir_ / "section.tif", spec).ok());
  auto slide = convert(dir_ / "section.tif");
  ASSERT_TRUE(slide.ok()) << slide.error().message;
  EXPECT_EQ(slide->format, "generic-tiff");
  EXPECT_NEAR(slide->microns_per_pixel, 0.5, 1e-4);
  ASSERT_EQ(slide->instances.size(), 3u);
  const std::uint64_t widths[] = {1024, 512, 256};
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(slide->instances[i].width, widths[i]);
    EXPECT_EQ(slide->instances[i].tiles_encoded, 0u) << i;
  }
  EXPECT_EQ(slide->instances[0].frames, 12u);  // 4 x 3 tiles
  auto index = pacs::build_frame_index(files_[0]);
  ASSERT_TRUE(index.ok());
  // Tile (0, 0) lies mostly outside the section; tile (1, 1) within it.
  const auto glass = test::jpeg_mean_rgb(bytes_at(files_[0], index->frames[0]));
  const auto tissue = test::jpeg_mean_rgb(bytes_at(files_[0], index->frames[5]));
  for (int c = 0; c < 3; ++c) EXPECT_GT(glass[c], 215) << c;  // mostly glass
  EXPECT_GT(tissue[0], tissue[1] + 25);  // eosin and haematoxylin: red and blue over green
  EXPECT_GT(tissue[2], tissue[1] + 10);
  EXPECT_LT(tissue[1], 200);

  spec.levels = 9;
  EXPECT_EQ(write_synthetic_slide(dir_ / "bad.tif", spec).error().code, Errc::invalid_argument);
}

TEST_F(ConvertTest, a_slide_without_a_pixel_size_or_that_is_no_slide_is_refused) {
  test::SlideSpec spec;
  spec.aperio = false;
  spec.microns_per_pixel = 5000;  // written as a resolution no microscope has
  ASSERT_TRUE(test::write_slide(dir_ / "nosize.tif", spec));
  auto refused = convert(dir_ / "nosize.tif");
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("pixel size"), std::string::npos);
  auto given = convert(dir_ / "nosize.tif", 0.3);
  ASSERT_TRUE(given.ok()) << given.error().message;
  EXPECT_DOUBLE_EQ(given->microns_per_pixel, 0.3);

  // A slide identifier that is not UTF-8 (an old scanner's bytes) is read back as valid text.
  ConvertOptions o;
  o.subject.patient_id = "P";
  o.subject.container_id = std::string("S\xff\xfe-1") + std::string(1000, 'x');
  o.microns_per_pixel = 0.3;
  o.next_file = [this]() -> Result<fs::path> { return dir_ / "odd.dcm"; };
  o.written = [](const fs::path&, const ConvertedInstance&) { return Status::Ok(); };
  ASSERT_TRUE(convert_slide(dir_ / "nosize.tif", o).ok());
  auto odd = read_wsi_instance(dir_ / "odd.dcm");
  ASSERT_TRUE(odd.ok()) << odd.error().message;
  EXPECT_TRUE(is_valid_utf8(odd->container_id));
  EXPECT_LE(odd->container_id.size(), 256u);

  std::ofstream(dir_ / "note.txt") << "not a slide";
  auto not_tiff = convert(dir_ / "note.txt");
  ASSERT_FALSE(not_tiff.ok());
  EXPECT_EQ(not_tiff.error().code, Errc::invalid_argument);
}

// Makes the first tile of the file's first directory (a BigTIFF, as write_slide makes it)
// claim `count` bytes, what a damaged or hostile scanner file may claim: its TileByteCounts
// are written again as 64-bit values at the end of the file, the first one `count`.
bool claim_tile_bytes(const fs::path& file, std::uint64_t count) {
  std::fstream f(file, std::ios::binary | std::ios::in | std::ios::out);
  auto read = [&](std::uint64_t at, auto& v) {
    f.seekg(static_cast<std::streamoff>(at));
    f.read(reinterpret_cast<char*>(&v), sizeof v);
  };
  auto write = [&](std::uint64_t at, const auto& v) {
    f.seekp(static_cast<std::streamoff>(at));
    f.write(reinterpret_cast<const char*>(&v), sizeof v);
  };
  std::uint16_t order = 0, version = 0;
  read(0, order);
  read(2, version);
  if (!f || order != 0x4949 || version != 43) return false;
  std::uint64_t ifd = 0, entries = 0;
  read(8, ifd);
  read(ifd, entries);
  for (std::uint64_t k = 0; k < entries && k < 64; ++k) {
    const std::uint64_t entry = ifd + 8 + 20 * k;
    std::uint16_t tag = 0, type = 0;
    std::uint64_t n = 0, value = 0;
    read(entry, tag);
    read(entry + 2, type);
    read(entry + 4, n);
    read(entry + 12, value);
    if (tag != 325 || (type != 4 && type != 16) || n == 0 || n > 4096) continue;
    const std::uint64_t width = type == 4 ? 4 : 8;
    const std::uint64_t at = n * width > 8 ? value : entry + 12;
    std::vector<std::uint64_t> counts(n);
    for (std::uint64_t j = 0; j < n; ++j) {
      if (type == 4) {
        std::uint32_t c = 0;
        read(at + 4 * j, c);
        counts[j] = c;
      } else {
        read(at + 8 * j, counts[j]);
      }
    }
    counts[0] = count;
    f.seekp(0, std::ios::end);
    const auto end = static_cast<std::uint64_t>(f.tellp());
    for (std::uint64_t j = 0; j < n; ++j) write(end + 8 * j, counts[j]);
    write(entry + 2, std::uint16_t{16});
    write(entry + 12, n > 1 ? end : counts[0]);
    return static_cast<bool>(f);
  }
  return false;
}

// A scanner file whose tile claims more bytes than the file holds (found by the scanner_file
// fuzz target): OpenSlide would try to allocate them and abort the import; the tile is refused
// with a clear error instead.
TEST_F(ConvertTest, a_tile_that_claims_more_bytes_than_the_file_holds_is_refused) {
  test::SlideSpec spec;
  spec.width = 512;
  spec.height = 384;
  spec.levels = 2;
  ASSERT_TRUE(test::write_slide(dir_ / "claims.svs", spec));
  ASSERT_TRUE(claim_tile_bytes(dir_ / "claims.svs", std::uint64_t{1} << 51));
  // OpenSlide is not given the file, so its pixel size (from the Aperio description) must be
  // given; then the tile itself is refused.
  auto unsized = convert(dir_ / "claims.svs");
  ASSERT_FALSE(unsized.ok());
  EXPECT_NE(unsized.error().message.find("pixel size"), std::string::npos);
  auto converted = convert(dir_ / "claims.svs", 0.5);
  ASSERT_FALSE(converted.ok());
  EXPECT_EQ(converted.error().code, Errc::invalid_argument);
  EXPECT_NE(converted.error().message.find("cannot be read"), std::string::npos)
      << converted.error().message;
}

WsiInstance sparse(std::string uid, std::vector<std::pair<std::uint32_t, std::uint32_t>> at) {
  WsiInstance w;
  w.sop_instance_uid = std::move(uid);
  w.tile_columns = w.tile_rows = 512;
  w.total_columns = 2000;
  w.total_rows = 1000;
  w.sparse = true;
  w.frames = at.size();
  w.positions = std::move(at);
  w.row_spacing_mm = w.column_spacing_mm = 0.00025;
  return w;
}

TEST(SlideAssembly, a_level_split_into_sparse_instances_is_one_level_with_gaps) {
  WsiInstance small = sparse("3", {{0, 0}});
  small.total_columns = 500;
  small.total_rows = 250;
  small.row_spacing_mm = small.column_spacing_mm = 0;
  WsiInstance label;
  label.kind = SlideImage::label;
  auto slide = assemble_slide(
      {sparse("1", {{0, 0}, {1, 0}, {3, 1}}), small, sparse("2", {{2, 1}, {0, 0}}), label});
  ASSERT_TRUE(slide.ok());
  ASSERT_EQ(slide->levels.size(), 2u);
  const SlideLevel& l = slide->levels[0];
  EXPECT_EQ(l.tiles_across, 4u);
  EXPECT_EQ(l.tiles_down, 2u);
  EXPECT_EQ(l.instances.size(), 2u);
  EXPECT_EQ(l.tiles.size(), 4u);
  auto t = slide->tile(0, 2, 1);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(slide->instances[t->instance].sop_instance_uid, "2");
  EXPECT_EQ(t->frame, 0u);
  EXPECT_EQ(slide->instances[slide->tile(0, 0, 0)->instance].sop_instance_uid, "1");
  EXPECT_FALSE(slide->tile(0, 1, 1).has_value()) << "a sparse level's gap";
  EXPECT_EQ(slide->label, std::optional<std::size_t>(3));
  // The smaller level's spacing follows from the finest level's.
  EXPECT_NEAR(slide->levels[1].column_spacing_mm, 0.001, 1e-12);

  EXPECT_FALSE(assemble_slide({label}).ok());
}

TEST(SlideAssembly, a_full_level_is_addressed_by_arithmetic_whatever_frame_count_it_claims) {
  WsiInstance huge;  // a hostile header: 2^24 x 2^24 one-pixel tiles, 2^40 frames
  huge.tile_columns = huge.tile_rows = 1;
  huge.total_columns = huge.total_rows = 1ull << 24;
  huge.frames = 1ull << 40;
  WsiInstance extra = sparse("s", {{0, 0}});  // a sparse instance beside it gives nothing new
  extra.tile_columns = extra.tile_rows = 1;
  extra.total_columns = extra.total_rows = 1ull << 24;
  auto slide = assemble_slide({huge, extra});
  ASSERT_TRUE(slide.ok());
  ASSERT_EQ(slide->levels.size(), 1u);
  EXPECT_EQ(slide->levels[0].present(), 0x7FFFFFFFu) << "no more frames than an IS counts";
  EXPECT_TRUE(slide->levels[0].tiles.empty());
  auto t = slide->tile(0, 5, 1);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->instance, 0u);
  EXPECT_EQ(t->frame, (1u << 24) + 5);
  EXPECT_FALSE(slide->tile(0, 0, 1u << 10).has_value()) << "past the frames it can have";
}

}  // namespace
}  // namespace yilian::pathology
