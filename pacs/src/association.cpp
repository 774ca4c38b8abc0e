#include "association.h"

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcistrmb.h>
#include <dcmtk/dcmdata/dcostrmf.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmdata/dcxfer.h>
#include <dcmtk/dcmnet/diutil.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstring>

#include "yilian/pacs/dataset_limits.h"

namespace yilian::pacs::association_detail {
namespace {

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

// A query/retrieve identifier larger than this is not a query.
constexpr std::size_t kMaxIdentifierBytes = 1u << 20;

}  // namespace

OFCondition Association::negotiateAssociation() {
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

void Association::notifyRECEIVEProgress(const unsigned long byte_count) {
  if (!receiving_.empty()) writeback_.progress(receiving_, byte_count);
}

OFBool Association::checkCallingAETitleAccepted(const OFString& calling_ae) {
  institution_ = aes_->resolve(calling_ae.c_str());
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

void Association::audit_association() {
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

OFCondition Association::handleIncomingCommand(T_DIMSE_Message* msg,
                                               const DcmPresentationContextInfo& info) {
  if (shared_.qr && msg->CommandField == DIMSE_C_FIND_RQ)
    return handle_find(msg->msg.CFindRQ, info);
  if (shared_.qr && msg->CommandField == DIMSE_C_MOVE_RQ)
    return handle_move(msg->msg.CMoveRQ, info);
  if (shared_.qr && msg->CommandField == DIMSE_C_GET_RQ) return handle_get(msg->msg.CGetRQ, info);
  if (msg->CommandField == DIMSE_C_STORE_RQ) return handle_store(msg->msg.CStoreRQ, info);
  return DcmThreadSCP::handleIncomingCommand(msg, info);
}

OFCondition Association::handle_store(T_DIMSE_C_StoreRQ& req,
                                      const DcmPresentationContextInfo& info) {
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
    Sender sender{getPeerAETitle().c_str(), institution_.value_or(aes_->unknown_institution()),
                  aes_->text_decoding(peer_ae_)};
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
      spdlog::warn("C-STORE from {}: SOP Instance {} conflict: {}", ae, req.AffectedSOPInstanceUID,
                   o.message);
      break;
    case IngestStatus::rejected:
      spdlog::warn("C-STORE from {}: SOP Instance {} rejected: {}", ae, req.AffectedSOPInstanceUID,
                   o.message);
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

Result<Principal> Association::station() {
  std::uint32_t roles = 1u << static_cast<unsigned>(Role::township_doctor);
  if (const DicomPeer* peer = aes_->peer(peer_ae_); peer && peer->roles) {
    roles = peer->roles;
  }
  auto p = shared_.accounts->station_principal(institution_.value_or(aes_->unknown_institution()),
                                               roles);
  if (p.ok()) p->username = "ae:" + peer_ae_;
  return p;
}

void Association::audit_qr(const char* action, const std::string& detail, bool ok,
                           const DcmDataset* identifier, std::size_t results) {
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

DcmDataset* Association::comment(DcmDataset& detail, const std::string& text) {
  detail.putAndInsertString(DCM_ErrorComment, text.substr(0, 64).c_str());
  return &detail;
}

OFCondition Association::receive_identifier(T_ASC_PresentationContextID pres,
                                            std::unique_ptr<DcmDataset>& out,
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

identity::AuditEvent Association::sender_event() {
  identity::AuditEvent ev;
  ev.actor = "ae:" + peer_ae_;
  ev.actor_institution = institution_ ? aes_->institution_code(*institution_) : std::string();
  ev.address = peer_ip_;
  return ev;
}

}  // namespace yilian::pacs::association_detail
