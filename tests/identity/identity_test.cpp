// Passwords, sessions (expiry, revocation, lockout), shares and the audit chain, over a
// real index and audit database in a temp directory, with a clock the test moves.
#include <gtest/gtest.h>

#include "test_db.h"
#include "test_util.h"
#include "yilian/identity/accounts.h"
#include "yilian/identity/audit.h"
#include "yilian/identity/audit_log.h"
#include "yilian/identity/auth.h"
#include "yilian/identity/crypto.h"
#include "yilian/identity/policy.h"
#include "yilian/pacs/index.h"

namespace yilian::identity {
namespace {

using namespace std::chrono_literals;

TEST(Passwords, are_salted_argon2id_and_verify_only_the_right_password) {
  auto a = hash_password("correct horse battery");
  auto b = hash_password("correct horse battery");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->rfind("$argon2id$", 0), 0u) << *a;
  EXPECT_NE(*a, *b);  // a fresh salt each time
  EXPECT_TRUE(verify_password("correct horse battery", *a));
  EXPECT_FALSE(verify_password("correct horse batterY", *a));
  EXPECT_FALSE(verify_password("", *a));
  EXPECT_FALSE(verify_password("anything", "plain-text-is-never-accepted"));
  EXPECT_FALSE(check_password_policy("short").ok());
  EXPECT_TRUE(check_password_policy("long enough!").ok());
}

TEST(Tokens, are_random_and_stored_as_sha256) {
  std::string t1 = new_token(), t2 = new_token();
  EXPECT_EQ(t1.size(), 64u);
  EXPECT_NE(t1, t2);
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Tokens, turn_credentials_are_hmac_sha1_in_base64) {
  // RFC 2202, test case 2.
  EXPECT_EQ(hmac_sha1_base64("Jefe", "what do ya want for nothing?"),
            "7/zfauXrL6LSdBbV8YTfnCWafHk=");
  EXPECT_EQ(hmac_sha1_base64("", "").size(), 28u);
}

class IdentityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = testing::index_database(dir_.path() / "index.sqlite");
    index_ = pacs::Index::open(*db_);
    accounts_ = std::make_unique<identity::Accounts>(*db_);
    audit_db_ = testing::audit_database(dir_.path() / "audit.sqlite");
    log_ = std::make_unique<identity::AuditLog>(*audit_db_);
    auto auditor = Auditor::open(*log_, [this] { return now_; });
    ASSERT_TRUE(auditor.ok());
    auditor_ = std::move(auditor).value();
    AuthOptions opts;
    opts.token_ttl = 60min;
    auth_ = std::make_unique<AuthService>(
        *accounts_, *auditor_, [this] { return now_; }, opts);

    for (auto [code, level] :
         {std::pair{"lead", "lead"}, std::pair{"ta", "township"}, std::pair{"tb", "township"}}) {
      ASSERT_TRUE(accounts_->put_institution({0, code, code, level, "", {}, {}}).ok());
    }
    identity::NewUser u;
    u.username = "alice";
    u.institution_code = "ta";
    u.roles = 1u << static_cast<unsigned>(Role::township_doctor);
    ASSERT_TRUE(auth_->add_user(u, kPassword).ok());
  }

  static constexpr const char* kPassword = "a long password";
  testing::TempDir dir_;
  storage::TimePoint now_ = *storage::parse_iso8601("2026-11-22T08:00:00Z");
  std::unique_ptr<storage::Database> db_, audit_db_;
  std::unique_ptr<pacs::Index> index_;
  std::unique_ptr<identity::Accounts> accounts_;
  std::unique_ptr<identity::AuditLog> log_;
  std::unique_ptr<Auditor> auditor_;
  std::unique_ptr<AuthService> auth_;
};

TEST_F(IdentityTest, a_login_gives_a_token_that_authenticates_until_it_expires) {
  auto login = auth_->login("alice", kPassword, "10.0.0.5");
  ASSERT_TRUE(login.ok()) << login.error().message;
  EXPECT_EQ(login->expires_at, "2026-11-22T09:00:00.000Z");
  auto who = auth_->authenticate("Bearer " + login->token);
  ASSERT_TRUE(who.ok()) << who.error().message;
  EXPECT_EQ(who->username, "alice");
  EXPECT_TRUE(who->has(Role::township_doctor));

  now_ += 59min;
  EXPECT_TRUE(auth_->authenticate("Bearer " + login->token).ok());
  now_ += 1min;
  auto expired = auth_->authenticate("Bearer " + login->token);
  ASSERT_FALSE(expired.ok());
  EXPECT_EQ(expired.error().code, Errc::unauthenticated);
}

