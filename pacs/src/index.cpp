#include "yilian/pacs/index.h"

#include <cstdint>
#include <mutex>
#include <set>

#include "yilian/common/text.h"
#include "yilian/storage/database.h"
#include "yilian/storage/sql.h"

namespace yilian::pacs {

namespace sql = storage::sql;
using storage::Database;
using storage::SchemaStep;
using storage::write;
namespace {

constexpr const char* kUpsertPatient = R"sql(
INSERT INTO patients(institution_id, patient_id, issuer, name, birth_date, sex)
VALUES(?1, ?2, ?3, ?4, ?5, ?6)
ON CONFLICT(institution_id, patient_id, issuer) DO UPDATE SET
  name = CASE WHEN excluded.name <> '' THEN excluded.name ELSE patients.name END,
  birth_date = CASE WHEN excluded.birth_date <> '' THEN excluded.birth_date
    ELSE patients.birth_date END,
  sex = CASE WHEN excluded.sex <> '' THEN excluded.sex ELSE patients.sex END
RETURNING id)sql";

constexpr const char* kUpsertStudy = R"sql(
INSERT INTO studies(study_uid, patient_pk, institution_id, study_date, study_time,
  accession_number, study_id, description, referring_physician, institution_name,
  first_received_at, last_received_at, requested_priority, indication, procedure,
  patient_name_key)
VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11, ?12, ?13, ?14, ?15)
ON CONFLICT(study_uid) DO UPDATE SET last_received_at = excluded.last_received_at,
  patient_name_key = CASE WHEN excluded.patient_name_key <> '' THEN excluded.patient_name_key
    ELSE studies.patient_name_key END,
  requested_priority = CASE WHEN excluded.requested_priority <> '' THEN
    excluded.requested_priority ELSE studies.requested_priority END,
  indication = CASE WHEN excluded.indication <> '' THEN excluded.indication
    ELSE studies.indication END,
  procedure = CASE WHEN excluded.procedure <> '' THEN excluded.procedure
    ELSE studies.procedure END
RETURNING id)sql";

constexpr const char* kUpsertSeries = R"sql(
INSERT INTO series(series_uid, study_pk, modality, series_number, description, body_part,
  first_received_at, last_received_at)
VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)
ON CONFLICT(series_uid) DO UPDATE SET last_received_at = excluded.last_received_at
RETURNING id)sql";

constexpr const char* kInsertInstance = R"sql(
INSERT INTO instances(sop_uid, series_pk, sop_class_uid, instance_number, number_of_frames,
  transfer_syntax, blob_key, size_bytes, dataset_offset, calling_ae, received_at, content_hash)
VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12))sql";

constexpr const char* kBumpSeries = R"sql(
UPDATE series SET num_instances = num_instances + 1, size_bytes = size_bytes + ?2
WHERE id = ?1)sql";

constexpr const char* kBumpStudy = R"sql(
UPDATE studies SET num_instances = num_instances + 1, size_bytes = size_bytes + ?2,
  num_series = (SELECT count(*) FROM series WHERE study_pk = ?1),
  modalities = coalesce((SELECT group_concat(m, '\') FROM
      (SELECT DISTINCT modality AS m FROM series WHERE study_pk = ?1 AND modality <> ''
       ORDER BY m) AS ms), '')
WHERE id = ?1)sql";

constexpr const char* kInsertConflict = R"sql(
INSERT INTO instance_conflicts(sop_uid, existing_instance_pk, blob_key, size_bytes,
  calling_ae, institution_id, received_at, content_hash)
VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8))sql";

constexpr const char* kFindInstance = R"sql(
SELECT id, sop_uid, blob_key, size_bytes, dataset_offset FROM instances WHERE sop_uid = ?1)sql";

constexpr const char* kStudyInstitution = "SELECT institution_id FROM studies WHERE study_uid = ?1";
constexpr const char* kSeriesStudy =
    "SELECT s.study_uid FROM series se JOIN studies s ON s.id = se.study_pk "
    "WHERE se.series_uid = ?1";

constexpr const char* kStudyColumns = R"sql(
  s.study_uid, p.patient_id, p.issuer, p.name, p.birth_date, p.sex, s.study_date,
  s.study_time, s.accession_number, s.description, s.referring_physician,
  s.institution_name, s.modalities, i.code, s.num_series, s.num_instances, s.size_bytes,
  s.first_received_at, s.last_received_at
)sql";
constexpr const char* kStudyJoins = "studies s JOIN patients p ON p.id = s.patient_pk";
// A page of study ids (a subquery named pg, column pk) to the study and its patient.
constexpr const char* kPageJoins =
    " JOIN studies s ON s.id = pg.pk JOIN patients p ON p.id = s.patient_pk";
