#include "yilian/pacs/dicom_server.h"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcistrmb.h>
#include <dcmtk/dcmdata/dcostrmf.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmdata/dcxfer.h>
#include <dcmtk/dcmnet/assoc.h>
#include <dcmtk/dcmnet/diutil.h>
#include <dcmtk/dcmnet/scpthrd.h>
#include <dcmtk/dcmnet/scu.h>

#include "query_retrieve.h"
#include "yilian/pacs/dataset_limits.h"

#include <spdlog/spdlog.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <map>

namespace yilian::pacs {

std::string normalize_ae_title(const std::string& ae) {
  std::size_t b = ae.find_first_not_of(' ');
  if (b == std::string::npos) return {};
  std::size_t e = ae.find_last_not_of(' ');
  return ae.substr(b, e - b + 1);
}

void AeDirectory::add(const std::string& ae_title, std::int64_t institution_id) {
  entries_.emplace_back(normalize_ae_title(ae_title), institution_id);
}

void AeDirectory::name_institution(std::int64_t institution_id, std::string code) {
  codes_.emplace_back(institution_id, std::move(code));
}

std::string AeDirectory::institution_code(std::int64_t institution_id) const {
  for (const auto& [id, code] : codes_) {
    if (id == institution_id) return code;
  }
  return std::to_string(institution_id);
}

void AeDirectory::set_text_decoding(const std::string& ae_title, TextDecoding decoding) {
  text_.emplace_back(normalize_ae_title(ae_title), std::move(decoding));
}

TextDecoding AeDirectory::text_decoding(const std::string& ae_title) const {
  std::string ae = normalize_ae_title(ae_title);
  for (const auto& [title, t] : text_) {
    if (title == ae) return t;
  }
  return default_text_;
}

void AeDirectory::add_peer(const std::string& ae_title, DicomPeer peer) {
  peers_.emplace_back(normalize_ae_title(ae_title), std::move(peer));
}

const DicomPeer* AeDirectory::peer(const std::string& ae_title) const {
  std::string ae = normalize_ae_title(ae_title);
  for (const auto& [title, p] : peers_) {
    if (title == ae) return &p;
  }
  return nullptr;
}

std::optional<std::int64_t> AeDirectory::resolve(const std::string& ae_title) const {
  std::string ae = normalize_ae_title(ae_title);
  for (const auto& [title, id] : entries_) {
    if (title == ae) return id;
  }
  if (reject_unknown_) return std::nullopt;
  return unknown_;
}

namespace {

// C-STORE status codes (PS3.4 B.2.3).
constexpr Uint16 kStatusCannotUnderstand = 0xC000;

// Preference order when an SCU proposes several transfer syntaxes for one object: keep
// compressed objects compressed (stored as sent), then explicit over implicit.
constexpr const char* kStorageTransferSyntaxes[] = {
    UID_JPEGLSLosslessTransferSyntax,
    UID_JPEGProcess14SV1TransferSyntax,
    UID_JPEGProcess14TransferSyntax,
    UID_JPEG2000LosslessOnlyTransferSyntax,
    UID_RLELosslessTransferSyntax,
    UID_JPEGLSLossyTransferSyntax,
    UID_JPEG2000TransferSyntax,
    UID_JPEGProcess1TransferSyntax,
    UID_JPEGProcess2_4TransferSyntax,
    UID_MPEG2MainProfileAtMainLevelTransferSyntax,
    UID_MPEG2MainProfileAtHighLevelTransferSyntax,
    UID_MPEG4HighProfileLevel4_1TransferSyntax,
    UID_MPEG4BDcompatibleHighProfileLevel4_1TransferSyntax,
    UID_HEVCMainProfileLevel5_1TransferSyntax,
    UID_HEVCMain10ProfileLevel5_1TransferSyntax,
    UID_DeflatedExplicitVRLittleEndianTransferSyntax,
    UID_LittleEndianExplicitTransferSyntax,
    UID_BigEndianExplicitTransferSyntax,
    UID_LittleEndianImplicitTransferSyntax};

constexpr const char* kVerificationTransferSyntaxes[] = {UID_LittleEndianExplicitTransferSyntax,
                                                         UID_LittleEndianImplicitTransferSyntax};
constexpr const char* kVerification[] = {UID_VerificationSOPClass};
constexpr const char* kQueryRetrieve[] = {UID_FINDPatientRootQueryRetrieveInformationModel,
                                          UID_FINDStudyRootQueryRetrieveInformationModel,
                                          UID_MOVEPatientRootQueryRetrieveInformationModel,
                                          UID_MOVEStudyRootQueryRetrieveInformationModel,
                                          UID_GETPatientRootQueryRetrieveInformationModel,
                                          UID_GETStudyRootQueryRetrieveInformationModel};

// Query/retrieve status codes (PS3.4 C.4).
constexpr Uint16 kStatusPending = 0xFF00;
constexpr Uint16 kStatusCancel = 0xFE00;
constexpr Uint16 kStatusIdentifierMismatch = 0xA900;
constexpr Uint16 kStatusMoveDestinationUnknown = 0xA801;
constexpr Uint16 kStatusSubOpsFailed = 0xA702;   // out of resources: no sub-operation done
constexpr Uint16 kStatusSubOpsWarning = 0xB000;  // one or more sub-operations failed

struct Shared {
  Ingestor* ingestor = nullptr;
  const AeDirectory* aes = nullptr;
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
  Uint16 final_status() const {
    if (failed == 0 && warning == 0) return STATUS_Success;
    if (completed == 0 && warning == 0) return kStatusSubOpsFailed;
    return kStatusSubOpsWarning;
  }
};

// A query/retrieve identifier larger than this is not a query.
constexpr std::size_t kMaxIdentifierBytes = 1u << 20;

// An association request larger than this is not from a real DICOM node.
constexpr std::uint32_t kMaxAssociateRequest = 1u << 20;

Uint16 clamp16(std::size_t n) { return static_cast<Uint16>(std::min<std::size_t>(n, 0xFFFF)); }

// What one association did to one study, for its audit record.
struct StudyTally {
  std::map<std::string, int> by_outcome;  // "stored", "duplicate", ...
};

// One association. DCMTK calls these hooks on the worker thread that runs it.
class StoreScp : public DcmThreadSCP {
 public:
  StoreScp(const Shared& shared, T_ASC_Association* assoc) : shared_(shared), assoc_(assoc) {}

