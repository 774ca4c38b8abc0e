#include "yilian/pacs/scu.h"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmnet/scu.h>

#include <chrono>
#include <set>

namespace yilian::pacs {
namespace {

void configure(DcmSCU& scu, const ScuPeer& peer) {
  scu.setAETitle(peer.calling_ae.c_str());
  scu.setPeerAETitle(peer.called_ae.c_str());
  scu.setPeerHostName(peer.host.c_str());
  scu.setPeerPort(peer.port);
  scu.setDIMSEBlockingMode(DIMSE_BLOCKING);
  scu.setDIMSETimeout(peer.timeout_s);
  scu.setACSETimeout(peer.timeout_s);
  scu.setConnectionTimeout(static_cast<Sint32>(peer.timeout_s));
}

Error unavailable(const ScuPeer& peer, const std::string& what, const OFCondition& c) {
  return make_error(Errc::unavailable, what + " " + peer.called_ae + " at " + peer.host + ":" +
                                           std::to_string(peer.port) + ": " + c.text());
}

}  // namespace

Result<double> echo(const ScuPeer& peer) {
  const auto started = std::chrono::steady_clock::now();
  DcmSCU scu;
  configure(scu, peer);
  OFList<OFString> syntaxes;
  syntaxes.push_back(UID_LittleEndianImplicitTransferSyntax);
  scu.addPresentationContext(UID_VerificationSOPClass, syntaxes);
  OFCondition c = scu.initNetwork();
  if (c.good()) c = scu.negotiateAssociation();
  if (c.bad()) return unavailable(peer, "cannot associate with", c);
  c = scu.sendECHORequest(0);
  scu.releaseAssociation();
  if (c.bad()) return unavailable(peer, "no echo answer from", c);
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started)
      .count();
}

Result<std::size_t> store_files(const ScuPeer& peer,
                                const std::vector<std::filesystem::path>& files) {
  struct Item {
    std::string file, sop_class, syntax;
  };
  std::vector<Item> items;
  std::set<std::pair<std::string, std::string>> contexts;
  for (const auto& f : files) {
    DcmFileFormat ff;
    if (ff.loadFile(f.c_str(), EXS_Unknown, EGL_noChange, 4096).bad()) {
      return make_error(Errc::invalid_argument, f.string() + " is not a DICOM file");
    }
    OFString sop_class, syntax;
    ff.getMetaInfo()->findAndGetOFString(DCM_MediaStorageSOPClassUID, sop_class);
    ff.getMetaInfo()->findAndGetOFString(DCM_TransferSyntaxUID, syntax);
    items.push_back({f.string(), sop_class.c_str(), syntax.c_str()});
    contexts.insert({sop_class.c_str(), syntax.c_str()});
  }
  DcmSCU scu;
  configure(scu, peer);
  for (const auto& [sop_class, syntax] : contexts) {
    OFList<OFString> ts;
    ts.push_back(syntax.c_str());
    scu.addPresentationContext(sop_class.c_str(), ts);
  }
  OFCondition c = scu.initNetwork();
  if (c.good()) c = scu.negotiateAssociation();
  if (c.bad()) return unavailable(peer, "cannot associate with", c);
  std::size_t stored = 0;
  for (const Item& i : items) {
    T_ASC_PresentationContextID id =
        scu.findPresentationContextID(i.sop_class.c_str(), i.syntax.c_str());
    if (id == 0) continue;
    Uint16 status = 0xFFFF;
    if (scu.sendSTORERequest(id, i.file.c_str(), nullptr, status).good() &&
        status == STATUS_Success) {
      ++stored;
    }
  }
  scu.releaseAssociation();
  return stored;
}

}  // namespace yilian::pacs
