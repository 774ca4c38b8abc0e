#include "yilian/common/text.h"

#include <gtest/gtest.h>

namespace yilian {
namespace {

TEST(Utf8, well_formed_text_is_valid_and_stray_bytes_are_not) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("Zhang^San"));
  EXPECT_TRUE(is_valid_utf8("\xE5\xBC\xA0\xE4\xB8\x89"));  // 张三
  EXPECT_TRUE(is_valid_utf8("\xF0\xA0\x80\x80"));          // U+20000
  EXPECT_FALSE(is_valid_utf8("\xD5\xC5\xC8\xFD"));         // 张三 in GBK
  EXPECT_FALSE(is_valid_utf8("\xC0\xAF"));                 // overlong '/'
  EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80"));             // a surrogate
  EXPECT_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));         // past U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\xE5\xBC"));                 // cut short
}

TEST(Utf8, invalid_bytes_become_replacement_characters_and_valid_text_is_kept) {
  EXPECT_EQ(to_valid_utf8("ab\xFF"
                          "c"),
            "ab\xEF\xBF\xBD"
            "c");
  EXPECT_EQ(to_valid_utf8("\xE5\xBC\xA0"), "\xE5\xBC\xA0");
  EXPECT_EQ(to_valid_utf8("\xE5\xBC"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_TRUE(is_valid_utf8(to_valid_utf8("\xD5\xC5\xC8\xFD\x80\xFE")));
}

TEST(Utf8, clipping_cuts_at_a_character_boundary_and_marks_the_cut) {
  EXPECT_EQ(clip_utf8("short", 64), "short");
  std::string name = "\xE5\xBC\xA0\xE4\xB8\x89\xE6\x9D\x8E\xE5\x9B\x9B";  // 张三李四, 12 bytes
  std::string clipped = clip_utf8(name, 8);
  EXPECT_LE(clipped.size(), 8u);
  EXPECT_TRUE(is_valid_utf8(clipped));
  EXPECT_EQ(clipped, "\xE5\xBC\xA0\xE2\x80\xA6");  // 张…
  EXPECT_EQ(clip_utf8(std::string(1 << 20, 'x'), 256).size(), 256u);
}

TEST(JsonText, serialising_bytes_that_are_not_utf8_never_throws) {
  nlohmann::json j = {{"name", std::string("\xD5\xC5\xC8\xFD")}, {"ok", "\xE5\xBC\xA0"}};
  std::string text;
  ASSERT_NO_THROW(text = json_text(j));
  EXPECT_TRUE(is_valid_utf8(text));
  auto back = nlohmann::json::parse(text);
  EXPECT_EQ(back["ok"], "\xE5\xBC\xA0");
  EXPECT_EQ(back["name"], "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(Text, ascii_lower_folds_only_the_ascii_letters) {
  EXPECT_EQ(ascii_lower("WANG^Xiao Ming-3[Z]"), "wang^xiao ming-3[z]");
  // UTF-8 (\u00c4, \u738b) and GBK bytes are kept as they are, as SQL lower() keeps them.
  EXPECT_EQ(ascii_lower("\xC3\x84"
                        "B=\xE7\x8E\x8B"),
            "\xC3\x84"
            "b=\xE7\x8E\x8B");
  EXPECT_EQ(ascii_lower("\xCD\xF5"
                        "A"),
            "\xCD\xF5"
            "a");
  EXPECT_EQ(ascii_lower(""), "");
}

TEST(Csv, fields_are_quoted_when_they_must_be_and_never_run_as_formulas) {
  EXPECT_EQ(csv_field("plain"), "plain");
  EXPECT_EQ(csv_field(""), "");
  EXPECT_EQ(csv_field("a,b"), "\"a,b\"");
  EXPECT_EQ(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(csv_field("two\nlines"), "\"two\nlines\"");
  EXPECT_EQ(csv_field("张伟"), "张伟");
  EXPECT_EQ(csv_field("=HYPERLINK(1)"), "'=HYPERLINK(1)");
  EXPECT_EQ(csv_field("-1,2"), "\"'-1,2\"");
}

}  // namespace
}  // namespace yilian