 protected:
  // DcmSCPConfig holds at most 128 presentation contexts, fewer than the storage SOP
  // classes, so the contexts are negotiated here from DCMTK's full table instead.
  OFCondition negotiateAssociation() override {
    // DCMTK takes non-const arrays; hand it local copies.
    auto verification = std::to_array(kVerification);
    auto verification_ts = std::to_array(kVerificationTransferSyntaxes);
    auto storage_ts = std::to_array(kStorageTransferSyntaxes);
    OFCondition cond = ASC_acceptContextsWithPreferredTransferSyntaxes(
        assoc_->params, verification.data(), static_cast<int>(verification.size()),
        verification_ts.data(), static_cast<int>(verification_ts.size()));
    if (cond.bad()) return cond;
    if (shared_.qr) {
      auto qr = std::to_array(kQueryRetrieve);
      cond = ASC_acceptContextsWithPreferredTransferSyntaxes(
          assoc_->params, qr.data(), static_cast<int>(qr.size()), verification_ts.data(),
          static_cast<int>(verification_ts.size()));
      if (cond.bad()) return cond;
    }
    // Storage contexts take the role the requester proposes: SCU when it sends (C-STORE),
    // SCP when it receives the sub-operations of its own C-GET.
    const int n = ASC_countPresentationContexts(assoc_->params);
    for (int i = 0; i < n; ++i) {
      T_ASC_PresentationContext pc;
      if (ASC_getPresentationContext(assoc_->params, i, &pc).bad()) continue;
      if (!dcmIsaStorageSOPClassUID(pc.abstractSyntax, ESSC_All)) continue;
      for (const char* ts : storage_ts) {
        bool proposed = false;
        for (int k = 0; k < pc.transferSyntaxCount; ++k) {
          if (std::strcmp(pc.proposedTransferSyntaxes[k], ts) == 0) proposed = true;
        }
        if (!proposed) continue;
        cond = ASC_acceptPresentationContext(assoc_->params, pc.presentationContextID, ts,
                                             pc.proposedRole);
        if (cond.bad()) return cond;
        break;  // the first in our preference order
      }
    }
    return EC_Normal;  // every other context stays refused
  }

  // Called by DCMTK as PDVs of a data set arrive: the disk starts writing the file while the
  // rest is still on the wire, which takes most of the wait out of the batch flush.
  void notifyRECEIVEProgress(const unsigned long byte_count) override {
    if (!receiving_.empty()) writeback_.progress(receiving_, byte_count);
  }

  OFBool checkCallingAETitleAccepted(const OFString& calling_ae) override {
    institution_ = shared_.aes->resolve(calling_ae.c_str());
    peer_ae_ = normalize_ae_title(calling_ae.c_str());
    peer_ip_ = getPeerIP().c_str();
    if (!institution_ && shared_.auditor) {
      identity::AuditEvent ev = sender_event();
      ev.action = "dicom.associate";
      ev.object_type = "association";
      ev.outcome = "denied";
      ev.detail = "calling AE title not mapped to a member institution";
      (void)shared_.auditor->record(ev);
    }
    return institution_.has_value() ? OFTrue : OFFalse;
  }

 public:
  // One audit record per study this association touched, once it has ended.
  void audit_association() {
    if (!shared_.auditor) return;
    for (const auto& [study, tally] : tally_) {
      identity::AuditEvent ev = sender_event();
      ev.action = "dicom.store";
      ev.object_type = "study";
      ev.object_id = study;
      std::string detail;
      bool refused = false;
      for (const auto& [what, n] : tally.by_outcome) {
        if (!detail.empty()) detail += ", ";
        detail += std::to_string(n) + " " + what;
        if (what == "refused") refused = true;
      }
      ev.outcome = refused ? "denied" : "ok";
      ev.detail = detail;
      (void)shared_.auditor->record(ev);
    }
  }

