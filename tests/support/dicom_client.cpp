#include "dicom_client.h"

#include "test_util.h"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcmetinf.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmnet/assoc.h>
#include <dcmtk/dcmnet/dimse.h>
#include <dcmtk/dcmnet/dul.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

namespace yilian::testing {
namespace {

// Where the data set starts: after the 128-byte preamble, "DICM", and the meta group whose
// length (0002,0000) is the first element (explicit VR little endian, 12 bytes).
std::size_t dataset_offset(const std::string& f) {
  if (f.size() < 144 || f.compare(128, 4, "DICM") != 0) return 0;
  const auto* p = reinterpret_cast<const unsigned char*>(f.data() + 140);
  std::uint32_t len = p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<std::uint32_t>(p[3]) << 24);
  return 144 + len;
}

struct Assoc {
  T_ASC_Network* net = nullptr;
  T_ASC_Association* assoc = nullptr;
  ~Assoc() {
    if (assoc) {
      ASC_releaseAssociation(assoc);
      ASC_destroyAssociation(&assoc);
    }
    if (net) ASC_dropNetwork(&net);
  }
};

std::string open(Assoc& a, std::uint16_t port, const std::string& calling,
                 const std::string& called, const char* abstract, const char* ts) {
  OFCondition c = ASC_initializeNetwork(NET_REQUESTOR, 0, 10, &a.net);
  if (c.bad()) return c.text();
  T_ASC_Parameters* params = nullptr;
  c = ASC_createAssociationParameters(&params, ASC_DEFAULTMAXPDU);
  if (c.bad()) return c.text();
  ASC_setAPTitles(params, calling.c_str(), called.c_str(), nullptr);
  std::string peer = "127.0.0.1:" + std::to_string(port);
  ASC_setPresentationAddresses(params, "localhost", peer.c_str());
  const char* syntaxes[] = {ts};
  c = ASC_addPresentationContext(params, 1, abstract, syntaxes, 1);
  if (c.bad()) {
    ASC_destroyAssociationParameters(&params);
    return c.text();
  }
  c = ASC_requestAssociation(a.net, params, &a.assoc);
  if (c.bad()) {
    if (a.assoc) {
      ASC_dropAssociation(a.assoc);
      ASC_destroyAssociation(&a.assoc);
    } else {
      ASC_destroyAssociationParameters(&params);
    }
    return std::string("association refused: ") + c.text();
  }
  if (ASC_countAcceptedPresentationContexts(a.assoc->params) == 0) {
    return "no presentation context accepted";
  }
  return {};
}

// Sends `cmd` and then `data` as they are (unparsed), and reads the response's status and
// Error Comment into `r`.
void exchange(Assoc& a, DcmDataset& cmd, std::string_view data, T_DIMSE_Command expected,
              StoreResult& r) {
  std::string cmd_bytes;
  {
    char name[] = "/tmp/yilian-cmd-XXXXXX";
    int fd = ::mkstemp(name);
    if (fd >= 0) ::close(fd);
    cmd.saveFile(name, EXS_LittleEndianImplicit, EET_ExplicitLength, EGL_recalcGL);
    cmd_bytes = slurp(name);
    std::filesystem::remove(name);
  }
  std::vector<DUL_PDV> pdvs;
  pdvs.push_back(DUL_PDV{static_cast<unsigned long>(cmd_bytes.size()), 1, DUL_COMMANDPDV, OFTrue,
                         cmd_bytes.data()});
  const std::size_t max_fragment = a.assoc->sendPDVLength > 0 ? a.assoc->sendPDVLength : 16372;
  for (std::size_t pos = 0; pos < data.size(); pos += max_fragment) {
    std::size_t n = std::min(max_fragment, data.size() - pos);
    pdvs.push_back(DUL_PDV{static_cast<unsigned long>(n), 1, DUL_DATASETPDV,
                           pos + n == data.size() ? OFTrue : OFFalse,
                           const_cast<char*>(data.data() + pos)});
  }
  for (DUL_PDV& pdv : pdvs) {
    DUL_PDVLIST list{};
    list.count = 1;
    list.pdv = &pdv;
    OFCondition c = DUL_WritePDVs(&a.assoc->DULassociation, &list);
    if (c.bad()) {
      r.error = std::string("sending: ") + c.text();
      return;
    }
  }
  T_DIMSE_Message rsp{};
  T_ASC_PresentationContextID pc = 0;
  DcmDataset* detail = nullptr;
  OFCondition c = DIMSE_receiveCommand(a.assoc, DIMSE_BLOCKING, 0, &pc, &rsp, &detail);
  if (c.bad() || rsp.CommandField != expected) {
    r.error = std::string("no response: ") + c.text();
    delete detail;
    return;
  }
  r.status =
      expected == DIMSE_C_STORE_RSP ? rsp.msg.CStoreRSP.DimseStatus : rsp.msg.CFindRSP.DimseStatus;
  if (detail) {
    OFString comment;
    if (detail->findAndGetOFString(DCM_ErrorComment, comment).good())
      r.error_comment = comment.c_str();
    delete detail;
  }
}

}  // namespace

