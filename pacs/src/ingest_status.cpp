// The one mapping of ingest outcomes to DICOM statuses and to errors (for HTTP). C-STORE,
// STOW-RS and the ECG upload all answer from here.
#include "yilian/pacs/ingest.h"

namespace yilian::pacs {

std::uint16_t dicom_status(const IngestOutcome& o) {
  switch (o.status) {
    case IngestStatus::stored:
    case IngestStatus::duplicate:
      return 0x0000;
    case IngestStatus::conflict:
      return 0xB000;  // kept aside, not as the stored instance
    case IngestStatus::refused:
      return 0x0124;  // Refused: Not Authorized
    case IngestStatus::failed:
      return 0xA700;  // Refused: Out of Resources
    case IngestStatus::rejected:
      switch (o.reason) {
        case IngestReason::class_mismatch:
        case IngestReason::other_study:
          return 0xA900;  // Error: Data Set does not match SOP Class / the study
        default:
          return 0xC000;  // Error: Cannot understand
      }
  }
  return 0xC000;
}

Error ingest_error(const IngestOutcome& o) {
  Errc code = Errc::internal;
  switch (o.status) {
    case IngestStatus::rejected:
      code = Errc::invalid_argument;
      break;
    case IngestStatus::refused:
      code = Errc::permission_denied;
      break;
    case IngestStatus::conflict:
      code = Errc::conflict;
      break;
    case IngestStatus::failed:
      code = o.reason == IngestReason::disk_full ? Errc::out_of_space : Errc::unavailable;
      break;
    case IngestStatus::stored:
    case IngestStatus::duplicate:
      break;
  }
  return make_error(code, std::string(ingest_status_name(o.status)) +
                              (o.message.empty() ? "" : ": " + o.message));
}

}  // namespace yilian::pacs
