#include "yilian/reading/queue_rules.h"
#include "yilian/reading/queue_settings.h"

#include <gtest/gtest.h>

namespace yilian::reading {
namespace {

QueueRules rules() {
  QueueRules r;
  r.routes = {
      {"neuro", {{"CT", "MR"}, {"HEAD", "BRAIN"}, {}, {}}},
      {"chest", {{"CT", "DX", "CR"}, {"CHEST"}, {}, {}}},
      {"ecg", {{"ECG"}, {}, {}, {}}},
      {"msk", {{}, {}, {}, {"knee", "膝"}}},
  };
  r.priority_rules = {
      {Priority::stat,
       "head CT with a stroke indication",
       {{"CT"}, {"HEAD"}, {}, {"stroke", "卒中"}}},
      {Priority::urgent, "emergency department", {{}, {}, {"county-er"}, {}}},
  };
  return r;
}

StudyFacts study(std::string modalities, std::string body, std::string text = {},
                 std::string institution = "ta", std::string requested = {}) {
  StudyFacts s;
  s.modalities = std::move(modalities);
  s.body_parts = std::move(body);
  s.description = std::move(text);
  s.institution = std::move(institution);
  s.requested_priority = std::move(requested);
  return s;
}

TEST(Routing, first_matching_rule_wins_and_unmatched_studies_take_the_default) {
  QueueRules r = rules();
  EXPECT_EQ(route(r, study("CT", "HEAD")), "neuro");
  EXPECT_EQ(route(r, study("CT\\SR", "head")), "neuro");  // case-insensitive, any modality
  EXPECT_EQ(route(r, study("DX", "CHEST")), "chest");
  EXPECT_EQ(route(r, study("CT", "CHEST")), "chest");
  EXPECT_EQ(route(r, study("ECG", "")), "ecg");
  EXPECT_EQ(route(r, study("MR", "", "MR 左膝关节")), "msk");  // procedure text, UTF-8
  EXPECT_EQ(route(r, study("US", "ABDOMEN")), "general");
  EXPECT_EQ(route(r, study("", "")), "general");
}

TEST(Priority, comes_from_the_order_and_rules_and_only_ever_goes_up) {
  QueueRules r = rules();
  EXPECT_EQ(decide_priority(r, study("US", "ABDOMEN")).priority, Priority::routine);
  EXPECT_EQ(decide_priority(r, study("US", "", "", "ta", "STAT")).priority, Priority::stat);
  EXPECT_EQ(decide_priority(r, study("US", "", "", "ta", "HIGH")).priority, Priority::urgent);
  EXPECT_EQ(decide_priority(r, study("US", "", "", "ta", "LOW")).priority, Priority::routine);
  PriorityDecision stroke = decide_priority(r, study("CT", "HEAD", "suspected stroke, 2h"));
  EXPECT_EQ(stroke.priority, Priority::stat);
  EXPECT_EQ(stroke.reason, "head CT with a stroke indication");
  EXPECT_EQ(decide_priority(r, study("CT", "HEAD", "急性卒中")).priority, Priority::stat);
  EXPECT_EQ(decide_priority(r, study("CT", "HEAD", "headache")).priority, Priority::routine);
  EXPECT_EQ(decide_priority(r, study("DX", "CHEST", "", "county-er")).priority, Priority::urgent);
  // A STAT order is not lowered by an URGENT rule.
  EXPECT_EQ(decide_priority(r, study("DX", "CHEST", "", "county-er", "STAT")).priority,
            Priority::stat);
}

TEST(PathologyCentre, slides_go_to_pathology_and_frozen_sections_are_stat) {
  QueueRules r = rules();
  EXPECT_EQ(route(r, study("SM", "")), kPathologyService);
  EXPECT_EQ(route(QueueRules{}, study("SM", "", "HE stain")), kPathologyService);
  // A configured route still comes first.
  r.routes.insert(r.routes.begin(), {"county-path", {{"SM"}, {}, {"tb"}, {}}});
  EXPECT_EQ(route(r, study("SM", "", "", "tb")), "county-path");
  EXPECT_EQ(route(r, study("SM", "", "", "ta")), kPathologyService);

  for (const char* text : {"术中冰冻切片", "Frozen section, margin", "术中快速病理"}) {
    PriorityDecision d = decide_priority(QueueRules{}, study("SM", "", text));
    EXPECT_EQ(d.priority, Priority::stat) << text;
    EXPECT_EQ(d.reason, "frozen section: the surgeon is waiting");
  }
  EXPECT_EQ(decide_priority(QueueRules{}, study("SM", "", "石蜡切片 HE")).priority,
            Priority::routine);
  // Only slides: a CT whose text says "frozen shoulder" is not a frozen section.
  EXPECT_EQ(decide_priority(QueueRules{}, study("CT", "", "frozen shoulder")).priority,
            Priority::routine);
  EXPECT_EQ(sla(QueueRules{}, Priority::stat), std::chrono::minutes(30));
  // Due after the frozen-section target, whatever the STAT one is.
  QueueRules slow;
  slow.sla_stat = std::chrono::minutes(60);
  slow.sla_frozen_section = std::chrono::minutes(20);
  const PriorityDecision frozen = decide_priority(slow, study("SM", "", "术中冰冻"));
  EXPECT_EQ(frozen.within, std::chrono::minutes(20));
  EXPECT_EQ(due_within(slow, frozen), std::chrono::minutes(20));
  EXPECT_EQ(due_within(slow, decide_priority(slow, study("CT", "", "", "ta", "STAT"))),
            std::chrono::minutes(60));
}

TEST(Priority, sla_defaults_are_30_minutes_2_hours_and_a_day) {
  QueueRules r;
  EXPECT_EQ(sla(r, Priority::stat), std::chrono::minutes(30));
  EXPECT_EQ(sla(r, Priority::urgent), std::chrono::minutes(120));
  EXPECT_EQ(sla(r, Priority::routine), std::chrono::minutes(1440));
  EXPECT_EQ(parse_priority("STAT"), Priority::stat);
  EXPECT_FALSE(parse_priority("asap").has_value());
}

TEST(ReportStateMachine, every_transition_is_allowed_or_refused_with_a_reason) {
  using S = TaskStatus;
  using K = ReportKind;
  struct Case {
    S from;
    K kind;
    bool holder;
    std::optional<S> to;  // nullopt: refused
  };
  const Case cases[] = {
      {S::queued, K::draft, false, std::nullopt},
      {S::queued, K::preliminary, false, std::nullopt},
      {S::queued, K::final, false, std::nullopt},
      {S::queued, K::addendum, false, std::nullopt},
      {S::claimed, K::draft, true, S::claimed},
      {S::claimed, K::preliminary, true, S::preliminary},
      {S::claimed, K::final, true, S::final},
      {S::claimed, K::addendum, true, std::nullopt},
      {S::claimed, K::draft, false, std::nullopt},
      {S::claimed, K::final, false, std::nullopt},
      {S::preliminary, K::draft, true, S::preliminary},
      {S::preliminary, K::preliminary, true, S::preliminary},
      {S::preliminary, K::final, true, S::final},
      {S::preliminary, K::final, false, std::nullopt},
      {S::preliminary, K::addendum, true, std::nullopt},
      {S::final, K::draft, true, std::nullopt},
      {S::final, K::preliminary, true, std::nullopt},
      {S::final, K::final, true, std::nullopt},
      {S::final, K::addendum, true, S::final},
      {S::final, K::addendum, false, S::final},
  };
  for (const Case& c : cases) {
    auto r = after_report(c.from, c.kind, c.holder);
    std::string label = std::string(task_status_name(c.from)) + " + " + report_kind_name(c.kind) +
                        (c.holder ? " (holder)" : " (not holder)");
    if (c.to) {
      ASSERT_TRUE(r.ok()) << label << ": " << r.error().message;
      EXPECT_EQ(*r, *c.to) << label;
    } else {
      ASSERT_FALSE(r.ok()) << label;
      EXPECT_EQ(r.error().code, Errc::conflict) << label;
      EXPECT_FALSE(r.error().message.empty()) << label;
    }
  }
  EXPECT_EQ(after_report(S::final, K::final, true).error().message,
            "the report is final; only addenda may be added");
}

TEST(QcSampling, is_deterministic_and_close_to_the_configured_share) {
  int sampled = 0;
  for (std::int64_t id = 1; id <= 10000; ++id) {
    bool s = qc_sampled(id, 5);
    EXPECT_EQ(s, qc_sampled(id, 5));
    sampled += s ? 1 : 0;
  }
  EXPECT_GT(sampled, 400);
  EXPECT_LT(sampled, 600);
  EXPECT_FALSE(qc_sampled(7, 0));
  EXPECT_TRUE(qc_sampled(7, 100));
}

using nlohmann::json;

TEST(QueueSettings, every_key_reads_back_what_was_applied) {
  QueueRules r = rules();
  for (const std::string& key : queue_setting_keys()) {
    const json before = queue_setting(r, key);
    ASSERT_FALSE(before.is_null()) << key;
    // Applying a setting's own value changes nothing.
    ASSERT_TRUE(apply_queue_setting(r, key, before).ok()) << key;
    EXPECT_EQ(queue_setting(r, key), before) << key;
  }
  ASSERT_TRUE(apply_queue_setting(r, "sla_stat_minutes", 20).ok());
  EXPECT_EQ(r.sla_stat, std::chrono::minutes(20));
  ASSERT_TRUE(apply_queue_setting(r, "sla_frozen_section_minutes", 25).ok());
  EXPECT_EQ(r.sla_frozen_section, std::chrono::minutes(25));
  ASSERT_TRUE(apply_queue_setting(r, "stable_seconds", 0.5).ok());
  EXPECT_EQ(r.stable, std::chrono::milliseconds(500));
  ASSERT_TRUE(apply_queue_setting(r, "routes",
                                  json::array({{{"service", "stroke"},
                                                {"modalities", {"CT"}},
                                                {"text_contains", {"卒中"}}}}))
                  .ok());
  ASSERT_EQ(r.routes.size(), 1u);
  EXPECT_EQ(route(r, StudyFacts{"CT", "HEAD", "ta", "头颅CT", "", "疑似卒中", ""}), "stroke");
  EXPECT_EQ(route(r, StudyFacts{"CT", "HEAD", "ta", "头颅CT", "", "外伤", ""}), "general");
  ASSERT_TRUE(apply_queue_setting(r, "priority_rules",
                                  json::array({{{"priority", "urgent"},
                                                {"reason", "ER"},
                                                {"institutions", {"county-er"}}}}))
                  .ok());
  EXPECT_EQ(decide_priority(r, StudyFacts{"CT", "", "county-er", "", "", "", ""}).priority,
            Priority::urgent);
}

TEST(QueueSettings, a_bad_value_is_refused_and_changes_nothing) {
  const QueueRules before = rules();
  QueueRules r = before;
  for (auto [key, value] : std::vector<std::pair<std::string, json>>{
           {"sla_stat_minutes", 0},
           {"sla_stat_minutes", "30"},
           {"sla_routine_minutes", 1.5},
           {"sla_frozen_section_minutes", 24 * 60 + 1},
           {"qc_percent", 101},
           {"critical_ack_minutes", -1},
           {"stable_seconds", 4000},
           {"lease_seconds", 5},
           {"default_service", ""},
           {"routes", json::object()},
           {"routes", json::array({{{"modalities", {"CT"}}}})},
           {"routes", json::array({{{"service", "x"}, {"modality", {"CT"}}}})},
           {"routes", json::array({{{"service", "x"}, {"modalities", {1}}}})},
           {"priority_rules", json::array({{{"priority", "asap"}}})},
       }) {
    Status s = apply_queue_setting(r, key, value);
    EXPECT_FALSE(s.ok()) << key << " = " << value.dump();
    if (!s.ok()) {
      EXPECT_EQ(s.error().code, Errc::invalid_argument) << key;
    }
  }
  EXPECT_EQ(apply_queue_setting(r, "no_such_key", 1).error().code, Errc::not_found);
  for (const std::string& key : queue_setting_keys()) {
    EXPECT_EQ(queue_setting(r, key), queue_setting(before, key)) << key;
  }
}

}  // namespace
}  // namespace yilian::reading