std::string pixel_bytes(const std::filesystem::path& file) {
  DcmFileFormat ff;
  const Uint8* data = nullptr;
  unsigned long n = 0;
  if (ff.loadFile(file.c_str()).bad() ||
      ff.getDataset()->findAndGetUint8Array(DCM_PixelData, data, &n).bad() || !data)
    return {};
  return std::string(reinterpret_cast<const char*>(data), n);
}

StoreResult send_file(std::uint16_t port, const StoreRequest& req) {
  StoreResult r;
  std::string sop_class = req.sop_class_uid, sop_instance = req.sop_instance_uid,
              ts = req.transfer_syntax_uid;
  {
    DcmFileFormat ff;
    // Only the file meta group is needed; the data set may be truncated or hostile on purpose
    // (this process must not parse it either).
    ff.loadFileUntilTag(req.file.c_str(), EXS_Unknown, EGL_noChange, 256, ERM_fileOnly,
                        DcmTagKey(0x0008, 0x0000));
    OFString v;
    if (sop_class.empty() &&
        ff.getMetaInfo()->findAndGetOFString(DCM_MediaStorageSOPClassUID, v).good())
      sop_class = v.c_str();
    if (sop_instance.empty() &&
        ff.getMetaInfo()->findAndGetOFString(DCM_MediaStorageSOPInstanceUID, v).good())
      sop_instance = v.c_str();
    if (ts.empty() && ff.getMetaInfo()->findAndGetOFString(DCM_TransferSyntaxUID, v).good())
      ts = v.c_str();
  }
  if (sop_class.empty()) sop_class = UID_SecondaryCaptureImageStorage;
  if (sop_instance.empty()) sop_instance = "1.2.3.4";
  if (ts.empty()) ts = UID_LittleEndianExplicitTransferSyntax;

  Assoc a;
  r.error = open(a, port, req.calling_ae, req.called_ae, sop_class.c_str(), ts.c_str());
  if (!r.error.empty()) return r;
  r.associated = true;

  // The command set, encoded by DCMTK in implicit VR little endian.
  DcmDataset cmd;
  cmd.putAndInsertUint32(DCM_CommandGroupLength, 0);
  cmd.putAndInsertString(DCM_AffectedSOPClassUID, sop_class.c_str());
  cmd.putAndInsertUint16(DCM_CommandField, 0x0001);  // C-STORE-RQ
  cmd.putAndInsertUint16(DCM_MessageID, a.assoc->nextMsgID++);
  cmd.putAndInsertUint16(DCM_Priority, 0);
  cmd.putAndInsertUint16(DCM_CommandDataSetType, 0x0000);  // a data set follows
  cmd.putAndInsertString(DCM_AffectedSOPInstanceUID, sop_instance.c_str());
  // The data set: the file's bytes after its meta group, sent as they are, unparsed, so
  // that truncated or otherwise broken data sets reach the SCP exactly as written.
  std::string file = slurp(req.file);
  std::size_t offset = dataset_offset(file);
  if (offset == 0 || offset > file.size()) {
    r.error = "not a Part 10 file";
    return r;
  }
  exchange(a, cmd, std::string_view(file).substr(offset), DIMSE_C_STORE_RSP, r);
  return r;
}

StoreResult find_raw(std::uint16_t port, const std::string& calling_ae,
                     std::string_view identifier) {
  StoreResult r;
  Assoc a;
  r.error = open(a, port, calling_ae, "YILIAN", UID_FINDStudyRootQueryRetrieveInformationModel,
                 UID_LittleEndianExplicitTransferSyntax);
  if (!r.error.empty()) return r;
  r.associated = true;
  DcmDataset cmd;
  cmd.putAndInsertUint32(DCM_CommandGroupLength, 0);
  cmd.putAndInsertString(DCM_AffectedSOPClassUID, UID_FINDStudyRootQueryRetrieveInformationModel);
  cmd.putAndInsertUint16(DCM_CommandField, 0x0020);  // C-FIND-RQ
  cmd.putAndInsertUint16(DCM_MessageID, a.assoc->nextMsgID++);
  cmd.putAndInsertUint16(DCM_Priority, 0);
  cmd.putAndInsertUint16(DCM_CommandDataSetType, 0x0000);
  exchange(a, cmd, identifier, DIMSE_C_FIND_RSP, r);
  return r;
}

bool echo(std::uint16_t port, const std::string& calling_ae) {
  Assoc a;
  if (!open(a, port, calling_ae, "YILIAN", UID_VerificationSOPClass,
            UID_LittleEndianImplicitTransferSyntax)
           .empty())
    return false;
  DIC_US status = 0;
  DcmDataset* detail = nullptr;
  OFCondition c =
      DIMSE_echoUser(a.assoc, a.assoc->nextMsgID++, DIMSE_BLOCKING, 0, &status, &detail);
  delete detail;
  return c.good() && status == STATUS_Success;
}

}  // namespace yilian::testing
