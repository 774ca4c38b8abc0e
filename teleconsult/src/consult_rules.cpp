#include "yilian/teleconsult/consult_rules.h"

#include <algorithm>

#include "yilian/identity/crypto.h"

namespace yilian::teleconsult {
namespace {

bool contains(const std::vector<std::int64_t>& v, std::int64_t x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

Error denied(const std::string& why) { return make_error(Errc::permission_denied, why); }
Error wrong_state(const teleconsult::ConsultRow& c, const char* action) {
  return make_error(Errc::conflict,
                    std::string("cannot ") + action + " a consult that is " + c.status);
}

}  // namespace

std::vector<std::string> specialties_of(const Principal& p) {
  std::vector<std::string> out;
  if (p.has(Role::radiologist)) out.emplace_back("radiology");
  if (p.has(Role::pathologist)) out.emplace_back("pathology");
  if (p.has(Role::cardiologist)) out.emplace_back("cardiology");
  if (p.has(Role::ecg_reader)) out.emplace_back("ecg");
  return out;
}

bool is_specialty(std::string_view s) {
  return s == "radiology" || s == "pathology" || s == "cardiology" || s == "ecg";
}

bool is_urgency(std::string_view s) { return s == "routine" || s == "urgent" || s == "emergency"; }

bool may_take(const Principal& p, const teleconsult::ConsultRow& c) {
  if (c.assignee_id != 0 && c.assignee_id != p.user_id) return false;
  if (c.requester_id == p.user_id) return false;
  const auto mine = specialties_of(p);
  if (std::find(mine.begin(), mine.end(), c.specialty) == mine.end()) return false;
  return contains(served_institutions(p), c.institution_id);
}

bool may_view(const Principal& p, const teleconsult::ConsultRow& c, bool participant) {
  if (participant) return true;
  return c.status == "requested" && may_take(p, c);
}

bool is_live(const teleconsult::ConsultRow& c) {
  return c.status == "accepted" || c.status == "in_progress";
}

std::optional<Action> parse_action(std::string_view s) {
  if (s == "accept") return Action::accept;
  if (s == "start") return Action::start;
  if (s == "conclude") return Action::conclude;
  if (s == "decline") return Action::decline;
  if (s == "cancel") return Action::cancel;
  return std::nullopt;
}

std::string opinion_digest_input(const teleconsult::ConsultRow& c, const std::string& author,
                                 const std::string& at, const std::string& opinion) {
  return "consult " + std::to_string(c.id) + "\n" + author + "\n" + at + "\n" + opinion;
}

Result<teleconsult::ConsultChange> decide(Action a, const teleconsult::ConsultRow& c,
                                          const Principal& p, bool participant,
                                          const std::string& text, const std::string& now) {
  teleconsult::ConsultChange ch;
  ch.event.actor = p.username;
  const bool assignee = c.assignee_id == p.user_id && participant;
  switch (a) {
    case Action::accept:
      if (c.status != "requested") return wrong_state(c, "accept");
      if (!may_take(p, c)) return denied("this consult is not for you to take");
      ch.status = "accepted";
      ch.assignee_id = p.user_id;
      ch.event.type = "accepted";
      return ch;
    case Action::start:
      if (!assignee) return denied("only the consulting specialist starts the consult");
      if (c.status != "accepted") return wrong_state(c, "start");
      ch.status = "in_progress";
      ch.event.type = "started";
      return ch;
    case Action::conclude: {
      if (!assignee) return denied("only the consulting specialist concludes");
      if (c.status != "accepted" && c.status != "in_progress") return wrong_state(c, "conclude");
      if (text.find_first_not_of(" \t\r\n") == std::string::npos)
        return make_error(Errc::invalid_argument, "a concluded consult needs a written opinion");
      ch.status = "concluded";
      ch.opinion = text;
      ch.concluded_at = now;
      ch.opinion_sha256 = identity::sha256_hex(opinion_digest_input(c, p.username, now, text));
      ch.event.type = "concluded";
      ch.event.detail = "opinion signed, sha256 " + *ch.opinion_sha256;
      return ch;
    }
    case Action::decline:
      if (text.find_first_not_of(" \t\r\n") == std::string::npos)
        return make_error(Errc::invalid_argument, "declining needs a reason");
      if (c.status == "requested") {
        if (!may_take(p, c)) return denied("this consult is not for you to decline");
      } else if (c.status == "accepted") {
        if (!assignee) return denied("only the consulting specialist declines");
      } else {
        return wrong_state(c, "decline");
      }
      ch.status = "declined";
      ch.reason = text;
      ch.event.type = "declined";
      ch.event.detail = text;
      return ch;
    case Action::cancel:
      if (c.requester_id != p.user_id) return denied("only the requester cancels a consult");
      if (c.status != "requested" && c.status != "accepted" && c.status != "in_progress")
        return wrong_state(c, "cancel");
      ch.status = "cancelled";
      ch.reason = text;
      ch.event.type = "cancelled";
      ch.event.detail = text;
      return ch;
  }
  return make_error(Errc::invalid_argument, "unknown action");
}

}  // namespace yilian::teleconsult