TEST_F(IdentityTest, the_raw_token_is_never_stored) {
  auto login = auth_->login("alice", kPassword, "10.0.0.5");
  ASSERT_TRUE(login.ok());
  auto raw = testing::raw_connection(*db_);
  std::string stored;
  ASSERT_TRUE(storage::sql::query(
                  *raw, "SELECT token_hash FROM sessions", [](storage::sql::Stmt&) {},
                  [&](storage::sql::Stmt& st) { stored = st.text(0); })
                  .ok());
  ASSERT_FALSE(stored.empty());
  EXPECT_NE(stored, login->token);
  EXPECT_EQ(stored, sha256_hex(login->token));
}

TEST_F(IdentityTest, logout_password_change_and_disabling_revoke_sessions) {
  auto first = auth_->login("alice", kPassword, "a");
  auto second = auth_->login("alice", kPassword, "b");
  ASSERT_TRUE(first.ok() && second.ok());
  auto who = auth_->authenticate("Bearer " + first->token);
  ASSERT_TRUE(who.ok());
  ASSERT_TRUE(auth_->logout(first->token, *who, "a").ok());
  EXPECT_FALSE(auth_->authenticate("Bearer " + first->token).ok());
  EXPECT_TRUE(auth_->authenticate("Bearer " + second->token).ok());

  ASSERT_TRUE(auth_->set_password("alice", "another long password").ok());
  EXPECT_FALSE(auth_->authenticate("Bearer " + second->token).ok());
  EXPECT_FALSE(auth_->login("alice", kPassword, "a").ok());
  auto third = auth_->login("alice", "another long password", "a");
  ASSERT_TRUE(third.ok());

  ASSERT_TRUE(accounts_->set_disabled("alice", true, "2026-11-22T08:00:00.000Z").ok());
  EXPECT_FALSE(auth_->authenticate("Bearer " + third->token).ok());
  auto refused = auth_->login("alice", "another long password", "a");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, Errc::unauthenticated);
}

