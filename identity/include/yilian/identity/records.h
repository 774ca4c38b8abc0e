// Plain records of the identity domain (institutions, users, reading services, shares,
// audit) and what the access rules exchange with the stores. No I/O here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace yilian::identity {

struct Institution {
  std::int64_t id = 0;
  std::string code;
  std::string name;
};

// Which studies a list may return: built by identity::study_scope() from a principal.
struct StudyScope {
  std::vector<std::int64_t> institutions;          // every study of these
  std::vector<std::int64_t> imaging_institutions;  // imaging studies of these
  std::vector<std::int64_t> ecg_institutions;      // ECG studies of these
  // Studies shared with this user or with one of these institutions, unexpired at `now`.
  std::int64_t share_user_id = 0;
  std::vector<std::int64_t> share_institutions;
  std::string now;
  bool empty() const {
    return institutions.empty() && imaging_institutions.empty() && ecg_institutions.empty() &&
           share_user_id == 0 && share_institutions.empty();
  }
};

// What the access rules need to know about one study.
struct StudyAccessFacts {
  std::int64_t study_pk = 0;
  std::int64_t institution_id = 0;
  std::string modalities;
  bool shared = false;  // shared with the asking user or one of their institutions
};

struct InstitutionInfo {
  std::int64_t id = 0;
  std::string code;
  std::string name;
  std::string level;  // lead, county, community, township, village, office, external
  std::string parent_code;
  std::vector<std::string> ae_titles;
  // What its modalities' text is in when they declare no Specific Character Set (a DICOM
  // defined term such as "GB18030"); empty: the hub's default.
  std::string charset;
};

struct UserInfo {
  std::int64_t id = 0;
  std::string username;
  std::string display_name;
  std::int64_t institution_id = 0;
  std::string institution_code;
  std::uint32_t roles = 0;
  std::vector<std::string> credentialed_codes;
  bool disabled = false;
  std::string created_at;
  bool must_change_password = false;  // the next sign-in asks for a new password
  std::string password_changed_at;
};

// A live bearer session (who is signed in now).
struct SessionInfo {
  std::string username;
  std::string created_at;
  std::string expires_at;
  std::string address;
};

struct ReadingService {
  std::string provider_code;
  std::string client_code;
  std::string service;  // "imaging" or "ecg"
};

struct StudyShare {
  std::string study_instance_uid;
  std::string institution_code;  // exactly one of institution_code / username
  std::string username;
  std::string reason;  // "consult" or "referral"
  std::string reference;
  std::int64_t granted_by = 0;
  std::string granted_at;
  std::string expires_at;  // empty: no expiry
};

// One audit record. `hash` chains it to the previous record (see identity/audit.h).
struct AuditRecord {
  std::int64_t seq = 0;
  std::string at;  // ISO 8601 UTC
  std::string actor;
  std::string actor_institution;
  std::string address;
  std::string action;  // e.g. "study.read", "user.create", "dicom.store"
  std::string object_type;
  std::string object_id;
  std::string outcome;  // "ok", "denied", "failed"
  std::string detail;
  std::string prev_hash;
  std::string hash;
};

struct AuditFilter {
  // Empty: any. `action` ending in '.' matches every action it begins ("user." for all user
  // changes); `institution` is the actor's institution.
  std::string actor, action, object_id, from, to, institution;
  std::int64_t before_seq = 0;  // paging: only records older than this (0: newest)
  std::int64_t limit = 100;
};

}  // namespace yilian::identity
