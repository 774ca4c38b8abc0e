#include "yilian/identity/policy.h"

#include <algorithm>

namespace yilian::identity {
namespace {

bool contains(const std::vector<std::int64_t>& v, std::int64_t x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

bool sees_imaging_clients(const Principal& p) {
  return p.has(Role::radiologist) || p.has(Role::pathologist) || p.has(Role::qc_reviewer);
}
bool sees_ecg_clients(const Principal& p) {
  return p.has(Role::ecg_reader) || p.has(Role::cardiologist) || p.has(Role::qc_reviewer);
}

// Access through the principal's institutions or reading services (not through shares).
bool reaches_directly(const Principal& p, const identity::StudyAccessFacts& s) {
  if (!has_clinical_role(p)) return false;
  if (s.institution_id == p.institution_id || contains(p.credentialed, s.institution_id)) {
    return true;
  }
  if (is_ecg_study(s.modalities)) {
    return sees_ecg_clients(p) && contains(p.ecg_clients, s.institution_id);
  }
  return sees_imaging_clients(p) && contains(p.imaging_clients, s.institution_id);
}

}  // namespace

bool has_modality(std::string_view modalities, std::string_view modality) {
  while (!modalities.empty()) {
    std::size_t sep = modalities.find('\\');
    if (modalities.substr(0, sep) == modality) return true;
    if (sep == std::string_view::npos) break;
    modalities.remove_prefix(sep + 1);
  }
  return false;
}

bool is_ecg_study(std::string_view modalities) { return has_modality(modalities, "ECG"); }

bool has_clinical_role(const Principal& p) {
  return p.has(Role::township_doctor) || p.has(Role::radiologist) || p.has(Role::pathologist) ||
         p.has(Role::ecg_reader) || p.has(Role::cardiologist) || p.has(Role::qc_reviewer) ||
         p.has(Role::physician);
}

std::vector<std::int64_t> served_institutions(const Principal& p) {
  std::vector<std::int64_t> out{p.institution_id};
  auto add = [&out](const std::vector<std::int64_t>& v) {
    for (std::int64_t id : v) {
      if (std::find(out.begin(), out.end(), id) == out.end()) out.push_back(id);
    }
  };
  add(p.credentialed);
  add(p.imaging_clients);
  add(p.ecg_clients);
  return out;
}

bool may_read_study(const Principal& p, const identity::StudyAccessFacts& s) {
  if (!has_clinical_role(p)) return false;
  return reaches_directly(p, s) || s.shared;
}

bool may_share_study(const Principal& p, const identity::StudyAccessFacts& s) {
  return reaches_directly(p, s);
}

std::vector<std::int64_t> share_institutions(const Principal& p) {
  std::vector<std::int64_t> out{p.institution_id};
  out.insert(out.end(), p.credentialed.begin(), p.credentialed.end());
  return out;
}

identity::StudyScope study_scope(const Principal& p, std::string now) {
  identity::StudyScope scope;
  if (!has_clinical_role(p)) return scope;
  scope.institutions = share_institutions(p);
  if (sees_imaging_clients(p)) scope.imaging_institutions = p.imaging_clients;
  if (sees_ecg_clients(p)) scope.ecg_institutions = p.ecg_clients;
  scope.share_user_id = p.user_id;
  scope.share_institutions = share_institutions(p);
  scope.now = std::move(now);
  return scope;
}

ReaderScope reader_scope(const Principal& p) {
  ReaderScope scope;
  auto readers_of = [&p](const std::vector<std::int64_t>& clients) {
    std::vector<std::int64_t> out = share_institutions(p);  // home and credentialed
    for (std::int64_t c : clients) {
      if (!contains(out, c)) out.push_back(c);
    }
    return out;
  };
  const bool radiologist = p.has(Role::radiologist), pathologist = p.has(Role::pathologist);
  if (radiologist || pathologist) scope.imaging_institutions = readers_of(p.imaging_clients);
  if (radiologist != pathologist) {
    scope.pathology = pathologist ? PathologyTasks::only : PathologyTasks::none;
  }
  if (p.has(Role::ecg_reader) || p.has(Role::cardiologist)) {
    scope.ecg_institutions = readers_of(p.ecg_clients);
  }
  if (!scope.imaging_institutions.empty() || !scope.ecg_institutions.empty()) {
    scope.services = p.services;
  }
  return scope;
}

bool pathology_allows(PathologyTasks which, std::string_view service) {
  if (which == PathologyTasks::any) return true;
  return (service == kPathologyService) == (which == PathologyTasks::only);
}

bool reads_task(const Principal& p, const TaskFacts& t) {
  const ReaderScope scope = reader_scope(p);
  const auto& institutions = t.is_ecg ? scope.ecg_institutions : scope.imaging_institutions;
  if (!contains(institutions, t.institution_id)) return false;
  if (!t.is_ecg && !pathology_allows(scope.pathology, t.service)) return false;
  return scope.services.empty() ||
         std::find(scope.services.begin(), scope.services.end(), t.service) != scope.services.end();
}

bool may_administer(const Principal& p) { return p.has(Role::admin); }
bool may_read_audit(const Principal& p) { return p.has(Role::admin); }

bool may_read_statistics(const Principal& p) {
  return p.has(Role::admin) || p.has(Role::qc_reviewer) || p.has(Role::radiologist) ||
         p.has(Role::pathologist) || p.has(Role::ecg_reader) || p.has(Role::cardiologist);
}

}  // namespace yilian::identity
