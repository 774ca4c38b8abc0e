#include "yilian/pacs/index.h"

#include <gtest/gtest.h>

#include <set>

#include "test_db.h"
#include "test_util.h"
#include "yilian/pacs/patient.h"

namespace yilian::pacs {
namespace {

NewInstance make_instance(const std::string& sop, const std::string& series,
                          const std::string& study, std::int64_t institution,
                          const std::string& received = "2026-11-22T08:00:00.000Z") {
  NewInstance in;
  in.blob_key = "0123456789abcdef" + std::to_string(std::hash<std::string>{}(sop));
  in.size_bytes = 1000;
  in.dataset_offset = 300;
  in.transfer_syntax_uid = "1.2.840.10008.1.2.1";
  in.sop_class_uid = "1.2.840.10008.5.1.4.1.1.2";
  in.sop_instance_uid = sop;
  in.study_instance_uid = study;
  in.series_instance_uid = series;
  in.patient_id = "P001";
  in.patient_name = "Zhang^San";
  in.patient_birth_date = "19600101";
  in.patient_sex = "M";
  in.study_date = "20261122";
  in.accession_number = "ACC1";
  in.study_description = "CT HEAD";
  in.modality = "CT";
  in.series_number = 1;
  in.instance_number = 1;
  in.calling_ae = "TOWNSHIP_CT";
  in.institution_id = institution;
  in.received_at = received;
  return in;
}

// The studies a search finds (one page holds them all; the total must agree).
std::set<std::string> found(Index& index, const StudyScope& scope, const StudyQuery& q) {
  std::set<std::string> out;
  auto page = index.search_studies(scope, q, 100, 0);
  EXPECT_TRUE(page.ok()) << (page.ok() ? "" : page.error().message);
  if (page.ok()) {
    for (const auto& s : page->studies) out.insert(s.study_instance_uid);
    EXPECT_EQ(page->total, static_cast<std::int64_t>(out.size()));
  }
  return out;
}

class IndexTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = testing::index_database();
    index_ = Index::open(*db_);
    auto inst = index_->ensure_institution("township-a", "Township A");
    ASSERT_TRUE(inst.ok());
    institution_ = inst->id;
  }
  StudyScope own() const {
    StudyScope s;
    s.institutions = {institution_};
    return s;
  }
  std::unique_ptr<storage::Database> db_;
  std::unique_ptr<Index> index_;
  std::int64_t institution_ = 0;
};

TEST_F(IndexTest, ensure_institution_is_idempotent_by_code) {
  auto again = index_->ensure_institution("township-a", "");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->id, institution_);
  EXPECT_EQ(again->name, "Township A");  // an empty name does not overwrite
  auto all = index_->institutions();
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 1u);
}

TEST_F(IndexTest, committed_instances_roll_up_into_series_and_study_counts) {
  IndexBatch batch;
  batch.instances.push_back(make_instance("1.1", "1.2.1", "1.2", institution_));
  batch.instances.push_back(make_instance("1.2", "1.2.1", "1.2", institution_));
  auto third = make_instance("1.3", "1.2.2", "1.2", institution_);
  third.modality = "SR";
  third.series_number = 2;
  batch.instances.push_back(third);
  ASSERT_TRUE(index_->commit(batch).ok());

  auto study = index_->get_study("1.2");
  ASSERT_TRUE(study.ok());
  ASSERT_TRUE(study->has_value());
  const StudyDetail& d = **study;
  EXPECT_EQ(d.study.num_instances, 3);
  EXPECT_EQ(d.study.num_series, 2);
  EXPECT_EQ(d.study.size_bytes, 3000);
  EXPECT_EQ(d.study.modalities, "CT\\SR");
  EXPECT_EQ(d.study.patient_name, "Zhang^San");
  EXPECT_EQ(d.study.institution_code, "township-a");
  ASSERT_EQ(d.series.size(), 2u);
  EXPECT_EQ(d.series[0].num_instances, 2);
  EXPECT_EQ(d.series[1].modality, "SR");
  auto n = index_->count_instances();
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 3);
}

