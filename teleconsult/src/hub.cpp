#include "yilian/teleconsult/hub.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>

#include "case_view.h"
#include "yilian/common/text.h"
#include "yilian/identity/policy.h"
#include "yilian/reading/queue_rules.h"
#include "yilian/teleconsult/consult_rules.h"
#include "yilian/teleconsult/emergency_rules.h"
#include "yilian/teleconsult/referral_rules.h"

namespace yilian::teleconsult {
namespace {

using nlohmann::json;
namespace proto = protocol;

// WebSocket close codes (4000-4999 are the application's).
constexpr int kCloseUnauthenticated = 4401;
constexpr int kCloseSessionEnded = 4403;
// Pending notifications replayed on each new authenticated connection, newest ones.
constexpr int kNotificationsReplayedAtHello = 50;

json consult_summary(const teleconsult::ConsultRow& c) {
  return {{"id", c.id},
          {"status", c.status},
          {"urgency", c.urgency},
          {"specialty", c.specialty},
          {"requester", c.requester},
          {"assignee", c.assignee.empty() ? json(nullptr) : json(c.assignee)},
          {"updatedAt", c.updated_at}};
}

json chat_json(const teleconsult::ChatMessage& m) {
  json j = {{"consult", m.consult_id}, {"seq", m.seq},
            {"from", m.author},        {"at", m.at},
            {"text", m.text},          {"attachments", json::parse(m.attachments, nullptr, false)}};
  if (!m.client_id.empty()) j["clientId"] = m.client_id;
  return j;
}

}  // namespace

Hub::Hub(Stores stores, Authenticate authenticate, identity::Auditor* auditor, storage::Clock clock,
         HubOptions options)
    : stores_(stores),
      authenticate_(std::move(authenticate)),
      auditor_(auditor),
      clock_(std::move(clock)),
      options_(options) {}

Hub::~Hub() { stop(); }

void Hub::start(Transport& transport) {
  transport_ = &transport;
  {
    std::lock_guard lock(mu_);
    stop_ = false;
  }
  next_revalidation_ = clock_() + options_.revalidate_every;
  thread_ = std::thread([this] { run(); });
}

void Hub::stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Hub::opened(std::uint64_t conn, std::string authorization, std::string peer) {
  {
    std::lock_guard lock(mu_);
    inbox_.push_back({Item::open, conn, std::move(authorization), std::move(peer), 0});
  }
  cv_.notify_one();
}

void Hub::received(std::uint64_t conn, std::string text) {
  {
    std::lock_guard lock(mu_);
    inbox_.push_back({Item::message, conn, std::move(text), {}, 0});
  }
  cv_.notify_one();
}

void Hub::closed(std::uint64_t conn) {
  {
    std::lock_guard lock(mu_);
    inbox_.push_back({Item::close, conn, {}, {}, 0});
  }
  cv_.notify_one();
}

void Hub::consult_changed(std::int64_t consult) {
  {
    std::lock_guard lock(mu_);
    inbox_.push_back({Item::changed, 0, {}, {}, consult});
  }
  cv_.notify_one();
}

void Hub::consult_requested(std::int64_t consult) {
  {
    std::lock_guard lock(mu_);
    inbox_.push_back({Item::requested, 0, {}, {}, consult});
  }
  cv_.notify_one();
}

void Hub::case_changed(std::int64_t case_id, bool opened) {
  {
    std::lock_guard lock(mu_);
    inbox_.push_back({Item::case_update, 0, {}, {}, case_id, opened});
  }
  cv_.notify_one();
}

void Hub::task_event(const reading::TaskEvent& e) {
  // Every event: open worklists and township screens follow them all (handle_task_event).
  {
    std::lock_guard lock(mu_);
    inbox_.push_back({Item::task, 0, e.type, e.detail, e.task_id});
  }
  cv_.notify_one();
}

void Hub::referral_changed(std::int64_t referral) {
  {
    std::lock_guard lock(mu_);
    inbox_.push_back({Item::referral, 0, {}, {}, referral});
  }
  cv_.notify_one();
}

HubCounters Hub::counters() const {
  std::lock_guard lock(mu_);
  return counters_;
}

std::string Hub::now() const { return storage::to_iso8601(clock_()); }

void Hub::run() {
  while (true) {
    std::deque<Item> items;
    {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stop_ || !inbox_.empty(); });
      if (stop_) return;
      items.swap(inbox_);
    }
    for (const Item& item : items) handle(item);
    commit();
    housekeeping();
  }
}