 protected:
  OFCondition handleIncomingCommand(T_DIMSE_Message* msg,
                                    const DcmPresentationContextInfo& info) override {
    if (shared_.qr && msg->CommandField == DIMSE_C_FIND_RQ)
      return handle_find(msg->msg.CFindRQ, info);
    if (shared_.qr && msg->CommandField == DIMSE_C_MOVE_RQ)
      return handle_move(msg->msg.CMoveRQ, info);
    if (shared_.qr && msg->CommandField == DIMSE_C_GET_RQ) return handle_get(msg->msg.CGetRQ, info);
    if (msg->CommandField != DIMSE_C_STORE_RQ) {
      return DcmThreadSCP::handleIncomingCommand(msg, info);
    }
    T_DIMSE_C_StoreRQ& req = msg->msg.CStoreRQ;
    Ingestor& ingestor = *shared_.ingestor;
    std::string key = ingestor.blobs().new_key();
    receiving_ = ingestor.blobs().temp_path(key);
    OFCondition cond = receiveSTORERequest(req, info.presentationContextID, receiving_.c_str());
    receiving_.clear();
    if (cond.bad()) {
      writeback_.reset();
      (void)ingestor.blobs().remove_temp(key);
      return cond;  // the association is gone or unusable
    }
    writeback_.finish();

    IngestOutcome o;
    if (info.abstractSyntax != req.AffectedSOPClassUID) {
      (void)ingestor.blobs().remove_temp(key);
      o.status = IngestStatus::rejected;
      o.reason = IngestReason::class_mismatch;
      o.message = "Affected SOP Class differs from the presentation context";
    } else {
      Sender sender{getPeerAETitle().c_str(),
                    institution_.value_or(shared_.aes->unknown_institution()),
                    shared_.aes->text_decoding(peer_ae_)};
      o = ingestor.ingest(key, sender,
                          Announced{req.AffectedSOPClassUID, req.AffectedSOPInstanceUID});
    }

    if (!o.study_instance_uid.empty())
      ++tally_[o.study_instance_uid].by_outcome[ingest_status_name(o.status)];
    const Uint16 status = dicom_status(o);
    const OFString peer = getPeerAETitle();
    const char* ae = peer.c_str();
    switch (o.status) {
      case IngestStatus::stored:
      case IngestStatus::duplicate:
        break;
      case IngestStatus::conflict:
        spdlog::warn("C-STORE from {}: SOP Instance {} conflict: {}", ae,
                     req.AffectedSOPInstanceUID, o.message);
        break;
      case IngestStatus::rejected:
        spdlog::warn("C-STORE from {}: SOP Instance {} rejected: {}", ae,
                     req.AffectedSOPInstanceUID, o.message);
        break;
      case IngestStatus::refused:
        spdlog::warn("C-STORE from {}: SOP Instance {} refused: {}", ae, req.AffectedSOPInstanceUID,
                     o.message);
        break;
      case IngestStatus::failed:
        spdlog::error("C-STORE from {}: SOP Instance {} not stored: {}", ae,
                      req.AffectedSOPInstanceUID, o.message);
        break;
    }
    DcmDataset detail;
    DcmDataset* detail_ptr = nullptr;
    if (!o.message.empty()) {
      // Error Comment is LO: at most 64 characters.
      std::string comment = o.message.substr(0, 64);
      detail.putAndInsertString(DCM_ErrorComment, comment.c_str());
      detail_ptr = &detail;
    }
    return sendSTOREResponse(info.presentationContextID, req.MessageID, req.AffectedSOPClassUID,
                             req.AffectedSOPInstanceUID, status, detail_ptr);
  }

 private:
  // The node's view of the archive: its institution, with the roles configured for its AE
  // title (a township clinic's own studies by default).
  Result<Principal> station() {
    std::uint32_t roles = 1u << static_cast<unsigned>(Role::township_doctor);
    if (const DicomPeer* peer = shared_.aes->peer(peer_ae_); peer && peer->roles) {
      roles = peer->roles;
    }
    auto p = shared_.accounts->station_principal(
        institution_.value_or(shared_.aes->unknown_institution()), roles);
    if (p.ok()) p->username = "ae:" + peer_ae_;
    return p;
  }

  // One record per query or retrieve, naming the study when the identifier names one. A
  // named study that yields nothing is recorded as denied: a hidden study and a missing one
  // answer alike on the wire, and the trail shows who asked for what they could not have.
  void audit_qr(const char* action, const std::string& detail, bool ok,
                const DcmDataset* identifier = nullptr, std::size_t results = 1) {
    if (!shared_.auditor) return;
    identity::AuditEvent ev = sender_event();
    ev.action = action;
    ev.object_type = "query";
    ev.outcome = ok ? "ok" : "failed";
    ev.detail = detail;
    OFString study;
    if (identifier &&
        const_cast<DcmDataset*>(identifier)
            ->findAndGetOFStringArray(DCM_StudyInstanceUID, study)
            .good() &&
        !study.empty()) {
      ev.object_type = "study";
      ev.object_id = study.c_str();
      if (ok && results == 0) {
        ev.outcome = "denied";
        ev.detail = detail + "; no study this node may see";
      }
    }
    (void)shared_.auditor->record(ev);
  }

  static DcmDataset* comment(DcmDataset& detail, const std::string& text) {
    detail.putAndInsertString(DCM_ErrorComment, text.substr(0, 64).c_str());
    return &detail;
  }

