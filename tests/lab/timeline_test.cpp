// The patient's timeline: laboratory panels and studies put in time order.
#include "yilian/lab/timeline.h"

#include <gtest/gtest.h>

namespace yilian::lab {
namespace {

LabResult result(std::string order, std::string code, std::string specimen_at,
                 std::string lab = "ta") {
  LabResult r;
  r.institution_code = "ta";
  r.performing_lab = std::move(lab);
  r.order_code = std::move(order);
  r.code = std::move(code);
  r.specimen_at = std::move(specimen_at);
  r.received_at = "2026-12-01T10:00:00.000Z";
  return r;
}

PatientStudy study(std::string modalities, std::string date, std::string time) {
  PatientStudy s;
  s.modalities = std::move(modalities);
  s.study_date = std::move(date);
  s.study_time = std::move(time);
  s.institution_code = "lead";
  s.first_received_at = "2026-12-05T00:00:00.000Z";
  return s;
}

TEST(PatientTimeline, study_kinds_follow_the_modalities) {
  EXPECT_EQ(study_kind("CT"), EntryKind::imaging);
  EXPECT_EQ(study_kind("ECG"), EntryKind::ecg);
  EXPECT_EQ(study_kind("ECG\\SR"), EntryKind::ecg);
  EXPECT_EQ(study_kind("SM"), EntryKind::pathology);
  EXPECT_EQ(study_kind("OT\\SM"), EntryKind::pathology);
  EXPECT_EQ(study_kind("SMR"), EntryKind::imaging);
  EXPECT_EQ(study_kind(""), EntryKind::imaging);
  EXPECT_STREQ(entry_kind_name(EntryKind::pathology), "pathology");
}

TEST(PatientTimeline, a_study_is_placed_at_its_local_date_and_time_in_utc) {
  // China Standard Time: 08:15 on 22 November is 00:15 UTC.
  EXPECT_EQ(study_time_utc(study("CT", "20261122", "081500"), 480), "2026-11-22T00:15:00.000Z");
  EXPECT_EQ(study_time_utc(study("CT", "20261122", "081500.123456"), 480),
            "2026-11-22T00:15:00.000Z");
  EXPECT_EQ(study_time_utc(study("CT", "20261122", "0815"), 480), "2026-11-22T00:15:00.000Z");
  // Before 08:00 local time it is the day before in UTC.
  EXPECT_EQ(study_time_utc(study("CT", "20261122", "0730"), 480), "2026-11-21T23:30:00.000Z");
  // A date alone is its local midnight; a time that is not a DICOM time is left out.
  EXPECT_EQ(study_time_utc(study("CT", "20261122", ""), 480), "2026-11-21T16:00:00.000Z");
  EXPECT_EQ(study_time_utc(study("CT", "20261122", "8:15"), 480), "2026-11-21T16:00:00.000Z");
  // No usable date: when the study first reached the hub.
  EXPECT_EQ(study_time_utc(study("CT", "", "081500"), 480), "2026-12-05T00:00:00.000Z");
  EXPECT_EQ(study_time_utc(study("CT", "20261342", "081500"), 480), "2026-12-05T00:00:00.000Z");
  EXPECT_EQ(study_time_utc(study("CT", "2026112", ""), 480), "2026-12-05T00:00:00.000Z");
}

TEST(PatientTimeline, results_of_one_order_and_specimen_make_one_panel_newest_first) {
  const std::vector<LabResult> results = {
      result("CBC", "718-7", "2026-12-03T01:00:00.000Z"),
      result("CBC", "6690-2", "2026-12-03T01:00:00.000Z"),
      result("GLU", "2345-7", "2026-12-03T01:00:00.000Z"),
      result("CBC", "718-7", "2026-11-30T01:00:00.000Z"),
      // The same order and time from another laboratory is another panel.
      result("CBC", "718-7", "2026-12-03T01:00:00.000Z", "county-lab"),
      // No specimen time: placed when it was received.
      result("UA", "5811-5", ""),
  };
  const std::vector<PatientStudy> studies = {
      study("CT", "20261204", "090000"),   // 2026-12-04T01:00Z
      study("ECG", "20261203", "090000"),  // 2026-12-03T01:00Z, the time of the CBC
      study("SM", "20261101", "100000"),   // the oldest
  };
  const auto entries = patient_timeline(results, studies, 480);
  ASSERT_EQ(entries.size(), 8u);
  EXPECT_EQ(entries[0].kind, EntryKind::imaging);
  EXPECT_EQ(entries[0].at, "2026-12-04T01:00:00.000Z");
  EXPECT_EQ(entries[0].institution, "lead");
  EXPECT_EQ(entries[0].study, 0u);
  // At one time, the panels before the study, in the order their results came.
  EXPECT_EQ(entries[1].kind, EntryKind::lab);
  EXPECT_EQ(entries[1].results, (std::vector<std::size_t>{0, 1}));
  EXPECT_EQ(entries[2].results, (std::vector<std::size_t>{2}));
  EXPECT_EQ(entries[3].results, (std::vector<std::size_t>{4}));
  EXPECT_EQ(entries[4].kind, EntryKind::ecg);
  EXPECT_EQ(entries[4].study, 1u);
  EXPECT_EQ(entries[5].kind, EntryKind::lab);
  EXPECT_EQ(entries[5].at, "2026-12-01T10:00:00.000Z");
  EXPECT_EQ(entries[5].results, (std::vector<std::size_t>{5}));
  EXPECT_EQ(entries[6].results, (std::vector<std::size_t>{3}));
  EXPECT_EQ(entries[7].kind, EntryKind::pathology);
  EXPECT_EQ(entries[7].at, "2026-11-01T02:00:00.000Z");
}

TEST(PatientTimeline, consults_and_referrals_take_their_place_by_when_they_were_asked) {
  CareEvent consult;
  consult.kind = EntryKind::consult;
  consult.at = "2026-12-02T01:00:00.000Z";
  consult.institution = "ta";
  CareEvent referral = consult;
  referral.kind = EntryKind::referral;
  referral.at = "2026-12-04T01:00:00.000Z";
  const auto entries =
      patient_timeline({result("CBC", "718-7", "2026-12-03T00:00:00.000Z")},
                       {study("CT", "20261201", "080000")}, 480, {consult, referral});
  ASSERT_EQ(entries.size(), 4u);
  EXPECT_EQ(entries[0].kind, EntryKind::referral);
  EXPECT_EQ(entries[0].event, 1u);
  EXPECT_EQ(entries[1].kind, EntryKind::lab);
  EXPECT_EQ(entries[2].kind, EntryKind::consult);
  EXPECT_EQ(entries[2].event, 0u);
  EXPECT_EQ(entries[2].institution, "ta");
  EXPECT_EQ(entries[3].kind, EntryKind::imaging);
  EXPECT_STREQ(entry_kind_name(EntryKind::consult), "consult");
  EXPECT_STREQ(entry_kind_name(EntryKind::referral), "referral");
}

TEST(PatientTimeline, nothing_known_is_an_empty_timeline) {
  EXPECT_TRUE(patient_timeline({}, {}, 480).empty());
}

}  // namespace
}  // namespace yilian::lab
