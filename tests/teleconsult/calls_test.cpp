// The ICE servers a consult's video call is given: STUN as configured, TURN with a credential
// that expires (the TURN REST API's username and HMAC).
#include "yilian/teleconsult/calls.h"

#include <gtest/gtest.h>

#include "yilian/identity/crypto.h"

namespace yilian::teleconsult {
namespace {

TEST(Calls, stun_servers_are_given_as_they_are_and_turn_servers_with_an_expiring_credential) {
  CallOptions o;
  EXPECT_TRUE(ice_servers(o, "dr-li", 1'800'000'000).empty());
  o.stun = {"stun:turn.consortium.example:3478"};
  o.turn = {"turn:turn.consortium.example:3478?transport=udp",
            "turns:turn.consortium.example:5349"};
  // TURN without its secret gives no TURN server: a credential could not be checked.
  auto stun_only = ice_servers(o, "dr-li", 1'800'000'000);
  ASSERT_EQ(stun_only.size(), 1u);
  EXPECT_EQ(stun_only[0].urls, o.stun);
  EXPECT_TRUE(stun_only[0].username.empty());

  o.turn_secret = "a-long-shared-secret";
  o.turn_credential_hours = 2;
  auto both = ice_servers(o, "dr-li", 1'800'000'000);
  ASSERT_EQ(both.size(), 2u);
  EXPECT_EQ(both[1].urls, o.turn);
  EXPECT_EQ(both[1].username, "1800007200:dr-li");
  EXPECT_EQ(both[1].credential,
            identity::hmac_sha1_base64("a-long-shared-secret", "1800007200:dr-li"));
  // Another user, or later, gets another credential.
  EXPECT_NE(ice_servers(o, "dr-wang", 1'800'000'000)[1].credential, both[1].credential);
  EXPECT_EQ(ice_servers(o, "dr-li", 1'800'003'600)[1].username, "1800010800:dr-li");
}

TEST(Calls, ice_urls_name_their_scheme_and_a_host) {
  EXPECT_TRUE(is_ice_url("stun:stun.example.org:3478", false));
  EXPECT_TRUE(is_ice_url("stuns:stun.example.org", false));
  EXPECT_TRUE(is_ice_url("turn:10.0.0.1:3478?transport=tcp", true));
  EXPECT_TRUE(is_ice_url("turns:turn.example.org:5349", true));
  EXPECT_FALSE(is_ice_url("turn:turn.example.org", false));
  EXPECT_FALSE(is_ice_url("stun:stun.example.org", true));
  EXPECT_FALSE(is_ice_url("stun:", false));
  EXPECT_FALSE(is_ice_url("http://stun.example.org", false));
  EXPECT_FALSE(is_ice_url("stun:stun.example.org 3478", false));
  EXPECT_FALSE(is_ice_url("stun:" + std::string(300, 'a'), false));
}

}  // namespace
}  // namespace yilian::teleconsult
