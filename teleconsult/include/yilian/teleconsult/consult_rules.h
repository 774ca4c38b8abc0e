// The consult lifecycle and who may see and act on a consult. Pure: no I/O.
//
//   requested ──accept──> accepted ──start──> in_progress ──conclude──> concluded
//       │                    │                    │            (signed opinion, immutable)
//       ├──decline──> declined (reason)           │
//       └──cancel (requester) from requested, accepted or in_progress ──> cancelled
//
// A consult asks a specialty. A specialist may take it when one of their roles answers that
// specialty and the asking institution is theirs or a client of their institution's reading
// services; a consult addressed to one specialist can only be taken (or declined) by them.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "yilian/common/principal.h"
#include "yilian/common/result.h"
#include "yilian/identity/policy.h"
#include "yilian/teleconsult/consult_store.h"

namespace yilian::teleconsult {

// radiologist -> "radiology", cardiologist -> "cardiology", ecg_reader -> "ecg".
std::vector<std::string> specialties_of(const Principal& p);
bool is_specialty(std::string_view s);
bool is_urgency(std::string_view s);  // routine, urgent, emergency

// Institutions whose consult requests `p` may take (own, credentialed, reading clients).
using identity::served_institutions;

// May `p` take (accept or decline) this requested consult?
bool may_take(const Principal& p, const teleconsult::ConsultRow& c);
// May `p` read the consult and join its room? Participants always; a specialist who may
// take it while it is still requested.
bool may_view(const Principal& p, const teleconsult::ConsultRow& c, bool participant);
// Is the room open for live traffic (chat, view, calls)?
bool is_live(const teleconsult::ConsultRow& c);

enum class Action { accept, start, conclude, decline, cancel };
std::optional<Action> parse_action(std::string_view s);

// What `p` doing `a` changes, or why not: permission_denied (not theirs to do), conflict
// (not in this state), invalid_argument (a reason or opinion is required). `text` is the
// reason (decline, cancel) or the opinion (conclude). `now` stamps a concluded opinion.
Result<teleconsult::ConsultChange> decide(Action a, const teleconsult::ConsultRow& c,
                                          const Principal& p, bool participant,
                                          const std::string& text, const std::string& now);

// The signature over a concluded opinion: SHA-256 of consult id, author, time and text.
std::string opinion_digest_input(const teleconsult::ConsultRow& c, const std::string& author,
                                 const std::string& at, const std::string& opinion);

}  // namespace yilian::teleconsult
