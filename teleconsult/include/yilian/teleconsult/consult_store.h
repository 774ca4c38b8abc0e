// Consults (schema v6): consults, their attachments and participants, the chat log of each
// consult (numbered per consult), delivery/read receipts, the shared view's latest state,
// saved annotations and lifecycle events.
//
// Writes are group-committed operations of storage::Database. Live-room traffic is written in
// batches: `begin_batch()` runs many operations as one write, so a burst of chat costs one
// device flush; each operation inside runs in its own savepoint, so one bad message does not
// undo the others. Lifecycle changes take a `decide` function: the rules live in teleconsult,
// the store applies the answer atomically. Reads see committed data only.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "yilian/common/result.h"
#include "yilian/storage/database.h"

namespace yilian::teleconsult {

// The most consults, referrals and emergency cases of one patient a record lists, of each kind
// (the newest).
inline constexpr std::int64_t kPatientListMost = 100;

struct ConsultAttachment {
  std::string kind;  // study, ecg, report
  std::string ref;   // study UID, ECG SOP instance UID, or report id
  std::string study_uid;
};

struct ConsultParticipant {
  std::int64_t user_id = 0;
  std::string username;
  std::string role;  // requester, specialist
  std::int64_t delivered_seq = 0, read_seq = 0;
};

struct ConsultRow {
  std::int64_t id = 0;
  std::int64_t institution_id = 0;
  std::string institution_code;
  std::int64_t requester_id = 0;
  std::string requester;
  std::string patient_id, patient_name, question, urgency, specialty, status;
  std::int64_t assignee_id = 0;  // 0: none
  std::string assignee;
  std::string reason;  // why declined or cancelled
  std::string opinion, opinion_sha256, concluded_at;
  std::string created_at, updated_at;
  std::int64_t last_seq = 0;
  std::int64_t view_version = 0, view_driver = 0;
  std::string view_state = "{}";
};

struct NewConsult {
  std::int64_t institution_id = 0, requester_id = 0;
  std::string patient_id, patient_name, question, urgency, specialty;
  std::int64_t assignee_id = 0;  // a specialist asked by name (still has to accept)
  std::vector<ConsultAttachment> attachments;
};

struct ConsultEvent {
  std::int64_t consult_id = 0;
  std::string at, type, actor, detail;
};

// What a lifecycle action changes; filled by the rules.
struct ConsultChange {
  std::string status;
  std::optional<std::int64_t> assignee_id;
  std::optional<std::string> reason, opinion, opinion_sha256, concluded_at;
  ConsultEvent event;  // consult_id and at are filled by the store
};

struct ConsultAnnotation {
  std::int64_t id = 0, author_id = 0;
  std::string author, at;
  std::string body;  // JSON object, as validated by the protocol
};

struct ChatMessage {
  std::int64_t consult_id = 0, seq = 0, author_id = 0;
  std::string author, client_id, at, text;
  std::string attachments = "[]";  // JSON array, as validated by the protocol
};

struct ConsultFilter {
  std::int64_t participant = 0;  // consults this user takes part in
  // Or open requests a specialist may take: these specialties, from these institutions, and
  // not addressed to another specialist.
  std::vector<std::string> open_specialties;
  std::vector<std::int64_t> open_institutions;
  std::int64_t open_for_user = 0;
  std::string status;  // empty: any
  std::int64_t limit = 50, offset = 0;
};

class ConsultStore {
 public:
  // `db` must hold the migrated consortium schema.
  explicit ConsultStore(storage::Database& db);
  ~ConsultStore();
  ConsultStore(const ConsultStore&) = delete;
  ConsultStore& operator=(const ConsultStore&) = delete;

