#include "config.h"

#include <gtest/gtest.h>

#include "yilian/common/principal.h"

namespace yilian::app {
namespace {

TEST(Config, an_empty_file_gives_the_defaults) {
  auto c = parse_config("");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->dicom_port, 11112);
  EXPECT_EQ(c->http_port, 8080);
  EXPECT_EQ(c->ae_title, "YILIAN");
  EXPECT_FALSE(c->reject_unknown_ae);
}

TEST(Config, a_postgresql_database_is_named_by_its_url) {
  auto c = parse_config("[database]\nurl = \"postgresql://yilian@db.example.org/consortium\"\n");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->database_url, "postgresql://yilian@db.example.org/consortium");
  EXPECT_TRUE(parse_config("")->database_url.empty());  // the SQLite files under --data
  auto wrong = parse_config("[database]\nurl = \"/var/lib/yilian/index.sqlite\"\n");
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.error().message.find("postgresql://"), std::string::npos);
}

TEST(Config, reads_connection_limits_and_sender_character_sets) {
  auto c = parse_config(R"(
[dicom]
acse_timeout_seconds = 5
max_connections = 100
max_connections_per_address = 8
default_charset = "GBK"

[[dicom.senders]]
ae_title = "OLD_US"
charset = "GB18030"
override_declared_charset = true

[[dicom.senders]]
ae_title = "NEW_CT"
)");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->acse_timeout_s, 5u);
  EXPECT_EQ(c->max_dicom_connections, 100u);
  EXPECT_EQ(c->max_dicom_connections_per_address, 8u);
  EXPECT_EQ(c->default_charset, "GBK");
  ASSERT_EQ(c->senders.size(), 2u);
  EXPECT_EQ(c->senders[0].charset, "GB18030");
  EXPECT_TRUE(c->senders[0].override_declared_charset);
  EXPECT_EQ(c->senders[1].charset, "GBK");  // the hub's default when not given
  EXPECT_FALSE(c->senders[1].override_declared_charset);
}

TEST(Config, reads_the_per_client_limits_and_refuses_unknown_ones) {
  auto d = parse_config("");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->ws_connections_per_user, 16u);
  EXPECT_EQ(d->renders_per_user, 3u);
  EXPECT_EQ(d->uploads_per_user, 2u);
  auto c = parse_config(
      "[limits]\nws_connections_per_user = 3\nws_connections_per_address = 0\n"
      "ws_messages_per_second = 5\nws_message_burst = 10\nrenders_per_user = 2\n"
      "uploads_per_user = 1\n");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->ws_connections_per_user, 3u);
  EXPECT_EQ(c->ws_connections_per_address, 0u);  // no limit
  EXPECT_EQ(c->ws_messages_per_second, 5u);
  EXPECT_EQ(c->ws_message_burst, 10u);
  EXPECT_EQ(c->renders_per_user, 2u);
  EXPECT_EQ(c->uploads_per_user, 1u);
  EXPECT_FALSE(parse_config("[limits]\nrenders_per_hour = 2\n").ok());
  EXPECT_FALSE(parse_config("[limits]\nws_message_burst = 0\n").ok());
  EXPECT_FALSE(parse_config("[limits]\nuploads_per_user = -1\n").ok());
}

TEST(Config, an_unknown_character_set_or_a_zero_limit_is_an_error) {
  auto bad_default = parse_config("[dicom]\ndefault_charset = \"KLINGON\"\n");
  ASSERT_FALSE(bad_default.ok());
  EXPECT_NE(bad_default.error().message.find("default_charset"), std::string::npos);
  auto bad_sender = parse_config("[[dicom.senders]]\nae_title = \"X\"\ncharset = \"EBCDIC-1\"\n");
  ASSERT_FALSE(bad_sender.ok());
  EXPECT_NE(bad_sender.error().message.find("X"), std::string::npos);
  EXPECT_FALSE(parse_config("[dicom]\nmax_connections_per_address = 0\n").ok());
  EXPECT_FALSE(parse_config("[[dicom.senders]]\ncharset = \"GBK\"\n").ok());
}