// The advanced viewer's cookie: reads DICOMweb for its user, nothing else, and dies with the
// session that opened it or after viewer_ttl.
TEST_F(IdentityTest, a_viewer_token_reads_dicomweb_by_cookie_only_while_its_session_lives) {
  auto login = auth_->login("alice", kPassword, "10.0.0.5");
  ASSERT_TRUE(login.ok());
  http::Request opener;
  opener.method = "POST";
  opener.path = "/api/auth/viewer";
  opener.authorization = "Bearer " + login->token;
  ASSERT_FALSE(auth_->admit(opener).has_value());
  auto pass = auth_->open_viewer(opener);
  ASSERT_TRUE(pass.ok()) << pass.error().message;
  EXPECT_EQ(pass->expires_at, "2026-11-22T12:00:00.000Z");  // viewer_ttl: 4 h
  const std::string cookie = auth_->viewer_cookie(*pass);
  EXPECT_NE(cookie.find("HttpOnly"), std::string::npos);
  EXPECT_NE(cookie.find("SameSite=Strict"), std::string::npos);
  EXPECT_NE(cookie.find("Path=/dicom-web/"), std::string::npos);

  auto request = [&](std::string method, std::string path, std::string cookie_header,
                     std::string authorization = {}) {
    http::Request r;
    r.method = std::move(method);
    r.path = std::move(path);
    r.cookie = std::move(cookie_header);
    r.authorization = std::move(authorization);
    auto denied = auth_->admit(r);
    return denied ? denied->status : (r.principal ? 200 : 0);
  };
  const std::string jar = "theme=dark; yilian_viewer=" + pass->token;
  EXPECT_EQ(request("GET", "/dicom-web/studies", jar), 200);
  EXPECT_EQ(request("HEAD", "/dicom-web/studies/1.2/series", jar), 200);
  // Nothing but reading DICOMweb.
  EXPECT_EQ(request("POST", "/dicom-web/studies", jar), 401);
  EXPECT_EQ(request("DELETE", "/dicom-web/studies/1.2", jar), 401);
  EXPECT_EQ(request("GET", "/api/worklist", jar), 401);
  EXPECT_EQ(request("GET", "/ws", jar), 401);
  // A viewer token is no bearer token, and a bearer token in the cookie is no viewer token.
  EXPECT_EQ(request("GET", "/api/worklist", "", "Bearer " + pass->token), 401);
  EXPECT_EQ(request("GET", "/dicom-web/studies", "yilian_viewer=" + login->token), 401);
  EXPECT_EQ(request("GET", "/dicom-web/studies", "yilian_viewer=forged"), 401);
  // A viewer token opens no other viewer token.
  http::Request chained;
  chained.method = "POST";
  chained.path = "/api/auth/viewer";
  chained.cookie = jar;
  EXPECT_EQ(auth_->admit(chained)->status, 401);

  // It expires by itself...
  now_ += 59min;
  EXPECT_EQ(request("GET", "/dicom-web/studies", jar), 200);
  // ... and with the session that opened it (here: the session's own 60 min).
  now_ += 1min;
  EXPECT_EQ(request("GET", "/dicom-web/studies", jar), 401);

  // Logout ends it at once.
  now_ = *storage::parse_iso8601("2026-11-22T08:00:00Z");
  auto again = auth_->login("alice", kPassword, "10.0.0.5");
  ASSERT_TRUE(again.ok());
  opener.authorization = "Bearer " + again->token;
  opener.principal.reset();
  ASSERT_FALSE(auth_->admit(opener).has_value());
  auto second = auth_->open_viewer(opener);
  ASSERT_TRUE(second.ok());
  const std::string jar2 = "yilian_viewer=" + second->token;
  EXPECT_EQ(request("GET", "/dicom-web/studies", jar2), 200);
  ASSERT_TRUE(auth_->logout(again->token, *opener.principal, "10.0.0.5").ok());
  EXPECT_EQ(request("GET", "/dicom-web/studies", jar2), 401);
  EXPECT_NE(auth_->cleared_viewer_cookie().find("Max-Age=0"), std::string::npos);
}

TEST_F(IdentityTest, bad_credentials_look_the_same_for_unknown_users_and_lock_out_after_five) {
  auto unknown = auth_->login("mallory", kPassword, "x");
  auto wrong = auth_->login("alice", "wrong password!", "x");
  ASSERT_FALSE(unknown.ok());
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(unknown.error().message, wrong.error().message);
  for (int i = 0; i < 4; ++i) EXPECT_FALSE(auth_->login("alice", "wrong password!", "x").ok());
  auto locked = auth_->login("alice", kPassword, "x");  // right password, but locked out
  ASSERT_FALSE(locked.ok());
  EXPECT_EQ(locked.error().code, Errc::unavailable);
  // The count is in the database: another node (another AuthService on it) refuses too.
  AuthService other_node(
      *accounts_, *auditor_, [this] { return now_; }, AuthOptions{});
  auto elsewhere = other_node.login("alice", kPassword, "y");
  ASSERT_FALSE(elsewhere.ok());
  EXPECT_EQ(elsewhere.error().code, Errc::unavailable);
  now_ += 16min;
  EXPECT_TRUE(auth_->login("alice", kPassword, "x").ok());
}

TEST_F(IdentityTest, malformed_authorization_headers_are_unauthenticated) {
  for (const char* h :
       {"", "Bearer", "Bearer ", "Basic YWxpY2U6eA==", "bearer abc", "Bearer abc"}) {
    auto r = auth_->authenticate(h);
    ASSERT_FALSE(r.ok()) << h;
    EXPECT_EQ(r.error().code, Errc::unauthenticated) << h;
  }
}