teleconsult::ConsultStore::Batch* Hub::batch() {
  if (!batch_) {
    auto b = stores_.consults.begin_batch();
    if (!b.ok()) {
      spdlog::error("teleconsult: cannot begin a store batch: {}", b.error().message);
      return nullptr;
    }
    batch_ = std::move(*b);
  }
  return batch_.get();
}

void Hub::commit() {
  if (!batch_) return;
  Status s = batch_->commit();
  batch_.reset();
  {
    std::lock_guard lock(mu_);
    ++counters_.batches;
    if (!s) ++counters_.commit_failures;
  }
  if (!s) spdlog::error("teleconsult: a chat batch was not saved: {}", s.error().message);
  auto& out = s ? staged_.on_commit : staged_.on_failure;
  for (auto& [conn, text] : out) send(conn, std::move(text));
  staged_ = {};
}

void Hub::audit(const Conn& c, const char* action, const char* object_type, std::int64_t object_id,
                const char* outcome) {
  if (!auditor_ || !c.who) return;
  identity::AuditEvent ev = identity::event_for(*c.who, c.peer);
  ev.action = action;
  ev.object_type = object_type;
  ev.object_id = std::to_string(object_id);
  ev.outcome = outcome;
  (void)auditor_->record(ev);
}

void Hub::send(std::uint64_t conn, std::string text) {
  {
    std::lock_guard lock(mu_);
    ++counters_.messages_out;
  }
  transport_->send(conn, std::move(text));
}

void Hub::send_error(std::uint64_t conn, const std::string& code, const std::string& message,
                     const std::string& ref) {
  {
    std::lock_guard lock(mu_);
    ++counters_.errors;
  }
  send(conn, proto::error(code, message, ref));
}

void Hub::broadcast(const Room& room, const std::string& text, std::uint64_t except, bool staged) {
  for (std::uint64_t c : room.conns) {
    if (c == except) continue;
    if (staged) {
      staged_.on_commit.emplace_back(c, text);
    } else {
      send(c, text);
    }
  }
}

void Hub::handle(const Item& item) {
  switch (item.kind) {
    case Item::open: {
      Conn& c = conns_[item.conn];
      c.peer = item.peer;
      c.opened = clock_();
      unauthenticated_.insert(item.conn);
      {
        std::lock_guard lock(mu_);
        ++counters_.connections;
      }
      if (!item.text.empty()) authenticate(item.conn, c, item.text);
      return;
    }
    case Item::close:
      drop(item.conn);
      return;
    case Item::changed:
      refresh_room(item.consult);
      return;
    case Item::requested: {
      auto row = stores_.consults.get(item.consult);
      if (!row.ok() || !row->has_value()) return;
      const teleconsult::ConsultRow c = **row;
      notify([&c](const Principal& p) { return may_take(p, c); }, "consult_request",
             {{"consult", c.id},
              {"urgency", c.urgency},
              {"specialty", c.specialty},
              {"institution", c.institution_code},
              {"requester", c.requester},
              {"patient", {{"id", c.patient_id}, {"name", c.patient_name}}}});
      return;
    }
    case Item::case_update:
      publish_case(item.consult, item.flag);
      return;
    case Item::task:
      handle_task_event(item.consult, item.text, item.peer);
      return;
    case Item::referral: {
      auto row = stores_.referrals.get_referral(item.consult);
      if (row.ok() && row->has_value()) notify_referral(**row, "referral");
      return;
    }
    case Item::message:
      break;
  }
  auto it = conns_.find(item.conn);
  if (it == conns_.end()) return;
  Conn& c = it->second;
  {
    std::lock_guard lock(mu_);
    ++counters_.messages_in;
  }
  proto::Parsed p = proto::parse(item.text);
  if (p.error) {
    send_error(item.conn, p.error->code, p.error->message, p.error->ref);
    return;
  }
  handle_message(item.conn, c, *p.message);
}

