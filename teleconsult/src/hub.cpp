#include "yilian/teleconsult/hub.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <iterator>
#include <set>

#include "emergency_cases.h"
#include "hub_internal.h"
#include "notifier.h"
#include "yilian/common/text.h"
#include "yilian/identity/policy.h"
#include "yilian/reading/queue_rules.h"
#include "yilian/teleconsult/consult_rules.h"
#include "yilian/teleconsult/emergency_rules.h"
#include "yilian/teleconsult/referral_rules.h"

namespace yilian::teleconsult {

using namespace hub_detail;  // NOLINT(google-build-using-namespace)

namespace hub_detail {

// The hub's connections, as its parts see them.
class HubOutbox : public Outbox {
 public:
  explicit HubOutbox(Hub& hub) : hub_(hub) {}
  void send(std::uint64_t conn, std::string text) override { hub_.send(conn, std::move(text)); }
  void each_user_connection(
      const std::function<void(std::uint64_t, const Principal&)>& f) override {
    for (const auto& [conn, c] : hub_.conns_) {
      if (c.who) f(conn, *c.who);
    }
  }
  void relay(const json& envelope) override { hub_.relay(envelope); }

 private:
  Hub& hub_;
};

}  // namespace hub_detail

Hub::Hub(Stores stores, Authenticate authenticate, identity::Auditor* auditor, storage::Clock clock,
         HubOptions options)
    : stores_(stores),
      authenticate_(std::move(authenticate)),
      auditor_(auditor),
      clock_(std::move(clock)),
      options_(options),
      outbox_(std::make_unique<HubOutbox>(*this)),
      notifier_(std::make_unique<Notifier>(stores_.notifications, sources_, *outbox_, clock_)),
      cases_(std::make_unique<EmergencyCases>(stores_.cases, *notifier_, *outbox_, clock_,
                                              options_.alert_escalation, options_.case_targets)) {}

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

void Hub::relayed(std::string envelope) {
  {
    std::lock_guard lock(mu_);
    inbox_.push_back({Item::relayed, 0, std::move(envelope), {}, 0});
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
      if (deferred_.empty())
        cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stop_ || !inbox_.empty(); });
      if (stop_) return;
      items.swap(inbox_);
    }
    // The items the last turn put off go first, in their order; this time their consults are
    // waited for.
    const std::size_t retried = deferred_.size();
    items.insert(items.begin(), std::make_move_iterator(deferred_.begin()),
                 std::make_move_iterator(deferred_.end()));
    deferred_.clear();
    turn(items, retried);
    commit();
    housekeeping();
  }
}

// One turn over what arrived. With several nodes, the consults this turn's batch will change
// are locked up front, in id order: another node's batch taking the same rooms in another
// order would otherwise deadlock with this one. A consult another node's batch holds is not
// waited for the first time: its messages (and everything after them from the same
// connections, which stays in order) wait for the next turn, so that the hub thread goes on
// with the other rooms and with what other nodes relayed instead of idling on a row lock.
void Hub::turn(std::deque<Item>& items, std::size_t retried) {
  std::vector<proto::Parsed> parsed(items.size());
  std::vector<std::int64_t> wait, skip;
  std::vector<bool> changes_consult(items.size(), false);
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (items[i].kind != Item::message) continue;
    parsed[i] = proto::parse(items[i].text);
    const auto& m = parsed[i].message;
    if (m && m->consult != 0 &&
        (m->type == proto::Type::chat || m->type == proto::Type::view ||
         m->type == proto::Type::drive || m->type == proto::Type::annotation)) {
      changes_consult[i] = true;
      (i < retried ? wait : skip).push_back(m->consult);
    }
  }
  // What other nodes relayed is committed already: it goes out before this turn's locks.
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (items[i].kind == Item::relayed) handle(items[i], parsed[i]);
  }
  std::set<std::int64_t> taken;
  bool skipping = false;
  if (relay_ && (!wait.empty() || !skip.empty())) {
    if (auto* b = batch()) {
      if (!wait.empty() && !b->lock_consults(wait).ok())
        spdlog::warn("teleconsult: could not lock this turn's consults first");
      if (!skip.empty()) {
        auto got = b->lock_consults(skip, /*wait=*/false);
        skipping = got.ok();
        if (got.ok()) taken.insert(got->begin(), got->end());
      }
      locked_batch_ = batch_serial_;
    }
  }
  std::set<std::uint64_t> put_off;  // connections with an item in deferred_
  for (std::size_t i = 0; i < items.size(); ++i) {
    Item& item = items[i];
    if (item.kind == Item::relayed) continue;
    const bool held = skipping && i >= retried && changes_consult[i] &&
                      !taken.contains(parsed[i].message->consult);
    if (held || (item.conn != 0 && put_off.contains(item.conn))) {
      put_off.insert(item.conn);
      deferred_.push_back(std::move(item));
      continue;
    }
    handle(item, parsed[i]);
  }
  if (!deferred_.empty()) {
    std::lock_guard lock(mu_);
    counters_.deferred += deferred_.size();
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
    ++batch_serial_;
  }
  return batch_.get();
}

