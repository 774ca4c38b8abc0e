// `yilian demo`: a small consortium in a fresh data directory, so that every screen has
// something real in it. Before the hub starts: the institutions, reading services, queue rules
// (a configuration file in the directory) and the users, each with a printed password. Once the
// hub listens: synthetic studies sent by its own modalities over DICOM (a head CT with a stroke
// question, a chest CT, a DR, an ultrasound cine, two 12-lead ECGs, one an inferior STEMI), then
// what people do with them (a consult, a referral, a signed report), through the same REST
// handlers as
// the browser's requests.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "data_dir.h"
#include "yilian/common/result.h"
#include "yilian/net/http.h"

namespace yilian::app {

// The password every demo user signs in with (a demo directory holds no real patient).
inline constexpr const char* kDemoPassword = "yilian-demo";

// The configuration file of the demo consortium, written into `data` (returns its path).
Result<std::filesystem::path> write_demo_config(const std::filesystem::path& data);

// Creates the demo users on a directory that has none of them yet; prints who they are.
Status add_demo_users(DataDir& dd);

// Whether the directory has been filled already (a second `yilian demo` only serves it).
bool demo_seeded(const std::filesystem::path& data);

// Sends the demo studies to the running hub at `dicom_port` and acts as the demo users through
// `router` (their requests go through the same handlers as the browser's); marks the directory
// seeded when done. Runs on its own thread while the hub serves.
Status seed_demo(const std::filesystem::path& data, std::uint16_t dicom_port,
                 const http::Router& router, DataDir& dd);

}  // namespace yilian::app
