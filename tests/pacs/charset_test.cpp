#include "yilian/pacs/charset.h"

#include <gtest/gtest.h>

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcspchrs.h>

namespace yilian::pacs {
namespace {

const std::string kZhangSanUtf8 = "\xE5\xBC\xA0\xE4\xB8\x89";  // 张三
const std::string kZhangSanGbk = "\xD5\xC5\xC8\xFD";           // 张三 in GBK / GB18030

class DecodeText : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!DcmSpecificCharacterSet::isConversionAvailable()) GTEST_SKIP() << "no charset support";
  }
  TextDecoding gb18030_{"GB18030", false};
};

TEST_F(DecodeText, ascii_passes_through_whatever_is_declared) {
  EXPECT_EQ(decode_text("Zhang^San", "", gb18030_), "Zhang^San");
  EXPECT_EQ(decode_text("Zhang^San", "GB18030", gb18030_), "Zhang^San");
}

TEST_F(DecodeText, gbk_names_without_a_declared_character_set_use_the_senders_one) {
  EXPECT_EQ(decode_text(kZhangSanGbk, "", gb18030_, true), kZhangSanUtf8);
  EXPECT_EQ(decode_text(kZhangSanGbk, "", TextDecoding{"GBK", false}, true), kZhangSanUtf8);
}

TEST_F(DecodeText, a_declared_character_set_that_decodes_the_bytes_is_used) {
  EXPECT_EQ(decode_text(kZhangSanGbk, "GB18030", gb18030_, true), kZhangSanUtf8);
  EXPECT_EQ(decode_text(kZhangSanGbk, "GBK", TextDecoding{"ISO_IR 100", false}, true),
            kZhangSanUtf8);
  // GB18030 four-byte sequence: U+20000.
  EXPECT_EQ(decode_text("\x95\x32\x82\x36", "GB18030", gb18030_), "\xF0\xA0\x80\x80");
  EXPECT_EQ(decode_text(kZhangSanUtf8, "ISO_IR 192", gb18030_), kZhangSanUtf8);
}

TEST_F(DecodeText, a_wrong_declaration_falls_back_to_the_senders_character_set) {
  // Declared UTF-8, sent GBK: the declared set cannot decode the bytes.
  EXPECT_EQ(decode_text(kZhangSanGbk, "ISO_IR 192", gb18030_, true), kZhangSanUtf8);
}

TEST_F(DecodeText, a_sender_known_to_declare_wrongly_is_decoded_by_its_own_character_set) {
  // Latin-1 decodes any byte, so only the configuration can say the device lies.
  TextDecoding forced{"GB18030", true};
  EXPECT_EQ(decode_text(kZhangSanGbk, "ISO_IR 100", forced, true), kZhangSanUtf8);
  std::string latin = decode_text(kZhangSanGbk, "ISO_IR 100", gb18030_, true);
  EXPECT_NE(latin, kZhangSanUtf8);
}

TEST_F(DecodeText, undeclared_utf8_is_kept_as_utf8) {
  EXPECT_EQ(decode_text(kZhangSanUtf8, "", gb18030_), kZhangSanUtf8);
}

TEST_F(DecodeText, iso_2022_ir_58_person_names_switch_sets_per_component_group) {
  // Zhang^San=张^三, the ideographic group in GB2312 through ISO 2022 escapes.
  std::string raw = "Zhang^San=\x1B$)A\xD5\xC5^\x1B$)A\xC8\xFD";
  EXPECT_EQ(decode_text(raw, "\\ISO 2022 IR 58", gb18030_, true),
            "Zhang^San=\xE5\xBC\xA0^\xE4\xB8\x89");
}

TEST_F(DecodeText, bytes_nothing_decodes_become_replacement_characters_never_invalid_utf8) {
  std::string out = decode_text("\x80\xFF\xFE", "", TextDecoding{"ISO_IR 192", false});
  EXPECT_EQ(out, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  out = decode_text("\xFF\xFF", "GB18030", gb18030_);
  EXPECT_NE(out.find("\xEF\xBF\xBD"), std::string::npos);
}

TEST(SupportedCharsets, the_chinese_and_common_sets_are_known_and_nonsense_is_not) {
  if (!DcmSpecificCharacterSet::isConversionAvailable()) GTEST_SKIP() << "no charset support";
  for (const char* cs : {"GB18030", "GBK", "ISO_IR 192", "ISO_IR 100", "ISO 2022 IR 58"}) {
    EXPECT_TRUE(is_supported_charset(cs)) << cs;
  }
  EXPECT_FALSE(is_supported_charset(""));
  EXPECT_FALSE(is_supported_charset("KLINGON"));
}

}  // namespace
}  // namespace yilian::pacs