// A person name as studies.patient_name_key holds it, and as a name search is matched against
// it: ASCII letters in lower case, trailing component separators and spaces dropped (PS3.4:
// "张三^" and "张三" are the same name).
std::string name_key(std::string_view name) {
  while (!name.empty() && (name.back() == '^' || name.back() == ' ')) name.remove_suffix(1);
  return ascii_lower(name);
}

constexpr const char* kNewestFirst = "ORDER BY s.last_received_at DESC, s.id DESC";
// A search by date range: the latest study dates first (the studies_date index's order, which
// ends the page's scan after its rows instead of sorting every match).
constexpr const char* kLatestDateFirst =
    "ORDER BY s.study_date DESC, s.last_received_at DESC, s.id DESC";
// What kStudyColumns reads besides the study and the patient.
constexpr const char* kInstitutionJoin = " JOIN institutions i ON i.id = s.institution_id";

constexpr const char* kLocationQuery = R"sql(
SELECT i.sop_uid, se.series_uid, s.study_uid, i.blob_key, i.sop_class_uid, i.transfer_syntax,
  i.number_of_frames, i.instance_number
FROM instances i JOIN series se ON se.id = i.series_pk JOIN studies s ON s.id = se.study_pk
)sql";

InstanceLocation read_location(const sql::Stmt& st) {
  return InstanceLocation{st.text(0), st.text(1), st.text(2),  st.text(3),
                          st.text(4), st.text(5), st.int64(6), st.opt_int64(7)};
}

StudySummary read_study(const sql::Stmt& st) {
  StudySummary s;
  s.study_instance_uid = st.text(0);
  s.patient_id = st.text(1);
  s.issuer_of_patient_id = st.text(2);
  s.patient_name = st.text(3);
  s.patient_birth_date = st.text(4);
  s.patient_sex = st.text(5);
  s.study_date = st.text(6);
  s.study_time = st.text(7);
  s.accession_number = st.text(8);
  s.study_description = st.text(9);
  s.referring_physician = st.text(10);
  s.institution_name = st.text(11);
  s.modalities = st.text(12);
  s.institution_code = st.text(13);
  s.num_series = st.int64(14);
  s.num_instances = st.int64(15);
  s.size_bytes = st.int64(16);
  s.first_received_at = st.text(17);
  s.last_received_at = st.text(18);
  return s;
}

// Runs `st` (already bound) and returns the single integer it RETURNs.
Result<std::int64_t> returning_id(sql::Stmt& st) {
  auto row = st.step();
  if (!row.ok()) return row.error();
  if (!*row) return make_error(Errc::internal, "upsert returned no row");
  std::int64_t id = st.int64(0);
  st.reset();
  return id;
}

using sql::id_list;

// An ECG study has ECG among its modalities; every other study counts as imaging. Mirrors
// identity::is_ecg_study().
constexpr const char* kIsEcg = "instr('\\' || s.modalities || '\\', '\\ECG\\') > 0";

// `filtered`: the query has a selective condition of its own (a patient, a date range...),
// so the scope is only checked on the rows it finds (unary '+' keeps SQLite from driving the
// search by institution, which would visit every study of a large one).
std::string scope_condition(const StudyScope& scope, bool filtered = false) {
  const std::string inst = filtered ? "+s.institution_id" : "s.institution_id";
  const std::string id = filtered ? "+s.id" : "s.id";
  std::string c = "(" + inst + " IN (" + id_list(scope.institutions) + ")";
  c += " OR (" + inst + " IN (" + id_list(scope.imaging_institutions) + ") AND NOT " + kIsEcg + ")";
  c += " OR (" + inst + " IN (" + id_list(scope.ecg_institutions) + ") AND " + kIsEcg + ")";
  c += " OR " + id +
       " IN (SELECT study_pk FROM study_shares WHERE (expires_at IS NULL OR expires_at > "
       ":now) AND (user_id = :user OR institution_id IN (" +
       id_list(scope.share_institutions) + "))))";
  return c;
}

// DICOM wildcards to SQLite GLOB (case-sensitive): '*' and '?' are the same; '[' is literal.
std::string glob_pattern(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '[') {
      out += "[[]";
    } else {
      out += c;
    }
  }
  return out;
}

// DICOM wildcards to LIKE (case-insensitive for ASCII) with '!' as the escape character.
std::string like_pattern(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '*') {
      out += '%';
    } else if (c == '?') {
      out += '_';
    } else if (c == '%' || c == '_' || c == '!') {
      out += '!';
      out += c;
    } else {
      out += c;
    }
  }
  return out;
}

