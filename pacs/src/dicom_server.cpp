#include "yilian/pacs/dicom_server.h"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmnet/assoc.h>
#include <dcmtk/dcmnet/diutil.h>
#include <dcmtk/dcmnet/scpthrd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
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
constexpr Uint16 kStatusOutOfResources = 0xA700;
constexpr Uint16 kStatusDataSetMismatch = 0xA900;
constexpr Uint16 kStatusCannotUnderstand = 0xC000;
constexpr Uint16 kStatusWarningCoercion = 0xB000;
constexpr Uint16 kStatusNotAuthorized = 0x0124;  // PS3.7 C.5: Refused: Not Authorized

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

struct Shared {
  Ingestor* ingestor = nullptr;
  const AeDirectory* aes = nullptr;
  identity::Auditor* auditor = nullptr;
};

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
    return ASC_acceptContextsWithPreferredTransferSyntaxes(
        assoc_->params, dcmAllStorageSOPClassUIDs, numberOfDcmAllStorageSOPClassUIDs,
        storage_ts.data(), static_cast<int>(storage_ts.size()));
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
      o.message = "Affected SOP Class differs from the presentation context";
    } else {
      Sender sender{getPeerAETitle().c_str(),
                    institution_.value_or(shared_.aes->unknown_institution())};
      o = ingestor.ingest(key, sender,
                          Announced{req.AffectedSOPClassUID, req.AffectedSOPInstanceUID});
    }

    if (!o.study_instance_uid.empty())
      ++tally_[o.study_instance_uid].by_outcome[ingest_status_name(o.status)];
    Uint16 status = STATUS_Success;
    const OFString peer = getPeerAETitle();
    const char* ae = peer.c_str();
    switch (o.status) {
      case IngestStatus::stored:
      case IngestStatus::duplicate:
        break;
      case IngestStatus::conflict:
        status = kStatusWarningCoercion;
        spdlog::warn("C-STORE from {}: SOP Instance {} conflict: {}", ae,
                     req.AffectedSOPInstanceUID, o.message);
        break;
      case IngestStatus::rejected:
        status = o.message.find("SOP Class") != std::string::npos ? kStatusDataSetMismatch
                                                                  : kStatusCannotUnderstand;
        spdlog::warn("C-STORE from {}: SOP Instance {} rejected: {}", ae,
                     req.AffectedSOPInstanceUID, o.message);
        break;
      case IngestStatus::refused:
        status = kStatusNotAuthorized;
        spdlog::warn("C-STORE from {}: SOP Instance {} refused: {}", ae, req.AffectedSOPInstanceUID,
                     o.message);
        break;
      case IngestStatus::failed:
        status = kStatusOutOfResources;
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

struct DicomServer::Impl {
  DicomServerOptions options;
  Shared shared;
  DcmSharedSCPConfig config;
  T_ASC_Network* net = nullptr;

  std::atomic<bool> stop{false};
  std::thread acceptor;
  std::vector<std::thread> workers;

  mutable std::mutex mu;
  std::condition_variable cv;
  std::deque<T_ASC_Association*> waiting;  // guarded by mu
  unsigned busy = 0;                       // guarded by mu
  DicomServerCounters counters;            // guarded by mu

  void accept_loop() {
    while (!stop.load()) {
      T_ASC_Association* assoc = nullptr;
      OFCondition cond = ASC_receiveAssociation(net, &assoc, static_cast<int>(options.max_pdu),
                                                nullptr, nullptr, OFFalse, DUL_NOBLOCK, 1);
      if (cond.bad()) {
        if (assoc) {
          ASC_dropAssociation(assoc);
          ASC_destroyAssociation(&assoc);
        }
        continue;  // timeout (checks stop) or a broken connection attempt
      }
      std::unique_lock lock(mu);
      if (waiting.size() >= options.max_waiting) {
        ++counters.refused;
        lock.unlock();
        T_ASC_RejectParameters rej{ASC_RESULT_REJECTEDTRANSIENT,
                                   ASC_SOURCE_SERVICEPROVIDER_PRESENTATION_RELATED,
                                   ASC_REASON_SP_PRES_LOCALLIMITEXCEEDED};
        ASC_rejectAssociation(assoc, &rej);
        ASC_dropAssociation(assoc);
        ASC_destroyAssociation(&assoc);
        continue;
      }
      ++counters.associations;
      waiting.push_back(assoc);
      lock.unlock();
      cv.notify_one();
    }
  }

  void worker_loop() {
    while (true) {
      T_ASC_Association* assoc = nullptr;
      {
        std::unique_lock lock(mu);
        cv.wait(lock, [this] { return stop.load() || !waiting.empty(); });
        if (waiting.empty()) return;  // stopping and nothing left
        assoc = waiting.front();
        waiting.pop_front();
        ++busy;
      }
      {
        StoreScp scp(shared, assoc);
        scp.setSharedConfig(config);
        (void)scp.run(assoc);  // negotiates, serves, then drops and destroys the association
        scp.audit_association();
      }
      std::lock_guard lock(mu);
      --busy;
    }
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

  OFCondition cond = ASC_initializeNetwork(NET_ACCEPTOR, m.options.port,
                                           static_cast<int>(m.options.acse_timeout_s), &m.net);
  if (cond.bad()) {
    return make_error(Errc::unavailable, "cannot listen for DICOM on port " +
                                             std::to_string(m.options.port) + ": " + cond.text());
  }
  unsigned n = std::max(1u, m.options.max_associations);
  for (unsigned i = 0; i < n; ++i) m.workers.emplace_back([&m] { m.worker_loop(); });
  m.acceptor = std::thread([&m] { m.accept_loop(); });
  return Status::Ok();
}

void DicomServer::stop() {
  Impl& m = *impl_;
  if (m.stop.exchange(true)) return;
  if (m.acceptor.joinable()) m.acceptor.join();
  m.cv.notify_all();
  for (std::thread& t : m.workers) t.join();
  m.workers.clear();
  if (m.net) ASC_dropNetwork(&m.net);
}

DicomServerCounters DicomServer::counters() const {
  std::lock_guard lock(impl_->mu);
  return impl_->counters;
}

}  // namespace yilian::pacs