TEST(Config, reads_ports_ae_policy_and_institutions) {
  auto c = parse_config(R"(
[dicom]
port = 104
aet = "LEAD_PACS"
max_associations = 8
reject_unknown_ae = true

[http]
port = 8443

[[institutions]]
code = "township-a"
name = "Township A Health Centre"
ae_titles = ["TA_CT", "TA_DR"]

[[institutions]]
code = "lead"
name = "Lead Hospital"
)");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->dicom_port, 104);
  EXPECT_EQ(c->ae_title, "LEAD_PACS");
  EXPECT_EQ(c->max_associations, 8u);
  EXPECT_TRUE(c->reject_unknown_ae);
  EXPECT_EQ(c->http_port, 8443);
  ASSERT_EQ(c->institutions.size(), 2u);
  EXPECT_EQ(c->institutions[0].ae_titles.size(), 2u);
  EXPECT_TRUE(c->institutions[1].ae_titles.empty());
}

TEST(Config, unknown_keys_are_errors_so_typos_are_caught) {
  auto c = parse_config("[dicom]\nprot = 104\n");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("prot"), std::string::npos);
}

TEST(Config, an_edges_unfinished_uploads_expire_after_a_week_unless_set) {
  EXPECT_EQ(parse_config("")->edge_upload_expiry_h, 168u);
  auto c = parse_config("[edge]\nupload_expiry_hours = 24\n");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->edge_upload_expiry_h, 24u);
  EXPECT_FALSE(parse_config("[edge]\nupload_expiry_hours = 0\n").ok());
  EXPECT_FALSE(parse_config("[edge]\nupload_expiry_hour = 24\n").ok());
  EXPECT_FALSE(parse_config("edge = 3\n").ok());
}

TEST(Config, the_sites_local_time_is_china_standard_time_unless_set) {
  EXPECT_EQ(parse_config("")->lab.utc_offset_minutes, 480);
  auto c = parse_config("[site]\nutc_offset_minutes = 420\n");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->lab.utc_offset_minutes, 420);
  // The older spelling under [lab] is still read; the two may agree but not differ.
  EXPECT_EQ(parse_config("[lab]\nutc_offset_minutes = 360\n")->lab.utc_offset_minutes, 360);
  auto both = parse_config("[site]\nutc_offset_minutes = 420\n[lab]\nutc_offset_minutes = 420\n");
  ASSERT_TRUE(both.ok()) << both.error().message;
  EXPECT_EQ(both->lab.utc_offset_minutes, 420);
  auto differ = parse_config("[site]\nutc_offset_minutes = 420\n[lab]\nutc_offset_minutes = 480\n");
  ASSERT_FALSE(differ.ok());
  EXPECT_NE(differ.error().message.find("[site]"), std::string::npos) << differ.error().message;
  EXPECT_FALSE(parse_config("[site]\nutc_offset_minutes = 900\n").ok());
  EXPECT_FALSE(parse_config("[site]\ntimezone = \"Asia/Shanghai\"\n").ok());
  EXPECT_FALSE(parse_config("site = 480\n").ok());
}

TEST(Config, calls_take_stun_and_turn_servers_and_turn_needs_its_secret) {
  EXPECT_TRUE(parse_config("")->calls.stun.empty());
  auto c = parse_config(R"([calls]
stun = ["stun:turn.consortium.example:3478"]
turn = ["turn:turn.consortium.example:3478?transport=udp", "turns:turn.consortium.example:5349"]
turn_secret = "0123456789abcdef"
turn_credential_hours = 4
)");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->calls.stun.size(), 1u);
  EXPECT_EQ(c->calls.turn.size(), 2u);
  EXPECT_EQ(c->calls.turn_secret, "0123456789abcdef");
  EXPECT_EQ(c->calls.turn_credential_hours, 4);
  EXPECT_EQ(parse_config("")->calls.turn_credential_hours, 12);
  auto no_secret = parse_config("[calls]\nturn = [\"turn:t.example:3478\"]\n");
  ASSERT_FALSE(no_secret.ok());
  EXPECT_NE(no_secret.error().message.find("turn_secret"), std::string::npos);
  EXPECT_FALSE(parse_config("[calls]\nstun = [\"turn:t.example:3478\"]\n").ok());
  EXPECT_FALSE(parse_config("[calls]\nturn_credential_hours = 0\n").ok());
  EXPECT_FALSE(parse_config("[calls]\nice = []\n").ok());
}