TEST_F(IndexTest, a_failed_batch_leaves_nothing_behind) {
  IndexBatch batch;
  batch.instances.push_back(make_instance("2.1", "2.2.1", "2.2", institution_));
  batch.instances.push_back(make_instance("2.1", "2.2.1", "2.2", institution_));  // same UID
  batch.instances.back().blob_key = "ffffffffffffffff0000";
  EXPECT_FALSE(index_->commit(batch).ok());
  auto study = index_->get_study("2.2");
  ASSERT_TRUE(study.ok());
  EXPECT_FALSE(study->has_value());
}

TEST_F(IndexTest, find_instance_returns_its_blob) {
  IndexBatch batch;
  batch.instances.push_back(make_instance("3.1", "3.2.1", "3.2", institution_));
  ASSERT_TRUE(index_->commit(batch).ok());
  auto found = index_->find_instance("3.1");
  ASSERT_TRUE(found.ok());
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->blob_key, batch.instances[0].blob_key);
  EXPECT_EQ((*found)->dataset_offset, 300);
  auto missing = index_->find_instance("9.9");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
}

TEST_F(IndexTest, list_studies_is_newest_first_with_paging) {
  for (int i = 0; i < 5; ++i) {
    IndexBatch b;
    std::string n = std::to_string(i);
    b.instances.push_back(make_instance("4." + n + ".1", "4." + n + ".2", "4." + n, institution_,
                                        "2026-11-22T08:00:0" + n + ".000Z"));
    ASSERT_TRUE(index_->commit(b).ok());
  }
  auto page = index_->list_studies(own(), 2, 0);
  ASSERT_TRUE(page.ok()) << page.error().message;
  EXPECT_EQ(page->total, 5);
  ASSERT_EQ(page->studies.size(), 2u);
  EXPECT_EQ(page->studies[0].study_instance_uid, "4.4");
  EXPECT_EQ(page->studies[1].study_instance_uid, "4.3");
  auto last = index_->list_studies(own(), 2, 4);
  ASSERT_TRUE(last.ok());
  ASSERT_EQ(last->studies.size(), 1u);
  EXPECT_EQ(last->studies[0].study_instance_uid, "4.0");
}

TEST_F(IndexTest, a_scope_limits_lists_by_institution_and_by_imaging_or_ecg) {
  auto other = index_->ensure_institution("township-b", "Township B");
  ASSERT_TRUE(other.ok());
  IndexBatch b;
  b.instances.push_back(make_instance("7.1.1", "7.1.2", "7.1", institution_));
  b.instances.push_back(make_instance("7.2.1", "7.2.2", "7.2", other->id));
  auto ecg = make_instance("7.3.1", "7.3.2", "7.3", other->id);
  ecg.modality = "ECG";
  b.instances.push_back(ecg);
  ASSERT_TRUE(index_->commit(b).ok());

  auto uids = [&](const StudyScope& scope) {
    std::set<std::string> out;
    auto page = index_->list_studies(scope, 100, 0);
    EXPECT_TRUE(page.ok());
    if (page.ok()) {
      for (const auto& s : page->studies) out.insert(s.study_instance_uid);
      EXPECT_EQ(page->total, static_cast<std::int64_t>(out.size()));
    }
    return out;
  };
  EXPECT_EQ(uids(own()), (std::set<std::string>{"7.1"}));
  StudyScope imaging;
  imaging.imaging_institutions = {other->id};
  EXPECT_EQ(uids(imaging), (std::set<std::string>{"7.2"}));
  StudyScope ecg_reader;
  ecg_reader.ecg_institutions = {other->id};
  EXPECT_EQ(uids(ecg_reader), (std::set<std::string>{"7.3"}));
  EXPECT_TRUE(uids(StudyScope{}).empty());

  auto facts = index_->study_access("7.3", 0, {}, "2026-11-22T00:00:00.000Z");
  ASSERT_TRUE(facts.ok());
  ASSERT_TRUE(facts->has_value());
  EXPECT_EQ((*facts)->institution_id, other->id);
  EXPECT_EQ((*facts)->modalities, "ECG");
  EXPECT_FALSE((*facts)->shared);
  auto owner = index_->study_institution("7.1");
  ASSERT_TRUE(owner.ok());
  EXPECT_EQ(owner->value_or(0), institution_);
}

