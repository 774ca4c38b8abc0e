// Helpers shared by the DICOMweb resources (QIDO-RS, STOW-RS, WADO-RS): parameter parsing,
// DICOM JSON values, media-type negotiation and multipart/related bodies.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "yilian/net/http.h"
#include "yilian/pacs/dataset_limits.h"
#include "yilian/pacs/index.h"

namespace yilian::pacs::web {

// The level of a DICOMweb resource or search result.
enum class Level { study, series, instance };
const char* level_name(Level l);

std::vector<std::string> split(const std::string& s, char sep);
bool to_double(const std::string& s, double& out);
bool to_int(const std::string& s, int& out);
// The value of parameter `name` in a header like `multipart/related; type="..."; boundary=x`.
std::string header_param(const std::string& header, const std::string& name);
// The first of the query parameters named `keyword` or `tag` (QIDO accepts both).
std::optional<std::string> attr(const http::Request& req, const char* keyword, const char* tag);

// The WADO-RS URL of an instance (its Retrieve URL in QIDO and STOW answers).
std::string instance_url(const std::string& study, const std::string& series,
                         const std::string& sop);

nlohmann::json dicom_value(const char* vr, const std::string& v);
nlohmann::json dicom_number(const char* vr, std::optional<std::int64_t> v);
// A PN value (PS3.18 F.2.2): each of its values (`\\`-separated) an object of its Alphabetic,
// Ideographic and Phonetic groups (`=`-separated); as in WADO-RS metadata, a group loses its
// trailing component separators ("张三^" is "张三") and an empty group is left out.
nlohmann::json dicom_name(const std::string& v);
http::Response dicom_json_response(std::string body);

// One media range of an Accept header: type/subtype (lower case) and its parameters.
struct MediaRange {
  std::string type;
  std::map<std::string, std::string> params;  // names lower case, values unquoted
};
std::vector<MediaRange> parse_accept(const std::string& accept);

// How WADO-RS sends frames for an Accept header, given the stored syntax and the media type of
// its frames ("" for an uncompressed one):
//   stored     the stored bitstream (transfer-syntax=*, the stored syntax, or its media type);
//   native     decoded pixels, application/octet-stream (explicit VR little endian);
//   transcode  encoded again losslessly into `transfer_syntax` (JPEG-LS lossless for image/jls,
//              RLE for image/dicom-rle, JPEG lossless SV1 for image/jpeg with its syntax)
//              when the client takes none of the above.
// nullopt: nothing the client takes can be made (406).
struct FrameChoice {
  enum class How { stored, native, transcode } how = How::native;
  std::string transfer_syntax;  // for transcode
};
std::optional<FrameChoice> choose_frame_syntax(const std::vector<MediaRange>& ranges,
                                               const std::string& stored_ts,
                                               const std::string& stored_media);

// A single byte range of a `size`-byte entity from a Range header ("bytes=a-b", "bytes=a-",
// "bytes=-n"): first and last byte. nullopt when there is no usable single range (the whole
// entity is sent); `unsatisfiable` when the range lies past the end (416).
struct ByteRange {
  std::uint64_t first = 0, last = 0;
  bool unsatisfiable = false;
};
std::optional<ByteRange> parse_range(const std::string& header, std::uint64_t size);

// A multipart/related response assembled from in-memory parts and stored files; files are
// streamed by the server, not read here.
class Multipart {
 public:
  Multipart();
  void add(const std::string& content_type, std::string bytes, const std::string& location = {});
  void add_file(const std::string& content_type, const std::string& file, std::uint64_t offset,
                std::uint64_t length, const std::string& location = {});
  // One part made of several byte ranges of a file (a frame's fragments), in order.
  void add_file(const std::string& content_type, const std::string& file,
                const std::vector<ByteSpan>& spans, const std::string& location = {});
  bool empty() const { return parts_ == 0; }
  // `type` is the type parameter of the whole body, e.g. application/dicom.
  http::Response finish(const std::string& type);

 private:
  std::string head(const std::string& content_type, const std::string& location) const;
  std::string boundary_;
  std::vector<http::BodyPiece> pieces_;
  std::size_t parts_ = 0;
};

// True for a DA query value: one date, or a range with either end open.
bool valid_date_query(const std::string& d);
// Study-level QIDO keys -> a study query; a 400 response on bad input.
std::optional<http::Response> study_query(const http::Request& req, pacs::StudyQuery& q);

}  // namespace yilian::pacs::web