void Hub::authenticate(std::uint64_t conn, Conn& c, const std::string& authorization) {
  auto who = authenticate_(authorization);
  if (!who.ok()) {
    send_error(conn, "unauthenticated", "a valid bearer token is required", "");
    transport_->close(conn, kCloseUnauthenticated, "unauthenticated");
    return;
  }
  c.who = std::move(*who);
  c.authorization = authorization;
  unauthenticated_.erase(conn);
  {
    std::lock_guard lock(mu_);
    ++counters_.authenticated;
  }
  json roles = json::array();
  for (Role r : kAllRoles) {
    if (c.who->has(r)) roles.push_back(role_name(r));
  }
  auto pending = stores_.notifications.count_pending_notifications(c.who->user_id);
  send(conn, proto::make("welcome", {{"user", c.who->username},
                                     {"institution", c.who->institution_code},
                                     {"roles", roles},
                                     {"specialties", specialties_of(*c.who)},
                                     {"pendingNotifications", pending.ok() ? *pending : 0}}));
  if (pending.ok() && *pending > 0) send_pending_notifications(conn, c);
}

void Hub::handle_message(std::uint64_t conn, Conn& c, const proto::Inbound& in) {
  using proto::Type;
  if (in.type == Type::ping) {
    send(conn, proto::make("pong", in.ref.empty() ? json::object() : json{{"ref", in.ref}}));
    return;
  }
  if (in.type == Type::hello) {
    if (c.who) {
      send_error(conn, "bad_message", "already authenticated", in.ref);
      return;
    }
    authenticate(conn, c, "Bearer " + in.body.value("token", std::string()));
    return;
  }
  if (!c.who) {
    send_error(conn, "unauthenticated", "send hello with a token first", in.ref);
    transport_->close(conn, kCloseUnauthenticated, "unauthenticated");
    return;
  }
  if (in.type == Type::presence) {
    std::map<std::int64_t, std::string> before;
    for (std::int64_t r : c.rooms) before[r] = presence_of(rooms_[r], c.who->user_id);
    c.away = in.body["status"] == "away";
    presence_changed(c.who->user_id, c.who->username, c.rooms, before);
    return;
  }
  if (in.type == Type::join) {
    join(conn, c, in);
    return;
  }
  if (in.type == Type::ack) {
    auto done = stores_.notifications.acknowledge(in.target, c.who->user_id, now());
    if (!done.ok() || !*done) {
      send_error(conn, "not_found", "no pending notification of yours has this id", in.ref);
      return;
    }
    send(conn, proto::make("acked", {{"notification", in.target}}));
    return;
  }
  if (in.type == Type::case_join || in.type == Type::case_leave) {
    if (in.type == Type::case_leave) {
      if (auto it = case_rooms_.find(in.target); it != case_rooms_.end()) {
        it->second.erase(conn);
        if (it->second.empty()) case_rooms_.erase(it);
      }
      send(conn, proto::make("case.left", {{"case", in.target}}));
      return;
    }
    auto row = stores_.cases.get_case(in.target);
    if (!row.ok() || !row->has_value() || !may_see_case(*c.who, **row)) {
      audit(c, "case.follow", "emergency_case", in.target, "denied");
      send_error(conn, "forbidden", "no emergency case you may follow has this id", in.ref);
      return;
    }
    auto view = case_view(stores_.cases, **row, clock_());
    if (!view.ok()) {
      send_error(conn, "unavailable", view.error().message, in.ref);
      return;
    }
    case_rooms_[in.target].insert(conn);
    audit(c, "case.follow", "emergency_case", in.target, "ok");
    send(conn, proto::make("case", {{"case", *view}}));
    return;
  }
  Room* room = room_for(conn, c, in);
  if (!room) return;
  const std::int64_t user = c.who->user_id;
  switch (in.type) {
    case Type::leave:
      leave(conn, c, in.consult);
      send(conn, proto::make("left", {{"consult", in.consult}}));
      return;
    case Type::history:
      commit();
      replay(conn, in.consult, in.body.value("afterSeq", std::int64_t{0}));
      return;
    case Type::typing:
      broadcast(*room,
                proto::make("typing", {{"consult", in.consult},
                                       {"user", c.who->username},
                                       {"active", in.body["active"]}}),
                conn);
      return;
    case Type::rtc: {
      const std::string to = in.body["to"];
      json out = {{"consult", in.consult},
                  {"from", c.who->username},
                  {"signal", in.body["signal"]},
                  {"data", in.body.value("data", json(nullptr))}};
      const std::string text = proto::make("rtc", out);
      bool delivered = false;
      for (std::uint64_t other : room->conns) {
        auto it = conns_.find(other);
        if (other == conn || it == conns_.end() || !it->second.who ||
            it->second.who->username != to)
          continue;
        send(other, text);
        delivered = true;
      }
      if (!delivered) send_error(conn, "peer_offline", to + " is not in the room", in.ref);
      return;
    }
    default:
      break;
  }
  // Durable messages: participants only, and chat, view and annotations while the room is live.
  if (!room->participants.count(user)) {
    send_error(conn, "forbidden", "only the consult's participants take part", in.ref);
    return;
  }
  const bool live = is_live(room->consult);
  if (!live && in.type != Type::receipt) {
    send_error(conn, "consult_closed", "the consult is " + room->consult.status, in.ref);
    return;
  }
  teleconsult::ConsultStore::Batch* b = batch();
  if (!b) {
    send_error(conn, "unavailable", "the message could not be saved; send it again", in.ref);
    return;
  }
  switch (in.type) {
    case Type::chat: {
      teleconsult::ChatMessage m;
      m.consult_id = in.consult;
      m.author_id = user;
      m.author = c.who->username;
      m.client_id = in.body.value("clientId", std::string());
      m.at = now();
      m.text = in.body["text"];
      m.attachments = json_text(in.body.value("attachments", json::array()));
      bool duplicate = false;
      auto saved = b->append_message(std::move(m), duplicate);
      if (!saved.ok()) {
        send_error(conn, "unavailable", saved.error().message, in.ref);
        return;
      }
      json out = chat_json(*saved);
      out["from"] = c.who->username;
      if (duplicate) {  // a resend after a lost answer: tell the sender its seq, nobody else
        out["duplicate"] = true;
        staged_.on_commit.emplace_back(conn, proto::make("chat", out));
        return;
      }
      {
        std::lock_guard lock(mu_);
        ++counters_.chat_messages;
      }
      room->consult.last_seq = saved->seq;
      broadcast(*room, proto::make("chat", out), 0, true);
      staged_.on_failure.emplace_back(
          conn, proto::error("unavailable", "the message was not saved; send it again", in.ref));
      return;
    }
    case Type::receipt: {
      auto marks = b->receipt(in.consult, user, in.body.value("delivered", std::int64_t{0}),
                              in.body.value("read", std::int64_t{0}));
      if (!marks.ok()) {
        send_error(conn, "forbidden", marks.error().message, in.ref);
        return;
      }
      broadcast(*room,
                proto::make("receipt", {{"consult", in.consult},
                                        {"user", c.who->username},
                                        {"delivered", marks->first},
                                        {"read", marks->second}}),
                0, true);
      return;
    }
    case Type::drive:
    case Type::view: {
      if (in.type == Type::view && room->consult.view_driver != 0 &&
          room->consult.view_driver != user) {
        send_error(conn, "not_driver", "another participant drives the shared view", in.ref);
        return;
      }
      const std::string state =
          in.type == Type::view ? json_text(in.body["state"]) : room->consult.view_state;
      auto version = b->save_view(in.consult, user, state);
      if (!version.ok()) {
        send_error(conn, "unavailable", version.error().message, in.ref);
        return;
      }
      room->consult.view_version = *version;
      room->consult.view_driver = user;
      room->consult.view_state = state;
      broadcast(*room,
                proto::make("view", {{"consult", in.consult},
                                     {"version", *version},
                                     {"driver", c.who->username},
                                     {"state", json::parse(state, nullptr, false)}}),
                0, true);
      return;
    }
    case Type::annotation: {
      const std::string at = now();
      auto id = b->add_annotation(in.consult, user, at, json_text(in.body["annotation"]));
      if (!id.ok()) {
        send_error(conn, "unavailable", id.error().message, in.ref);
        return;
      }
      broadcast(*room,
                proto::make("annotation", {{"consult", in.consult},
                                           {"id", *id},
                                           {"author", c.who->username},
                                           {"at", at},
                                           {"annotation", in.body["annotation"]}}),
                0, true);
      return;
    }
    default:
      send_error(conn, "unknown_type", "unexpected message", in.ref);
  }
}