// Binds the named parameters of scope_condition().
void bind_scope(sql::Stmt& st, const StudyScope& scope) {
  st.bind_named(":now", scope.now);
  st.bind_named(":user", scope.share_user_id);
}

class SqliteIndex final : public Index {
 public:
  explicit SqliteIndex(Database& db) : db_(db) {}

  int schema_version() override { return db_.schema_version(); }

  Result<Institution> ensure_institution(std::string_view code, std::string_view name) override {
    return write(db_, [&](sql::Db& w_) -> Result<Institution> {
      sql::Stmt st;
      if (Status s =
              st.prepare(w_,
                         "INSERT INTO institutions(code, name) VALUES(?1, ?2) "
                         "ON CONFLICT(code) DO UPDATE SET name = CASE WHEN excluded.name <> '' "
                         "THEN excluded.name ELSE institutions.name END RETURNING id, code, name");
          !s)
        return s.error();
      st.bind(1, code);
      st.bind(2, name);
      auto row = st.step();
      if (!row.ok()) return row.error();
      Institution inst{st.int64(0), st.text(1), st.text(2)};
      st.reset();
      return inst;
    });
  }

  Result<std::vector<Institution>> institutions() override {
    auto rd = db_.read();
    if (!rd.ok()) return rd.error();
    sql::Db& r_ = rd->conn();
    sql::Stmt st;
    if (Status s = st.prepare(r_, "SELECT id, code, name FROM institutions ORDER BY id"); !s)
      return s.error();
    std::vector<Institution> out;
    while (true) {
      auto row = st.step();
      if (!row.ok()) return row.error();
      if (!*row) break;
      out.push_back({st.int64(0), st.text(1), st.text(2)});
    }
    return out;
  }

  Result<std::optional<StoredInstance>> find_instance(std::string_view sop_uid) override {
    auto rd = db_.read();
    if (!rd.ok()) return rd.error();
    auto cached = rd->conn().cached(kFindInstance);
    if (!cached.ok()) return cached.error();
    sql::Stmt& find_instance_ = **cached;
    find_instance_.bind(1, sop_uid);
    auto row = find_instance_.step();
    if (!row.ok()) return row.error();
    std::optional<StoredInstance> out;
    if (*row) {
      out = StoredInstance{find_instance_.int64(0), find_instance_.text(1), find_instance_.text(2),
                           find_instance_.int64(3), find_instance_.int64(4)};
    }
    find_instance_.reset();
    return out;
  }

  Status commit(const IndexBatch& batch) override {
    Database::Write tx(db_);
    if (Status s = tx.begin(); !s) return s;
    for (const NewInstance& in : batch.instances) {
      if (Status s = insert_instance(tx.conn(), in); !s) return s;
    }
    auto cached = tx.conn().cached(kInsertConflict);
    if (!cached.ok()) return cached.error();
    sql::Stmt& insert_conflict_ = **cached;
    for (const ConflictingInstance& c : batch.conflicts) {
      insert_conflict_.bind(1, c.sop_instance_uid);
      insert_conflict_.bind(2, c.existing_instance_pk);
      insert_conflict_.bind(3, c.blob_key);
      insert_conflict_.bind(4, c.size_bytes);
      insert_conflict_.bind(5, c.calling_ae);
      insert_conflict_.bind(6, c.institution_id);
      insert_conflict_.bind(7, c.received_at);
      insert_conflict_.bind(8, c.content_hash);
      if (Status s = insert_conflict_.run(); !s) return s;
    }
    return tx.commit();
  }

  Result<std::optional<std::string>> series_study(std::string_view series_uid) override {
    auto rd = db_.read();
    if (!rd.ok()) return rd.error();
    auto cached = rd->conn().cached(kSeriesStudy);
    if (!cached.ok()) return cached.error();
    sql::Stmt& series_study_ = **cached;
    series_study_.bind(1, series_uid);
    auto row = series_study_.step();
    if (!row.ok()) return row.error();
    std::optional<std::string> out;
    if (*row) out = series_study_.text(0);
    series_study_.reset();
    return out;
  }

  Result<std::optional<std::int64_t>> study_institution(std::string_view study_uid) override {
    auto rd = db_.read();
    if (!rd.ok()) return rd.error();
    auto cached = rd->conn().cached(kStudyInstitution);
    if (!cached.ok()) return cached.error();
    sql::Stmt& study_institution_ = **cached;
    study_institution_.bind(1, study_uid);
    auto row = study_institution_.step();
    if (!row.ok()) return row.error();
    std::optional<std::int64_t> out;
    if (*row) out = study_institution_.int64(0);
    study_institution_.reset();
    return out;
  }