TEST_F(IndexTest, study_search_matches_wildcards_date_ranges_uid_lists_and_modalities) {
  IndexBatch b;
  auto add = [&](const std::string& uid, const std::string& pid, const std::string& name,
                 const std::string& date, const std::string& modality) {
    auto in = make_instance(uid + ".1", uid + ".2", uid, institution_);
    in.patient_id = pid;
    in.patient_name = name;
    in.study_date = date;
    in.modality = modality;
    in.accession_number = "A" + uid;
    b.instances.push_back(in);
  };
  add("8.1", "P100", "Zhang^San", "20260105", "CT");
  add("8.2", "P101", "ZHANG^Si", "20260610", "MR");
  add("8.3", "Q200", "Li^Wu", "20261231", "ECG");
  ASSERT_TRUE(index_->commit(b).ok());
  auto query = [](auto fill) {
    StudyQuery q;
    fill(q);
    return q;
  };
  auto find = [&](StudyQuery q) { return found(*index_, own(), q); };
  using Set = std::set<std::string>;
  EXPECT_EQ(find({}), (Set{"8.1", "8.2", "8.3"}));
  EXPECT_EQ(find(query([](StudyQuery& q) { q.patient_id = "P100"; })), (Set{"8.1"}));
  EXPECT_EQ(find(query([](StudyQuery& q) { q.patient_id = "P1*"; })), (Set{"8.1", "8.2"}));
  EXPECT_EQ(find(query([](StudyQuery& q) { q.patient_id = "p1*"; })),
            (Set{}));  // IDs are case-sensitive
  EXPECT_EQ(find(query([](StudyQuery& q) { q.patient_id = "?200"; })), (Set{"8.3"}));
  EXPECT_EQ(find(query([](StudyQuery& q) { q.patient_name = "zhang*"; })),
            (Set{"8.1", "8.2"}));  // names are not
  EXPECT_EQ(find(query([](StudyQuery& q) {
              q.patient_name = "san";
              q.fuzzy_names = true;
            })),
            (Set{"8.1"}));
  EXPECT_EQ(find(query([](StudyQuery& q) { q.patient_name = "100%"; })),
            (Set{}));  // SQL wildcards are literal
  EXPECT_EQ(find(query([](StudyQuery& q) { q.study_date = "20260610"; })), (Set{"8.2"}));
  EXPECT_EQ(find(query([](StudyQuery& q) { q.study_date = "20260101-20260630"; })),
            (Set{"8.1", "8.2"}));
  EXPECT_EQ(find(query([](StudyQuery& q) { q.study_date = "20260611-"; })), (Set{"8.3"}));
  EXPECT_EQ(find(query([](StudyQuery& q) { q.study_date = "-20260105"; })), (Set{"8.1"}));
  EXPECT_EQ(find(query([](StudyQuery& q) {
              q.study_uids = {"8.1", "8.3", "9.9"};
            })),
            (Set{"8.1", "8.3"}));
  EXPECT_EQ(find(query([](StudyQuery& q) { q.modality = "ECG"; })), (Set{"8.3"}));
  EXPECT_EQ(find(query([](StudyQuery& q) { q.modality = "EC"; })), (Set{}));
  EXPECT_EQ(find(query([](StudyQuery& q) { q.accession_number = "A8.2"; })), (Set{"8.2"}));
  EXPECT_EQ(index_->search_studies(StudyScope{}, {}, 10, 0)->total, 0);  // no scope, nothing
}