Hub::Room* Hub::room_for(std::uint64_t conn, Conn& c, const proto::Inbound& in) {
  if (!c.rooms.count(in.consult)) {
    send_error(conn, "not_joined", "join the consult first", in.ref);
    return nullptr;
  }
  return &rooms_[in.consult];
}

void Hub::refresh_room(std::int64_t consult) {
  auto it = rooms_.find(consult);
  if (it == rooms_.end()) return;
  commit();  // the room's cached seq and view must not run ahead of a failed batch
  auto row = stores_.consults.get(consult);
  auto people = stores_.consults.participants(consult);
  if (!row.ok() || !row->has_value() || !people.ok()) return;
  Room& room = it->second;
  room.consult = **row;
  room.participants.clear();
  for (const auto& p : *people) room.participants[p.user_id] = p.role;
  broadcast(room, proto::make("consult", {{"consult", consult_summary(room.consult)}}));
  // Those no longer entitled (a consult taken by another specialist) leave the room.
  std::vector<std::uint64_t> gone;
  for (std::uint64_t conn : room.conns) {
    const Conn& c = conns_[conn];
    if (!c.who || !may_view(*c.who, room.consult, room.participants.count(c.who->user_id) > 0))
      gone.push_back(conn);
  }
  for (std::uint64_t conn : gone) {
    leave(conn, conns_[conn], consult);
    send(conn, proto::make("left", {{"consult", consult}, {"reason", "no longer entitled"}}));
  }
}