  // Q/R identifiers arrive as raw bytes into a temporary file, have their structure checked
  // (dataset_limits.h), and only then are parsed: DCMTK's in-memory receive would parse a
  // hostile identifier by recursion. `problem` says why one was refused.
  OFCondition receive_identifier(T_ASC_PresentationContextID pres, std::unique_ptr<DcmDataset>& out,
                                 std::string& problem) {
    const std::filesystem::path tmp =
        std::filesystem::temp_directory_path() /
        ("yilian-qr-" + std::to_string(::getpid()) + "-" +
         std::to_string(reinterpret_cast<std::uintptr_t>(this)) + ".bin");
    struct Cleanup {
      const std::filesystem::path& p;
      ~Cleanup() {
        std::error_code ec;
        std::filesystem::remove(p, ec);
      }
    } cleanup{tmp};
    {
      DcmOutputFileStream stream(tmp.c_str());
      if (!stream.good()) return EC_CouldNotCreateTemporaryFile;
      T_ASC_PresentationContextID got = pres;
      OFCondition cond = DIMSE_receiveDataSetInFile(assoc_, DIMSE_NONBLOCKING,
                                                    static_cast<int>(shared_.dimse_timeout_s), &got,
                                                    &stream, nullptr, nullptr);
      if (cond.bad()) return cond;
    }
    T_ASC_PresentationContext pc;
    if (ASC_findAcceptedPresentationContext(assoc_->params, pres, &pc).bad()) {
      problem = "no accepted presentation context for the identifier";
      return EC_Normal;
    }
    std::error_code ec;
    const auto size = std::filesystem::file_size(tmp, ec);
    if (ec || size > kMaxIdentifierBytes) {
      problem = "identifier larger than " + std::to_string(kMaxIdentifierBytes >> 10) + " KiB";
      return EC_Normal;
    }
    std::string bytes(size, '\0');
    if (std::FILE* f = std::fopen(tmp.c_str(), "rb")) {
      if (std::fread(bytes.data(), 1, size, f) != size) bytes.clear();
      std::fclose(f);
    }
    if (Status s = check_dataset_structure(bytes, pc.acceptedTransferSyntax); !s) {
      problem = s.error().message;
      return EC_Normal;
    }
    // Parsed from the bytes already read, not from the file a second time.
    out = std::make_unique<DcmDataset>();
    DcmInputBufferStream in;
    in.setBuffer(bytes.data(), static_cast<offile_off_t>(bytes.size()));
    in.setEos();
    out->transferInit();
    const OFCondition parsed = out->read(in, DcmXfer(pc.acceptedTransferSyntax).getXfer());
    out->transferEnd();
    if (parsed.bad()) {
      out.reset();
      problem = "unparseable identifier";
    }
    return EC_Normal;
  }

  OFCondition handle_find(T_DIMSE_C_FindRQ& req, const DcmPresentationContextInfo& info) {
    const T_ASC_PresentationContextID pres = info.presentationContextID;
    std::unique_ptr<DcmDataset> identifier;
    std::string problem;
    OFCondition cond = receive_identifier(pres, identifier, problem);
    if (cond.bad()) return cond;
    const OFString sop = req.AffectedSOPClassUID;
    DcmDataset detail;
    if (!problem.empty()) {
      audit_qr("dicom.find", problem, false);
      return sendFINDResponse(pres, req.MessageID, sop, nullptr, kStatusIdentifierMismatch,
                              comment(detail, problem));
    }
    auto p = station();
    if (!p.ok()) {
      return sendFINDResponse(pres, req.MessageID, sop, nullptr, kStatusCannotUnderstand,
                              comment(detail, p.error().message));
    }
    const bool patient_root = sop == UID_FINDPatientRootQueryRetrieveInformationModel;
    auto matches = shared_.qr->find(*p, patient_root, *identifier);
    if (!matches.ok()) {
      audit_qr("dicom.find", matches.error().message, false, identifier.get());
      return sendFINDResponse(pres, req.MessageID, sop, nullptr,
                              matches.error().code == Errc::invalid_argument
                                  ? kStatusIdentifierMismatch
                                  : kStatusCannotUnderstand,
                              comment(detail, matches.error().message));
    }
    std::size_t sent = 0;
    for (auto& m : *matches) {
      if (sent % 64 == 63 && checkForCANCEL(pres, req.MessageID) == EC_Normal) {
        audit_qr("dicom.find", std::to_string(sent) + " matches sent, then cancelled", true);
        return sendFINDResponse(pres, req.MessageID, sop, nullptr, kStatusCancel);
      }
      cond = sendFINDResponse(pres, req.MessageID, sop, m.get(), kStatusPending);
      if (cond.bad()) return cond;
      ++sent;
    }
    OFString level;
    identifier->findAndGetOFString(DCM_QueryRetrieveLevel, level);
    audit_qr("dicom.find", std::string(level.c_str()) + ": " + std::to_string(sent) + " matches",
             true, identifier.get(), sent);
    return sendFINDResponse(pres, req.MessageID, sop, nullptr, STATUS_Success);
  }

  // The instances a C-MOVE/C-GET identifier names, or the failure status to answer with.
  Result<std::vector<pacs::InstanceLocation>> retrieve_set(const DcmDataset& identifier) {
    auto p = station();
    if (!p.ok()) return p.error();
    return shared_.qr->instances(*p, identifier);
  }

