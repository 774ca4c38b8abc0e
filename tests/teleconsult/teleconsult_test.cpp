// The teleconsult core without sockets: the /ws protocol's validation and the consult
// lifecycle and entitlement rules.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "test_db.h"
#include "test_util.h"
#include "yilian/identity/accounts.h"
#include "yilian/pacs/index.h"
#include "yilian/storage/sql.h"
#include "yilian/teleconsult/consult_rules.h"
#include "yilian/teleconsult/emergency_rules.h"
#include "yilian/teleconsult/protocol.h"
#include "yilian/teleconsult/referral_rules.h"

namespace yilian::teleconsult {
namespace {

using nlohmann::json;

protocol::Parsed parse(const json& j) { return protocol::parse(j.dump()); }

std::string error_of(const protocol::Parsed& p) { return p.error ? p.error->code : "none"; }

TEST(Protocol, valid_messages_parse_with_their_fields) {
  auto chat = parse({{"type", "chat"},
                     {"consult", 7},
                     {"text", "hello"},
                     {"clientId", "a1"},
                     {"ref", "r1"},
                     {"attachments", {{{"kind", "study"}, {"ref", "1.2.3"}}}}});
  ASSERT_TRUE(chat.message) << error_of(chat);
  EXPECT_EQ(chat.message->type, protocol::Type::chat);
  EXPECT_EQ(chat.message->consult, 7);
  EXPECT_EQ(chat.message->ref, "r1");
  EXPECT_TRUE(parse({{"v", 1}, {"type", "ping"}}).message);
  EXPECT_TRUE(parse({{"type", "hello"}, {"token", "t"}}).message);
  EXPECT_TRUE(parse({{"type", "join"}, {"consult", 1}, {"afterSeq", 12}}).message);
  EXPECT_TRUE(parse({{"type", "receipt"}, {"consult", 1}, {"read", 3}}).message);
  EXPECT_TRUE(parse({{"type", "presence"}, {"status", "away"}}).message);
  EXPECT_TRUE(parse({{"type", "view"}, {"consult", 1}, {"state", {{"frame", 2}}}}).message);
  EXPECT_TRUE(parse({{"type", "rtc"}, {"consult", 1}, {"to", "u"}, {"signal", "ice"}, {"data", {}}})
                  .message);
}

TEST(Protocol, every_malformed_message_gets_a_specific_error) {
  EXPECT_EQ(error_of(protocol::parse("{nope")), "bad_message");
  EXPECT_EQ(error_of(protocol::parse("[1,2]")), "bad_message");
  EXPECT_EQ(error_of(parse({{"type", 3}})), "bad_message");
  EXPECT_EQ(error_of(parse({{"type", "fly"}})), "unknown_type");
  EXPECT_EQ(error_of(parse({{"v", 2}, {"type", "ping"}})), "unsupported_version");
  EXPECT_EQ(error_of(protocol::parse(std::string(protocol::kMaxMessageBytes + 1, ' '))),
            "too_large");
  EXPECT_EQ(error_of(parse({{"type", "join"}})), "bad_message");  // no consult
  EXPECT_EQ(error_of(parse({{"type", "join"}, {"consult", -1}})), "bad_message");
  EXPECT_EQ(error_of(parse({{"type", "join"}, {"consult", 1}, {"afterSeq", "x"}})), "bad_message");
  EXPECT_EQ(error_of(parse({{"type", "chat"}, {"consult", 1}, {"text", ""}})), "bad_message");
  EXPECT_EQ(error_of(parse({{"type", "chat"},
                            {"consult", 1},
                            {"text", std::string(protocol::kMaxChatBytes + 1, 'a')}})),
            "bad_message");
  EXPECT_EQ(error_of(parse({{"type", "chat"},
                            {"consult", 1},
                            {"text", "a"},
                            {"attachments", {{{"kind", "virus"}, {"ref", "x"}}}}})),
            "bad_message");
  EXPECT_EQ(error_of(parse({{"type", "receipt"}, {"consult", 1}})), "bad_message");
  EXPECT_EQ(error_of(parse({{"type", "presence"}, {"status", "asleep"}})), "bad_message");
  EXPECT_EQ(error_of(parse({{"type", "typing"}, {"consult", 1}, {"active", "yes"}})),
            "bad_message");
  EXPECT_EQ(error_of(parse({{"type", "view"}, {"consult", 1}, {"state", 3}})), "bad_message");
  EXPECT_EQ(error_of(parse({{"type", "rtc"}, {"consult", 1}, {"to", "u"}, {"signal", "boo"}})),
            "bad_message");
  // The correlation id comes back with the error when it could be read.
  auto e = parse({{"type", "chat"}, {"ref", "r9"}, {"consult", 1}});
  ASSERT_TRUE(e.error);
  EXPECT_EQ(e.error->ref, "r9");
  json out = json::parse(protocol::error("bad_message", "why", "r9"));
  EXPECT_EQ(out["type"], "error");
  EXPECT_EQ(out["v"], 1);
  EXPECT_EQ(out["ref"], "r9");
}

Principal person(std::int64_t id, Role role, std::int64_t institution) {
  Principal p;
  p.user_id = id;
  p.username = "u" + std::to_string(id);
  p.institution_id = institution;
  p.grant(role);
  return p;
}

TEST(ConsultRules, who_may_take_see_and_act_on_a_consult) {
  constexpr std::int64_t kLead = 1, kTownA = 2, kTownB = 3;
  Principal doctor = person(10, Role::township_doctor, kTownA);
  Principal cardio = person(20, Role::cardiologist, kLead);
  cardio.ecg_clients = {kTownA};
  Principal cardio2 = person(21, Role::cardiologist, kLead);
  cardio2.ecg_clients = {kTownA};
  Principal radiologist = person(30, Role::radiologist, kLead);
  radiologist.imaging_clients = {kTownA};
  Principal far_cardio = person(40, Role::cardiologist, kTownB);

  teleconsult::ConsultRow c;
  c.id = 5;
  c.institution_id = kTownA;
  c.requester_id = doctor.user_id;
  c.specialty = "cardiology";
  c.status = "requested";
  EXPECT_TRUE(may_take(cardio, c));
  EXPECT_TRUE(may_take(cardio2, c));
  EXPECT_FALSE(may_take(radiologist, c));  // another specialty
  EXPECT_FALSE(may_take(far_cardio, c));   // does not serve clinic A
  EXPECT_FALSE(may_take(doctor, c));
  EXPECT_TRUE(may_view(cardio2, c, false));
  EXPECT_FALSE(may_view(radiologist, c, false));
  c.assignee_id = cardio2.user_id;  // addressed to one specialist
  EXPECT_FALSE(may_take(cardio, c));
  EXPECT_TRUE(may_take(cardio2, c));
  c.assignee_id = 0;

  const std::string now = "2026-11-23T08:00:00.000Z";
  EXPECT_EQ(decide(Action::accept, c, doctor, true, "", now).error().code, Errc::permission_denied);
  EXPECT_EQ(decide(Action::start, c, cardio, false, "", now).error().code, Errc::permission_denied);
  EXPECT_EQ(decide(Action::decline, c, cardio, false, "", now).error().code,
            Errc::invalid_argument);
  EXPECT_EQ(decide(Action::cancel, c, cardio, false, "", now).error().code,
            Errc::permission_denied);
  auto accepted = decide(Action::accept, c, cardio, false, "", now);
  ASSERT_TRUE(accepted.ok());
  EXPECT_EQ(accepted->status, "accepted");
  EXPECT_EQ(accepted->assignee_id, cardio.user_id);

  c.status = "accepted";
  c.assignee_id = cardio.user_id;
  EXPECT_FALSE(may_view(cardio2, c, false));  // taken: no longer theirs to see
  EXPECT_TRUE(is_live(c));
  EXPECT_EQ(decide(Action::accept, c, cardio2, false, "", now).error().code, Errc::conflict);
  EXPECT_EQ(decide(Action::conclude, c, cardio, true, " \n", now).error().code,
            Errc::invalid_argument);
  auto concluded = decide(Action::conclude, c, cardio, true, "Inferior STEMI", now);
  ASSERT_TRUE(concluded.ok());
  EXPECT_EQ(concluded->status, "concluded");
  EXPECT_EQ(concluded->concluded_at, now);
  ASSERT_TRUE(concluded->opinion_sha256);
  EXPECT_EQ(concluded->opinion_sha256->size(), 64u);

  c.status = "concluded";
  EXPECT_FALSE(is_live(c));
  for (Action a : {Action::accept, Action::start, Action::conclude, Action::decline}) {
    EXPECT_EQ(decide(a, c, cardio, true, "text", now).error().code, Errc::conflict);
  }
  EXPECT_EQ(decide(Action::cancel, c, doctor, true, "", now).error().code, Errc::conflict);
  EXPECT_EQ(specialties_of(radiologist), std::vector<std::string>{"radiology"});
  EXPECT_TRUE(is_urgency("emergency"));
  EXPECT_FALSE(is_urgency("whenever"));
}

TEST(EmergencyRules, a_stemi_or_a_stat_stroke_ct_opens_a_case_and_nothing_else_does) {
  auto stemi = case_trigger({"emergency", 0, "ECG", "", "ST elevation V2-V4"});
  ASSERT_TRUE(stemi.has_value());
  EXPECT_EQ(stemi->kind, "chest_pain");
  EXPECT_EQ(stemi->source, "ecg_stemi");
  EXPECT_EQ(stemi->reason, "ST elevation V2-V4");
  EXPECT_EQ(stemi->point, "ecg_transmitted");
  for (const char* reason : {"Suspected STROKE, onset 1h", "急性脑卒中"}) {
    auto stroke = case_trigger({"routed", 0, "CT", reason, ""});
    ASSERT_TRUE(stroke.has_value()) << reason;
    EXPECT_EQ(stroke->kind, "stroke");
    EXPECT_EQ(stroke->point, "ct");
    EXPECT_EQ(stroke->reason, reason);
  }
  EXPECT_FALSE(case_trigger({"routed", 1, "CT", "stroke", ""}).has_value());  // not STAT
  EXPECT_FALSE(case_trigger({"routed", 0, "MR", "stroke", ""}).has_value());  // not CT
  EXPECT_FALSE(case_trigger({"routed", 0, "CT", "head injury review", ""}).has_value());
  EXPECT_FALSE(case_trigger({"claimed", 0, "CT", "stroke", ""}).has_value());
  for (const char* reason : {"polytrauma", "Trauma series", "车祸多发伤", "头部外伤", "创伤"}) {
    auto trauma = case_trigger({"routed", 0, "CT", reason, ""});
    ASSERT_TRUE(trauma.has_value()) << reason;
    EXPECT_EQ(trauma->kind, "trauma");
    EXPECT_EQ(trauma->point, "ct");
  }
  // A stroke after a fall follows the stroke pathway.
  EXPECT_EQ(case_trigger({"routed", 0, "CT", "stroke after trauma", ""})->kind, "stroke");
  EXPECT_FALSE(case_trigger({"routed", 1, "CT", "trauma", ""}).has_value());  // not STAT
}

TEST(EmergencyRules, intervals_run_meet_or_breach_their_targets_and_corrections_replace) {
  using std::chrono::minutes;
  const storage::TimePoint t0 = *storage::parse_iso8601("2026-11-23T08:00:00Z");
  std::map<std::string, storage::TimePoint> points = {
      {"first_medical_contact", t0}, {"first_ecg", t0 + minutes(8)}, {"door", t0 + minutes(40)}};
  auto s = evaluate("chest_pain", points, t0 + minutes(60));
  ASSERT_EQ(s.size(), 5u);
  EXPECT_EQ(s[0].spec.name, "fmc_to_ecg");
  EXPECT_EQ(s[0].status, "met");
  EXPECT_DOUBLE_EQ(*s[0].minutes, 8);
  EXPECT_EQ(s[1].status, "breached");  // ECG 52 min ago, no diagnosis yet: over 10 min
  EXPECT_EQ(s[2].status, "pending");   // no transfer
  EXPECT_EQ(s[4].spec.name, "door_to_balloon");
  EXPECT_EQ(s[4].status, "running");
  EXPECT_DOUBLE_EQ(*s[4].minutes, 20);
  points["wire_crossing"] = t0 + minutes(140);
  EXPECT_EQ(evaluate("chest_pain", points, t0 + minutes(200))[4].status, "breached");

  // Stroke: door-to-CT 20 min (met), door-to-needle still running at 50 min.
  auto st = evaluate("stroke", {{"door", t0}, {"ct", t0 + minutes(20)}}, t0 + minutes(50));
  ASSERT_EQ(st.size(), 2u);
  EXPECT_EQ(st[0].status, "met");
  EXPECT_EQ(st[1].status, "running");

  // The newest record of a point is its value.
  std::vector<teleconsult::TimePointRow> records = {
      {1, "door", "2026-11-23T08:00:00.000Z", "a", "x", ""},
      {2, "door", "2026-11-23T08:05:00.000Z", "b", "y", "corrected"}};
  EXPECT_EQ(current_points(records).at("door"), t0 + minutes(5));
  EXPECT_TRUE(is_time_point("chest_pain", "cath_lab_activation"));
  EXPECT_FALSE(is_time_point("stroke", "wire_crossing"));
  EXPECT_TRUE(is_case_kind("trauma"));
  EXPECT_FALSE(is_case_kind("burns"));

  Principal doctor = person(1, Role::township_doctor, 2);
  Principal other = person(2, Role::township_doctor, 3);
  Principal admin = person(3, Role::admin, 2);
  teleconsult::CaseRow c;
  c.institution_id = 2;
  EXPECT_TRUE(may_see_case(doctor, c));
  EXPECT_FALSE(may_see_case(other, c));
  EXPECT_FALSE(may_see_case(admin, c));
}

// A chest-pain centre's figures over its cases: door-to-balloon counted where both ends are
// recorded (the corrected value), against the target; a wire crossing recorded before the door
// is a data error for quality control, not a zero-minute success.
TEST(EmergencyRules, the_centres_figures_count_each_interval_once_both_ends_are_recorded) {
  auto at = [](int minutes) {
    return storage::to_iso8601(*storage::parse_iso8601("2026-12-05T02:00:00Z") +
                               std::chrono::minutes(minutes));
  };
  auto make = [&](std::string kind, std::string site,
                  std::vector<std::pair<std::string, int>> points) {
    CaseRecords r;
    r.c.kind = std::move(kind);
    r.c.institution_code = std::move(site);
    for (const auto& [point, minute] : points) {
      TimePointRow row;
      row.id = static_cast<std::int64_t>(r.points.size()) + 1;
      row.point = point;
      row.at = at(minute);
      r.points.push_back(row);
    }
    return r;
  };
  auto chest = [&](std::string site, std::vector<std::pair<std::string, int>> points) {
    return make("chest_pain", std::move(site), std::move(points));
  };
  std::vector<CaseRecords> cases = {
      chest("lead", {{"door", 0}, {"wire_crossing", 70}}),                         // met
      chest("lead", {{"door", 0}, {"wire_crossing", 80}, {"wire_crossing", 95}}),  // corrected
      chest("ta", {{"door", 0}, {"wire_crossing", 60}}),                           // met
      chest("ta", {{"door", 0}}),                          // no wire crossing (yet)
      chest("ta", {{"door", 30}, {"wire_crossing", 10}}),  // before the door: an error
      chest("tb", {{"first_medical_contact", 0}, {"first_ecg", 12}}),
  };
  cases.push_back(make("stroke", "lead", {{"door", 0}, {"ct", 20}}));

  auto all = interval_quality(cases, QualityBy::centre);
  auto find = [](const std::vector<IntervalQuality>& rows, std::string_view kind,
                 std::string_view interval, std::string_view site = "") {
    for (const auto& q : rows) {
      if (q.kind == kind && q.interval == interval && q.group == site) return q;
    }
    ADD_FAILURE() << kind << " " << interval << " " << site;
    return IntervalQuality{};
  };
  const auto d2b = find(all, "chest_pain", "door_to_balloon");
  EXPECT_EQ(d2b.target_minutes, 90);
  EXPECT_EQ(d2b.cases, 6);
  EXPECT_EQ(d2b.started, 5);
  EXPECT_EQ(d2b.done, 3);  // 70, 95 (the correction), 60
  EXPECT_EQ(d2b.met, 2);
  EXPECT_EQ(d2b.inconsistent, 1);
  EXPECT_DOUBLE_EQ(*d2b.median_minutes, 70);
  EXPECT_DOUBLE_EQ(*d2b.p90_minutes, 95);
  const auto fmc = find(all, "chest_pain", "fmc_to_ecg");
  EXPECT_EQ(fmc.done, 1);
  EXPECT_EQ(fmc.met, 0);  // 12 min against 10
  const auto dtn = find(all, "stroke", "door_to_needle");
  EXPECT_EQ(dtn.started, 1);
  EXPECT_EQ(dtn.done, 0);
  EXPECT_FALSE(dtn.median_minutes);
  EXPECT_EQ(find(all, "stroke", "door_to_ct").met, 1);
  // Rows by centre, then the intervals in pathway order.
  ASSERT_EQ(all.size(), intervals("chest_pain").size() + intervals("stroke").size());
  EXPECT_EQ(all.front().interval, intervals("chest_pain").front().name);

  // Per institution, and against the consortium's own target.
  auto sites =
      interval_quality(cases, QualityBy::institution, {{"chest_pain.door_to_balloon", 65}});
  const auto lead = find(sites, "chest_pain", "door_to_balloon", "lead");
  EXPECT_EQ(lead.target_minutes, 65);
  EXPECT_EQ(lead.done, 2);
  EXPECT_EQ(lead.met, 0);
  const auto ta = find(sites, "chest_pain", "door_to_balloon", "ta");
  EXPECT_EQ(ta.done, 1);
  EXPECT_EQ(ta.met, 1);
  EXPECT_EQ(ta.inconsistent, 1);
  EXPECT_TRUE(interval_quality({}, QualityBy::centre).empty());

  // By month of opening, local time: a case opened 2026-11-30 20:00 UTC is December's at UTC+8.
  std::vector<CaseRecords> months = {chest("lead", {{"door", 0}, {"wire_crossing", 50}}),
                                     chest("lead", {{"door", 0}, {"wire_crossing", 100}})};
  months[0].c.opened_at = "2026-11-30T15:00:00.000Z";
  months[1].c.opened_at = "2026-11-30T20:00:00.000Z";
  auto by_month = interval_quality(months, QualityBy::month, {}, 480);
  EXPECT_EQ(find(by_month, "chest_pain", "door_to_balloon", "2026-11").met, 1);
  EXPECT_EQ(find(by_month, "chest_pain", "door_to_balloon", "2026-12").met, 0);
  EXPECT_EQ(find(by_month, "chest_pain", "door_to_balloon", "2026-12").done, 1);
}

TEST(EmergencyRules, trauma_maternal_and_newborn_cases_keep_their_centres_clocks) {
  using std::chrono::minutes;
  using std::chrono::seconds;
  const storage::TimePoint t0 = *storage::parse_iso8601("2026-12-05T02:00:00Z");

  // Trauma: the team came 12 min after activation (met); still no operation 75 min after the
  // door (breached while running); no transfer.
  auto tr = evaluate(
      "trauma",
      {{"door", t0}, {"team_activation", t0 + minutes(3)}, {"team_arrival", t0 + minutes(15)}},
      t0 + minutes(75));
  ASSERT_EQ(tr.size(), 3u);
  EXPECT_EQ(tr[0].spec.name, "team_response");
  EXPECT_EQ(tr[0].status, "met");
  EXPECT_DOUBLE_EQ(*tr[0].minutes, 12);
  EXPECT_EQ(tr[1].spec.name, "door_in_door_out");
  EXPECT_EQ(tr[1].status, "pending");
  EXPECT_EQ(tr[2].spec.name, "door_to_operation");
  EXPECT_EQ(tr[2].status, "breached");
  EXPECT_DOUBLE_EQ(*tr[2].minutes, 75);

  // Critical maternal care: decision to delivery 31 min is over the 30.
  auto ma = evaluate("maternal", {{"decision_to_deliver", t0}, {"delivery", t0 + minutes(31)}},
                     t0 + minutes(40));
  ASSERT_EQ(ma.size(), 1u);
  EXPECT_EQ(ma[0].spec.name, "decision_to_delivery");
  EXPECT_EQ(ma[0].status, "breached");

  // Critical newborn care: ventilation 45 s after birth is within the golden minute; a
  // birth 30 s ago with no ventilation yet is running.
  auto nb = evaluate("newborn", {{"birth", t0}, {"ventilation", t0 + seconds(45)}}, t0);
  ASSERT_EQ(nb.size(), 1u);
  EXPECT_EQ(nb[0].status, "met");
  EXPECT_EQ(evaluate("newborn", {{"birth", t0}}, t0 + seconds(30))[0].status, "running");
  EXPECT_EQ(evaluate("newborn", {{"birth", t0}}, t0 + seconds(61))[0].status, "breached");

  // A centre's own target replaces the default.
  auto own = evaluate("maternal", {{"decision_to_deliver", t0}, {"delivery", t0 + minutes(25)}},
                      t0 + minutes(40), {{"maternal.decision_to_delivery", 20}});
  EXPECT_EQ(own[0].spec.target_minutes, 20);
  EXPECT_EQ(own[0].status, "breached");
  EXPECT_TRUE(is_interval("trauma", "team_response"));
  EXPECT_FALSE(is_interval("trauma", "door_to_needle"));
  EXPECT_FALSE(is_interval("burns", "team_response"));

  // Points belong to their own pathway.
  EXPECT_TRUE(is_time_point("trauma", "team_activation"));
  EXPECT_TRUE(is_time_point("maternal", "decision_to_deliver"));
  EXPECT_TRUE(is_time_point("newborn", "transport_request"));
  EXPECT_FALSE(is_time_point("newborn", "wire_crossing"));
  EXPECT_FALSE(is_time_point("trauma", "needle"));

  // Each centre's alert goes to its own on-call service; the acknowledgement records the
  // expert's response; escalation reaches the physicians (emergency physicians, obstetricians,
  // neonatologists), not the cardiologists, who read ECGs and are the chest-pain centre's.
  EXPECT_EQ(alert_service("trauma"), "trauma");
  EXPECT_EQ(alert_service("maternal"), "obstetrics");
  EXPECT_EQ(alert_service("newborn"), "neonatology");
  for (const char* kind : {"trauma", "maternal", "newborn"}) {
    EXPECT_EQ(acknowledgement_point(kind), "expert_response") << kind;
    EXPECT_TRUE(is_time_point(kind, acknowledgement_point(kind))) << kind;
    EXPECT_TRUE(is_oncall_service(alert_service(kind))) << kind;
  }
  EXPECT_FALSE(is_oncall_service("dermatology"));
  EXPECT_NE(oncall_services_text().find("neonatology"), std::string::npos);
  EXPECT_NE(case_kinds_text().find("maternal"), std::string::npos);

  teleconsult::CaseRow c;
  c.institution_id = 2;
  c.kind = "maternal";
  Principal obstetrician = person(4, Role::physician, 2);
  Principal radiologist = person(5, Role::radiologist, 2);
  Principal cardiologist = person(6, Role::cardiologist, 2);
  EXPECT_TRUE(may_see_case(obstetrician, c));
  EXPECT_TRUE(in_escalation_group(obstetrician, c));
  EXPECT_FALSE(in_escalation_group(radiologist, c));
  EXPECT_FALSE(in_escalation_group(cardiologist, c));
  // A physician who names their services is reached by those centres' escalations only; one
  // who names none (the emergency physician), by every centre's.
  obstetrician.services = {"obstetrics"};
  Principal surgeon = person(7, Role::physician, 2);
  surgeon.services = {"trauma"};
  Principal emergency_physician = person(8, Role::physician, 2);
  EXPECT_TRUE(in_escalation_group(obstetrician, c));
  EXPECT_FALSE(in_escalation_group(surgeon, c));
  EXPECT_TRUE(in_escalation_group(emergency_physician, c));
  c.kind = "trauma";
  EXPECT_FALSE(in_escalation_group(obstetrician, c));
  EXPECT_TRUE(in_escalation_group(surgeon, c));
  EXPECT_TRUE(in_escalation_group(emergency_physician, c));
  c.kind = "newborn";
  EXPECT_FALSE(in_escalation_group(obstetrician, c));
  EXPECT_FALSE(in_escalation_group(surgeon, c));
  // A radiologist's services are reading queues: they do not narrow the stroke escalation.
  radiologist.services = {"neuro"};
  c.kind = "stroke";
  EXPECT_TRUE(in_escalation_group(radiologist, c));
  EXPECT_FALSE(in_escalation_group(obstetrician, c));
  c.kind = "chest_pain";
  EXPECT_TRUE(in_escalation_group(cardiologist, c));
  EXPECT_FALSE(in_escalation_group(obstetrician, c));
}

TEST(ReferralRules, routes_steps_and_who_answers) {
  identity::InstitutionInfo lead{1, "lead", "Lead", "lead", "", {}, {}};
  identity::InstitutionInfo county{2, "county", "County", "county", "lead", {}, {}};
  identity::InstitutionInfo ta{3, "ta", "A", "township", "county", {}, {}};
  identity::InstitutionInfo tb{4, "tb", "B", "township", "county", {}, {}};
  EXPECT_FALSE(referral_route_problem("up", ta, county));
  EXPECT_FALSE(referral_route_problem("up", ta, lead));
  EXPECT_FALSE(referral_route_problem("up", county, lead));
  EXPECT_TRUE(referral_route_problem("up", ta, tb));
  EXPECT_TRUE(referral_route_problem("up", lead, ta));
  EXPECT_FALSE(referral_route_problem("down", lead, ta));
  EXPECT_TRUE(referral_route_problem("down", ta, lead));
  EXPECT_TRUE(referral_route_problem("sideways", ta, tb));
  EXPECT_EQ(answer_within("urgent"), std::chrono::hours(2));
  EXPECT_EQ(answer_within("routine"), std::chrono::hours(24));

  teleconsult::ReferralRow r;
  r.from_institution = 3;
  r.to_institution = 1;
  r.status = "requested";
  r.urgency = "routine";
  Principal sender = person(1, Role::township_doctor, 3);
  Principal receiver = person(2, Role::cardiologist, 1);
  EXPECT_EQ(decide_referral(ReferralAction::accept, r, sender, "", "2026-11-23").error().code,
            Errc::permission_denied);
  EXPECT_EQ(decide_referral(ReferralAction::reject, r, receiver, " ", "2026-11-23").error().code,
            Errc::invalid_argument);
  EXPECT_EQ(decide_referral(ReferralAction::accept, r, receiver, "", "2026-11-23")->status,
            "accepted");
  r.status = "accepted";
  auto sch = decide_referral(ReferralAction::schedule, r, receiver, "", "2026-11-23");
  ASSERT_TRUE(sch.ok());
  EXPECT_TRUE(sch->take_slot);
  EXPECT_EQ(sch->slot_from, "2026-11-24");  // routine: from tomorrow
  EXPECT_EQ(decide_referral(ReferralAction::cancel, r, receiver, "", "2026-11-23").error().code,
            Errc::permission_denied);
  EXPECT_EQ(decide_referral(ReferralAction::cancel, r, sender, "", "2026-11-23")->status,
            "cancelled");
  r.status = "completed";
  EXPECT_EQ(decide_referral(ReferralAction::cancel, r, sender, "", "2026-11-23").error().code,
            Errc::conflict);
}

// The store: numbering per consult, de-duplication by the sender's id, and what the schema
// itself refuses (editing chat, changing a concluded consult).
// A township "ta" with a doctor and a cardiologist (their ids in `users`) and two consults
// the doctor requested.
struct TwoConsults {
  std::vector<std::int64_t> users;
  std::int64_t institution = 0;
  teleconsult::ConsultRow a, b;
};
void two_consults(storage::Database& db, TwoConsults& out) {
  identity::Accounts accounts(db);
  teleconsult::ConsultStore store(db);
  auto inst = accounts.put_institution({0, "ta", "ta", "township", "", {}, {}});
  ASSERT_TRUE(inst.ok());
  out.institution = inst->id;
  for (const char* name : {"doc", "cardio"}) {
    identity::NewUser u;
    u.username = name;
    u.institution_code = "ta";
    u.roles = 1;
    u.password_hash = "unused";
    auto added = accounts.add_user(u, "2026-11-23T00:00:00.000Z");
    ASSERT_TRUE(added.ok());
    out.users.push_back(added->id);
  }
  teleconsult::NewConsult nc{inst->id, out.users[0], "P1", "", "question",
                             "urgent", "cardiology", 0,    {}};
  auto a = store.create(nc, "2026-11-23T08:00:00.000Z", "doc");
  auto b = store.create(nc, "2026-11-23T08:00:01.000Z", "doc");
  ASSERT_TRUE(a.ok() && b.ok());
  out.a = *a;
  out.b = *b;
}

TEST(ConsultStore, chat_is_numbered_per_consult_deduplicated_and_immutable) {
  ::yilian::testing::TempDir dir;
  const auto path = dir.path() / "index.sqlite";
  auto db = ::yilian::testing::index_database(path);
  auto store = std::make_unique<teleconsult::ConsultStore>(*db);
  auto referrals = std::make_unique<teleconsult::ReferralStore>(*db);
  TwoConsults made;
  ASSERT_NO_FATAL_FAILURE(two_consults(*db, made));
  const std::vector<std::int64_t>& users = made.users;
  const teleconsult::ConsultRow* a = &made.a;
  const teleconsult::ConsultRow* b = &made.b;
  auto accept = [&](const teleconsult::ConsultRow&) -> Result<teleconsult::ConsultChange> {
    teleconsult::ConsultChange ch;
    ch.status = "accepted";
    ch.assignee_id = users[1];
    ch.event.type = "accepted";
    return ch;
  };
  ASSERT_TRUE(store->change(a->id, accept, "2026-11-23T08:01:00.000Z").ok());
  {
    auto batch = store->begin_batch();
    ASSERT_TRUE(batch.ok());
    bool dup = false;
    auto m1 = (*batch)->append_message({a->id, 0, users[0], "doc", "c1", "t", "one", "[]"}, dup);
    auto m2 = (*batch)->append_message({a->id, 0, users[1], "cardio", "c1", "t", "two", "[]"}, dup);
    auto m3 = (*batch)->append_message({b->id, 0, users[0], "doc", "", "t", "other", "[]"}, dup);
    auto again = (*batch)->append_message({a->id, 0, users[0], "doc", "c1", "t", "one", "[]"}, dup);
    ASSERT_TRUE(m1.ok() && m2.ok() && m3.ok() && again.ok());
    EXPECT_EQ(m1->seq, 1);
    EXPECT_EQ(m2->seq, 2);  // the same client id from another author is another message
    EXPECT_EQ(m3->seq, 1);  // numbered per consult
    EXPECT_TRUE(dup);
    EXPECT_EQ(again->seq, 1);
    auto marks = (*batch)->receipt(a->id, users[1], 2, 1);
    ASSERT_TRUE(marks.ok());
    auto lower = (*batch)->receipt(a->id, users[1], 1, 0);  // never lowered
    ASSERT_TRUE(lower.ok());
    EXPECT_EQ(*lower, std::make_pair(std::int64_t{2}, std::int64_t{1}));
    EXPECT_FALSE((*batch)->receipt(b->id, users[1], 1, 1).ok());  // not a participant there
    ASSERT_TRUE((*batch)->commit().ok());
  }
  auto log = store->messages(a->id, 0, 10);
  ASSERT_TRUE(log.ok());
  ASSERT_EQ(log->size(), 2u);
  EXPECT_EQ((*log)[1].author, "cardio");
  EXPECT_EQ(store->get(a->id)->value().last_seq, 2);

  // A referral nobody answered in time is escalated once.
  teleconsult::ReferralRow ref;
  ref.direction = "up";
  ref.urgency = "urgent";
  ref.patient_id = "P1";
  ref.from_institution = made.institution;
  ref.to_institution = made.institution;
  ref.requested_by = "doc";
  ref.reason = "r";
  ref.created_at = "2026-11-23T08:00:00.000Z";
  ref.answer_due_at = "2026-11-23T10:00:00.000Z";
  ASSERT_TRUE(referrals->create_referral(ref).ok());
  EXPECT_TRUE(referrals->escalate_referrals("2026-11-23T09:59:00.000Z")->empty());
  EXPECT_EQ(referrals->escalate_referrals("2026-11-23T10:01:00.000Z")->size(), 1u);
  EXPECT_TRUE(referrals->escalate_referrals("2026-11-23T11:00:00.000Z")->empty());

  auto raw = ::yilian::testing::raw_connection(*db);
  EXPECT_FALSE(raw->exec("UPDATE consult_messages SET text = 'edited'").ok());
  EXPECT_FALSE(raw->exec("DELETE FROM consult_messages").ok());
  Status concluded =
      raw->exec("UPDATE consults SET status = 'concluded', opinion = 'x' WHERE id = 1");
  ASSERT_TRUE(concluded.ok()) << concluded.error().message;
  EXPECT_FALSE(raw->exec("UPDATE consults SET opinion = 'rewritten' WHERE id = 1").ok());
}

TEST(ConsultStore, batches_of_two_nodes_on_the_same_consults_wait_for_each_other) {
  ::yilian::testing::TempDir dir;
  const auto path = dir.path() / "index.sqlite";
  auto node1 = ::yilian::testing::index_database(path);
  if (node1->dialect() != storage::sql::Dialect::postgres)
    GTEST_SKIP() << "one SQLite writer: no second node";
  auto node2 = ::yilian::testing::index_database(path);  // the same database
  TwoConsults made;
  ASSERT_NO_FATAL_FAILURE(two_consults(*node1, made));
  teleconsult::ConsultStore store1(*node1), store2(*node2);
  auto message = [&](std::int64_t consult, const std::string& text) {
    return teleconsult::ChatMessage{consult, 0, made.users[0], "doc", "", "t", text, "[]"};
  };
  // Node 1's batch takes both consults; node 2's batch (the rooms in the other order) waits
  // for it to commit instead of deadlocking with it.
  auto first = store1.begin_batch();
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE((*first)->lock_consults({made.b.id, made.a.id}).ok());
  bool dup = false;
  ASSERT_TRUE((*first)->append_message(message(made.a.id, "1a"), dup).ok());
  std::atomic<bool> second_done{false};
  std::thread other([&] {
    auto second = store2.begin_batch();
    ASSERT_TRUE(second.ok());
    ASSERT_TRUE((*second)->lock_consults({made.a.id, made.b.id}).ok());
    bool d = false;
    EXPECT_TRUE((*second)->append_message(message(made.b.id, "2b"), d).ok());
    EXPECT_TRUE((*second)->append_message(message(made.a.id, "2a"), d).ok());
    EXPECT_TRUE((*second)->commit().ok());
    second_done = true;
  });
  ASSERT_TRUE((*first)->append_message(message(made.b.id, "1b"), dup).ok());
  EXPECT_FALSE(second_done.load());  // still waiting for the first batch's row locks
  ASSERT_TRUE((*first)->commit().ok());
  other.join();
  EXPECT_TRUE(second_done.load());
  for (std::int64_t consult : {made.a.id, made.b.id}) {
    auto log = store1.messages(consult, 0, 10);
    ASSERT_TRUE(log.ok());
    ASSERT_EQ(log->size(), 2u);
    EXPECT_EQ((*log)[0].seq, 1);
    EXPECT_EQ((*log)[0].text.substr(0, 1), "1");  // node 1's first: it held the rows
    EXPECT_EQ((*log)[1].seq, 2);
  }
}

TEST(ConsultStore, a_batch_that_does_not_wait_skips_the_consults_another_node_holds) {
  ::yilian::testing::TempDir dir;
  const auto path = dir.path() / "index.sqlite";
  auto node1 = ::yilian::testing::index_database(path);
  teleconsult::ConsultStore store1(*node1);
  TwoConsults made;
  ASSERT_NO_FATAL_FAILURE(two_consults(*node1, made));
  if (node1->dialect() != storage::sql::Dialect::postgres) {
    // One writer: every consult is taken, the unknown one too (its message fails later).
    auto batch = store1.begin_batch();
    ASSERT_TRUE(batch.ok());
    auto taken = (*batch)->lock_consults({made.b.id, made.a.id, made.a.id}, /*wait=*/false);
    ASSERT_TRUE(taken.ok());
    EXPECT_EQ(*taken, (std::vector<std::int64_t>{made.a.id, made.b.id}));
    return;
  }
  auto node2 = ::yilian::testing::index_database(path);
  teleconsult::ConsultStore store2(*node2);
  auto first = store1.begin_batch();
  ASSERT_TRUE(first.ok());
  auto held = (*first)->lock_consults({made.a.id});
  ASSERT_TRUE(held.ok());
  EXPECT_EQ(*held, std::vector<std::int64_t>{made.a.id});
  auto second = store2.begin_batch();
  ASSERT_TRUE(second.ok());
  const std::int64_t missing = made.b.id + 1000;
  auto taken = (*second)->lock_consults({missing, made.b.id, made.a.id}, /*wait=*/false);
  ASSERT_TRUE(taken.ok());
  EXPECT_EQ(*taken, std::vector<std::int64_t>{made.b.id});  // a is node 1's, `missing` none
  bool dup = false;
  auto added = (*second)->append_message(
      teleconsult::ChatMessage{made.b.id, 0, made.users[0], "doc", "", "t", "2b", "[]"}, dup);
  ASSERT_TRUE(added.ok());
  EXPECT_EQ(added->seq, 1);
  ASSERT_TRUE((*second)->commit().ok());
  ASSERT_TRUE((*first)->commit().ok());
  // Once node 1 committed, node 2 takes a.
  auto third = store2.begin_batch();
  ASSERT_TRUE(third.ok());
  auto now = (*third)->lock_consults({made.a.id}, /*wait=*/false);
  ASSERT_TRUE(now.ok());
  EXPECT_EQ(*now, std::vector<std::int64_t>{made.a.id});
}

TEST(ConsultStore, a_batch_of_messages_is_numbered_in_order_and_each_answered_on_its_own) {
  ::yilian::testing::TempDir dir;
  auto db = ::yilian::testing::index_database(dir.path() / "index.sqlite");
  teleconsult::ConsultStore store(*db);
  TwoConsults made;
  ASSERT_NO_FATAL_FAILURE(two_consults(*db, made));
  const std::int64_t a = made.a.id;
  const std::int64_t b = made.b.id;
  const std::int64_t doc = made.users[0];
  using teleconsult::ChatMessage;
  {
    auto batch = store.begin_batch();
    ASSERT_TRUE(batch.ok());
    ASSERT_TRUE((*batch)->lock_consults({a, b}).ok());
    auto first = (*batch)->append_messages({ChatMessage{a, 0, doc, "doc", "k1", "t1", "a1", "[]"}});
    ASSERT_EQ(first.size(), 1u);
    ASSERT_TRUE(first[0].message.ok());
    ASSERT_TRUE((*batch)->commit().ok());
  }
  auto batch = store.begin_batch();
  ASSERT_TRUE(batch.ok());
  ASSERT_TRUE((*batch)->lock_consults({a, b}).ok());
  auto out = (*batch)->append_messages({
      ChatMessage{b, 0, doc, "doc", "", "t2", "b1", "[]"},
      ChatMessage{a, 0, doc, "doc", "k2", "t2", "a2", "[]"},
      ChatMessage{a, 0, doc, "doc", "k1", "t2", "a1 resent", "[]"},  // stored before
      ChatMessage{b, 0, doc, "doc", "", "t2", "b2", "[]"},
      ChatMessage{a, 0, doc, "doc", "", "t2", "a3", "[]"},
  });
  ASSERT_EQ(out.size(), 5u);
  for (const auto& o : out) ASSERT_TRUE(o.message.ok()) << o.message.error().message;
  EXPECT_EQ(out[0].message->seq, 1);
  EXPECT_EQ(out[1].message->seq, 2);
  EXPECT_TRUE(out[2].duplicate);
  EXPECT_EQ(out[2].message->seq, 1);
  EXPECT_EQ(out[2].message->text, "a1");  // the stored message, not the resend's text
  EXPECT_EQ(out[3].message->seq, 2);
  EXPECT_EQ(out[4].message->seq, 3);
  EXPECT_FALSE(out[0].duplicate || out[1].duplicate || out[3].duplicate || out[4].duplicate);

  // The same message twice in one batch and a consult that does not exist: the others are
  // still stored, the repeat answers as a resend, the stray one as not found.
  auto mixed = (*batch)->append_messages({
      ChatMessage{a, 0, doc, "doc", "k3", "t3", "a4", "[]"},
      ChatMessage{b + 1000, 0, doc, "doc", "", "t3", "nowhere", "[]"},
      ChatMessage{a, 0, doc, "doc", "k3", "t3", "a4", "[]"},
      ChatMessage{b, 0, doc, "doc", "", "t3", "b3", "[]"},
  });
  ASSERT_EQ(mixed.size(), 4u);
  ASSERT_TRUE(mixed[0].message.ok());
  EXPECT_EQ(mixed[0].message->seq, 4);
  ASSERT_FALSE(mixed[1].message.ok());
  EXPECT_EQ(mixed[1].message.error().code, Errc::not_found);
  ASSERT_TRUE(mixed[2].message.ok());
  EXPECT_TRUE(mixed[2].duplicate);
  EXPECT_EQ(mixed[2].message->seq, 4);
  ASSERT_TRUE(mixed[3].message.ok());
  EXPECT_EQ(mixed[3].message->seq, 3);
  ASSERT_TRUE((*batch)->commit().ok());

  auto log = store.messages(a, 0, 10);
  ASSERT_TRUE(log.ok());
  ASSERT_EQ(log->size(), 4u);
  EXPECT_EQ((*log)[2].text, "a3");
  EXPECT_EQ(store.get(a)->value().last_seq, 4);
  EXPECT_EQ(store.get(b)->value().last_seq, 3);
}

}  // namespace
}  // namespace yilian::teleconsult