void Hub::join(std::uint64_t conn, Conn& c, const proto::Inbound& in) {
  commit();  // the replay must hold everything accepted before this join
  auto row = stores_.consults.get(in.consult);
  auto people = stores_.consults.participants(in.consult);
  if (!row.ok() || !people.ok()) {
    send_error(conn, "unavailable", "the consult cannot be read now", in.ref);
    return;
  }
  bool participant = false;
  for (const auto& p : *people) participant |= p.user_id == c.who->user_id;
  // A missing consult and one the user may not see answer alike.
  if (!row->has_value() || !may_view(*c.who, **row, participant)) {
    send_error(conn, "forbidden", "no consult you may join has this id", in.ref);
    audit(c, "consult.join", "consult", in.consult, "denied");
    return;
  }
  auto [it, created] = rooms_.try_emplace(in.consult);
  Room& room = it->second;
  room.consult = **row;
  room.participants.clear();
  for (const auto& p : *people) room.participants[p.user_id] = p.role;
  std::map<std::int64_t, std::string> before;
  before[in.consult] = presence_of(room, c.who->user_id);
  room.conns.insert(conn);
  c.rooms.insert(in.consult);
  audit(c, "consult.join", "consult", in.consult, "ok");
  json members = json::array();
  for (const auto& p : *people) {
    members.push_back({{"user", p.username},
                       {"role", p.role},
                       {"presence", presence_of(room, p.user_id)},
                       {"delivered", p.delivered_seq},
                       {"read", p.read_seq}});
  }
  const std::int64_t after = in.body.value("afterSeq", std::int64_t{0});
  json out = {{"consult", consult_summary(room.consult)},
              {"lastSeq", room.consult.last_seq},
              {"afterSeq", after},
              {"participants", members},
              {"view",
               {{"version", room.consult.view_version},
                {"driver", nullptr},
                {"state", json::parse(room.consult.view_state, nullptr, false)}}}};
  for (const auto& p : *people) {
    if (p.user_id == room.consult.view_driver) out["view"]["driver"] = p.username;
  }
  auto saved = stores_.consults.annotations(in.consult);
  json annotations = json::array();
  if (saved.ok()) {
    for (const auto& a : *saved) {
      annotations.push_back({{"id", a.id},
                             {"author", a.author},
                             {"at", a.at},
                             {"annotation", json::parse(a.body, nullptr, false)}});
    }
  }
  out["annotations"] = annotations;
  if (!in.ref.empty()) out["ref"] = in.ref;
  send(conn, proto::make("joined", out));
  replay(conn, in.consult, after);
  presence_changed(c.who->user_id, c.who->username, {in.consult}, before);
}

