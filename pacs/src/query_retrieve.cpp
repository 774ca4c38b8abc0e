#include "query_retrieve.h"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdatset.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcelem.h>

#include <map>
#include <set>

#include "yilian/identity/policy.h"
#include "yilian/pacs/study_access.h"

namespace yilian::pacs {
namespace {

using pacs::InstanceLocation;

std::string get(const DcmDataset& ds, const DcmTagKey& tag) {
  OFString v;
  if (const_cast<DcmDataset&>(ds).findAndGetOFStringArray(tag, v).bad()) return {};
  std::string s(v.c_str(), v.length());
  while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.pop_back();
  std::size_t b = s.find_first_not_of(' ');
  return b == std::string::npos ? std::string() : s.substr(b);
}

bool glob(const char* p, const char* v) {
  // Iterative wildcard match with one backtrack point.
  const char* star = nullptr;
  const char* retry = nullptr;
  while (*v) {
    if (*p == '*') {
      star = p++;
      retry = v;
    } else if (*p == '?' || *p == *v) {
      ++p;
      ++v;
    } else if (star) {
      p = star + 1;
      v = ++retry;
    } else {
      return false;
    }
  }
  while (*p == '*') ++p;
  return *p == '\0';
}

std::vector<std::string> values(const std::string& list) {
  std::vector<std::string> out;
  std::size_t b = 0;
  while (b <= list.size()) {
    std::size_t e = list.find('\\', b);
    if (e == std::string::npos) e = list.size();
    if (e > b) out.push_back(list.substr(b, e - b));
    b = e + 1;
  }
  return out;
}

std::string num(std::optional<std::int64_t> v) { return v ? std::to_string(*v) : std::string(); }

using Values = std::map<DcmTagKey, std::string>;

// A response identifier: every key the request holds, with our value or empty.
std::unique_ptr<DcmDataset> respond(const DcmDataset& request, const Values& v) {
  auto out = std::make_unique<DcmDataset>();
  DcmDataset& req = const_cast<DcmDataset&>(request);
  for (unsigned long i = 0; i < req.card(); ++i) {
    const DcmTagKey tag = req.getElement(i)->getTag();
    // File Meta (some senders put group 0002 keys in an identifier) and command elements are
    // no attributes of a match: left out, as DCMTK would refuse them in a data set.
    if (tag == DCM_SpecificCharacterSet || tag.getGroup() <= 0x0002) continue;
    if (tag == DCM_QueryRetrieveLevel) {
      (void)out->putAndInsertString(tag, get(request, tag).c_str());
    } else if (auto it = v.find(tag); it != v.end()) {
      (void)out->putAndInsertString(tag, it->second.c_str());
    } else {
      (void)out->insertEmptyElement(tag);
    }
  }
  (void)out->putAndInsertString(DCM_SpecificCharacterSet, "ISO_IR 192");  // the index is UTF-8
  return out;
}

Values study_values(const pacs::StudySummary& s) {
  return {{DCM_PatientName, s.patient_name},
          {DCM_PatientID, s.patient_id},
          {DCM_IssuerOfPatientID, s.issuer_of_patient_id},
          {DCM_PatientBirthDate, s.patient_birth_date},
          {DCM_PatientSex, s.patient_sex},
          {DCM_StudyDate, s.study_date},
          {DCM_StudyTime, s.study_time},
          {DCM_AccessionNumber, s.accession_number},
          {DCM_StudyDescription, s.study_description},
          {DCM_ReferringPhysicianName, s.referring_physician},
          {DCM_InstitutionName, s.institution_name},
          {DCM_ModalitiesInStudy, s.modalities},
          {DCM_StudyInstanceUID, s.study_instance_uid},
          {DCM_NumberOfStudyRelatedSeries, std::to_string(s.num_series)},
          {DCM_NumberOfStudyRelatedInstances, std::to_string(s.num_instances)}};
}

pacs::StudyQuery study_query(const DcmDataset& id) {
  pacs::StudyQuery q;
  q.patient_id = get(id, DCM_PatientID);
  q.patient_name = get(id, DCM_PatientName);
  q.study_date = get(id, DCM_StudyDate);
  q.accession_number = get(id, DCM_AccessionNumber);
  q.study_description = get(id, DCM_StudyDescription);
  auto mods = values(get(id, DCM_ModalitiesInStudy));
  if (!mods.empty()) q.modality = mods.front();
  q.study_uids = values(get(id, DCM_StudyInstanceUID));
  return q;
}

Error invalid(std::string m) { return make_error(Errc::invalid_argument, std::move(m)); }

}  // namespace

bool dicom_match(const std::string& pattern, const std::string& value) {
  if (pattern.empty()) return true;
  for (const std::string& alt : values(pattern)) {
    if (glob(alt.c_str(), value.c_str())) return true;
  }
  return false;
}

std::string QueryRetrieve::now() const { return storage::to_iso8601(clock_()); }

Result<QueryRetrieve::Found> QueryRetrieve::find(const Principal& p, bool patient_root,
                                                 const DcmDataset& id) {
  const std::string level = get(id, DCM_QueryRetrieveLevel);
  Found found;
  std::vector<std::unique_ptr<DcmDataset>>& out = found.matches;
  // Adds a match unless the limit is reached (then the answer is marked cut); false when full.
  auto add = [&](std::unique_ptr<DcmDataset> m) {
    if (out.size() >= max_matches_) {
      found.cut = true;
      return false;
    }
    out.push_back(std::move(m));
    return true;
  };
  const identity::StudyScope scope = identity::study_scope(p, now());

  if (level == "PATIENT" || level == "STUDY") {
    if (level == "PATIENT" && !patient_root) {
      return invalid("the Study Root model has no PATIENT level");
    }
    if (level == "STUDY" && patient_root && get(id, DCM_PatientID).empty()) {
      return invalid("Patient Root STUDY queries need the PatientID");
    }
    pacs::StudyQuery q = study_query(id);
    if (level == "PATIENT") {
      // One row per patient, grouped by the index (one more than the limit: to know it cut).
      auto patients = index_.search_patients(scope, q, static_cast<std::int64_t>(max_matches_) + 1);
      if (!patients.ok()) return patients.error();
      for (const pacs::PatientSummary& t : *patients) {
        if (!add(respond(id, {{DCM_PatientName, t.patient_name},
                              {DCM_PatientID, t.patient_id},
                              {DCM_IssuerOfPatientID, t.issuer_of_patient_id},
                              {DCM_PatientBirthDate, t.patient_birth_date},
                              {DCM_PatientSex, t.patient_sex},
                              {DCM_NumberOfPatientRelatedStudies, std::to_string(t.studies)},
                              {DCM_NumberOfPatientRelatedSeries, std::to_string(t.series)},
                              {DCM_NumberOfPatientRelatedInstances, std::to_string(t.instances)}})))
          break;
      }
      return found;
    }
    const std::int64_t page_size = 500;
    for (std::int64_t offset = 0;; offset += page_size) {
      auto page = index_.search_studies(scope, q, page_size, offset);
      if (!page.ok()) return page.error();
      for (const pacs::StudySummary& s : page->studies) {
        if (!add(respond(id, study_values(s)))) break;
      }
      if (static_cast<std::int64_t>(page->studies.size()) < page_size || found.cut) break;
    }
    return found;
  }

  if (level != "SERIES" && level != "IMAGE") {
    return invalid("QueryRetrieveLevel must be PATIENT, STUDY, SERIES or IMAGE");
  }
  const std::string study = get(id, DCM_StudyInstanceUID);
  if (study.empty() || study.find('\\') != std::string::npos) {
    return invalid("SERIES and IMAGE queries need one StudyInstanceUID");
  }
  auto visible = may_read_study(index_, p, study, now());
  if (!visible.ok()) return visible.error();
  if (!*visible) return found;  // nothing the node may see: no matches
  auto detail = index_.get_study(study);
  if (!detail.ok()) return detail.error();
  if (!detail->has_value()) return found;

  if (level == "SERIES") {
    const std::string modality = get(id, DCM_Modality), uid = get(id, DCM_SeriesInstanceUID),
                      number = get(id, DCM_SeriesNumber),
                      description = get(id, DCM_SeriesDescription);
    for (const pacs::SeriesSummary& s : (*detail)->series) {
      if (!dicom_match(modality, s.modality) || !dicom_match(uid, s.series_instance_uid) ||
          !dicom_match(number, num(s.series_number)) ||
          !dicom_match(description, s.series_description))
        continue;
      Values v = study_values((*detail)->study);
      v[DCM_Modality] = s.modality;
      v[DCM_SeriesNumber] = num(s.series_number);
      v[DCM_SeriesDescription] = s.series_description;
      v[DCM_BodyPartExamined] = s.body_part;
      v[DCM_SeriesInstanceUID] = s.series_instance_uid;
      v[DCM_NumberOfSeriesRelatedInstances] = std::to_string(s.num_instances);
      if (!add(respond(id, v))) break;
    }
    return found;
  }

  const std::string series = get(id, DCM_SeriesInstanceUID);
  if (series.empty() || series.find('\\') != std::string::npos) {
    return invalid("IMAGE queries need one SeriesInstanceUID");
  }
  auto list = index_.series_instances(series);
  if (!list.ok()) return list.error();
  const std::string sop = get(id, DCM_SOPInstanceUID), number = get(id, DCM_InstanceNumber),
                    sop_class = get(id, DCM_SOPClassUID);
  for (const InstanceLocation& i : *list) {
    if (i.study_instance_uid != study) continue;
    if (!dicom_match(sop, i.sop_instance_uid) || !dicom_match(number, num(i.instance_number)) ||
        !dicom_match(sop_class, i.sop_class_uid))
      continue;
    Values v = study_values((*detail)->study);
    v[DCM_SeriesInstanceUID] = i.series_instance_uid;
    v[DCM_SOPInstanceUID] = i.sop_instance_uid;
    v[DCM_SOPClassUID] = i.sop_class_uid;
    v[DCM_InstanceNumber] = num(i.instance_number);
    v[DCM_NumberOfFrames] = std::to_string(i.number_of_frames);
    if (!add(respond(id, v))) break;
  }
  return found;
}

Result<std::vector<InstanceLocation>> study_instances(pacs::Index& index, const std::string& study,
                                                      const std::string& series,
                                                      std::size_t limit) {
  std::vector<std::string> uids;
  if (!series.empty()) {
    uids.push_back(series);
  } else {
    auto detail = index.get_study(study);
    if (!detail.ok()) return detail.error();
    if (detail->has_value()) {
      for (const auto& s : (*detail)->series) uids.push_back(s.series_instance_uid);
    }
  }
  std::vector<InstanceLocation> out;
  for (const std::string& uid : uids) {
    auto list = index.series_instances(uid);
    if (!list.ok()) return list.error();
    for (auto& i : *list) {
      if (out.size() >= limit) return out;
      if (i.study_instance_uid == study) out.push_back(std::move(i));
    }
  }
  return out;
}

Result<std::vector<InstanceLocation>> QueryRetrieve::instances(const Principal& p,
                                                               const DcmDataset& id) {
  const std::string level = get(id, DCM_QueryRetrieveLevel);
  const std::string when = now();
  std::map<std::string, bool> readable;  // per study, asked once
  auto may = [&](const std::string& study) -> Result<bool> {
    if (auto it = readable.find(study); it != readable.end()) return it->second;
    auto ok = may_read_study(index_, p, study, when);
    if (!ok.ok()) return ok.error();
    readable[study] = *ok;
    return *ok;
  };
  std::vector<InstanceLocation> out;
  auto add_studies = [&](const std::vector<std::string>& studies) -> Status {
    for (const std::string& study : studies) {
      auto ok = may(study);
      if (!ok.ok()) return ok.error();
      if (!*ok) continue;
      auto list = study_instances(index_, study);
      if (!list.ok()) return list.error();
      for (auto& i : *list) out.push_back(std::move(i));
    }
    return Status::Ok();
  };

  if (level == "PATIENT") {
    const std::string patient = get(id, DCM_PatientID);
    if (patient.empty() || patient.find_first_of("*?\\") != std::string::npos) {
      return invalid("PATIENT retrieves need one PatientID");
    }
    pacs::StudyQuery q;
    q.patient_id = patient;
    auto page = index_.search_studies(identity::study_scope(p, when), q, 1000, 0);
    if (!page.ok()) return page.error();
    std::vector<std::string> studies;
    for (const auto& s : page->studies) studies.push_back(s.study_instance_uid);
    if (Status s = add_studies(studies); !s) return s.error();
  } else if (level == "STUDY") {
    auto studies = values(get(id, DCM_StudyInstanceUID));
    if (studies.empty()) return invalid("STUDY retrieves need StudyInstanceUID");
    if (Status s = add_studies(studies); !s) return s.error();
  } else if (level == "SERIES") {
    auto series = values(get(id, DCM_SeriesInstanceUID));
    if (series.empty()) return invalid("SERIES retrieves need SeriesInstanceUID");
    for (const std::string& se : series) {
      auto list = index_.series_instances(se);
      if (!list.ok()) return list.error();
      for (auto& i : *list) {
        auto ok = may(i.study_instance_uid);
        if (!ok.ok()) return ok.error();
        if (*ok) out.push_back(std::move(i));
      }
    }
  } else if (level == "IMAGE") {
    auto sops = values(get(id, DCM_SOPInstanceUID));
    if (sops.empty()) return invalid("IMAGE retrieves need SOPInstanceUID");
    for (const std::string& sop : sops) {
      auto loc = index_.locate_instance(sop);
      if (!loc.ok()) return loc.error();
      if (!loc->has_value()) continue;
      auto ok = may((*loc)->study_instance_uid);
      if (!ok.ok()) return ok.error();
      if (*ok) out.push_back(std::move(**loc));
    }
  } else {
    return invalid("QueryRetrieveLevel must be PATIENT, STUDY, SERIES or IMAGE");
  }
  return out;
}

}  // namespace yilian::pacs
