// The one rule for which records of a Patient ID are one person's.
#include "yilian/identity/patient.h"

#include <gtest/gtest.h>

namespace yilian::identity {
namespace {

TEST(PatientIdentities, one_local_id_at_two_members_is_two_people) {
  const auto people = patient_identities({{"ta", "", "Wang^Li", "19600101", "F"},
                                          {"lead", "", "Zhang^Wei", "19800202", "M"},
                                          {"ta", "", "Wang^Li", "", ""}},
                                         "CN-ID");
  ASSERT_EQ(people.size(), 2u);
  EXPECT_FALSE(people[0].national);
  EXPECT_EQ(people[0].institutions, std::vector<std::string>{"ta"});
  EXPECT_EQ(people[0].name, "Wang^Li");
  EXPECT_EQ(people[0].birth_date, "19600101");
  EXPECT_EQ(people[1].institutions, std::vector<std::string>{"lead"});
  EXPECT_EQ(people[1].sex, "M");
}

TEST(PatientIdentities, a_national_id_is_one_person_at_every_member_that_issued_it_so) {
  // ta and lead issued the ID under the national issuer; tb uses the same number as its own.
  // A laboratory result (no issuer) belongs with its member's studies.
  const auto people = patient_identities({{"ta", "", "Wang^Li", "", ""},
                                          {"lead", "CN-ID", "", "19600101", "F"},
                                          {"tb", "TB-HIS", "Liu^Qiang", "19700303", "M"},
                                          {"ta", "CN-ID", "Wang^Li", "19600101", "F"}},
                                         "CN-ID");
  ASSERT_EQ(people.size(), 2u);
  EXPECT_TRUE(people[0].national);
  EXPECT_EQ(people[0].institutions, (std::vector<std::string>{"lead", "ta"}));
  EXPECT_EQ(people[0].name, "Wang^Li");
  EXPECT_EQ(people[0].birth_date, "19600101");
  EXPECT_FALSE(people[1].national);
  EXPECT_EQ(people[1].institutions, std::vector<std::string>{"tb"});
}

TEST(PatientIdentities, without_a_national_issuer_every_members_ids_are_its_own) {
  const auto people =
      patient_identities({{"ta", "CN-ID", "", "", ""}, {"lead", "CN-ID", "", "", ""}}, "");
  ASSERT_EQ(people.size(), 2u);
  EXPECT_FALSE(people[0].national);
  EXPECT_FALSE(people[1].national);
  EXPECT_TRUE(patient_identities({}, "CN-ID").empty());
}

TEST(PatientIdentities, the_person_at_a_member_is_the_one_holding_it_or_its_own_patient) {
  const auto people = patient_identities(
      {{"ta", "CN-ID", "", "", ""}, {"lead", "CN-ID", "", "", ""}, {"tb", "HIS", "", "", ""}},
      "CN-ID");
  EXPECT_EQ(person_at(people, "lead").institutions, (std::vector<std::string>{"ta", "lead"}));
  EXPECT_TRUE(person_at(people, "lead").national);
  EXPECT_EQ(person_at(people, "tb").institutions, std::vector<std::string>{"tb"});
  const PatientIdentity nobody = person_at(people, "tc");
  EXPECT_FALSE(nobody.national);
  EXPECT_EQ(nobody.institutions, std::vector<std::string>{"tc"});
}

}  // namespace
}  // namespace yilian::identity