TEST_F(IndexTest,
       a_date_range_lists_the_latest_study_dates_first_and_other_searches_the_newest_arrivals) {
  IndexBatch b;
  // Arrival order is not date order: a prior from January arrives last.
  auto add = [&](const std::string& uid, const std::string& date, const std::string& received) {
    auto in = make_instance(uid + ".1", uid + ".2", uid, institution_, received);
    in.study_date = date;
    b.instances.push_back(in);
  };
  add("9.1", "20260610", "2026-11-22T08:00:00.000Z");
  add("9.2", "20260610", "2026-11-22T09:00:00.000Z");
  add("9.3", "20261020", "2026-11-22T07:00:00.000Z");
  add("9.4", "20260105", "2026-11-22T10:00:00.000Z");
  ASSERT_TRUE(index_->commit(b).ok());
  auto uids = [&](const StudyQuery& q, std::int64_t limit, std::int64_t offset) {
    std::vector<std::string> out;
    auto page = index_->search_studies(own(), q, limit, offset);
    EXPECT_TRUE(page.ok());
    if (!page.ok()) return out;
    EXPECT_EQ(page->total, q.study_date.empty() ? 4 : 3);
    for (const auto& s : page->studies) out.push_back(s.study_instance_uid);
    return out;
  };
  using List = std::vector<std::string>;
  EXPECT_EQ(uids({}, 10, 0), (List{"9.4", "9.2", "9.1", "9.3"}));
  StudyQuery year;
  year.study_date = "20260201-20261231";
  EXPECT_EQ(uids(year, 10, 0), (List{"9.3", "9.2", "9.1"}));  // same date: newest arrival first
  // Pages of one continue each other.
  EXPECT_EQ(uids(year, 2, 0), (List{"9.3", "9.2"}));
  EXPECT_EQ(uids(year, 2, 2), (List{"9.1"}));
}

TEST_F(IndexTest, the_same_patient_id_at_two_institutions_is_two_patients) {
  auto other = index_->ensure_institution("township-b", "Township B");
  ASSERT_TRUE(other.ok());
  IndexBatch b;
  b.instances.push_back(make_instance("5.1", "5.2.1", "5.2", institution_));
  auto in = make_instance("6.1", "6.2.1", "6.2", other->id);
  in.patient_name = "Li^Si";
  b.instances.push_back(in);
  ASSERT_TRUE(index_->commit(b).ok());
  auto a = index_->get_study("5.2");
  auto c = index_->get_study("6.2");
  ASSERT_TRUE(a.ok() && c.ok());
  EXPECT_EQ((*a)->study.patient_name, "Zhang^San");
  EXPECT_EQ((*c)->study.patient_name, "Li^Si");
}