  Result<StudyPage> list_studies(const StudyScope& scope, std::int64_t limit,
                                 std::int64_t offset) override {
    StudyPage page;
    if (scope.empty()) return page;
    std::string where = scope_condition(scope);
    auto rd = db_.read();
    if (!rd.ok()) return rd.error();
    sql::Db& r_ = rd->conn();
    {
      sql::Stmt st;
      std::string q = "SELECT count(*) FROM studies s WHERE " + where;
      if (Status s = st.prepare(r_, q.c_str()); !s) return s.error();
      bind_scope(st, scope);
      auto row = st.step();
      if (!row.ok()) return row.error();
      page.total = st.int64(0);
    }
    std::string q = std::string("SELECT ") + kStudyColumns + " FROM " + kStudyJoins +
                    kInstitutionJoin + " WHERE " + where + " " + kNewestFirst +
                    " LIMIT :limit OFFSET :offset";
    sql::Stmt st;
    if (Status s = st.prepare(r_, q.c_str()); !s) return s.error();
    // Named parameters only: SQLite numbers named ones in order of appearance, so mixing them
    // with "?1" would alias.
    st.bind_named(":limit", limit);
    st.bind_named(":offset", offset);
    bind_scope(st, scope);
    while (true) {
      auto row = st.step();
      if (!row.ok()) return row.error();
      if (!*row) break;
      page.studies.push_back(read_study(st));
    }
    return page;
  }

  // The condition a study search puts on `studies s` (and `patients p`) and the binding of its
  // parameters (with :limit and :offset).
  struct StudyFilter {
    std::string where;
    std::function<void(sql::Stmt&)> bind;
  };
  static StudyFilter study_filter(const StudyScope& scope, const StudyQuery& q, std::int64_t limit,
                                  std::int64_t offset) {
    auto literal_prefix = [](const std::string& v) {
      return !v.empty() && v.front() != '*' && v.front() != '?';
    };
    const bool filtered =
        literal_prefix(q.patient_id) || (literal_prefix(q.patient_name) && !q.fuzzy_names) ||
        literal_prefix(q.accession_number) || !q.study_date.empty() || !q.study_uids.empty();
    std::string where = scope_condition(scope, filtered);
    if (!q.patient_id.empty()) where += " AND p.patient_id GLOB :pid";
    // The study's own copy of the name, folded: a literal prefix is a range of the
    // studies_patient_name index, which also holds what the scope and the order read.
    if (!q.patient_name.empty()) where += " AND s.patient_name_key GLOB :pname";
    if (!q.accession_number.empty()) where += " AND s.accession_number GLOB :acc";
    if (!q.study_description.empty()) where += " AND s.description LIKE :desc ESCAPE '!'";
    if (!q.modality.empty()) {
      where += " AND instr('\\' || s.modalities || '\\', '\\' || :modality || '\\') > 0";
    }
    std::string from, to;
    if (!q.study_date.empty()) {
      std::size_t dash = q.study_date.find('-');
      if (dash == std::string::npos) {
        from = to = q.study_date;
      } else {
        from = q.study_date.substr(0, dash);
        to = q.study_date.substr(dash + 1);
      }
      if (!from.empty()) where += " AND s.study_date >= :from";
      if (!to.empty()) where += " AND s.study_date <= :to AND s.study_date <> ''";
    }
    if (!q.institutions.empty()) {
      where += " AND s.institution_id IN (SELECT id FROM institutions WHERE code IN (";
      for (std::size_t i = 0; i < q.institutions.size(); ++i) {
        where += (i ? ",:inst" : ":inst") + std::to_string(i);
      }
      where += "))";
    }
    if (!q.study_uids.empty()) {
      where += " AND s.study_uid IN (";
      for (std::size_t i = 0; i < q.study_uids.size(); ++i) {
        where += (i ? ",:uid" : ":uid") + std::to_string(i);
      }
      where += ")";
    }
    auto bind = [scope, q, from, to, limit, offset](sql::Stmt& st) {
      bind_scope(st, scope);
      st.bind_named(":pid", glob_pattern(q.patient_id));
      st.bind_named(":pname", (q.fuzzy_names ? "*" : "") + glob_pattern(name_key(q.patient_name)) +
                                  (q.fuzzy_names ? "*" : ""));
      st.bind_named(":acc", glob_pattern(q.accession_number));
      st.bind_named(":desc", like_pattern(q.study_description));
      st.bind_named(":modality", q.modality);
      st.bind_named(":from", from);
      st.bind_named(":to", to);
      for (std::size_t i = 0; i < q.study_uids.size(); ++i) {
        st.bind_named((":uid" + std::to_string(i)).c_str(), q.study_uids[i]);
      }
      for (std::size_t i = 0; i < q.institutions.size(); ++i) {
        st.bind_named((":inst" + std::to_string(i)).c_str(), q.institutions[i]);
      }
      st.bind_named(":limit", limit);
      st.bind_named(":offset", offset);
    };
    return {std::move(where), std::move(bind)};
  }