  Result<ConsultRow> create(const NewConsult& c, std::string_view now, const std::string& actor);
  Result<std::optional<ConsultRow>> get(std::int64_t id);
  Result<std::vector<ConsultRow>> list(const ConsultFilter& f);
  Result<std::vector<ConsultAttachment>> attachments(std::int64_t id);
  Result<std::vector<ConsultParticipant>> participants(std::int64_t id);
  // The requesting institutions of the consults about this patient that `user_id` takes part
  // in (not declined or cancelled): their results and reports reach the specialist.
  Result<std::vector<std::int64_t>> consulting_institutions(std::string_view patient_id,
                                                            std::int64_t user_id);
  // The consults about this patient asked by these institutions, newest first (at most
  // kPatientListMost).
  Result<std::vector<ConsultRow>> patient_consults(std::string_view patient_id,
                                                   const std::vector<std::int64_t>& institutions);
  Result<std::vector<ConsultEvent>> events(std::int64_t id);
  Result<std::vector<ConsultAnnotation>> annotations(std::int64_t id);

  // Applies `decide(current)` in one transaction; an accepted assignee becomes a participant.
  Result<ConsultRow> change(std::int64_t id,
                            const std::function<Result<ConsultChange>(const ConsultRow&)>& decide,
                            std::string_view now);

  // A live-room batch: many operations in one transaction, committed by commit() (durable
  // when it returns OK); destroyed without commit() it rolls back. Holds the write connection.
  class Batch {
   public:
    ~Batch();
    Batch(const Batch&) = delete;
    Batch& operator=(const Batch&) = delete;
    // Appends a message with the next seq of its consult. When the author already sent one
    // with this client_id, returns that message and sets `duplicate`.
    Result<ChatMessage> append_message(ChatMessage m, bool& duplicate);
    // Appends several, as append_message would one after the other (PostgreSQL: in one round
    // trip). One result per message, in order: stored, a resend, or why it was not stored
    // (the others are stored all the same).
    struct Appended {
      Result<ChatMessage> message;
      bool duplicate = false;
    };
    std::vector<Appended> append_messages(std::vector<ChatMessage> ms);
    // Raises (never lowers) a participant's delivered/read marks; returns the new pair.
    Result<std::pair<std::int64_t, std::int64_t>> receipt(std::int64_t consult, std::int64_t user,
                                                          std::int64_t delivered,
                                                          std::int64_t read);
    // Stores the shared view; returns its new version.
    Result<std::int64_t> save_view(std::int64_t consult, std::int64_t driver,
                                   const std::string& state);
    Result<std::int64_t> add_annotation(std::int64_t consult, std::int64_t author,
                                        std::string_view at, const std::string& body);
    // Takes the consults' row locks now, in id order (PostgreSQL; on SQLite, whose one writer
    // never waits for another, every consult counts as taken): batches of several nodes that
    // change the same consults then wait for each other instead of deadlocking. Without
    // `wait`, the consults another batch holds are skipped instead of waited for. Returns the
    // consults taken (an id with no consult is never taken).
    Result<std::vector<std::int64_t>> lock_consults(std::vector<std::int64_t> ids,
                                                    bool wait = true);
    bool empty() const { return operations_ == 0; }
    Status commit();

   private:
    friend class ConsultStore;
    explicit Batch(storage::Database& db);
    template <typename F>
    auto in_savepoint(F&& f) -> decltype(f());
    Result<ChatMessage> append_one(ChatMessage m, bool& duplicate);
    Result<std::vector<Appended>> append_all(const std::vector<ChatMessage>& ms);
    storage::Database& db_;
    storage::Database::Write write_;
    bool done_ = false;
    int operations_ = 0;
  };
  Result<std::unique_ptr<Batch>> begin_batch();

  Result<std::vector<ChatMessage>> messages(std::int64_t consult, std::int64_t after_seq,
                                            std::int64_t limit);

 private:
  Result<std::optional<ConsultRow>> get_on(storage::sql::Db& db, std::int64_t id);
  Status write_event(storage::sql::Db& db, const ConsultEvent& e);

  storage::Database& db_;
};

}  // namespace yilian::teleconsult
