// Media-type negotiation, multipart bodies and DICOM matching used by DICOMweb and Q/R.
#include <gtest/gtest.h>

#include "dicomweb_util.h"
#include "query_retrieve.h"
#include "yilian/pacs/dicomweb.h"

namespace yilian::pacs {
namespace {

TEST(DicomMatch, wildcards_and_alternatives_follow_ps3_4) {
  EXPECT_TRUE(dicom_match("", "anything"));
  EXPECT_TRUE(dicom_match("CT", "CT"));
  EXPECT_FALSE(dicom_match("CT", "MR"));
  EXPECT_TRUE(dicom_match("Zh*", "Zhang^San"));
  EXPECT_TRUE(dicom_match("*San", "Zhang^San"));
  EXPECT_TRUE(dicom_match("Zh?ng*", "Zhang^San"));
  EXPECT_FALSE(dicom_match("Zh?ng", "Zhang^San"));
  EXPECT_TRUE(dicom_match("1.2.3\\1.2.4", "1.2.4"));  // UID list
  EXPECT_FALSE(dicom_match("1.2.3\\1.2.4", "1.2.5"));
  EXPECT_TRUE(dicom_match("*a*b*", "xxaxxbxx"));
  EXPECT_FALSE(dicom_match("*a*b", "xxaxxbxx"));
}

TEST(DicomJson, a_person_name_is_split_into_its_groups_as_ps3_18_f_2_2_asks) {
  using nlohmann::json;
  const json ja = web::dicom_name("Yamada^Tarou=山田^太郎=やまだ^たろう");
  EXPECT_EQ(ja["vr"], "PN");
  EXPECT_EQ(ja["Value"], json::parse(R"([{"Alphabetic":"Yamada^Tarou","Ideographic":"山田^太郎",
                                          "Phonetic":"やまだ^たろう"}])"));
  // Trailing component separators go, as in WADO-RS metadata; empty groups are left out.
  EXPECT_EQ(web::dicom_name("张三^")["Value"], json::parse(R"([{"Alphabetic":"张三"}])"));
  EXPECT_EQ(web::dicom_name("=张^三")["Value"], json::parse(R"([{"Ideographic":"张^三"}])"));
  EXPECT_EQ(web::dicom_name("Wang^Wu^^^ ")["Value"], json::parse(R"([{"Alphabetic":"Wang^Wu"}])"));
  // Several values: an empty one is null.
  EXPECT_EQ(web::dicom_name("A^B\\\\=C")["Value"],
            json::parse(R"([{"Alphabetic":"A^B"},null,{"Ideographic":"C"}])"));
  // No name at all: no Value.
  EXPECT_FALSE(web::dicom_name("").contains("Value"));
  EXPECT_FALSE(web::dicom_name("^^=").contains("Value"));
}

TEST(Accept, media_ranges_with_quoted_parameters) {
  auto r = web::parse_accept(
      "multipart/related; type=\"application/octet-stream\"; transfer-syntax=*, image/jpeg");
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].type, "multipart/related");
  EXPECT_EQ(r[0].params.at("type"), "application/octet-stream");
  EXPECT_EQ(r[0].params.at("transfer-syntax"), "*");
  EXPECT_EQ(r[1].type, "image/jpeg");
  EXPECT_TRUE(web::parse_accept("").empty());
  EXPECT_EQ(web::header_param("multipart/related; type=\"a;b\"; boundary=xyz", "boundary"), "xyz");
}