  OFCondition handle_move(T_DIMSE_C_MoveRQ& req, const DcmPresentationContextInfo& info) {
    const T_ASC_PresentationContextID pres = info.presentationContextID;
    std::unique_ptr<DcmDataset> identifier;
    std::string problem;
    OFCondition cond = receive_identifier(pres, identifier, problem);
    if (cond.bad()) return cond;
    const OFString destination = req.MoveDestination;
    const OFString sop = req.AffectedSOPClassUID;
    DcmDataset detail;
    if (!problem.empty()) {
      audit_qr("dicom.move", problem, false);
      return sendMOVEResponse(pres, req.MessageID, sop, nullptr, kStatusIdentifierMismatch,
                              comment(detail, problem));
    }
    const DicomPeer* dest = shared_.aes->peer(destination.c_str());
    if (!dest || dest->port == 0) {
      audit_qr("dicom.move", "unknown destination " + std::string(destination.c_str()), false);
      return sendMOVEResponse(pres, req.MessageID, sop, nullptr, kStatusMoveDestinationUnknown,
                              comment(detail, "move destination is not a configured peer"));
    }
    auto set = retrieve_set(*identifier);
    if (!set.ok()) {
      audit_qr("dicom.move", set.error().message, false, identifier.get());
      return sendMOVEResponse(pres, req.MessageID, sop, nullptr, kStatusIdentifierMismatch,
                              comment(detail, set.error().message));
    }
    SubOps ops;
    ops.remaining = clamp16(set->size());
    if (!set->empty()) {
      DcmSCU scu;
      scu.setAETitle(shared_.ae_title.c_str());
      scu.setPeerAETitle(destination);
      scu.setPeerHostName(dest->host.c_str());
      scu.setPeerPort(dest->port);
      scu.setMaxReceivePDULength(shared_.max_pdu);
      scu.setDIMSEBlockingMode(DIMSE_BLOCKING);
      scu.setDIMSETimeout(shared_.dimse_timeout_s);
      scu.setACSETimeout(shared_.dimse_timeout_s);
      // One context per SOP class and stored syntax, plus an uncompressed fallback.
      std::set<std::pair<std::string, std::string>> wanted;
      for (const auto& i : *set) {
        wanted.insert({i.sop_class_uid, i.transfer_syntax_uid});
        wanted.insert({i.sop_class_uid, UID_LittleEndianExplicitTransferSyntax});
      }
      for (const auto& [sop_class, ts] : wanted) {
        OFList<OFString> syntaxes;
        syntaxes.push_back(ts.c_str());
        if (ts == UID_LittleEndianExplicitTransferSyntax)
          syntaxes.push_back(UID_LittleEndianImplicitTransferSyntax);
        scu.addPresentationContext(sop_class.c_str(), syntaxes);
      }
      bool connected = scu.initNetwork().good() && scu.negotiateAssociation().good();
      for (const auto& i : *set) {
        --ops.remaining;
        Uint16 status = 0xFFFF;
        // The stored syntax if the destination took it, else an uncompressed one.
        std::string ts;
        T_ASC_PresentationContextID id = 0;
        for (const char* candidate :
             {i.transfer_syntax_uid.c_str(), UID_LittleEndianExplicitTransferSyntax,
              UID_LittleEndianImplicitTransferSyntax}) {
          if (!connected || id != 0) break;
          id = scu.findPresentationContextID(i.sop_class_uid.c_str(), candidate);
          ts = candidate;
        }
        const std::string file = shared_.ingestor->blobs().blob_path(i.blob_key).string();
        OFCondition sent = EC_IllegalCall;
        if (id != 0 && ts == i.transfer_syntax_uid) {
          sent = scu.sendSTORERequest(id, file.c_str(), nullptr, status, getPeerAETitle(),
                                      req.MessageID);
        } else if (id != 0) {
          if (auto copy = converted_copy(file, ts)) {
            sent = scu.sendSTORERequest(id, "", copy->getDataset(), status, getPeerAETitle(),
                                        req.MessageID);
          }
        }
        if (sent.good() && status == STATUS_Success) {
          ++ops.completed;
        } else if (sent.good() && (status & 0xF000) == 0xB000) {
          ++ops.warning;
        } else {
          ++ops.failed;
        }
        if (ops.remaining > 0) {
          cond = sendMOVEResponse(pres, req.MessageID, sop, nullptr, kStatusPending, nullptr,
                                  ops.remaining, ops.completed, ops.failed, ops.warning);
          if (cond.bad()) break;
        }
      }
      if (connected) scu.releaseAssociation();
      if (!connected) spdlog::warn("C-MOVE to {}: cannot associate", destination.c_str());
    }
    audit_qr("dicom.move",
             "to " + std::string(destination.c_str()) + ": " + std::to_string(ops.completed) +
                 " sent, " + std::to_string(ops.failed) + " failed",
             ops.failed == 0, identifier.get(), set->size());
    return sendMOVEResponse(pres, req.MessageID, sop, nullptr, ops.final_status(), nullptr, 0,
                            ops.completed, ops.failed, ops.warning);
  }

  // A storage context the requester accepted to receive `sop_class` on (C-GET): the stored
  // syntax if it took it, else any; 0 when none.
  T_ASC_PresentationContextID get_context(const std::string& sop_class, const std::string& ts,
                                          std::string& chosen_ts) {
    T_ASC_PresentationContextID any = 0;
    const int n = ASC_countPresentationContexts(assoc_->params);
    for (int i = 0; i < n; ++i) {
      T_ASC_PresentationContext pc;
      if (ASC_getPresentationContext(assoc_->params, i, &pc).bad()) continue;
      if (pc.resultReason != ASC_P_ACCEPTANCE || sop_class != pc.abstractSyntax) continue;
      if (pc.acceptedRole != ASC_SC_ROLE_SCP && pc.acceptedRole != ASC_SC_ROLE_SCUSCP) continue;
      if (ts == pc.acceptedTransferSyntax) {
        chosen_ts = ts;
        return pc.presentationContextID;
      }
      if (!any) {
        any = pc.presentationContextID;
        chosen_ts = pc.acceptedTransferSyntax;
      }
    }
    return any;
  }

  // A stored object converted to `ts` for a peer that does not take its stored syntax
  // (decompressed with DCMTK's codecs); null when that is not possible (JPEG 2000).
  static std::unique_ptr<DcmFileFormat> converted_copy(const std::string& file,
                                                       const std::string& ts) {
    auto ff = std::make_unique<DcmFileFormat>();
    if (ff->loadFile(file.c_str()).bad()) return nullptr;
    const E_TransferSyntax target = DcmXfer(ts.c_str()).getXfer();
    if (ff->getDataset()->chooseRepresentation(target, nullptr).bad() ||
        !ff->getDataset()->canWriteXfer(target))
      return nullptr;
    return ff;
  }