TEST(Config, an_emergency_centre_may_set_its_own_interval_targets) {
  EXPECT_TRUE(parse_config("")->emergency_targets.empty());
  auto c = parse_config(
      "[emergency.targets]\n\"trauma.team_response\" = 10\n\"stroke.door_to_needle\" = 45\n");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->emergency_targets.at("trauma.team_response"), 10);
  EXPECT_EQ(c->emergency_targets.at("stroke.door_to_needle"), 45);
  auto unknown = parse_config("[emergency.targets]\n\"trauma.door_to_needle\" = 10\n");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().message.find("trauma.door_to_needle"), std::string::npos);
  EXPECT_FALSE(parse_config("[emergency.targets]\n\"newborn.birth_to_ventilation\" = 0\n").ok());
  EXPECT_FALSE(parse_config("[emergency.targets]\nstroke = 10\n").ok());
  EXPECT_FALSE(parse_config("[emergency]\ntargets = 3\n").ok());
}

TEST(Config, rejects_out_of_range_ports_and_bad_types) {
  EXPECT_FALSE(parse_config("[dicom]\nport = 70000\n").ok());
  EXPECT_FALSE(parse_config("[dicom]\nreject_unknown_ae = \"yes\"\n").ok());
  EXPECT_FALSE(parse_config("[http]\nport = \"80\"\n").ok());
}

TEST(Config, websocket_heartbeat_times_default_and_the_hangup_must_come_after_the_ping) {
  auto d = parse_config("");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->ws_ping_after_idle_s, 30);
  EXPECT_EQ(d->ws_hangup_after_idle_s, 75);
  auto c =
      parse_config("[http]\nws_ping_after_idle_seconds = 10\nws_hangup_after_idle_seconds = 25\n");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->ws_ping_after_idle_s, 10);
  EXPECT_EQ(c->ws_hangup_after_idle_s, 25);
  EXPECT_TRUE(parse_config("[http]\nws_ping_after_idle_seconds = 60\n").ok());  // 60 < 75
  auto wrong = parse_config("[http]\nws_ping_after_idle_seconds = 80\n");
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.error().message.find("ws_hangup_after_idle_seconds"), std::string::npos);
  EXPECT_FALSE(parse_config("[http]\nws_ping_after_idle_seconds = 0\n").ok());
}

TEST(Config, the_web_root_is_beside_the_executable_unless_set) {
  auto d = parse_config("");
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->web_root.empty());
  auto c = parse_config("[http]\nweb_root = \"/srv/yilian/web\"\n");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->web_root, "/srv/yilian/web");
  EXPECT_FALSE(parse_config("[http]\nweb_root = 3\n").ok());
}

TEST(Config, an_ae_title_mapped_to_two_institutions_is_an_error) {
  auto c = parse_config(R"(
[[institutions]]
code = "a"
ae_titles = ["CT1"]
[[institutions]]
code = "b"
ae_titles = ["CT1"]
)");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("CT1"), std::string::npos);
}

TEST(Config, syntax_errors_name_the_line) {
  auto c = parse_config("[dicom]\nport = = 1\n");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("line 2"), std::string::npos);
}

}  // namespace
}  // namespace yilian::app

namespace yilian::app {
namespace {

TEST(Config, dicom_peers_are_move_destinations_with_the_roles_they_query_with) {
  auto c = parse_config(R"(
[cache]
max_megabytes = 512

[[dicom_peers]]
ae_title = "LEAD_WS"
host = "10.0.0.5"
port = 104
roles = ["radiologist"]

[[dicom_peers]]
ae_title = "TA_CONSOLE"
)");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->cache_max_megabytes, 512u);
  ASSERT_EQ(c->dicom_peers.size(), 2u);
  EXPECT_EQ(c->dicom_peers[0].host, "10.0.0.5");
  EXPECT_EQ(c->dicom_peers[0].port, 104);
  EXPECT_EQ(c->dicom_peers[0].roles, 1u << static_cast<unsigned>(yilian::Role::radiologist));
  EXPECT_EQ(c->dicom_peers[1].port, 0);  // queries only, no destination
  EXPECT_EQ(c->dicom_peers[1].roles, 1u << static_cast<unsigned>(yilian::Role::township_doctor));

  EXPECT_FALSE(parse_config("[[dicom_peers]]\nae_title = \"X\"\nhost = \"h\"\n").ok());
  EXPECT_FALSE(parse_config("[[dicom_peers]]\nae_title = \"X\"\nroles = [\"admin\"]\n").ok());
  EXPECT_FALSE(parse_config("[[dicom_peers]]\nae_title = \"X\"\n[[dicom_peers]]\nae_title = "
                            "\"X\"\n")
                   .ok());
  EXPECT_FALSE(parse_config("[cache]\nmax_megabytes = 0\n").ok());
}

}  // namespace
}  // namespace yilian::app