void Hub::replay(std::uint64_t conn, std::int64_t consult, std::int64_t after) {
  auto missed = stores_.consults.messages(consult, after, proto::kReplayPage + 1);
  if (!missed.ok()) {
    send_error(conn, "unavailable", "history cannot be read now", "");
    return;
  }
  const bool more = missed->size() > static_cast<std::size_t>(proto::kReplayPage);
  if (more) missed->pop_back();
  for (const auto& m : *missed) send(conn, proto::make("chat", chat_json(m)));
  send(conn, proto::make("replayed", {{"consult", consult},
                                      {"upToSeq", missed->empty() ? after : missed->back().seq},
                                      {"more", more}}));
}

void Hub::leave(std::uint64_t conn, Conn& c, std::int64_t consult) {
  auto it = rooms_.find(consult);
  if (it == rooms_.end()) return;
  std::map<std::int64_t, std::string> before;
  if (c.who) before[consult] = presence_of(it->second, c.who->user_id);
  it->second.conns.erase(conn);
  c.rooms.erase(consult);
  if (c.who) presence_changed(c.who->user_id, c.who->username, {consult}, before);
  if (it->second.conns.empty()) rooms_.erase(it);
}

void Hub::drop(std::uint64_t conn) {
  auto it = conns_.find(conn);
  if (it == conns_.end()) return;
  const std::set<std::int64_t> rooms = it->second.rooms;
  for (std::int64_t r : rooms) leave(conn, it->second, r);
  for (auto cr = case_rooms_.begin(); cr != case_rooms_.end();) {
    cr->second.erase(conn);
    cr = cr->second.empty() ? case_rooms_.erase(cr) : std::next(cr);
  }
  conns_.erase(it);
  unauthenticated_.erase(conn);
  std::lock_guard lock(mu_);
  --counters_.connections;
  if (counters_.authenticated > 0) --counters_.authenticated;
}

std::string Hub::presence_of(const Room& room, std::int64_t user) const {
  bool any = false, active = false;
  for (std::uint64_t conn : room.conns) {
    auto it = conns_.find(conn);
    if (it == conns_.end() || !it->second.who || it->second.who->user_id != user) continue;
    any = true;
    active |= !it->second.away;
  }
  return !any ? "offline" : (active ? "online" : "away");
}

void Hub::presence_changed(std::int64_t user, const std::string& username,
                           const std::set<std::int64_t>& rooms,
                           const std::map<std::int64_t, std::string>& before) {
  for (std::int64_t r : rooms) {
    auto it = rooms_.find(r);
    if (it == rooms_.end()) continue;
    const std::string status = presence_of(it->second, user);
    auto was = before.find(r);
    if (was != before.end() && was->second == status) continue;
    broadcast(it->second,
              proto::make("presence", {{"consult", r}, {"user", username}, {"status", status}}));
  }
}

void Hub::housekeeping() {
  const auto now = clock_();
  if (now >= next_clock_check_) {
    next_clock_check_ = now + std::chrono::seconds(1);
    check_clocks();
  }
  if (now >= next_referral_check_) {  // unanswered referrals escalate (checked each minute)
    next_referral_check_ = now + std::chrono::seconds(60);
    auto overdue = stores_.referrals.escalate_referrals(this->now());
    if (overdue.ok()) {
      for (const auto& r : *overdue) notify_referral(r, "referral_overdue");
    }
  }
  // Only connections still waiting for hello are looked at (not all of them, every wake-up).
  for (auto it = unauthenticated_.begin(); it != unauthenticated_.end();) {
    auto c = conns_.find(*it);
    if (c == conns_.end() || c->second.who) {
      it = unauthenticated_.erase(it);
      continue;
    }
    if (now - c->second.opened > options_.hello_timeout) {
      send_error(*it, "unauthenticated", "no hello in time", "");
      transport_->close(*it, kCloseUnauthenticated, "unauthenticated");
      it = unauthenticated_.erase(it);  // closed once; the transport reports the close
      continue;
    }
    ++it;
  }
  if (now < next_revalidation_) return;
  next_revalidation_ = now + std::chrono::seconds(1);
  // Logged out, expired or disabled meanwhile: the live session ends too. Each second a slice
  // of the connections is re-checked, so every one is within `revalidate_every` and no
  // second pays for all of them at once.
  const auto per_second = std::max<std::size_t>(
      1, conns_.size() /
                 static_cast<std::size_t>(std::max<long>(1, options_.revalidate_every.count())) +
             1);
  auto it = conns_.upper_bound(revalidate_cursor_);
  for (std::size_t n = 0; n < per_second && !conns_.empty(); ++n) {
    if (it == conns_.end()) it = conns_.begin();
    revalidate_cursor_ = it->first;
    Conn& c = it->second;
    if (c.who && !authenticate_(c.authorization).ok()) {
      send_error(it->first, "session_ended", "the session has ended; log in again", "");
      transport_->close(it->first, kCloseSessionEnded, "session ended");
      c.who.reset();
    }
    ++it;
  }
}