  // One C-STORE sub-operation of a C-GET on this association.
  Uint16 store_to_requester(const pacs::InstanceLocation& i) {
    std::string ts;
    T_ASC_PresentationContextID id = get_context(i.sop_class_uid, i.transfer_syntax_uid, ts);
    if (id == 0) return 0xA702;
    const std::string file = shared_.ingestor->blobs().blob_path(i.blob_key).string();
    T_DIMSE_C_StoreRQ rq;
    std::memset(&rq, 0, sizeof rq);
    rq.MessageID = assoc_->nextMsgID++;
    OFStandard::strlcpy(rq.AffectedSOPClassUID, i.sop_class_uid.c_str(),
                        sizeof rq.AffectedSOPClassUID);
    OFStandard::strlcpy(rq.AffectedSOPInstanceUID, i.sop_instance_uid.c_str(),
                        sizeof rq.AffectedSOPInstanceUID);
    rq.DataSetType = DIMSE_DATASET_PRESENT;
    rq.Priority = DIMSE_PRIORITY_MEDIUM;
    T_DIMSE_C_StoreRSP rsp;
    std::memset(&rsp, 0, sizeof rsp);
    DcmDataset* status_detail = nullptr;
    OFCondition cond;
    if (ts == i.transfer_syntax_uid) {
      cond = DIMSE_storeUser(assoc_, id, &rq, file.c_str(), nullptr, nullptr, nullptr,
                             DIMSE_BLOCKING, 0, &rsp, &status_detail);
    } else {
      auto copy = converted_copy(file, ts);
      if (!copy) return 0xA702;
      cond = DIMSE_storeUser(assoc_, id, &rq, nullptr, copy->getDataset(), nullptr, nullptr,
                             DIMSE_BLOCKING, 0, &rsp, &status_detail);
    }
    delete status_detail;
    if (cond.bad()) return 0xA702;
    return rsp.DimseStatus;
  }

  OFCondition send_get_response(T_ASC_PresentationContextID pres, const T_DIMSE_C_GetRQ& req,
                                Uint16 status, const SubOps& ops, DcmDataset* detail) {
    T_DIMSE_Message rsp;
    std::memset(&rsp, 0, sizeof rsp);
    rsp.CommandField = DIMSE_C_GET_RSP;
    T_DIMSE_C_GetRSP& g = rsp.msg.CGetRSP;
    g.MessageIDBeingRespondedTo = req.MessageID;
    OFStandard::strlcpy(g.AffectedSOPClassUID, req.AffectedSOPClassUID,
                        sizeof g.AffectedSOPClassUID);
    g.DimseStatus = status;
    g.DataSetType = DIMSE_DATASET_NULL;
    g.opts = O_GET_AFFECTEDSOPCLASSUID;
    if (status == kStatusPending || ops.completed || ops.failed || ops.warning) {
      g.opts |= O_GET_NUMBEROFCOMPLETEDSUBOPERATIONS | O_GET_NUMBEROFFAILEDSUBOPERATIONS |
                O_GET_NUMBEROFWARNINGSUBOPERATIONS;
      g.NumberOfCompletedSubOperations = ops.completed;
      g.NumberOfFailedSubOperations = ops.failed;
      g.NumberOfWarningSubOperations = ops.warning;
    }
    if (status == kStatusPending) {
      g.opts |= O_GET_NUMBEROFREMAININGSUBOPERATIONS;
      g.NumberOfRemainingSubOperations = ops.remaining;
    }
    return sendDIMSEMessage(pres, &rsp, nullptr, detail);
  }

  OFCondition handle_get(T_DIMSE_C_GetRQ& req, const DcmPresentationContextInfo& info) {
    T_ASC_PresentationContextID pres = info.presentationContextID;
    std::unique_ptr<DcmDataset> identifier;
    std::string problem;
    OFCondition cond = receive_identifier(pres, identifier, problem);
    if (cond.bad()) return cond;
    DcmDataset detail;
    SubOps ops;
    if (!problem.empty()) {
      audit_qr("dicom.get", problem, false);
      return send_get_response(pres, req, kStatusIdentifierMismatch, ops, comment(detail, problem));
    }
    auto set = retrieve_set(*identifier);
    if (!set.ok()) {
      audit_qr("dicom.get", set.error().message, false, identifier.get());
      return send_get_response(pres, req, kStatusIdentifierMismatch, ops,
                               comment(detail, set.error().message));
    }
    ops.remaining = clamp16(set->size());
    for (const auto& i : *set) {
      --ops.remaining;
      Uint16 status = store_to_requester(i);
      if (status == STATUS_Success) {
        ++ops.completed;
      } else if ((status & 0xF000) == 0xB000) {
        ++ops.warning;
      } else {
        ++ops.failed;
      }
      if (ops.remaining > 0) {
        cond = send_get_response(pres, req, kStatusPending, ops, nullptr);
        if (cond.bad()) return cond;
      }
    }
    audit_qr("dicom.get",
             std::to_string(ops.completed) + " sent, " + std::to_string(ops.failed) + " failed",
             ops.failed == 0, identifier.get(), set->size());
    return send_get_response(pres, req, ops.final_status(), ops, nullptr);
  }

  const Shared& shared_;
  T_ASC_Association* assoc_;
  identity::AuditEvent sender_event() {
    identity::AuditEvent ev;
    ev.actor = "ae:" + peer_ae_;
    ev.actor_institution =
        institution_ ? shared_.aes->institution_code(*institution_) : std::string();
    ev.address = peer_ip_;
    return ev;
  }