// Who an ID names is decided over every member's patient row of it, then searched at the
// members that hold that person: township B's P001 is another person unless both members
// issued it under the national issuer.
TEST_F(IndexTest, patient_rows_decide_who_an_id_names_and_a_search_keeps_to_their_members) {
  auto b = index_->ensure_institution("township-b", "Township B");
  auto lead = index_->ensure_institution("lead", "Lead Hospital");
  ASSERT_TRUE(b.ok() && lead.ok());
  IndexBatch batch;
  batch.instances.push_back(make_instance("7.1", "7.2.1", "7.2", institution_));
  auto other = make_instance("8.1", "8.2.1", "8.2", b->id);
  other.patient_name = "Li^Si";
  batch.instances.push_back(other);
  auto national = make_instance("9.1", "9.2.1", "9.2", lead->id);
  national.issuer_of_patient_id = "CN-RESIDENT";
  batch.instances.push_back(national);
  auto national_b = make_instance("10.1", "10.2.1", "10.2", b->id);
  national_b.issuer_of_patient_id = "CN-RESIDENT";
  batch.instances.push_back(national_b);
  auto someone_else = make_instance("11.1", "11.2.1", "11.2", institution_);
  someone_else.patient_id = "P0011";
  batch.instances.push_back(someone_else);
  ASSERT_TRUE(index_->commit(batch).ok());

  auto rows = index_->patient_rows("P001");
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 4u);  // not P0011: the ID is matched exactly
  EXPECT_EQ((*rows)[0].institution_code, "township-a");
  EXPECT_EQ((*rows)[1].institution_code, "township-b");
  EXPECT_EQ((*rows)[1].name, "Li^Si");
  EXPECT_EQ((*rows)[2].issuer, "CN-RESIDENT");
  EXPECT_TRUE(index_->patient_rows("P00*")->empty());  // no wildcards

  StudyScope all;
  all.institutions = {institution_, b->id, lead->id};
  StudyQuery q;
  q.patient_id = "P001";
  auto a_person = person_at(*index_, "P001", "township-a", "CN-RESIDENT");
  ASSERT_TRUE(a_person.ok());
  EXPECT_EQ(a_person->institutions, std::vector<std::string>{"township-a"});
  q.institutions = a_person->institutions;
  EXPECT_EQ(found(*index_, all, q), std::set<std::string>{"7.2"});

  // Under the national issuer, the lead's and B's records are one person's.
  auto resident = person_at(*index_, "P001", "lead", "CN-RESIDENT");
  ASSERT_TRUE(resident.ok());
  EXPECT_TRUE(resident->national);
  q.institutions = resident->institutions;
  EXPECT_EQ(found(*index_, all, q), (std::set<std::string>{"8.2", "9.2", "10.2"}));
  // With no national issuer configured, the lead's ID is the lead's own patient.
  q.institutions = person_at(*index_, "P001", "lead", "")->institutions;
  EXPECT_EQ(found(*index_, all, q), std::set<std::string>{"9.2"});
  // The member filter stays within the scope.
  q.institutions = resident->institutions;
  EXPECT_EQ(found(*index_, own(), q), std::set<std::string>{});
  // An ID nobody holds names the member's own patient, found nowhere.
  auto nobody = person_at(*index_, "P999", "township-a", "CN-RESIDENT");
  ASSERT_TRUE(nobody.ok());
  EXPECT_EQ(nobody->institutions, std::vector<std::string>{"township-a"});
}

TEST_F(IndexTest, conflicts_are_recorded_and_blob_keys_listed) {
  IndexBatch b;
  b.instances.push_back(make_instance("7.1", "7.2.1", "7.2", institution_));
  ASSERT_TRUE(index_->commit(b).ok());
  auto existing = index_->find_instance("7.1");
  ASSERT_TRUE(existing.ok() && existing->has_value());
  IndexBatch c;
  c.conflicts.push_back({"7.1", (*existing)->pk, "abcdefabcdefabcdef", 999, "OTHER_AE",
                         institution_, "2026-11-22T09:00:00.000Z",
                         "0123456789abcdef0123456789abcdef"});
  ASSERT_TRUE(index_->commit(c).ok());
  auto keys = index_->all_blob_keys();
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(keys->size(), 2u);
}

TEST_F(IndexTest, removing_blob_references_recounts_and_drops_empty_studies) {
  IndexBatch b;
  b.instances.push_back(make_instance("8.1", "8.2.1", "8.2", institution_));
  b.instances.push_back(make_instance("8.3", "8.2.2", "8.2", institution_));
  b.instances.push_back(make_instance("9.1", "9.2.1", "9.2", institution_));
  ASSERT_TRUE(index_->commit(b).ok());
  std::vector<std::string> gone{b.instances[1].blob_key, b.instances[2].blob_key};
  ASSERT_TRUE(index_->remove_blob_references(gone).ok());
  auto s8 = index_->get_study("8.2");
  ASSERT_TRUE(s8.ok() && s8->has_value());
  EXPECT_EQ((*s8)->study.num_instances, 1);
  EXPECT_EQ((*s8)->study.num_series, 1);
  auto s9 = index_->get_study("9.2");
  ASSERT_TRUE(s9.ok());
  EXPECT_FALSE(s9->has_value());
}

TEST(IndexFile, data_survives_reopening_the_file) {
  testing::TempDir dir;
  auto path = dir.path() / "index.sqlite";
  {
    auto db = testing::index_database(path);
    auto idx = Index::open(*db);
    auto inst = idx->ensure_institution("unknown", "Unknown");
    ASSERT_TRUE(inst.ok());
    IndexBatch b;
    b.instances.push_back(make_instance("10.1", "10.2.1", "10.2", inst->id));
    ASSERT_TRUE(idx->commit(b).ok());
  }
  auto db = testing::index_database(path);
  auto idx = Index::open(*db);
  auto s = idx->get_study("10.2");
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->has_value());
}

