#include "yilian/pacs/dicom_file.h"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcmetinf.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmdata/dcxfer.h>

#include "yilian/common/text.h"
#include "yilian/pacs/charset.h"
#include "yilian/pacs/dataset_limits.h"

#include <cstdlib>
#include <optional>
#include <system_error>

namespace yilian::pacs {
namespace {

std::string get(DcmItem& item, const DcmTagKey& tag) {
  OFString v;
  if (item.findAndGetOFStringArray(tag, v).bad()) return {};
  // Trim the padding DICOM allows (spaces, and NUL for UIDs).
  std::string s(v.c_str(), v.length());
  while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.pop_back();
  std::size_t b = s.find_first_not_of(' ');
  return b == std::string::npos ? std::string() : s.substr(b);
}

std::optional<std::int64_t> get_int(DcmItem& item, const DcmTagKey& tag) {
  std::string s = get(item, tag);
  if (s.empty()) return std::nullopt;
  char* end = nullptr;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (end == s.c_str()) return std::nullopt;
  return static_cast<std::int64_t>(v);
}

Error invalid(std::string msg) { return make_error(Errc::invalid_argument, std::move(msg)); }

}  // namespace

std::string new_uid() {
  char buf[100];
  dcmGenerateUniqueIdentifier(buf, SITE_INSTANCE_UID_ROOT);
  return buf;
}

bool is_valid_uid(std::string_view uid) {
  if (uid.empty() || uid.size() > 64) return false;
  std::size_t start = 0;
  while (start <= uid.size()) {
    std::size_t dot = uid.find('.', start);
    std::string_view comp =
        uid.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (comp.empty()) return false;
    for (char c : comp) {
      if (c < '0' || c > '9') return false;
    }
    if (comp.size() > 1 && comp[0] == '0') return false;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return true;
}

Result<pacs::NewInstance> read_instance_attributes(const std::filesystem::path& file,
                                                   const TextDecoding& decoding) {
  std::error_code ec;
  auto size = std::filesystem::file_size(file, ec);
  if (ec) return make_error(Errc::io, "cannot read received file: " + ec.message());
  // DCMTK parses sequences by recursion: bound the nesting before it sees the object.
  if (Status s = check_part10_file(file); !s) return s.error();

  DcmFileFormat ff;
  // Values longer than 4 KiB (pixel data) stay on disk; the parser still walks past them,
  // so a truncated file is detected.
  OFCondition cond = ff.loadFile(file.c_str(), EXS_Unknown, EGL_noChange, 4096, ERM_fileOnly);
  if (cond.bad()) {
    return invalid(std::string("unparseable DICOM data set: ") + cond.text());
  }
  DcmMetaInfo* meta = ff.getMetaInfo();
  DcmDataset* ds = ff.getDataset();
  if (!meta || !ds) return invalid("missing file meta information or data set");

  pacs::NewInstance in;
  in.size_bytes = static_cast<std::int64_t>(size);
  Uint32 group_length = 0;
  if (meta->findAndGetUint32(DCM_FileMetaInformationGroupLength, group_length).good() &&
      group_length > 0) {
    in.dataset_offset = 132 + 12 + static_cast<std::int64_t>(group_length);
  } else {
    in.dataset_offset = 132 + static_cast<std::int64_t>(meta->calcElementLength(
                                  EXS_LittleEndianExplicit, EET_ExplicitLength));
  }
  if (in.dataset_offset > in.size_bytes) return invalid("file meta information is truncated");

  in.transfer_syntax_uid = get(*meta, DCM_TransferSyntaxUID);
  if (in.transfer_syntax_uid.empty()) {
    in.transfer_syntax_uid = DcmXfer(ds->getOriginalXfer()).getXferID();
  }

  // Text in UTF-8 (e.g. GB18030 names from township systems, declared or not), bounded. The
  // stored file is never changed; only the index copy is decoded.
  const std::string declared = get(*ds, DCM_SpecificCharacterSet);
  auto text_of = [&](DcmItem& item, const DcmTagKey& tag, std::size_t max_bytes = 1024) {
    const bool person_name = DcmTag(tag).getEVR() == EVR_PN;
    return clip_utf8(decode_text(get(item, tag), declared, decoding, person_name), max_bytes);
  };

  in.sop_class_uid = get(*ds, DCM_SOPClassUID);
  in.sop_instance_uid = get(*ds, DCM_SOPInstanceUID);
  in.study_instance_uid = get(*ds, DCM_StudyInstanceUID);
  in.series_instance_uid = get(*ds, DCM_SeriesInstanceUID);
  struct Req {
    const std::string& v;
    const char* name;
  };
  for (const Req& r :
       {Req{in.sop_class_uid, "SOP Class UID"}, Req{in.sop_instance_uid, "SOP Instance UID"},
        Req{in.study_instance_uid, "Study Instance UID"},
        Req{in.series_instance_uid, "Series Instance UID"}}) {
    if (r.v.empty()) return invalid(std::string("missing ") + r.name);
    if (!is_valid_uid(r.v)) return invalid(std::string("invalid ") + r.name);
  }

  std::string meta_sop = get(*meta, DCM_MediaStorageSOPInstanceUID);
  if (!meta_sop.empty() && meta_sop != in.sop_instance_uid) {
    return invalid("SOP Instance UID differs from the file meta information");
  }

  in.patient_id = text_of(*ds, DCM_PatientID);
  in.issuer_of_patient_id = text_of(*ds, DCM_IssuerOfPatientID);
  in.patient_name = text_of(*ds, DCM_PatientName);
  in.patient_birth_date = text_of(*ds, DCM_PatientBirthDate);
  in.patient_sex = text_of(*ds, DCM_PatientSex);
  in.study_date = text_of(*ds, DCM_StudyDate);
  in.study_time = text_of(*ds, DCM_StudyTime);
  in.accession_number = text_of(*ds, DCM_AccessionNumber);
  in.study_id = text_of(*ds, DCM_StudyID);
  in.study_description = text_of(*ds, DCM_StudyDescription);
  // The order, if the modality copied it from the worklist: top level, or the first item of
  // the Request Attributes Sequence.
  {
    DcmItem* request = nullptr;
    (void)ds->findAndGetSequenceItem(DCM_RequestAttributesSequence, request, 0);
    auto first = [&](const DcmTagKey& tag) {
      std::string v = text_of(*ds, tag, 4096);
      if (v.empty() && request) v = text_of(*request, tag, 4096);
      return v;
    };
    in.requested_priority = first(DCM_RequestedProcedurePriority);
    in.indication = first(DCM_ReasonForTheRequestedProcedure);
    if (in.indication.empty()) in.indication = text_of(*ds, DCM_RETIRED_ReasonForStudy, 4096);
    if (in.indication.empty())
      in.indication = text_of(*ds, DCM_AdmittingDiagnosesDescription, 4096);
    in.procedure = first(DCM_RequestedProcedureDescription);
  }
  in.referring_physician = text_of(*ds, DCM_ReferringPhysicianName);
  in.institution_name = text_of(*ds, DCM_InstitutionName);
  in.modality = text_of(*ds, DCM_Modality);
  in.series_number = get_int(*ds, DCM_SeriesNumber);
  in.series_description = text_of(*ds, DCM_SeriesDescription);
  in.body_part = text_of(*ds, DCM_BodyPartExamined);
  in.instance_number = get_int(*ds, DCM_InstanceNumber);
  in.number_of_frames = get_int(*ds, DCM_NumberOfFrames).value_or(1);
  return in;
}

}  // namespace yilian::pacs