  std::optional<std::int64_t> institution_;
  std::map<std::string, StudyTally> tally_;
  std::string peer_ae_, peer_ip_;    // kept: the association is gone when the audit is written
  std::filesystem::path receiving_;  // temp file of the data set being received, if any
  storage::EarlyWriteback writeback_;
};

}  // namespace

// Connections are gated before DCMTK sees them. DCMTK reads an association request with a
// blocking read on the thread that accepted the connection, so a silent socket would hold
// the only accept thread for the whole ACSE timeout. Here one gate thread accepts every
// connection itself, caps them per address and in total, and waits (poll, no thread per
// socket) until the A-ASSOCIATE-RQ PDU has arrived whole; silent or non-DICOM connections
// are closed at their deadline without delaying anyone else. Only then does a worker hand
// the socket to DCMTK (dcmExternalSocketHandle, under a lock held while DCMTK parses bytes
// that are already buffered) and serve the association.
struct DicomServer::Impl {
  // A connection that has not yet sent its whole association request.
  struct Pending {
    int fd = -1;
    std::string address;
    std::chrono::steady_clock::time_point deadline;
  };
  struct Ready {
    int fd = -1;
    std::string address;
  };

  DicomServerOptions options;
  Shared shared;
  DcmSharedSCPConfig config;
  T_ASC_Network* net = nullptr;
  int listen_fd = -1;
  std::uint16_t bound_port = 0;

  std::atomic<bool> stop{false};
  std::thread gate;
  std::vector<std::thread> workers;

  mutable std::mutex mu;
  std::condition_variable cv;
  std::deque<Ready> waiting;                    // guarded by mu
  std::map<std::string, unsigned> per_address;  // open connections by address; guarded by mu
  unsigned open_connections = 0;                // pending, waiting and served; guarded by mu
  DicomServerCounters counters;                 // guarded by mu
  std::mutex negotiate_mu;                      // dcmExternalSocketHandle is process-wide

  void release(const std::string& address) {
    std::lock_guard lock(mu);
    if (open_connections > 0) --open_connections;
    auto it = per_address.find(address);
    if (it != per_address.end() && --it->second == 0) per_address.erase(it);
  }

  void close_connection(int fd, const std::string& address) {
    ::close(fd);
    release(address);
  }

