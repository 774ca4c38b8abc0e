// One DICOM association served by the node: C-ECHO, C-STORE into the ingestor, and (when
// enabled) C-FIND, C-MOVE and C-GET over the index. DCMTK calls its hooks on the worker thread
// that runs the association; the gate in dicom_server.cpp decides which connections get one.
// association.cpp holds negotiation, C-STORE and the audit trail; association_qr.cpp the
// query/retrieve services.
#pragma once

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmnet/assoc.h>
#include <dcmtk/dcmnet/scpthrd.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "query_retrieve.h"
#include "yilian/common/principal.h"
#include "yilian/common/result.h"
#include "yilian/identity/audit.h"
#include "yilian/pacs/dicom_server.h"
#include "yilian/pacs/ingest.h"
#include "yilian/storage/blob_store.h"

class DcmFileFormat;

namespace yilian::pacs::association_detail {

// C-STORE status (PS3.4 B.2.3), also answered to a C-FIND the node cannot process.
constexpr Uint16 kStatusCannotUnderstand = 0xC000;
// Query/retrieve statuses (PS3.4 C.4).
constexpr Uint16 kStatusPending = 0xFF00;
constexpr Uint16 kStatusCancel = 0xFE00;
constexpr Uint16 kStatusIdentifierMismatch = 0xA900;
constexpr Uint16 kStatusMoveDestinationUnknown = 0xA801;
constexpr Uint16 kStatusSubOpsFailed = 0xA702;   // out of resources: no sub-operation done
constexpr Uint16 kStatusSubOpsWarning = 0xB000;  // one or more sub-operations failed

// An association request larger than this is not from a real DICOM node.
constexpr std::uint32_t kMaxAssociateRequest = 1u << 20;

// What every association of one server shares; owned by the server.
struct Shared {
  Ingestor* ingestor = nullptr;
  // The AE directory now; an administrator's change replaces it (set_directory). Each
  // association keeps the one it started with.
  std::shared_ptr<const AeDirectory> directory() const {
    std::lock_guard lock(directory_mu);
    return aes;
  }
  mutable std::mutex directory_mu;
  std::shared_ptr<const AeDirectory> aes;
  identity::Auditor* auditor = nullptr;
  std::string ae_title;
  std::uint32_t max_pdu = 0, dimse_timeout_s = 60;
  // Query/retrieve; null when not enabled.
  std::unique_ptr<QueryRetrieve> qr;
  identity::Accounts* accounts = nullptr;
};

// Sub-operation tallies of a C-MOVE or C-GET.
struct SubOps {
  Uint16 remaining = 0, completed = 0, failed = 0, warning = 0;
  // Counts one sub-operation by the status its C-STORE got.
  void record(Uint16 status) {
    if (status == STATUS_Success) {
      ++completed;
    } else if ((status & 0xF000) == 0xB000) {
      ++warning;
    } else {
      ++failed;
    }
  }
  Uint16 final_status() const {
    if (failed == 0 && warning == 0) return STATUS_Success;
    if (completed == 0 && warning == 0) return kStatusSubOpsFailed;
    return kStatusSubOpsWarning;
  }
};

// What one association did to one study, for its audit record.
struct StudyTally {
  std::map<std::string, int> by_outcome;  // "stored", "duplicate", ...
};

class Association : public DcmThreadSCP {
 public:
  Association(const Shared& shared, T_ASC_Association* assoc)
      : shared_(shared), aes_(shared.directory()), assoc_(assoc) {}

  // One audit record per study this association touched, once it has ended.
  void audit_association();

 protected:
  // DcmSCPConfig holds at most 128 presentation contexts, fewer than the storage SOP
  // classes, so the contexts are negotiated here from DCMTK's full table instead.
  OFCondition negotiateAssociation() override;
  // Called by DCMTK as PDVs of a data set arrive: the disk starts writing the file while the
  // rest is still on the wire, which takes most of the wait out of the batch flush.
  void notifyRECEIVEProgress(const unsigned long byte_count) override;
  OFBool checkCallingAETitleAccepted(const OFString& calling_ae) override;
  OFCondition handleIncomingCommand(T_DIMSE_Message* msg,
                                    const DcmPresentationContextInfo& info) override;

 private:
  OFCondition handle_store(T_DIMSE_C_StoreRQ& req, const DcmPresentationContextInfo& info);

  // The node's view of the archive: its institution, with the roles configured for its AE
  // title (a township clinic's own studies by default).
  Result<Principal> station();
  identity::AuditEvent sender_event();
  // One record per query or retrieve, naming the study when the identifier names one. A
  // named study that yields nothing is recorded as denied: a hidden study and a missing one
  // answer alike on the wire, and the trail shows who asked for what they could not have.
  void audit_qr(const char* action, const std::string& detail, bool ok,
                const DcmDataset* identifier = nullptr, std::size_t results = 1);
  static DcmDataset* comment(DcmDataset& detail, const std::string& text);
  // Q/R identifiers arrive as raw bytes into a temporary file, have their structure checked
  // (dataset_limits.h), and only then are parsed: DCMTK's in-memory receive would parse a
  // hostile identifier by recursion. `problem` says why one was refused.
  OFCondition receive_identifier(T_ASC_PresentationContextID pres, std::unique_ptr<DcmDataset>& out,
                                 std::string& problem);

  // Query/retrieve (association_qr.cpp).
  OFCondition handle_find(T_DIMSE_C_FindRQ& req, const DcmPresentationContextInfo& info);
  OFCondition handle_move(T_DIMSE_C_MoveRQ& req, const DcmPresentationContextInfo& info);
  OFCondition handle_get(T_DIMSE_C_GetRQ& req, const DcmPresentationContextInfo& info);
  // The instances a C-MOVE/C-GET identifier names, or the failure status to answer with.
  Result<std::vector<pacs::InstanceLocation>> retrieve_set(const DcmDataset& identifier);
  // A storage context the requester accepted to receive `sop_class` on (C-GET): the stored
  // syntax if it took it, else any; 0 when none.
  T_ASC_PresentationContextID get_context(const std::string& sop_class, const std::string& ts,
                                          std::string& chosen_ts);
  // A stored object converted to `ts` for a peer that does not take its stored syntax
  // (decompressed with DCMTK's codecs); null when that is not possible (JPEG 2000).
  static std::unique_ptr<DcmFileFormat> converted_copy(const std::string& file,
                                                       const std::string& ts);
  // One C-STORE sub-operation of a C-GET on this association.
  Uint16 store_to_requester(const pacs::InstanceLocation& i);
  OFCondition send_get_response(T_ASC_PresentationContextID pres, const T_DIMSE_C_GetRQ& req,
                                Uint16 status, const SubOps& ops, DcmDataset* detail);

  const Shared& shared_;
  std::shared_ptr<const AeDirectory> aes_;
  T_ASC_Association* assoc_;
  std::optional<std::int64_t> institution_;
  std::map<std::string, StudyTally> tally_;
  std::string peer_ae_, peer_ip_;    // kept: the association is gone when the audit is written
  std::filesystem::path receiving_;  // temp file of the data set being received, if any
  storage::EarlyWriteback writeback_;
};

}  // namespace yilian::pacs::association_detail