TEST(IndexFile, studies_stored_before_the_name_key_are_found_by_name_after_the_upgrade) {
  testing::TempDir dir;
  auto path = dir.path() / "index.sqlite";
  {
    // Version 10: the last schema without studies.patient_name_key; rows as that build wrote them.
    auto db = testing::index_database(path, 10);
    ASSERT_EQ(db->schema_version(), 10);
    auto raw = testing::raw_connection(*db);
    for (const char* q :
         {"INSERT INTO institutions(id, code, name) VALUES(1, 'township-a', 'Township A')",
          "INSERT INTO patients(id, institution_id, patient_id, name) VALUES"
          " (1, 1, 'P1', 'WANG^Xiao Ming=\xe7\x8e\x8b^\xe5\xb0\x8f\xe6\x98\x8e'),"
          " (2, 1, 'P2', 'Li^Si'), (3, 1, 'P3', '\xe5\xbc\xa0\xe4\xb8\x89^')",
          "INSERT INTO studies(id, study_uid, patient_pk, institution_id, study_date,"
          " first_received_at, last_received_at) VALUES"
          " (1, '11.1', 1, 1, '20260101', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z'),"
          " (2, '11.2', 2, 1, '20260102', '2026-01-02T00:00:00.000Z', "
          "'2026-01-02T00:00:00.000Z'),"
          " (3, '11.3', 3, 1, '20260103', '2026-01-03T00:00:00.000Z', "
          "'2026-01-03T00:00:00.000Z')"}) {
      ASSERT_TRUE(storage::sql::run(*raw, q, [](storage::sql::Stmt&) {}).ok()) << q;
    }
  }
  auto db = testing::index_database(path);
  ASSERT_GE(db->schema_version(), 11);
  auto idx = Index::open(*db);
  StudyScope scope;
  scope.institutions = {1};
  auto find = [&](const std::string& name, bool fuzzy = false) {
    StudyQuery q;
    q.patient_name = name;
    q.fuzzy_names = fuzzy;
    return found(*idx, scope, q);
  };
  using Set = std::set<std::string>;
  EXPECT_EQ(find("wang^x*"), (Set{"11.1"}));
  EXPECT_EQ(find("LI^SI"), (Set{"11.2"}));
  EXPECT_EQ(find("\xe7\x8e\x8b^\xe5\xb0\x8f*", true), (Set{"11.1"}));  // the ideographic group
  EXPECT_EQ(find("*"), (Set{"11.1", "11.2", "11.3"}));
  // Trailing component separators are no part of the name (PS3.4): "张三^" is "张三".
  EXPECT_EQ(find("\xe5\xbc\xa0\xe4\xb8\x89"), (Set{"11.3"}));
  EXPECT_EQ(find("\xe5\xbc\xa0\xe4\xb8\x89^"), (Set{"11.3"}));
  // A new instance of the first study keeps its name searchable under the name it carries.
  IndexBatch b;
  auto in = make_instance("11.1.9", "11.1.8", "11.1", 1);
  in.patient_id = "P1";
  in.patient_name = "WANG^Xiaoming";
  b.instances.push_back(in);
  ASSERT_TRUE(idx->commit(b).ok());
  EXPECT_EQ(find("wang^xiaom*"), (Set{"11.1"}));
  // Stored from now on without them too.
  auto li = make_instance("11.2.9", "11.2.8", "11.2", 1);
  li.patient_id = "P2";
  li.patient_name = "Li^Si^^";
  IndexBatch more;
  more.instances.push_back(li);
  ASSERT_TRUE(idx->commit(more).ok());
  EXPECT_EQ(find("LI^SI"), (Set{"11.2"}));
}

}  // namespace
}  // namespace yilian::pacs