TEST_F(IdentityTest, reading_services_and_credentials_reach_the_principal) {
  ASSERT_TRUE(accounts_->add_reading_service({"lead", "ta", "imaging"}).ok());
  ASSERT_TRUE(accounts_->add_reading_service({"lead", "tb", "ecg"}).ok());
  EXPECT_FALSE(accounts_->add_reading_service({"lead", "tb", "pathology"}).ok());
  identity::NewUser u;
  u.username = "bob";
  u.institution_code = "lead";
  u.credential_codes = {"tb"};
  u.roles = 1u << static_cast<unsigned>(Role::radiologist);
  ASSERT_TRUE(auth_->add_user(u, kPassword).ok());
  auto login = auth_->login("bob", kPassword, "x");
  ASSERT_TRUE(login.ok());
  auto bob = auth_->authenticate("Bearer " + login->token);
  ASSERT_TRUE(bob.ok());
  auto lead = accounts_->find_institution("lead");
  auto ta = accounts_->find_institution("ta");
  auto tb = accounts_->find_institution("tb");
  EXPECT_EQ(bob->institution_id, (*lead)->id);
  EXPECT_EQ(bob->credentialed, (std::vector<std::int64_t>{(*tb)->id}));
  EXPECT_EQ(bob->imaging_clients, (std::vector<std::int64_t>{(*ta)->id}));
  EXPECT_EQ(bob->ecg_clients, (std::vector<std::int64_t>{(*tb)->id}));
}

TEST_F(IdentityTest, a_share_reaches_the_user_until_it_expires) {
  auto tb = accounts_->find_institution("tb");
  pacs::IndexBatch batch;
  pacs::NewInstance in;
  in.blob_key = "k1";
  in.size_bytes = 10;
  in.transfer_syntax_uid = "1.2.840.10008.1.2.1";
  in.sop_class_uid = "1.2.840.10008.5.1.4.1.1.2";
  in.sop_instance_uid = "1.2.3.1";
  in.series_instance_uid = "1.2.3.2";
  in.study_instance_uid = "1.2.3";
  in.modality = "CT";
  in.institution_id = (*tb)->id;
  in.received_at = "2026-11-22T07:00:00.000Z";
  batch.instances.push_back(in);
  ASSERT_TRUE(index_->commit(batch).ok());

  auto login = auth_->login("alice", kPassword, "x");
  auto alice = auth_->authenticate("Bearer " + login->token);
  ASSERT_TRUE(alice.ok());
  auto facts = [&] {
    auto f =
        index_->study_access("1.2.3", alice->user_id, share_institutions(*alice), auth_->now());
    EXPECT_TRUE(f.ok() && f->has_value());
    return **f;
  };
  EXPECT_FALSE(may_read_study(*alice, facts()));
  identity::StudyShare share;
  share.study_instance_uid = "1.2.3";
  share.username = "alice";
  share.reason = "consult";
  share.granted_at = auth_->now();
  share.expires_at = "2026-11-22T10:00:00.000Z";
  ASSERT_TRUE(accounts_->add_share(share).ok());
  EXPECT_TRUE(may_read_study(*alice, facts()));
  EXPECT_FALSE(may_share_study(*alice, facts()));
  auto listed = index_->list_studies(study_scope(*alice, auth_->now()), 10, 0);
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->total, 1);
  now_ += 3h;
  EXPECT_FALSE(may_read_study(*alice, facts()));
  auto later = index_->list_studies(study_scope(*alice, auth_->now()), 10, 0);
  ASSERT_TRUE(later.ok());
  EXPECT_EQ(later->total, 0);

  share.username.clear();
  share.institution_code = "nowhere";
  Status missing = accounts_->add_share(share);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, Errc::not_found);
}

// Runs SQL directly against the audit database, as someone with access to it could.
void tamper(const storage::Database& db, const std::string& sql) {
  auto raw = testing::raw_connection(db);
  Status s = raw->exec(sql.c_str());
  EXPECT_TRUE(s.ok()) << s.error().message;
}

// Dropping a trigger names its table on PostgreSQL.
std::string drop_trigger(const storage::Database& db, const std::string& name) {
  return "DROP TRIGGER " + name +
         (db.dialect() == storage::sql::Dialect::postgres ? " ON audit; " : "; ");
}