  Result<StudyPage> search_studies(const StudyScope& scope, const StudyQuery& q, std::int64_t limit,
                                   std::int64_t offset) override {
    StudyPage page;
    if (scope.empty()) return page;
    auto [where, bind] = study_filter(scope, q, limit, offset);
    // Every study has exactly one patient: the count and the page's ids read the patients only
    // when the patient ID is searched (a date range or a name then counts from one study index
    // alone). The page finds its ids first and reads the columns of those rows only.
    const char* match_from = q.patient_id.empty() ? "studies s" : kStudyJoins;
    auto rd = db_.read();
    if (!rd.ok()) return rd.error();
    sql::Db& r_ = rd->conn();
    {
      sql::Stmt st;
      std::string c = std::string("SELECT count(*) FROM ") + match_from + " WHERE " + where;
      if (Status s = st.prepare(r_, c.c_str()); !s) return s.error();
      bind(st);
      auto row = st.step();
      if (!row.ok()) return row.error();
      page.total = st.int64(0);
    }
    const char* order = q.study_date.empty() ? kNewestFirst : kLatestDateFirst;
    std::string sq = std::string("SELECT ") + kStudyColumns + " FROM (SELECT s.id AS pk FROM " +
                     match_from + " WHERE " + where + " " + order +
                     " LIMIT :limit OFFSET :offset) pg" + kPageJoins + kInstitutionJoin + " " +
                     order;
    sql::Stmt st;
    if (Status s = st.prepare(r_, sq.c_str()); !s) return s.error();
    bind(st);
    while (true) {
      auto row = st.step();
      if (!row.ok()) return row.error();
      if (!*row) break;
      page.studies.push_back(read_study(st));
    }
    return page;
  }

  Result<std::vector<PatientSummary>> search_patients(const StudyScope& scope, const StudyQuery& q,
                                                      std::int64_t limit) override {
    std::vector<PatientSummary> out;
    if (scope.empty()) return out;
    auto [where, bind] = study_filter(scope, q, limit, 0);
    // One group per patient ID and issuer (a patient's studies at several institutions are one
    // answer, as a PATIENT-level C-MOVE of that ID moves them all); the attributes of the
    // patient row of its latest study.
    const std::string sql =
        std::string(
            "SELECT p.patient_id, p.issuer, count(*), sum(s.num_series), "
            "sum(s.num_instances), max(s.last_received_at || ' ' || s.id) AS latest FROM ") +
        kStudyJoins + " WHERE " + where +
        " GROUP BY p.patient_id, p.issuer ORDER BY latest DESC LIMIT :limit";
    auto rd = db_.read();
    if (!rd.ok()) return rd.error();
    sql::Db& r_ = rd->conn();
    sql::Stmt st;
    if (Status s = st.prepare(r_, sql.c_str()); !s) return s.error();
    bind(st);
    std::vector<std::string> latest;
    while (true) {
      auto row = st.step();
      if (!row.ok()) return row.error();
      if (!*row) break;
      PatientSummary ps;
      ps.patient_id = st.text(0);
      ps.issuer_of_patient_id = st.text(1);
      ps.studies = st.int64(2);
      ps.series = st.int64(3);
      ps.instances = st.int64(4);
      const std::string l = st.text(5);
      latest.push_back(l.substr(l.rfind(' ') + 1));
      out.push_back(std::move(ps));
    }
    sql::Stmt attrs;
    if (Status s = attrs.prepare(r_,
                                 "SELECT p.name, p.birth_date, p.sex FROM studies s JOIN patients "
                                 "p ON p.id = s.patient_pk WHERE s.id = ?1");
        !s)
      return s.error();
    for (std::size_t k = 0; k < out.size(); ++k) {
      attrs.reset();
      attrs.bind(1, static_cast<std::int64_t>(std::stoll(latest[k])));
      auto row = attrs.step();
      if (!row.ok()) return row.error();
      if (!*row) continue;
      out[k].patient_name = attrs.text(0);
      out[k].patient_birth_date = attrs.text(1);
      out[k].patient_sex = attrs.text(2);
    }
    return out;
  }