void Hub::notify(const std::function<bool(const Principal&)>& who, const std::string& kind,
                 const json& payload) {
  if (!sources_.users) return;
  auto users = sources_.users();
  if (!users.ok()) {
    spdlog::error("teleconsult: cannot list users to notify: {}", users.error().message);
    return;
  }
  const std::string at = now();
  std::map<std::int64_t, std::string> sent;  // user -> message
  for (const Principal& p : *users) {
    if (!who(p)) continue;
    auto id = stores_.notifications.notify(p.user_id, kind, json_text(payload), at);
    if (!id.ok()) {
      spdlog::error("teleconsult: notification for {} not stored: {}", p.username,
                    id.error().message);
      continue;
    }
    sent[p.user_id] = proto::make("notification",
                                  {{"id", *id}, {"kind", kind}, {"at", at}, {"payload", payload}});
  }
  for (const auto& [conn, c] : conns_) {
    if (!c.who) continue;
    if (auto it = sent.find(c.who->user_id); it != sent.end()) send(conn, it->second);
  }
}

// Only the newest few are replayed: a user back after a long absence must not get thousands of
// frames at connect (the welcome says how many are pending; the rest are paged over REST).
void Hub::send_pending_notifications(std::uint64_t conn, const Conn& c) {
  auto pending =
      stores_.notifications.pending_notifications(c.who->user_id, kNotificationsReplayedAtHello);
  if (!pending.ok()) return;
  for (auto it = pending->rbegin(); it != pending->rend(); ++it) {
    const teleconsult::NotificationRow& n = *it;
    send(conn, proto::make("notification", {{"id", n.id},
                                            {"kind", n.kind},
                                            {"at", n.created_at},
                                            {"payload", json::parse(n.payload, nullptr, false)}}));
  }
}

namespace {

// Readers who would claim this task (the queue's own rule, identity/policy.h).
bool reads(const Principal& p, const reading::TaskRow& t) {
  return identity::reads_task(p, {t.institution_id, t.is_ecg, t.service});
}

}  // namespace

Result<teleconsult::CaseRow> Hub::open_case_for_task(const reading::TaskRow& t,
                                                     const std::string& kind,
                                                     const std::string& source,
                                                     const std::string& reason,
                                                     const std::string& point) {
  teleconsult::CaseRow c;
  c.kind = kind;
  c.institution_id = t.institution_id;
  c.patient_id = t.patient_id;
  c.patient_name = t.patient_name;
  c.study_uid = t.study_uid;
  c.source = source;
  c.reason = reason;
  c.opened_by = "automated";
  c.opened_at = now();
  bool existed = false;
  auto row = stores_.cases.open_case(c, existed);
  if (!row.ok()) return row.error();
  if (!existed) {
    // When the study reached the hub is the first time point the system knows itself.
    teleconsult::TimePointRow tp{0, point, t.received_at, "system", now(), "study received"};
    if (Status s = stores_.cases.record_time_point(row->id, tp); !s) return s.error();
    publish_case(row->id, true);
  }
  return row;
}