void Hub::commit() {
  store_chat();
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
  if (s && relay_) {
    for (auto& envelope : staged_.relay_on_commit) relay_(std::move(envelope));
  }
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

void Hub::broadcast(const Room& room, const std::string& text, std::uint64_t except, bool staged,
                    bool local, std::int64_t seq) {
  for (std::uint64_t c : room.conns) {
    if (c == except) continue;
    if (seq > 0) {
      auto conn = conns_.find(c);
      if (conn != conns_.end()) {
        auto mark = conn->second.replayed.find(room.consult.id);
        if (mark != conn->second.replayed.end() && mark->second >= seq) continue;
      }
    }
    if (staged) {
      staged_.on_commit.emplace_back(c, text);
    } else {
      send(c, text);
    }
  }
  if (!local) relay(room_envelope(room.consult.id, text, seq), staged);
}

void Hub::relay(const json& envelope, bool staged) {
  if (!relay_) return;
  if (staged) {
    staged_.relay_on_commit.push_back(json_text(envelope));
  } else {
    relay_(json_text(envelope));
  }
}

// An envelope from another node: its messages go to this node's connections only.
void Hub::on_relayed(const std::string& text) {
  const json e = json::parse(text, nullptr, false);
  if (!e.is_object() || !e.contains("k")) return;
  const std::string kind = e.value("k", std::string());
  const std::int64_t id = e.value("id", std::int64_t{0});
  if (kind == "room") {
    auto it = rooms_.find(id);
    if (it == rooms_.end()) return;
    const std::string t = e.value("t", std::string());
    // A shared-view change moves the driver: this node's copy of the consult follows.
    if (e.value("reload", false)) {
      if (auto row = stores_.consults.get(id); row.ok() && row->has_value())
        it->second.consult = **row;
    }
    broadcast(it->second, t, 0, false, /*local=*/true, e.value("seq", std::int64_t{0}));
  } else if (kind == "rtc") {
    auto it = rooms_.find(id);
    if (it == rooms_.end()) return;
    const std::string to = e.value("to", std::string());
    for (std::uint64_t c : it->second.conns) {
      auto conn = conns_.find(c);
      if (conn != conns_.end() && conn->second.who && conn->second.who->username == to)
        send(c, e.value("t", std::string()));
    }
  } else if (kind == "users") {
    const json& m = e["m"];
    if (!m.is_object()) return;
    for (const auto& [conn, c] : conns_) {
      if (!c.who) continue;
      auto it = m.find(std::to_string(c.who->user_id));
      if (it != m.end() && it->is_string()) send(conn, it->get<std::string>());
    }
  } else if (kind == "case") {
    cases_->to_followers(id, e.value("t", std::string()), /*local=*/true);
  } else if (kind == "task") {
    if (!sources_.task) return;
    auto row = sources_.task(id);
    if (row.ok() && row->has_value()) task_live(**row, e.value("type", std::string()));
  } else if (kind == "consult") {
    refresh_room(id);
  } else if (kind == "presence") {
    on_remote_presence(e.value("node", std::string()), e.value("p", json::array()),
                       e.value("all", false));
  }
}

namespace {
std::string rate_text(double per_second) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", per_second);
  return buf;
}
}  // namespace

