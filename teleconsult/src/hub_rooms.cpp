// The hub's consult rooms: joining, replay, presence and the messages inside a room.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "case_view.h"
#include "emergency_cases.h"
#include "hub_internal.h"
#include "yilian/common/text.h"
#include "yilian/identity/policy.h"
#include "yilian/teleconsult/consult_rules.h"
#include "yilian/teleconsult/emergency_rules.h"
#include "yilian/teleconsult/hub.h"

namespace yilian::teleconsult {

using namespace hub_detail;  // NOLINT(google-build-using-namespace)

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
  // Every node refreshes its own copy of the room (the change is relayed, not this message).
  broadcast(room, proto::make("consult", {{"consult", consult_summary(room.consult)}}), 0, false,
            /*local=*/true);
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
    send_error(conn, "not_found", "no consult you may join has this id", in.ref);
    audit(c, "consult.join", "consult", in.consult, "denied");
    return;
  }
  auto [it, created] = rooms_.try_emplace(in.consult);
  Room& room = it->second;
  room.consult = **row;
  room.participants.clear();
  for (const auto& p : *people) room.participants[p.user_id] = p.role;
  std::map<std::int64_t, std::string> before;
  before[in.consult] = local_presence(room, c.who->user_id);
  room.conns.insert(conn);
  c.rooms.insert(in.consult);
  audit(c, "consult.join", "consult", in.consult, "ok");
  json members = json::array();
  for (const auto& p : *people) {
    members.push_back({{"user", p.username},
                       {"role", p.role},
                       {"presence", presence_of(in.consult, p.user_id)},
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
  if (!missed->empty()) {
    if (auto c = conns_.find(conn); c != conns_.end()) {
      std::int64_t& mark = c->second.replayed[consult];
      mark = std::max(mark, missed->back().seq);
    }
  }
  send(conn, proto::make("replayed", {{"consult", consult},
                                      {"upToSeq", missed->empty() ? after : missed->back().seq},
                                      {"more", more}}));
}

void Hub::leave(std::uint64_t conn, Conn& c, std::int64_t consult) {
  auto it = rooms_.find(consult);
  if (it == rooms_.end()) return;
  std::map<std::int64_t, std::string> before;
  if (c.who) before[consult] = local_presence(it->second, c.who->user_id);
  it->second.conns.erase(conn);
  c.rooms.erase(consult);
  c.replayed.erase(consult);
  if (c.who) presence_changed(c.who->user_id, c.who->username, {consult}, before);
  if (it->second.conns.empty()) rooms_.erase(it);
}

void Hub::drop(std::uint64_t conn) {
  auto it = conns_.find(conn);
  if (it == conns_.end()) return;
  const std::set<std::int64_t> rooms = it->second.rooms;
  for (std::int64_t r : rooms) leave(conn, it->second, r);
  cases_->forget(conn);
  const Conn& c = it->second;
  if (c.counted_address) {
    auto a = per_address_.find(c.peer);
    if (a != per_address_.end() && --a->second == 0) per_address_.erase(a);
  }
  if (c.counted_user && c.who) {
    auto u = per_user_.find(c.who->user_id);
    if (u != per_user_.end() && --u->second == 0) per_user_.erase(u);
  }
  const bool was_authenticated = c.who.has_value();
  conns_.erase(it);
  unauthenticated_.erase(conn);
  std::lock_guard lock(mu_);
  --counters_.connections;
  if (was_authenticated && counters_.authenticated > 0) --counters_.authenticated;
}

namespace {

int rank(const std::string& status) { return status == "online" ? 2 : status == "away" ? 1 : 0; }
const std::string& strongest(const std::string& a, const std::string& b) {
  return rank(a) >= rank(b) ? a : b;
}
std::string presence_message(std::int64_t consult, const std::string& user,
                             const std::string& status) {
  return proto::make("presence", {{"consult", consult}, {"user", user}, {"status", status}});
}

}  // namespace

std::string Hub::local_presence(const Room& room, std::int64_t user) const {
  bool any = false, active = false;
  for (std::uint64_t conn : room.conns) {
    auto it = conns_.find(conn);
    if (it == conns_.end() || !it->second.who || it->second.who->user_id != user) continue;
    any = true;
    active |= !it->second.away;
  }
  return !any ? "offline" : (active ? "online" : "away");
}

std::string Hub::remote_presence(std::int64_t consult, std::int64_t user) const {
  std::string out = "offline";
  auto room = remote_presence_.find(consult);
  if (room == remote_presence_.end()) return out;
  auto who = room->second.find(user);
  if (who == room->second.end()) return out;
  for (const auto& [node, status] : who->second.nodes) out = strongest(out, status);
  return out;
}

std::string Hub::presence_of(std::int64_t consult, std::int64_t user) const {
  auto room = rooms_.find(consult);
  const std::string here = room == rooms_.end() ? "offline" : local_presence(room->second, user);
  return strongest(here, remote_presence(consult, user));
}

bool Hub::present_elsewhere(std::int64_t consult, const std::string& username) const {
  auto room = remote_presence_.find(consult);
  if (room == remote_presence_.end()) return false;
  for (const auto& [user, p] : room->second) {
    if (p.name == username && !p.nodes.empty()) return true;
  }
  return false;
}

// The room hears a change of the user's presence over all nodes; the other nodes hear the
// change of the user's presence here.
void Hub::presence_changed(std::int64_t user, const std::string& username,
                           const std::set<std::int64_t>& rooms,
                           const std::map<std::int64_t, std::string>& before) {
  json announce = json::array();
  for (std::int64_t r : rooms) {
    auto it = rooms_.find(r);
    if (it == rooms_.end()) continue;
    const std::string here = local_presence(it->second, user);
    auto was = before.find(r);
    const std::string was_here = was == before.end() ? "offline" : was->second;
    if (was_here == here) continue;
    announce.push_back(json::array({r, user, username, here}));
    const std::string elsewhere = remote_presence(r, user);
    const std::string& now_status = strongest(here, elsewhere);
    if (now_status != strongest(was_here, elsewhere))
      broadcast(it->second, presence_message(r, username, now_status), 0, false, /*local=*/true);
  }
  if (!announce.empty()) relay({{"k", "presence"}, {"node", node_}, {"p", announce}});
}

void Hub::on_remote_presence(const std::string& node, const json& entries, bool all) {
  if (node.empty() || node == node_ || !entries.is_array()) return;
  // Each touched (consult, user) with its name and its presence before.
  std::map<std::pair<std::int64_t, std::int64_t>, std::pair<std::string, std::string>> touched;
  auto note = [&](std::int64_t r, std::int64_t u, const std::string& name) {
    touched.try_emplace({r, u}, name, presence_of(r, u));
  };
  // Forgets what `node` had announced for (r, u), and the entries left empty.
  auto drop = [&](std::int64_t r, std::int64_t u) {
    auto room = remote_presence_.find(r);
    if (room == remote_presence_.end()) return;
    if (auto who = room->second.find(u); who != room->second.end()) {
      who->second.nodes.erase(node);
      if (who->second.nodes.empty()) room->second.erase(who);
    }
    if (room->second.empty()) remote_presence_.erase(room);
  };
  if (all) {
    std::vector<std::pair<std::int64_t, std::int64_t>> held;
    for (const auto& [r, users] : remote_presence_) {
      for (const auto& [u, p] : users) {
        if (!p.nodes.count(node)) continue;
        note(r, u, p.name);
        held.emplace_back(r, u);
      }
    }
    for (const auto& [r, u] : held) drop(r, u);
  }
  for (const json& e : entries) {
    if (!e.is_array() || e.size() != 4 || !e[0].is_number_integer() || !e[1].is_number_integer() ||
        !e[2].is_string() || !e[3].is_string())
      continue;
    const std::int64_t r = e[0], u = e[1];
    const std::string name = e[2], status = e[3];
    note(r, u, name);
    if (rank(status) > 0) {
      RemotePresence& p = remote_presence_[r][u];
      p.name = name;
      p.nodes[node] = status;
    } else {
      drop(r, u);
    }
  }
  for (const auto& [key, was] : touched) {
    auto room = rooms_.find(key.first);
    const std::string now_status = presence_of(key.first, key.second);
    if (room != rooms_.end() && now_status != was.second)
      broadcast(room->second, presence_message(key.first, was.first, now_status), 0, false,
                /*local=*/true);
  }
}

void Hub::exchange_presence() {
  const std::vector<std::string> listed = peers_();
  const std::set<std::string> current(listed.begin(), listed.end());
  bool appeared = false;
  for (const std::string& p : current) appeared |= !known_peers_.count(p);
  for (const std::string& p : known_peers_) {
    if (!current.count(p)) on_remote_presence(p, json::array(), /*all=*/true);
  }
  known_peers_ = current;
  if (!appeared) return;
  json all = json::array();
  for (const auto& [id, room] : rooms_) {
    std::map<std::int64_t, std::string> users;
    for (std::uint64_t conn : room.conns) {
      auto c = conns_.find(conn);
      if (c != conns_.end() && c->second.who)
        users[c->second.who->user_id] = c->second.who->username;
    }
    for (const auto& [user, name] : users)
      all.push_back(json::array({id, user, name, local_presence(room, user)}));
  }
  relay({{"k", "presence"}, {"node", node_}, {"p", all}, {"all", true}});
}

// Messages inside a consult room: leave, history, typing and signalling for whoever is in the
// room; chat, receipts, the shared view and annotations (durable, in the open batch) for its
// participants.
void Hub::on_room_message(std::uint64_t conn, Conn& c, const proto::Inbound& in) {
  using proto::Type;
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
      // With several nodes the peer may be connected to another one: it gets the signal there.
      if (!delivered && relay_ && present_elsewhere(in.consult, to)) {
        relay({{"k", "rtc"}, {"id", in.consult}, {"to", to}, {"t", text}});
      } else if (!delivered) {
        send_error(conn, "peer_offline", to + " is not in the room", in.ref);
      }
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
      // Stored with the turn's other chat, in one go, before the batch commits (store_chat).
      chats_.push_back({conn, in.ref, std::move(m)});
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
      const std::string text = proto::make("view", {{"consult", in.consult},
                                                    {"version", *version},
                                                    {"driver", c.who->username},
                                                    {"state", json::parse(state, nullptr, false)}});
      broadcast(*room, text, 0, true, /*local=*/true);
      // The other nodes reload their copy of the consult (its driver and state) before passing
      // the change on, so that the driver rule holds wherever a participant is connected.
      relay({{"k", "room"}, {"id", in.consult}, {"t", text}, {"reload", true}}, /*staged=*/true);
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

// The turn's chat, stored at once (one round trip on PostgreSQL); each message then goes to its
// room after the commit, or its sender learns it was not saved.
void Hub::store_chat() {
  if (chats_.empty()) return;
  std::vector<PendingChat> chats;
  chats.swap(chats_);
  teleconsult::ConsultStore::Batch* b = batch();
  std::vector<teleconsult::ChatMessage> ms;
  ms.reserve(chats.size());
  for (const PendingChat& p : chats) ms.push_back(p.message);
  std::vector<teleconsult::ConsultStore::Batch::Appended> saved;
  if (b && relay_ && locked_batch_ != batch_serial_) {
    // This turn committed in the middle (a join's replay): the consults locked up front were
    // released, and the multi-row update below would take them in no particular order.
    std::vector<std::int64_t> ids;
    for (const PendingChat& p : chats) ids.push_back(p.message.consult_id);
    if (!b->lock_consults(std::move(ids)).ok())
      spdlog::warn("teleconsult: could not lock the consults of this turn's chat first");
  }
  if (b) saved = b->append_messages(std::move(ms));
  for (std::size_t i = 0; i < chats.size(); ++i) {
    const PendingChat& p = chats[i];
    if (!b || !saved[i].message.ok()) {
      send_error(p.conn, "unavailable",
                 b ? saved[i].message.error().message : "the message could not be saved", p.ref);
      continue;
    }
    json out = chat_json(*saved[i].message);
    out["from"] = p.message.author;
    if (saved[i].duplicate) {  // a resend after a lost answer: tell the sender its seq only
      out["duplicate"] = true;
      staged_.on_commit.emplace_back(p.conn, proto::make("chat", out));
      continue;
    }
    {
      std::lock_guard lock(mu_);
      ++counters_.chat_messages;
    }
    const std::string text = proto::make("chat", out);
    if (auto room = rooms_.find(p.message.consult_id); room != rooms_.end()) {
      room->second.consult.last_seq = saved[i].message->seq;
      broadcast(room->second, text, 0, true, false, saved[i].message->seq);
    } else {  // everyone here left the room this turn: the other nodes' members still get it
      relay(room_envelope(p.message.consult_id, text, saved[i].message->seq), true);
    }
    staged_.on_failure.emplace_back(
        p.conn, proto::error("unavailable", "the message was not saved; send it again", p.ref));
  }
}

void Hub::on_presence(Conn& c, const proto::Inbound& in) {
  std::map<std::int64_t, std::string> before;
  for (std::int64_t r : c.rooms) before[r] = local_presence(rooms_[r], c.who->user_id);
  c.away = in.body["status"] == "away";
  presence_changed(c.who->user_id, c.who->username, c.rooms, before);
}

}  // namespace yilian::teleconsult
