#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmdata/dcxfer.h>
#include <dcmtk/dcmnet/diutil.h>
#include <dcmtk/dcmnet/scu.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <set>

#include "association.h"
#include "yilian/viewer/render.h"

namespace yilian::pacs::association_detail {
namespace {

Uint16 clamp16(std::size_t n) { return static_cast<Uint16>(std::min<std::size_t>(n, 0xFFFF)); }

std::string hex_status(Uint16 status) { return fmt::format("0x{:04X}", status); }

}  // namespace

OFCondition Association::handle_find(T_DIMSE_C_FindRQ& req,
                                     const DcmPresentationContextInfo& info) {
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
  for (auto& m : matches->matches) {
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
  if (matches->cut) {
    // More matched than one answer holds: the matches sent, then "matching terminated"
    // (PS3.4 C.4.1.1.4), so the caller knows the list is not whole and can narrow its keys.
    spdlog::warn("C-FIND from {}: {} level, more than {} matches; the first {} sent", peer_ae_,
                 level.c_str(), shared_.qr->max_matches(), sent);
    audit_qr("dicom.find",
             std::string(level.c_str()) + ": " + std::to_string(sent) + " matches, more not sent",
             true, identifier.get(), sent);
    return sendFINDResponse(pres, req.MessageID, sop, nullptr, kStatusCancel);
  }
  audit_qr("dicom.find", std::string(level.c_str()) + ": " + std::to_string(sent) + " matches",
           true, identifier.get(), sent);
  return sendFINDResponse(pres, req.MessageID, sop, nullptr, STATUS_Success);
}

Result<std::vector<pacs::InstanceLocation>> Association::retrieve_set(
    const DcmDataset& identifier) {
  auto p = station();
  if (!p.ok()) return p.error();
  return shared_.qr->instances(*p, identifier);
}

OFCondition Association::handle_move(T_DIMSE_C_MoveRQ& req,
                                     const DcmPresentationContextInfo& info) {
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
  const DicomPeer* dest = aes_->peer(destination.c_str());
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
      ops.record(sent.good() ? status : kStatusSubOpsFailed);
      if (sent.bad() || status != STATUS_Success) {
        spdlog::warn("C-MOVE to {}: instance {} {}", destination.c_str(), i.sop_instance_uid,
                     !connected   ? std::string("not sent: no association")
                     : id == 0    ? "not sent: no presentation context for " + i.sop_class_uid
                     : sent.bad() ? std::string("not sent: ") + sent.text()
                                  : "refused with status " + hex_status(status));
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

T_ASC_PresentationContextID Association::get_context(const std::string& sop_class,
                                                     const std::string& ts,
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

std::unique_ptr<DcmFileFormat> Association::converted_copy(const std::string& file,
                                                           const std::string& ts) {
  // Decoded (JPEG 2000 too) to native pixels, which any native syntax can carry.
  auto ff = viewer::decode_to_native(file);
  if (!ff.ok()) {
    spdlog::warn("cannot convert {} to {}: {}", file, ts, ff.error().message);
    return nullptr;
  }
  const E_TransferSyntax target = DcmXfer(ts.c_str()).getXfer();
  if ((*ff)->getDataset()->chooseRepresentation(target, nullptr).bad() ||
      !(*ff)->getDataset()->canWriteXfer(target))
    return nullptr;
  return std::move(*ff);
}

Uint16 Association::store_to_requester(const pacs::InstanceLocation& i) {
  std::string ts;
  T_ASC_PresentationContextID id = get_context(i.sop_class_uid, i.transfer_syntax_uid, ts);
  if (id == 0) return kStatusSubOpsFailed;
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
    cond = DIMSE_storeUser(assoc_, id, &rq, file.c_str(), nullptr, nullptr, nullptr, DIMSE_BLOCKING,
                           0, &rsp, &status_detail);
  } else {
    auto copy = converted_copy(file, ts);
    if (!copy) return kStatusSubOpsFailed;
    cond = DIMSE_storeUser(assoc_, id, &rq, nullptr, copy->getDataset(), nullptr, nullptr,
                           DIMSE_BLOCKING, 0, &rsp, &status_detail);
  }
  delete status_detail;
  if (cond.bad()) return kStatusSubOpsFailed;
  return rsp.DimseStatus;
}

OFCondition Association::send_get_response(T_ASC_PresentationContextID pres,
                                           const T_DIMSE_C_GetRQ& req, Uint16 status,
                                           const SubOps& ops, DcmDataset* detail) {
  T_DIMSE_Message rsp;
  std::memset(&rsp, 0, sizeof rsp);
  rsp.CommandField = DIMSE_C_GET_RSP;
  T_DIMSE_C_GetRSP& g = rsp.msg.CGetRSP;
  g.MessageIDBeingRespondedTo = req.MessageID;
  OFStandard::strlcpy(g.AffectedSOPClassUID, req.AffectedSOPClassUID, sizeof g.AffectedSOPClassUID);
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

OFCondition Association::handle_get(T_DIMSE_C_GetRQ& req, const DcmPresentationContextInfo& info) {
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
    const Uint16 status = store_to_requester(i);
    ops.record(status);
    if (status != STATUS_Success) {
      spdlog::warn(
          "C-GET by {}: instance {} {}", peer_ae_, i.sop_instance_uid,
          status == kStatusSubOpsFailed
              ? std::string("not sent (no presentation context for it, or the transfer failed)")
              : "refused with status " + hex_status(status));
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

}  // namespace yilian::pacs::association_detail