TEST(FrameSyntax, stored_native_or_a_lossless_encoding_in_that_order_of_what_is_taken) {
  using How = web::FrameChoice::How;
  const std::string native = "1.2.840.10008.1.2.1", jls = "1.2.840.10008.1.2.4.80";
  auto choose = [](const std::string& accept, const std::string& ts, const std::string& media) {
    return web::choose_frame_syntax(web::parse_accept(accept), ts, media);
  };
  // No Accept: decoded pixels.
  EXPECT_EQ(choose("", jls, "image/jls")->how, How::native);
  // As stored when the client takes it.
  EXPECT_EQ(choose("multipart/related; type=\"image/jls\"", jls, "image/jls")->how, How::stored);
  EXPECT_EQ(choose("multipart/related; type=application/octet-stream; transfer-syntax=*", jls,
                   "image/jls")
                ->how,
            How::stored);
  // Native when it takes octet-stream, even beside a compressed type.
  EXPECT_EQ(choose("multipart/related; type=\"image/jls\", multipart/related; "
                   "type=\"application/octet-stream\"",
                   native, "")
                ->how,
            How::native);
  // A compressed type alone: encoded into it.
  auto to_jls = choose("multipart/related; type=\"image/jls\"", native, "");
  ASSERT_TRUE(to_jls);
  EXPECT_EQ(to_jls->how, How::transcode);
  EXPECT_EQ(to_jls->transfer_syntax, jls);
  EXPECT_EQ(
      choose("multipart/related; type=\"image/dicom-rle\"", jls, "image/jls")->transfer_syntax,
      "1.2.840.10008.1.2.5");
  EXPECT_EQ(choose("multipart/related; type=\"image/jpeg\"; transfer-syntax=1.2.840.10008.1.2.4.70",
                   native, "")
                ->transfer_syntax,
            "1.2.840.10008.1.2.4.70");
  // Lossy or JPEG 2000 only: nothing to send.
  EXPECT_FALSE(choose("multipart/related; type=\"image/jpeg\"", native, ""));
  EXPECT_FALSE(choose("multipart/related; type=\"image/jp2\"", native, ""));
  EXPECT_FALSE(choose(
      "multipart/related; type=\"image/jls\"; transfer-syntax=1.2.840.10008.1.2.4.81", native, ""));
}

TEST(Multipart, a_built_body_splits_back_into_its_parts) {
  web::Multipart m;
  m.add("application/dicom", "first\r\n--not-a-boundary");
  m.add("application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1", std::string("\0\1", 2));
  http::Response r = m.finish("application/dicom");
  std::string body;
  for (const auto& p : r.pieces) body += p.bytes;
  EXPECT_EQ(r.body_size(), body.size());
  auto parts = split_multipart(r.content_type, body);
  ASSERT_TRUE(parts.ok()) << parts.error().message;
  ASSERT_EQ(parts->size(), 2u);
  EXPECT_EQ((*parts)[0].content_type, "application/dicom");
  EXPECT_EQ((*parts)[0].bytes, "first\r\n--not-a-boundary");
  EXPECT_EQ((*parts)[1].bytes, std::string("\0\1", 2));
}

TEST(Range, single_byte_ranges_as_players_send_them) {
  auto r = web::parse_range("bytes=0-99", 1000);
  ASSERT_TRUE(r && !r->unsatisfiable);
  EXPECT_EQ(r->first, 0u);
  EXPECT_EQ(r->last, 99u);
  r = web::parse_range("bytes=500-", 1000);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->last, 999u);
  r = web::parse_range("bytes=-10", 1000);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->first, 990u);
  r = web::parse_range("bytes=900-5000", 1000);  // clipped to the end
  ASSERT_TRUE(r);
  EXPECT_EQ(r->last, 999u);
  r = web::parse_range("bytes=1000-", 1000);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->unsatisfiable);
  // Not a single usable range: the whole entity is sent.
  EXPECT_FALSE(web::parse_range("", 1000));
  EXPECT_FALSE(web::parse_range("bytes=0-1,5-6", 1000));
  EXPECT_FALSE(web::parse_range("items=0-1", 1000));
  EXPECT_FALSE(web::parse_range("bytes=9-3", 1000));
  EXPECT_FALSE(web::parse_range("bytes=x-3", 1000));
}

}  // namespace
}  // namespace yilian::pacs
