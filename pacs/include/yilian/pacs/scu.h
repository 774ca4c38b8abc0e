// The hub as a DICOM client: C-ECHO of a modality (the administration screen's connection test)
// and C-STORE of Part 10 files (the demo consortium's modalities). Blocking; each call opens
// and releases its own association.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "yilian/common/result.h"

namespace yilian::pacs {

struct ScuPeer {
  std::string calling_ae = "YILIAN";
  std::string called_ae;
  std::string host;
  std::uint16_t port = 0;
  std::uint32_t timeout_s = 5;  // connect, association and each response
};

// Milliseconds from connecting to the echo's answer. Errors: unavailable (no connection,
// refused association, no answer), with DCMTK's reason.
Result<double> echo(const ScuPeer& peer);

// Sends `files` on one association, each in its own transfer syntax; returns how many were
// stored with success (a file whose SOP class and syntax the peer refused is not sent). Errors:
// unavailable (no association), invalid_argument (a file that is not DICOM).
Result<std::size_t> store_files(const ScuPeer& peer,
                                const std::vector<std::filesystem::path>& files);

}  // namespace yilian::pacs
