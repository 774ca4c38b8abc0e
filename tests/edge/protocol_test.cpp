// The edge transfer protocol's pure parts: tus header values, Upload-Metadata, bundles.
#include "yilian/edge/protocol.h"

#include <gtest/gtest.h>

#include "yilian/pacs/dicomweb.h"

namespace yilian::edge {
namespace {

TEST(EdgeProtocol, sizes_are_plain_decimals_within_the_limit) {
  EXPECT_EQ(parse_size("0", 10), 0u);
  EXPECT_EQ(parse_size("10", 10), 10u);
  EXPECT_FALSE(parse_size("11", 10));
  EXPECT_FALSE(parse_size("", 10));
  EXPECT_FALSE(parse_size("-1", 10));
  EXPECT_FALSE(parse_size("+1", 10));
  EXPECT_FALSE(parse_size("1 ", 10));
  EXPECT_FALSE(parse_size("0x10", 100));
  EXPECT_FALSE(parse_size("99999999999999999999999", ~0ull));
}

TEST(EdgeProtocol, base64_round_trips_every_byte_and_refuses_what_is_not_base64) {
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  for (std::size_t n : {0u, 1u, 2u, 3u, 4u, 255u, 256u}) {
    const std::string in = all.substr(0, n);
    auto out = base64_decode(base64_encode(in));
    ASSERT_TRUE(out) << n;
    EXPECT_EQ(*out, in) << n;
  }
  EXPECT_EQ(base64_encode("yilian"), "eWlsaWFu");
  EXPECT_FALSE(base64_decode("abc"));      // not a multiple of 4
  EXPECT_FALSE(base64_decode("ab c"));     // a space
  EXPECT_FALSE(base64_decode("a\xff=="));  // not in the alphabet
}

TEST(EdgeProtocol, upload_metadata_is_parsed_as_tus_defines_it) {
  auto m = parse_metadata("filename d29ybGRfZG9taW5hdGlvbl9wbGFuLnBkZg==,is_confidential");
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ((*m)["filename"], "world_domination_plan.pdf");
  EXPECT_EQ(m->count("is_confidential"), 1u);
  EXPECT_EQ((*m)["is_confidential"], "");
  // Chinese text survives (values are bytes).
  const std::string name = "\xe9\x9d\x92\xe5\xb1\xb1";  // 青山
  auto again = parse_metadata(format_metadata({{"clinic", name}, {"study", "1.2.3"}}));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)["clinic"], name);
  EXPECT_EQ((*again)["study"], "1.2.3");
  EXPECT_TRUE(parse_metadata("").ok());
  EXPECT_FALSE(parse_metadata("a b").ok());          // not base64
  EXPECT_FALSE(parse_metadata("a,a").ok());          // a key twice
  EXPECT_FALSE(parse_metadata("a,,b").ok());         // an empty pair
  EXPECT_FALSE(parse_metadata("k\x01y YQ==").ok());  // a control character in a key
  EXPECT_FALSE(parse_metadata(std::string(65, 'k')).ok());
}

TEST(EdgeProtocol, a_bundle_splits_back_into_its_instances_byte_for_byte) {
  BundleWriter w("yilian-edge-test");
  const std::string a = std::string("DICM\0\r\n--not-the-boundary\r\n", 27), b(1000, '\x7f');
  std::string body = w.part_head() + a + std::string(BundleWriter::part_end()) + w.part_head() + b +
                     std::string(BundleWriter::part_end()) + w.finish();
  auto parts = pacs::split_multipart(w.content_type(), body);
  ASSERT_TRUE(parts.ok()) << parts.error().message;
  ASSERT_EQ(parts->size(), 2u);
  EXPECT_EQ((*parts)[0].content_type, "application/dicom");
  EXPECT_EQ((*parts)[0].bytes, a);
  EXPECT_EQ((*parts)[1].bytes, b);
}

TEST(EdgeProtocol, the_byte_shuffle_groups_the_high_bytes_and_undoes_itself) {
  EXPECT_EQ(shuffle2(""), "");
  EXPECT_EQ(shuffle2("a"), "a");
  EXPECT_EQ(shuffle2(std::string("\x01\xA0\x02\xA0\x03\xA0", 6)), "\x01\x02\x03\xA0\xA0\xA0");
  EXPECT_EQ(shuffle2("abcde"), "acbde");
  std::string all;
  for (int i = 0; i < 1001; ++i) all += static_cast<char>(i * 7 + i / 256);
  for (std::size_t n : {0u, 1u, 2u, 3u, 998u, 1001u}) {
    const std::string in = all.substr(0, n);
    EXPECT_EQ(shuffle2(in).size(), n);
    EXPECT_EQ(unshuffle2(shuffle2(in)), in) << n;
  }
}

TEST(EdgeProtocol, a_prior_is_asked_for_by_exactly_one_patient_id) {
  EXPECT_TRUE(plain_patient_id("TA-5"));
  EXPECT_TRUE(plain_patient_id(std::string(64, '7')));
  EXPECT_TRUE(plain_patient_id("王芳"));
  EXPECT_FALSE(plain_patient_id(""));
  EXPECT_FALSE(plain_patient_id(std::string(65, '7')));
  for (const char* wild : {"TA-*", "TA-?", "*", "TA\\5"})
    EXPECT_FALSE(plain_patient_id(wild)) << wild;
  // Bytes that are not UTF-8 (a GBK name sent raw, a character cut short) and control
  // characters are no patient ID.
  for (const char* bad : {"\xcd\xf5\xb7\xbc", "\xe7\x8e", "\xff", "TA\n5", "TA\x7f"})
    EXPECT_FALSE(plain_patient_id(bad)) << bad;
}

}  // namespace
}  // namespace yilian::edge