  Result<std::vector<PatientRow>> patient_rows(std::string_view patient_id) override {
    auto rd = db_.read();
    if (!rd.ok()) return rd.error();
    sql::Stmt st;
    if (Status s = st.prepare(rd->conn(),
                              "SELECT i.code, p.issuer, p.name, p.birth_date, p.sex FROM patients "
                              "p JOIN institutions i ON i.id = p.institution_id WHERE "
                              "p.patient_id = ?1 ORDER BY p.id");
        !s)
      return s.error();
    st.bind(1, patient_id);
    std::vector<PatientRow> out;
    while (true) {
      auto row = st.step();
      if (!row.ok()) return row.error();
      if (!*row) break;
      out.push_back({st.text(0), st.text(1), st.text(2), st.text(3), st.text(4)});
    }
    return out;
  }

  Result<std::optional<StudyAccessFacts>> study_access(
      std::string_view study_uid, std::int64_t user_id,
      std::span<const std::int64_t> share_institutions, std::string_view now) override {
    auto rd = db_.read();
    if (!rd.ok()) return rd.error();
    sql::Db& r_ = rd->conn();
    sql::Stmt st;
    if (Status s = st.prepare(r_,
                              "SELECT id, institution_id, modalities FROM studies "
                              "WHERE study_uid = ?1");
        !s)
      return s.error();
    st.bind(1, study_uid);
    auto row = st.step();
    if (!row.ok()) return row.error();
    if (!*row) return std::optional<StudyAccessFacts>{};
    StudyAccessFacts f{st.int64(0), st.int64(1), st.text(2), false};
    std::string q =
        "SELECT count(*) FROM study_shares WHERE study_pk = ?1 "
        "AND (expires_at IS NULL OR expires_at > ?2) AND (user_id = ?3 OR institution_id IN (" +
        id_list(share_institutions) + "))";
    sql::Stmt sh;
    if (Status s = sh.prepare(r_, q.c_str()); !s) return s.error();
    sh.bind(1, f.study_pk);
    sh.bind(2, now);
    sh.bind(3, user_id);
    auto r = sh.step();
    if (!r.ok()) return r.error();
    f.shared = sh.int64(0) > 0;
    return std::optional<StudyAccessFacts>(f);
  }

  Result<std::optional<StudyDetail>> get_study(std::string_view study_uid) override {
    auto rd = db_.read();
    if (!rd.ok()) return rd.error();
    sql::Db& r_ = rd->conn();
    std::string q = std::string("SELECT ") + kStudyColumns + " FROM " + kStudyJoins +
                    kInstitutionJoin + " WHERE s.study_uid = ?1";
    sql::Stmt st;
    if (Status s = st.prepare(r_, q.c_str()); !s) return s.error();
    st.bind(1, study_uid);
    auto row = st.step();
    if (!row.ok()) return row.error();
    if (!*row) return std::optional<StudyDetail>{};
    StudyDetail d;
    d.study = read_study(st);
    sql::Stmt ss;
    if (Status s =
            ss.prepare(r_,
                       "SELECT se.series_uid, se.modality, se.series_number, se.description, "
                       "se.body_part, se.num_instances, se.size_bytes, se.last_received_at "
                       "FROM series se JOIN studies s ON s.id = se.study_pk "
                       "WHERE s.study_uid = ?1 ORDER BY se.series_number NULLS FIRST, se.id");
        !s)
      return s.error();
    ss.bind(1, study_uid);
    while (true) {
      auto r = ss.step();
      if (!r.ok()) return r.error();
      if (!*r) break;
      SeriesSummary se;
      se.series_instance_uid = ss.text(0);
      se.modality = ss.text(1);
      se.series_number = ss.opt_int64(2);
      se.series_description = ss.text(3);
      se.body_part = ss.text(4);
      se.num_instances = ss.int64(5);
      se.size_bytes = ss.int64(6);
      se.last_received_at = ss.text(7);
      d.series.push_back(std::move(se));
    }
    return std::optional<StudyDetail>(std::move(d));
  }

