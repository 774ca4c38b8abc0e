// The access matrix of identity/policy.h: every role against a study of the user's own
// institution, of an institution they are credentialed at, of a client institution of
// their reading service (imaging and ECG), of an unrelated institution, and shared with them.
#include "yilian/identity/policy.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

namespace yilian::identity {
namespace {

constexpr std::int64_t kLead = 1, kTownshipA = 2, kTownshipB = 3, kCounty = 4, kOther = 5;

Principal principal(Role role) {
  Principal p;
  p.user_id = 42;
  p.username = "u";
  p.institution_id = role == Role::township_doctor ? kTownshipA : kLead;
  p.grant(role);
  // The lead hospital reads imaging and ECG for township A; everyone is also credentialed
  // at the county hospital.
  if (p.institution_id == kLead) {
    p.imaging_clients = {kTownshipA};
    p.ecg_clients = {kTownshipA};
  }
  p.credentialed = {kCounty};
  return p;
}

identity::StudyAccessFacts study(std::int64_t institution, const char* modalities,
                                 bool shared = false) {
  return identity::StudyAccessFacts{7, institution, modalities, shared};
}

enum class Case { own, credentialed, client_imaging, client_ecg, unrelated, shared };

struct Expect {
  Role role;
  std::map<Case, bool> read;
};

TEST(Policy, the_access_matrix) {
  // The study each case asks about, for a principal built by principal(role).
  auto facts = [](Role role, Case c) {
    std::int64_t own = role == Role::township_doctor ? kTownshipA : kLead;
    std::int64_t client = role == Role::township_doctor ? kTownshipB : kTownshipA;
    switch (c) {
      case Case::own:
        return study(own, "CT");
      case Case::credentialed:
        return study(kCounty, "DX");
      case Case::client_imaging:
        return study(client, "CT\\SR");
      case Case::client_ecg:
        return study(client, "ECG");
      case Case::unrelated:
        return study(kOther, "CT");
      case Case::shared:
        return study(kOther, "CT", true);
    }
    return study(0, "");
  };
  const std::vector<Expect> matrix = {
      {Role::township_doctor,
       {{Case::own, true},
        {Case::credentialed, true},
        {Case::client_imaging, false},
        {Case::client_ecg, false},
        {Case::unrelated, false},
        {Case::shared, true}}},
      {Role::radiologist,
       {{Case::own, true},
        {Case::credentialed, true},
        {Case::client_imaging, true},
        {Case::client_ecg, false},
        {Case::unrelated, false},
        {Case::shared, true}}},
      {Role::pathologist,  // slides are imaging studies; a pathologist sees the CT beside them
       {{Case::own, true},
        {Case::credentialed, true},
        {Case::client_imaging, true},
        {Case::client_ecg, false},
        {Case::unrelated, false},
        {Case::shared, true}}},
      {Role::ecg_reader,
       {{Case::own, true},
        {Case::credentialed, true},
        {Case::client_imaging, false},
        {Case::client_ecg, true},
        {Case::unrelated, false},
        {Case::shared, true}}},
      {Role::cardiologist,
       {{Case::own, true},
        {Case::credentialed, true},
        {Case::client_imaging, false},
        {Case::client_ecg, true},
        {Case::unrelated, false},
        {Case::shared, true}}},
      {Role::qc_reviewer,
       {{Case::own, true},
        {Case::credentialed, true},
        {Case::client_imaging, true},
        {Case::client_ecg, true},
        {Case::unrelated, false},
        {Case::shared, true}}},
      {Role::physician,  // a lead hospital clinician who reads for no service
       {{Case::own, true},
        {Case::credentialed, true},
        {Case::client_imaging, false},
        {Case::client_ecg, false},
        {Case::unrelated, false},
        {Case::shared, true}}},
      {Role::admin,
       {{Case::own, false},
        {Case::credentialed, false},
        {Case::client_imaging, false},
        {Case::client_ecg, false},
        {Case::unrelated, false},
        {Case::shared, false}}},
  };
  for (const Expect& e : matrix) {
    Principal p = principal(e.role);
    for (const auto& [c, allowed] : e.read) {
      identity::StudyAccessFacts f = facts(e.role, c);
      EXPECT_EQ(may_read_study(p, f), allowed)
          << role_name(e.role) << " case " << static_cast<int>(c);
      // Sharing onwards needs direct access: never through a share.
      EXPECT_EQ(may_share_study(p, f), allowed && c != Case::shared)
          << role_name(e.role) << " share, case " << static_cast<int>(c);
    }
  }
}

TEST(Policy, an_admin_who_is_also_a_radiologist_reads_as_a_radiologist) {
  Principal p = principal(Role::radiologist);
  p.grant(Role::admin);
  EXPECT_TRUE(may_administer(p));
  EXPECT_TRUE(may_read_study(p, study(kTownshipA, "CT")));
  EXPECT_FALSE(may_read_study(p, study(kOther, "CT")));
  EXPECT_FALSE(may_administer(principal(Role::radiologist)));
  EXPECT_TRUE(may_read_audit(principal(Role::admin)));
  EXPECT_FALSE(may_read_audit(principal(Role::qc_reviewer)));
  for (Role r :
       {Role::admin, Role::qc_reviewer, Role::radiologist, Role::ecg_reader, Role::cardiologist}) {
    EXPECT_TRUE(may_read_statistics(principal(r)));
  }
  EXPECT_FALSE(may_read_statistics(principal(Role::township_doctor)));
}

TEST(Policy, the_list_scope_agrees_with_the_single_study_rule) {
  Principal radiologist = principal(Role::radiologist);
  identity::StudyScope s = study_scope(radiologist, "2026-11-22T00:00:00.000Z");
  EXPECT_EQ(s.institutions, (std::vector<std::int64_t>{kLead, kCounty}));
  EXPECT_EQ(s.imaging_institutions, (std::vector<std::int64_t>{kTownshipA}));
  EXPECT_TRUE(s.ecg_institutions.empty());
  EXPECT_EQ(s.share_user_id, 42);
  EXPECT_EQ(s.now, "2026-11-22T00:00:00.000Z");

  Principal ecg = principal(Role::ecg_reader);
  identity::StudyScope e = study_scope(ecg, "t");
  EXPECT_TRUE(e.imaging_institutions.empty());
  EXPECT_EQ(e.ecg_institutions, (std::vector<std::int64_t>{kTownshipA}));

  EXPECT_TRUE(study_scope(principal(Role::admin), "t").empty());
}

TEST(Policy, ecg_studies_are_those_with_an_ecg_modality) {
  EXPECT_TRUE(is_ecg_study("ECG"));
  EXPECT_TRUE(is_ecg_study("ECG\\SR"));
  EXPECT_TRUE(is_ecg_study("DOC\\ECG"));
  EXPECT_FALSE(is_ecg_study("CT"));
  EXPECT_FALSE(is_ecg_study("ECGX"));
  EXPECT_FALSE(is_ecg_study(""));
}

TEST(Roles, round_trip_through_text) {
  std::uint32_t roles = 0;
  roles |= 1u << static_cast<unsigned>(Role::radiologist);
  roles |= 1u << static_cast<unsigned>(Role::admin);
  EXPECT_EQ(roles_to_string(roles), "radiologist,admin");
  EXPECT_EQ(roles_from_string("radiologist,admin"), roles);
  EXPECT_FALSE(roles_from_string("radiologist,janitor").has_value());
}

// Who reads a task: the one rule behind the queue's claims (as sets) and the hub's alerts (one
// task at a time) gives the same answer for every role, institution, kind and service.
TEST(ReadsTask, the_set_form_and_the_single_task_form_agree_everywhere) {
  const std::vector<std::vector<std::string>> service_lists = {{}, {"neuro"}, {"pathology"}};
  for (Role role : kAllRoles) {
    for (const auto& services : service_lists) {
      Principal p = principal(role);
      p.services = services;
      const ReaderScope scope = reader_scope(p);
      for (std::int64_t inst : {kLead, kTownshipA, kTownshipB, kCounty, kOther}) {
        for (bool ecg : {false, true}) {
          for (const char* service : {"imaging", "neuro", "pathology"}) {
            const auto& list = ecg ? scope.ecg_institutions : scope.imaging_institutions;
            const bool in_scope =
                std::find(list.begin(), list.end(), inst) != list.end() &&
                (ecg || pathology_allows(scope.pathology, service)) &&
                (scope.services.empty() || std::find(scope.services.begin(), scope.services.end(),
                                                     service) != scope.services.end());
            EXPECT_EQ(reads_task(p, {inst, ecg, service}), in_scope)
                << role_name(role) << " institution " << inst << (ecg ? " ECG " : " imaging ")
                << service;
          }
        }
      }
    }
  }
}

TEST(ReadsTask, readers_read_their_kind_at_home_credentialed_and_client_institutions_only) {
  const Principal rad = principal(Role::radiologist);
  EXPECT_TRUE(reads_task(rad, {kLead, false, "imaging"}));
  EXPECT_TRUE(reads_task(rad, {kCounty, false, "imaging"}));
  EXPECT_TRUE(reads_task(rad, {kTownshipA, false, "imaging"}));
  EXPECT_FALSE(reads_task(rad, {kTownshipB, false, "imaging"}));
  EXPECT_FALSE(reads_task(rad, {kTownshipA, true, "ecg"}));
  EXPECT_TRUE(reads_task(principal(Role::cardiologist), {kTownshipA, true, "ecg"}));
  EXPECT_FALSE(reads_task(principal(Role::township_doctor), {kTownshipA, false, "imaging"}));
  EXPECT_FALSE(reads_task(principal(Role::qc_reviewer), {kTownshipA, false, "imaging"}));
  // A physician reads no queue, not even their own hospital's ECGs.
  for (bool ecg : {false, true}) {
    EXPECT_FALSE(reads_task(principal(Role::physician), {kLead, ecg, ecg ? "ecg" : "imaging"}));
  }
  EXPECT_FALSE(may_read_statistics(principal(Role::physician)));
  Principal neuro = rad;
  neuro.services = {"neuro"};
  EXPECT_TRUE(reads_task(neuro, {kTownshipA, false, "neuro"}));
  EXPECT_FALSE(reads_task(neuro, {kTownshipA, false, "imaging"}));  // not a service they work
}

// The pathology centre's tasks are the pathologists': a radiologist does not read a slide, a
// pathologist reads nothing else, and one who holds both roles reads both.
TEST(ReadsTask, slides_are_read_by_pathologists_and_other_imaging_by_radiologists) {
  const Principal rad = principal(Role::radiologist);
  const Principal path = principal(Role::pathologist);
  EXPECT_TRUE(reads_task(rad, {kTownshipA, false, "imaging"}));
  EXPECT_FALSE(reads_task(rad, {kTownshipA, false, kPathologyService}));
  EXPECT_TRUE(reads_task(path, {kTownshipA, false, kPathologyService}));
  EXPECT_TRUE(reads_task(path, {kLead, false, kPathologyService}));
  EXPECT_FALSE(reads_task(path, {kTownshipA, false, "imaging"}));
  EXPECT_FALSE(reads_task(path, {kTownshipA, true, "ecg"}));
  EXPECT_FALSE(reads_task(path, {kTownshipB, false, kPathologyService}));
  EXPECT_EQ(reader_scope(rad).pathology, PathologyTasks::none);
  EXPECT_EQ(reader_scope(path).pathology, PathologyTasks::only);
  Principal both = rad;
  both.grant(Role::pathologist);
  EXPECT_EQ(reader_scope(both).pathology, PathologyTasks::any);
  EXPECT_TRUE(reads_task(both, {kTownshipA, false, kPathologyService}));
  EXPECT_TRUE(reads_task(both, {kTownshipA, false, "imaging"}));
  // A radiologist who is also a cardiologist still reads ECGs of every service.
  Principal rad_cardio = rad;
  rad_cardio.grant(Role::cardiologist);
  EXPECT_TRUE(reads_task(rad_cardio, {kTownshipA, true, "ecg"}));
  EXPECT_TRUE(has_clinical_role(path));
  EXPECT_TRUE(may_read_statistics(path));
  EXPECT_EQ(parse_role("pathologist"), Role::pathologist);
}

}  // namespace
}  // namespace yilian::identity