void Hub::handle(const Item& item, const proto::Parsed& parsed) {
  switch (item.kind) {
    case Item::open: {
      Conn& c = conns_[item.conn];
      c.peer = item.peer;
      c.opened = clock_();
      c.messages = net::TokenBucket(options_.messages_per_second, options_.message_burst);
      unauthenticated_.insert(item.conn);
      {
        std::lock_guard lock(mu_);
        ++counters_.connections;
      }
      std::size_t& from_address = per_address_[c.peer];
      if (options_.max_connections_per_address > 0 &&
          from_address >= options_.max_connections_per_address) {
        refuse(item.conn, "too many connections from this address");
        return;
      }
      ++from_address;
      c.counted_address = true;
      if (!item.text.empty()) authenticate(item.conn, c, item.text);
      return;
    }
    case Item::close:
      drop(item.conn);
      return;
    case Item::changed:
      refresh_room(item.consult);
      relay({{"k", "consult"}, {"id", item.consult}});
      return;
    case Item::relayed:
      on_relayed(item.text);
      return;
    case Item::requested: {
      auto row = stores_.consults.get(item.consult);
      if (row.ok() && row->has_value()) notifier_->consult_requested(**row);
      return;
    }
    case Item::case_update:
      cases_->publish(item.consult, item.flag);
      return;
    case Item::task:
      on_task_event(item.consult, item.text, item.peer);
      return;
    case Item::referral: {
      auto row = stores_.referrals.get_referral(item.consult);
      if (row.ok() && row->has_value()) notifier_->referral(**row, "referral");
      return;
    }
    case Item::message:
      break;
  }
  auto it = conns_.find(item.conn);
  if (it == conns_.end()) return;
  Conn& c = it->second;
  if (c.refused) return;
  {
    std::lock_guard lock(mu_);
    ++counters_.messages_in;
  }
  if (const storage::TimePoint now = clock_(); !c.messages.take(now)) {
    {
      std::lock_guard lock(mu_);
      ++counters_.rate_limited;
    }
    if (!c.told_limited || now - *c.told_limited >= std::chrono::seconds(1)) {
      c.told_limited = now;
      send_error(item.conn, "rate_limited",
                 "too many messages: at most " + rate_text(options_.messages_per_second) +
                     " a second; this one was dropped",
                 parsed.message ? parsed.message->ref : std::string());
    }
    return;
  }
  const proto::Parsed& p = parsed;
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
  std::size_t& of_user = per_user_[who->user_id];
  if (options_.max_connections_per_user > 0 && of_user >= options_.max_connections_per_user) {
    unauthenticated_.erase(conn);
    refuse(conn, "too many connections of this user (" +
                     std::to_string(options_.max_connections_per_user) +
                     "); close another tab or device");
    return;
  }
  ++of_user;
  c.counted_user = true;
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
  if (pending.ok() && *pending > 0) notifier_->replay_pending(conn, c.who->user_id);
}

void Hub::refuse(std::uint64_t conn, const std::string& message) {
  if (auto it = conns_.find(conn); it != conns_.end()) it->second.refused = true;
  unauthenticated_.erase(conn);
  {
    std::lock_guard lock(mu_);
    ++counters_.refused_connections;
  }
  send_error(conn, "too_many_connections", message, "");
  transport_->close(conn, kCloseTooMany, "too many connections");
}