  Result<std::optional<InstanceLocation>> locate_instance(std::string_view sop_uid) override {
    auto rd = db_.read();
    if (!rd.ok()) return rd.error();
    sql::Db& r_ = rd->conn();
    sql::Stmt st;
    std::string q = std::string(kLocationQuery) + " WHERE i.sop_uid = ?1";
    if (Status s = st.prepare(r_, q.c_str()); !s) return s.error();
    st.bind(1, sop_uid);
    auto row = st.step();
    if (!row.ok()) return row.error();
    if (!*row) return std::optional<InstanceLocation>{};
    return std::optional<InstanceLocation>(read_location(st));
  }

  Result<std::vector<InstanceLocation>> series_instances(std::string_view series_uid) override {
    auto rd = db_.read();
    if (!rd.ok()) return rd.error();
    sql::Db& r_ = rd->conn();
    sql::Stmt st;
    std::string q =
        std::string(kLocationQuery) + " WHERE se.series_uid = ?1 ORDER BY i.instance_number, i.id";
    if (Status s = st.prepare(r_, q.c_str()); !s) return s.error();
    st.bind(1, series_uid);
    std::vector<InstanceLocation> out;
    while (true) {
      auto row = st.step();
      if (!row.ok()) return row.error();
      if (!*row) break;
      out.push_back(read_location(st));
    }
    return out;
  }

  Result<std::int64_t> count_instances() override {
    auto rd = db_.read();
    if (!rd.ok()) return rd.error();
    sql::Db& r_ = rd->conn();
    sql::Stmt st;
    if (Status s = st.prepare(r_, "SELECT count(*) FROM instances"); !s) return s.error();
    auto row = st.step();
    if (!row.ok()) return row.error();
    return st.int64(0);
  }

  Result<std::vector<std::string>> all_blob_keys() override {
    auto rd = db_.read();
    if (!rd.ok()) return rd.error();
    sql::Stmt st;
    if (Status s = st.prepare(rd->conn(),
                              "SELECT blob_key FROM instances UNION ALL "
                              "SELECT blob_key FROM instance_conflicts");
        !s)
      return s.error();
    std::vector<std::string> keys;
    while (true) {
      auto row = st.step();
      if (!row.ok()) return row.error();
      if (!*row) break;
      keys.push_back(st.text(0));
    }
    return keys;
  }

  Status remove_blob_references(std::span<const std::string> keys) override {
    if (keys.empty()) return Status::Ok();
    Database::Write tx(db_);
    if (Status s = tx.begin(); !s) return s;
    sql::Db& w_ = tx.conn();
    sql::Stmt del_conflict, del_instance;
    if (Status s = del_conflict.prepare(w_, "DELETE FROM instance_conflicts WHERE blob_key = ?1");
        !s)
      return s;
    if (Status s = del_instance.prepare(
            w_, "DELETE FROM instances WHERE blob_key = ?1 RETURNING series_pk");
        !s)
      return s;
    std::set<std::int64_t> series;
    for (const std::string& k : keys) {
      del_conflict.bind(1, k);
      if (Status s = del_conflict.run(); !s) return s;
      // A conflict copy refers to the instance: drop those first.
      sql::Stmt del_dep;
      if (Status s = del_dep.prepare(w_,
                                     "DELETE FROM instance_conflicts WHERE existing_instance_pk IN "
                                     "(SELECT id FROM instances WHERE blob_key = ?1)");
          !s)
        return s;
      del_dep.bind(1, k);
      if (Status s = del_dep.run(); !s) return s;
      del_instance.bind(1, k);
      auto row = del_instance.step();
      if (!row.ok()) return row.error();
      if (*row) series.insert(del_instance.int64(0));
      del_instance.reset();
    }
    // Recompute the counters of what lost instances; drop series and studies left empty.
    constexpr const char* kRecount = R"sql(
UPDATE series SET num_instances = (SELECT count(*) FROM instances WHERE series_pk = series.id),
  size_bytes = (SELECT coalesce(sum(size_bytes), 0) FROM instances WHERE series_pk = series.id)
WHERE id = ?1;
)sql";
    sql::Stmt recount;
    if (Status s = recount.prepare(w_, kRecount); !s) return s;
    for (std::int64_t pk : series) {
      recount.bind(1, pk);
      if (Status s = recount.run(); !s) return s;
    }
    if (Status s = w_.exec(R"sql(
DELETE FROM series WHERE num_instances = 0;
UPDATE studies SET
  num_series = (SELECT count(*) FROM series WHERE study_pk = studies.id),
  num_instances = (SELECT coalesce(sum(num_instances), 0) FROM series WHERE study_pk = studies.id),
  size_bytes = (SELECT coalesce(sum(size_bytes), 0) FROM series WHERE study_pk = studies.id),
  modalities = coalesce((SELECT group_concat(m, '\') FROM
      (SELECT DISTINCT modality AS m FROM series WHERE study_pk = studies.id AND modality <> ''
       ORDER BY m) AS ms), '');
DELETE FROM studies WHERE num_instances = 0;
)sql");
        !s)
      return s;
    return tx.commit();
  }

