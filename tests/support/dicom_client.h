// A minimal DICOM storage SCU for tests that need to see exact response statuses and send
// objects no well-behaved tool would send (truncated data sets, mismatched SOP classes).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace yilian::testing {

struct StoreResult {
  bool associated = false;  // false: association refused or network failure
  std::string error;        // why, when not associated or not answered
  std::uint16_t status = 0xFFFF;
  std::string error_comment;
};

struct StoreRequest {
  std::filesystem::path file;  // Part 10 file; its data set bytes are sent as they are
  std::string calling_ae = "TESTSCU";
  std::string called_ae = "YILIAN";
  std::string sop_class_uid;        // announced SOP class and context (default: from the file)
  std::string sop_instance_uid;     // announced SOP instance (default: from the file)
  std::string transfer_syntax_uid;  // proposed transfer syntax (default: from the file)
};

StoreResult send_file(std::uint16_t port, const StoreRequest& req);

// The native pixel data bytes of an uncompressed Part 10 file (empty when it has none).
std::string pixel_bytes(const std::filesystem::path& file);

// A Study Root C-FIND whose identifier is `identifier` (explicit VR little endian bytes, sent
// unparsed): the first response's status and Error Comment.
StoreResult find_raw(std::uint16_t port, const std::string& calling_ae,
                     std::string_view identifier);

// C-ECHO; returns true when the association was accepted and the echo answered.
bool echo(std::uint16_t port, const std::string& calling_ae);

}  // namespace yilian::testing