// Every message type goes to its handler; only ping and hello come before authentication.
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
  switch (in.type) {
    case Type::presence:
      on_presence(c, in);
      return;
    case Type::join:
      join(conn, c, in);
      return;
    case Type::ack:
      on_ack(conn, c, in);
      return;
    case Type::case_join:
    case Type::case_leave:
      on_case_follow(conn, c, in);
      return;
    case Type::case_ack: {
      auto view = cases_->acknowledge(*c.who, in.target);
      if (!view.ok()) {
        const bool hidden = view.error().code == Errc::not_found;
        audit(c, "case.ack", "emergency_case", in.target, hidden ? "denied" : "failed");
        send_error(conn, hidden ? "not_found" : "unavailable", view.error().message, in.ref);
        return;
      }
      audit(c, "case.ack", "emergency_case", in.target, "ok");
      send(conn, proto::make("case.acked", {{"case", *view}}));
      return;
    }
    default:
      on_room_message(conn, c, in);
  }
}

void Hub::housekeeping() {
  const auto now = clock_();
  // Breaches and escalations are announced by one node of the cluster; every node pushes the
  // running clocks to its own followers.
  const bool leads = !leader_ || leader_();
  if (now >= next_clock_check_) {
    next_clock_check_ = now + std::chrono::seconds(1);
    cases_->check_clocks(leads);
    if (peers_) exchange_presence();
  }
  if (leads && now >= next_referral_check_) {  // unanswered referrals escalate (each minute)
    next_referral_check_ = now + std::chrono::seconds(60);
    auto overdue = stores_.referrals.escalate_referrals(this->now());
    if (overdue.ok()) {
      for (const auto& r : *overdue) notifier_->referral(r, "referral_overdue");
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

// Open worklists and township screens follow every change of the tasks their user sees; the
// notifier and the emergency cases react to the events that concern them.
void Hub::on_task_event(std::int64_t task, const std::string& type, const std::string& detail) {
  if (!sources_.task) return;
  auto row = sources_.task(task);
  if (!row.ok() || !row->has_value()) return;
  const reading::TaskRow t = **row;
  // The most urgent first: an emergency case and its on-call alert go out before the
  // notifications and before the worklist refresh that fans out to every open screen.
  cases_->task_event(t, type, detail);
  notifier_->task_event(t, type);
  task_live(t, type);
  relay({{"k", "task"}, {"id", t.id}, {"type", type}});
}

void Hub::task_live(const reading::TaskRow& t, const std::string& type) {
  const std::string live = proto::make(
      "task", {{"task", t.id},
               {"event", type},
               {"status", t.status},
               {"priority", reading::priority_name(static_cast<reading::Priority>(t.priority))},
               {"claimedBy", t.claimed_by_name},
               {"arriving", t.arriving},
               {"instances", t.instances}});
  for (const auto& [conn, c] : conns_) {
    if (!c.who) continue;
    const bool own =
        c.who->institution_id == t.institution_id && identity::has_clinical_role(*c.who);
    if (own || identity::reads_task(*c.who, {t.institution_id, t.is_ecg, t.service})) {
      send(conn, live);
    }
  }
}

void Hub::on_ack(std::uint64_t conn, const Conn& c, const proto::Inbound& in) {
  auto done = notifier_->acknowledge(in.target, c.who->user_id);
  if (!done.ok() || !*done) {
    send_error(conn, "not_found", "no pending notification of yours has this id", in.ref);
    return;
  }
  send(conn, proto::make("acked", {{"notification", in.target}}));
}

void Hub::on_case_follow(std::uint64_t conn, const Conn& c, const proto::Inbound& in) {
  if (in.type == proto::Type::case_leave) {
    cases_->unfollow(conn, in.target);
    send(conn, proto::make("case.left", {{"case", in.target}}));
    return;
  }
  auto view = cases_->follow(conn, *c.who, in.target);
  if (!view.ok()) {
    const bool hidden = view.error().code == Errc::not_found;
    if (hidden) audit(c, "case.follow", "emergency_case", in.target, "denied");
    send_error(conn, hidden ? "not_found" : "unavailable", view.error().message, in.ref);
    return;
  }
  audit(c, "case.follow", "emergency_case", in.target, "ok");
  send(conn, proto::make("case", {{"case", *view}}));
}

}  // namespace yilian::teleconsult