// Removing the newest records leaves a chain that verifies by itself; the head written down in
// the index (once a minute, and the first record at once) shows what is gone.
TEST_F(IdentityTest, the_anchored_head_shows_the_newest_audit_records_removed) {
  auditor_->anchor_with([this](const AuditAnchor& a) { return accounts_->anchor_audit(a); },
                        std::chrono::seconds(60));
  auto event = [](int i) {
    return AuditEvent{"alice",           "ta", "10.0.0.5", "study.read", "study",
                      std::to_string(i), "ok", ""};
  };
  ASSERT_TRUE(auditor_->record(event(1)).ok());
  auto first = accounts_->audit_anchor();
  ASSERT_TRUE(first.ok() && first->has_value());
  EXPECT_EQ((*first)->seq, auditor_->head().seq);
  // Within the minute: not written down again.
  ASSERT_TRUE(auditor_->record(event(2)).ok());
  EXPECT_EQ((*accounts_->audit_anchor())->seq, (*first)->seq);
  now_ += 61s;
  ASSERT_TRUE(auditor_->record(event(3)).ok());
  auto anchor = accounts_->audit_anchor();
  ASSERT_TRUE(anchor.ok() && anchor->has_value());
  EXPECT_EQ((*anchor)->seq, auditor_->head().seq);
  EXPECT_EQ((*anchor)->anchored_at, "2026-11-22T08:01:01.000Z");
  // An older head never replaces a newer one (another node, late).
  ASSERT_TRUE(accounts_->anchor_audit({1, "old", "2026-11-22T08:02:00.000Z"}).ok());
  EXPECT_EQ((*accounts_->audit_anchor())->seq, (*anchor)->seq);
  auto intact = verify_chain(*log_, *anchor);
  ASSERT_TRUE(intact.ok());
  EXPECT_TRUE(intact->intact) << intact->problem;

  // The newest record removed: the rest still chains, but no longer reaches the anchor.
  tamper(*audit_db_, drop_trigger(*audit_db_, "audit_no_delete") +
                         "DELETE FROM audit WHERE seq = " + std::to_string((*anchor)->seq) + ";");
  auto alone = verify_chain(*log_);
  ASSERT_TRUE(alone.ok());
  EXPECT_TRUE(alone->intact);
  auto cut = verify_chain(*log_, *anchor);
  ASSERT_TRUE(cut.ok());
  EXPECT_FALSE(cut->intact);
  EXPECT_NE(cut->problem.find("newest records were removed"), std::string::npos) << cut->problem;
}

TEST_F(IdentityTest, the_audit_chain_verifies_and_detects_a_modified_or_removed_record) {
  for (int i = 0; i < 5; ++i) {
    AuditEvent e;
    e.actor = "alice";
    e.action = "study.read";
    e.object_type = "study";
    e.object_id = "1.2." + std::to_string(i);
    ASSERT_TRUE(auditor_->record(e).ok());
  }
  auto report = auditor_->verify();
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->intact);
  EXPECT_GE(report->records, 5);  // plus the user creation in SetUp
  const std::int64_t total = report->records;

  // The triggers refuse changes made through SQL as it is...
  {
    auto raw = testing::raw_connection(*audit_db_);
    EXPECT_FALSE(raw->exec("UPDATE audit SET actor = 'bob' WHERE seq = 2").ok());
    EXPECT_FALSE(raw->exec("DELETE FROM audit WHERE seq = 2").ok());
  }
  // ...and the chain catches someone who removes them first.
  tamper(*audit_db_, drop_trigger(*audit_db_, "audit_no_update") +
                         "UPDATE audit SET object_id = '9.9.9' WHERE seq = 3;");
  auto broken = verify_chain(*log_);
  ASSERT_TRUE(broken.ok());
  EXPECT_FALSE(broken->intact);
  EXPECT_EQ(broken->first_bad_seq, 3);

  testing::TempDir other;
  auto audit_db2 = testing::audit_database(other.path() / "audit.sqlite");
  auto log2 = std::make_unique<identity::AuditLog>(*audit_db2);
  auto a2 = Auditor::open(*log2, [this] { return now_; });
  ASSERT_TRUE(a2.ok());
  for (int i = 0; i < 4; ++i)
    ASSERT_TRUE((*a2)->record(AuditEvent{"x", "", "", "a", "t", "o", "ok", ""}).ok());
  tamper(*audit_db2,
         drop_trigger(*audit_db2, "audit_no_delete") + "DELETE FROM audit WHERE seq = 2;");
  auto gap = verify_chain(*log2);
  ASSERT_TRUE(gap.ok());
  EXPECT_FALSE(gap->intact);
  EXPECT_EQ(gap->first_bad_seq, 3);
  (void)total;
}

}  // namespace
}  // namespace yilian::identity