void Hub::handle_task_event(std::int64_t task, const std::string& type, const std::string& detail) {
  if (!sources_.task) return;
  auto row = sources_.task(task);
  if (!row.ok() || !row->has_value()) return;
  const reading::TaskRow t = **row;
  // Open worklists and township screens follow every change of the tasks their user sees.
  const std::string live = proto::make(
      "task", {{"task", t.id},
               {"event", type},
               {"status", t.status},
               {"priority", reading::priority_name(static_cast<reading::Priority>(t.priority))},
               {"claimedBy", t.claimed_by_name}});
  for (const auto& [conn, c] : conns_) {
    if (!c.who) continue;
    const bool own =
        c.who->institution_id == t.institution_id && identity::has_clinical_role(*c.who);
    if (own || reads(*c.who, t)) send(conn, live);
  }
  const json about = {{"task", t.id},
                      {"studyInstanceUid", t.study_uid},
                      {"institution", t.institution_code},
                      {"modalities", t.modality},
                      {"patient", {{"id", t.patient_id}, {"name", t.patient_name}}},
                      {"reason", t.priority_reason}};
  if (type == "routed" && t.priority == 0) {
    notify([&t](const Principal& p) { return reads(p, t); }, "stat_task", about);
  }
  // Suspected STEMI opens a chest-pain case; a STAT stroke CT a stroke case (emergency_rules).
  if (auto trigger = case_trigger({type, t.priority, t.modality, t.priority_reason, detail})) {
    auto c = open_case_for_task(t, trigger->kind, trigger->source, trigger->reason, trigger->point);
    if (!c.ok()) {
      spdlog::error("teleconsult: no {} case for task {}: {}", trigger->kind, task,
                    c.error().message);
    }
  }
  if (type == "critical_sent") {
    notify(
        [&t](const Principal& p) {
          return p.institution_id == t.institution_id && identity::has_clinical_role(p);
        },
        "critical_result", about);
  }
}

void Hub::publish_case(std::int64_t case_id, bool opened) {
  auto row = stores_.cases.get_case(case_id);
  if (!row.ok() || !row->has_value()) return;
  const teleconsult::CaseRow c = **row;
  if (opened) {
    notify([&c](const Principal& p) { return may_see_case(p, c); }, "emergency",
           {{"case", c.id},
            {"kind", c.kind},
            {"institution", c.institution_code},
            {"patient", {{"id", c.patient_id}, {"name", c.patient_name}}},
            {"source", c.source},
            {"reason", c.reason}});
  }
  auto room = case_rooms_.find(case_id);
  if (room == case_rooms_.end()) return;
  auto view = case_view(stores_.cases, c, clock_());
  if (!view.ok()) return;
  const std::string text = proto::make("case", {{"case", *view}});
  for (std::uint64_t conn : room->second) send(conn, text);
}

void Hub::notify_referral(const teleconsult::ReferralRow& r, const std::string& kind) {
  notify(
      [&r](const Principal& p) {
        return works_at(p, r.from_institution) || works_at(p, r.to_institution);
      },
      kind,
      {{"referral", r.id},
       {"status", r.status},
       {"direction", r.direction},
       {"urgency", r.urgency},
       {"from", r.from_code},
       {"to", r.to_code},
       {"slotDate", r.slot_date.empty() ? json(nullptr) : json(r.slot_date)},
       {"patient", {{"id", r.patient_id}, {"name", r.patient_name}}}});
}

// Once a second: intervals that have just passed their target are announced once, to the
// case's followers and, as a notification, to everyone who may see the case; every 30 s the
// followers get the running clocks.
void Hub::check_clocks() {
  auto open = stores_.cases.open_cases();
  if (!open.ok()) return;
  const auto steady = clock_();
  const bool push = steady >= next_clock_push_;
  if (push) next_clock_push_ = steady + std::chrono::seconds(30);
  for (const teleconsult::CaseRow& c : *open) {
    auto records = stores_.cases.time_points(c.id);
    if (!records.ok()) continue;
    for (const auto& s : evaluate(c.kind, current_points(*records), clock_())) {
      if (s.status != "breached" || !announced_breaches_.insert({c.id, s.spec.name}).second)
        continue;
      const json breach = {{"case", c.id},
                           {"kind", c.kind},
                           {"interval", s.spec.name},
                           {"targetMinutes", s.spec.target_minutes},
                           {"minutes", s.minutes ? json(*s.minutes) : json(nullptr)},
                           {"patient", {{"id", c.patient_id}, {"name", c.patient_name}}}};
      if (auto room = case_rooms_.find(c.id); room != case_rooms_.end()) {
        for (std::uint64_t conn : room->second) send(conn, proto::make("case.breach", breach));
      }
      notify([&c](const Principal& p) { return may_see_case(p, c); }, "breach", breach);
    }
    if (push && case_rooms_.count(c.id)) publish_case(c.id, false);
  }
}

}  // namespace yilian::teleconsult