 private:
  // One instance on the write connection of the open operation: patient, study and series
  // created or updated, the instance row, the counters.
  static Status insert_instance(sql::Db& w, const NewInstance& in) {
    sql::Stmt *upsert_patient = nullptr, *upsert_study = nullptr, *upsert_series = nullptr,
              *insert_inst = nullptr, *bump_series = nullptr, *bump_study = nullptr;
    for (auto [st, q] :
         {std::pair{&upsert_patient, kUpsertPatient}, std::pair{&upsert_study, kUpsertStudy},
          std::pair{&upsert_series, kUpsertSeries}, std::pair{&insert_inst, kInsertInstance},
          std::pair{&bump_series, kBumpSeries}, std::pair{&bump_study, kBumpStudy}}) {
      auto c = w.cached(q);
      if (!c.ok()) return c.error();
      *st = *c;
    }
    sql::Stmt& upsert_patient_ = *upsert_patient;
    sql::Stmt& upsert_study_ = *upsert_study;
    sql::Stmt& upsert_series_ = *upsert_series;
    sql::Stmt& insert_instance_ = *insert_inst;
    sql::Stmt& bump_series_ = *bump_series;
    sql::Stmt& bump_study_ = *bump_study;
    upsert_patient_.bind(1, in.institution_id);
    upsert_patient_.bind(2, in.patient_id);
    upsert_patient_.bind(3, in.issuer_of_patient_id);
    upsert_patient_.bind(4, in.patient_name);
    upsert_patient_.bind(5, in.patient_birth_date);
    upsert_patient_.bind(6, in.patient_sex);
    auto patient = returning_id(upsert_patient_);
    if (!patient.ok()) return patient.error();

    upsert_study_.bind(1, in.study_instance_uid);
    upsert_study_.bind(2, *patient);
    upsert_study_.bind(3, in.institution_id);
    upsert_study_.bind(4, in.study_date);
    upsert_study_.bind(5, in.study_time);
    upsert_study_.bind(6, in.accession_number);
    upsert_study_.bind(7, in.study_id);
    upsert_study_.bind(8, in.study_description);
    upsert_study_.bind(9, in.referring_physician);
    upsert_study_.bind(10, in.institution_name);
    upsert_study_.bind(11, in.received_at);
    upsert_study_.bind(12, in.requested_priority);
    upsert_study_.bind(13, in.indication);
    upsert_study_.bind(14, in.procedure);
    // Folded as the schema steps that filled the column fold it (SQL lower() of ASCII only, then
    // rtrim of trailing separators).
    upsert_study_.bind(15, name_key(in.patient_name));
    auto study = returning_id(upsert_study_);
    if (!study.ok()) return study.error();

    upsert_series_.bind(1, in.series_instance_uid);
    upsert_series_.bind(2, *study);
    upsert_series_.bind(3, in.modality);
    upsert_series_.bind(4, in.series_number);
    upsert_series_.bind(5, in.series_description);
    upsert_series_.bind(6, in.body_part);
    upsert_series_.bind(7, in.received_at);
    auto series = returning_id(upsert_series_);
    if (!series.ok()) return series.error();

    insert_instance_.bind(1, in.sop_instance_uid);
    insert_instance_.bind(2, *series);
    insert_instance_.bind(3, in.sop_class_uid);
    insert_instance_.bind(4, in.instance_number);
    insert_instance_.bind(5, in.number_of_frames);
    insert_instance_.bind(6, in.transfer_syntax_uid);
    insert_instance_.bind(7, in.blob_key);
    insert_instance_.bind(8, in.size_bytes);
    insert_instance_.bind(9, in.dataset_offset);
    insert_instance_.bind(10, in.calling_ae);
    insert_instance_.bind(11, in.received_at);
    insert_instance_.bind(12, in.content_hash);
    if (Status s = insert_instance_.run(); !s) return s;

    bump_series_.bind(1, *series);
    bump_series_.bind(2, in.size_bytes);
    if (Status s = bump_series_.run(); !s) return s;
    bump_study_.bind(1, *study);
    bump_study_.bind(2, in.size_bytes);
    return bump_study_.run();
  }

  Database& db_;
};

}  // namespace

std::unique_ptr<Index> Index::open(Database& db) { return std::make_unique<SqliteIndex>(db); }

}  // namespace yilian::pacs