  // Takes every connection waiting on the listening socket.
  void accept_all(std::vector<Pending>& pending) {
    while (true) {
      sockaddr_storage from{};
      socklen_t len = sizeof from;
      int fd = ::accept4(listen_fd, reinterpret_cast<sockaddr*>(&from), &len,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;  // EAGAIN, or a connection that went away meanwhile
      char host[INET6_ADDRSTRLEN] = "";
      if (from.ss_family == AF_INET) {
        ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&from)->sin_addr, host, sizeof host);
      } else if (from.ss_family == AF_INET6) {
        ::inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&from)->sin6_addr, host,
                    sizeof host);
      }
      std::string address = host;
      bool admitted = false;
      {
        std::lock_guard lock(mu);
        unsigned& mine = per_address[address];
        if (open_connections < options.max_connections &&
            mine < options.max_connections_per_address) {
          ++mine;
          ++open_connections;
          admitted = true;
        } else {
          if (mine == 0) per_address.erase(address);
          ++counters.refused;
        }
      }
      if (!admitted) {
        spdlog::warn("DICOM: connection from {} refused: too many open connections", address);
        ::close(fd);
        continue;
      }
      pending.push_back(
          Pending{fd, std::move(address),
                  std::chrono::steady_clock::now() + std::chrono::seconds(options.acse_timeout_s)});
    }
  }

  // 1: the whole association request is buffered; 0: not yet; -1: close the connection.
  static int request_state(int fd) {
    unsigned char h[6];
    ssize_t n = ::recv(fd, h, sizeof h, MSG_PEEK);
    if (n == 0) return -1;  // closed by the peer
    if (n < 0) return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : -1;
    if (h[0] != 0x01) return -1;  // not an A-ASSOCIATE-RQ: not a DICOM requester
    if (n < 6) return 0;
    const std::uint32_t length =
        std::uint32_t{h[2]} << 24 | std::uint32_t{h[3]} << 16 | std::uint32_t{h[4]} << 8 | h[5];
    if (length > kMaxAssociateRequest) return -1;
    int available = 0;
    if (::ioctl(fd, FIONREAD, &available) != 0) return -1;
    // A large request may not fit the socket buffer whole; its first 64 KiB must be there.
    const std::uint64_t needed = std::min<std::uint64_t>(6 + std::uint64_t{length}, 65536);
    return static_cast<std::uint64_t>(available) >= needed ? 1 : 0;
  }

  void gate_loop() {
    std::vector<Pending> pending;
    std::vector<pollfd> fds;
    while (!stop.load()) {
      fds.clear();
      fds.push_back(pollfd{listen_fd, POLLIN, 0});
      for (const Pending& p : pending) fds.push_back(pollfd{p.fd, POLLIN, 0});
      int n = ::poll(fds.data(), fds.size(), 200);
      if (n < 0 && errno != EINTR) {
        spdlog::error("DICOM: poll failed: {}", std::strerror(errno));
        break;
      }
      const auto now = std::chrono::steady_clock::now();
      std::vector<Pending> still;
      for (std::size_t i = 0; i < pending.size(); ++i) {
        Pending& p = pending[i];
        const short ev = fds[i + 1].revents;
        int state = 0;
        if (ev & (POLLIN | POLLERR | POLLHUP)) state = request_state(p.fd);
        if (state == 0 && now >= p.deadline) state = -1;  // silent, or too slow
        if (state < 0) {
          close_connection(p.fd, p.address);
        } else if (state > 0) {
          {
            std::lock_guard lock(mu);
            waiting.push_back(Ready{p.fd, std::move(p.address)});
          }
          cv.notify_one();
        } else {
          still.push_back(std::move(p));
        }
      }
      pending = std::move(still);
      if (fds[0].revents & POLLIN) accept_all(pending);
    }
    for (Pending& p : pending) close_connection(p.fd, p.address);
  }

  // Hands the socket to DCMTK, which reads the buffered association request.
  T_ASC_Association* negotiate(int fd) {
    std::lock_guard lock(negotiate_mu);
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) != 0) {
      ::close(fd);  // DCMTK would fail before taking the socket over
      return nullptr;
    }
    // DCMTK reads the socket in blocking mode.
    int flags = ::fcntl(fd, F_GETFL);
    if (flags >= 0) (void)::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    dcmExternalSocketHandle.set(fd);
    T_ASC_Association* assoc = nullptr;
    OFCondition cond = ASC_receiveAssociation(net, &assoc, static_cast<int>(options.max_pdu));
    dcmExternalSocketHandle.set(-1);
    if (cond.bad()) {
      if (assoc) {
        ASC_dropAssociation(assoc);
        ASC_destroyAssociation(&assoc);
      }
      return nullptr;
    }
    return assoc;
  }

  void worker_loop() {
    while (true) {
      Ready next;
      {
        std::unique_lock lock(mu);
        cv.wait(lock, [this] { return stop.load() || !waiting.empty(); });
        if (waiting.empty()) return;  // stopping and nothing left
        next = std::move(waiting.front());
        waiting.pop_front();
        if (stop.load()) {
          lock.unlock();
          close_connection(next.fd, next.address);
          continue;
        }
        ++counters.associations;
      }
      if (T_ASC_Association* assoc = negotiate(next.fd)) {
        StoreScp scp(shared, assoc);
        scp.setSharedConfig(config);
        (void)scp.run(assoc);  // negotiates, serves, then drops and destroys the association
        scp.audit_association();
      }
      release(next.address);
    }
  }

  Status listen_on(std::uint16_t port) {
    listen_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (listen_fd < 0) return make_error(Errc::unavailable, "cannot create a DICOM socket");
    int one = 1;
    (void)::setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    a.sin_port = htons(port);
    socklen_t len = sizeof a;
    if (::bind(listen_fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(listen_fd, 128) != 0 ||
        ::getsockname(listen_fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      std::string why = std::strerror(errno);
      ::close(listen_fd);
      listen_fd = -1;
      return make_error(Errc::unavailable,
                        "cannot listen for DICOM on port " + std::to_string(port) + ": " + why);
    }
    bound_port = ntohs(a.sin_port);
    return Status::Ok();
  }
};

DicomServer::DicomServer(DicomServerOptions options, Ingestor& ingestor, const AeDirectory& aes,
                         identity::Auditor* auditor)
    : impl_(std::make_unique<Impl>()) {
  impl_->shared.auditor = auditor;
  impl_->options = std::move(options);
  impl_->shared.ingestor = &ingestor;
  impl_->shared.aes = &aes;
}

DicomServer::~DicomServer() { stop(); }

Status DicomServer::start() {
  Impl& m = *impl_;
  m.shared.ae_title = m.options.ae_title;
  m.shared.max_pdu = m.options.max_pdu;
  m.shared.dimse_timeout_s = m.options.dimse_timeout_s;
  DcmSCPConfig cfg;
  cfg.setAETitle(m.options.ae_title.c_str());
  cfg.setRespondWithCalledAETitle(OFTrue);  // accept whatever AE title the SCU calls
  cfg.setMaxReceivePDULength(m.options.max_pdu);
  cfg.setACSETimeout(m.options.acse_timeout_s);
  cfg.setDIMSEBlockingMode(DIMSE_NONBLOCKING);
  cfg.setDIMSETimeout(m.options.dimse_timeout_s);
  cfg.setHostLookupEnabled(OFFalse);
  cfg.setProgressNotificationMode(OFTrue);  // drives early writeback of received files
  m.config = DcmSharedSCPConfig(cfg);

  if (Status st = m.listen_on(m.options.port); !st) return st;
  // An acceptor network without a listening socket of its own: while the external socket
  // handle is set, DCMTK creates none; associations arrive through negotiate().
  OFCondition cond;
  {
    std::lock_guard lock(m.negotiate_mu);
    dcmExternalSocketHandle.set(m.listen_fd);
    cond = ASC_initializeNetwork(NET_ACCEPTOR, m.bound_port,
                                 static_cast<int>(m.options.acse_timeout_s), &m.net);
    dcmExternalSocketHandle.set(-1);
  }
  if (cond.bad()) {
    ::close(m.listen_fd);
    m.listen_fd = -1;
    return make_error(Errc::unavailable,
                      std::string("cannot initialise the DICOM network: ") + cond.text());
  }
  unsigned n = std::max(1u, m.options.max_associations);
  for (unsigned i = 0; i < n; ++i) m.workers.emplace_back([&m] { m.worker_loop(); });
  m.gate = std::thread([&m] { m.gate_loop(); });
  return Status::Ok();
}

void DicomServer::enable_query_retrieve(pacs::Index& index, identity::Accounts& accounts,
                                        storage::Clock clock) {
  impl_->shared.qr = std::make_unique<QueryRetrieve>(index, std::move(clock));
  impl_->shared.accounts = &accounts;
}

void DicomServer::stop() {
  Impl& m = *impl_;
  if (m.stop.exchange(true)) return;
  if (m.gate.joinable()) m.gate.join();
  m.cv.notify_all();
  for (std::thread& t : m.workers) t.join();
  m.workers.clear();
  if (m.net) ASC_dropNetwork(&m.net);
  if (m.listen_fd >= 0) ::close(m.listen_fd);
  m.listen_fd = -1;
}

std::uint16_t DicomServer::port() const { return impl_->bound_port; }

DicomServerCounters DicomServer::counters() const {
  std::lock_guard lock(impl_->mu);
  return impl_->counters;
}

}  // namespace yilian::pacs
