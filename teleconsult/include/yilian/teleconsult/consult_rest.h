// Consults over REST (live traffic is on /ws, hub.h):
//   POST /api/consults                          a township doctor asks a specialty
//   GET  /api/consults?status=&limit=&offset=   one's own consults and open requests one may take
//   GET  /api/consults/{id}                     detail: attachments, participants, history, opinion
//   POST /api/consults/{id}/{accept|start|conclude|decline|cancel}
//   GET  /api/consults/{id}/messages?afterSeq=&limit=   the chat log
// Every call is authorised by consult_rules.h and audited.
#pragma once

#include "yilian/identity/accounts.h"
#include "yilian/identity/auth.h"
#include "yilian/net/http.h"
#include "yilian/pacs/index.h"
#include "yilian/reading/reading_queue.h"
#include "yilian/teleconsult/hub.h"
#include "yilian/teleconsult/stores.h"

namespace yilian::teleconsult {

// Emergency cases:
//   POST /api/emergencies                         open a chest-pain or stroke case
//   GET  /api/emergencies?status=open|closed|all  cases of the institutions one serves
//   GET  /api/stats/emergency                     the centres' intervals against targets
//   GET  /api/emergencies/{id}                    time points, history, interval clocks
//   POST /api/emergencies/{id}/time-points        {point, at?, note?} (a correction: again)
//   POST /api/emergencies/{id}/ack                acknowledge the alert (one tap)
//   POST /api/emergencies/{id}/close
// `utc_offset_minutes`: the hub's local time, for the centres' figures by month.
void register_case_routes(http::Router& router, teleconsult::CaseStore& store, pacs::Index& index,
                          Hub& hub, identity::AuthService& auth, int utc_offset_minutes = 0);

// On-call rosters (emergency_rules.h says who gets an alert):
//   GET    /api/oncall?institution=CODE[&from=]       shifts ending after `from` (default now)
//   GET    /api/oncall/now?institution=&service=[&at=] primary and back-ups for a case there
//   POST   /api/oncall                                admin: {institution, service, role,
//                                                     user, startsAt, endsAt}
//   DELETE /api/oncall/{id}                           admin
void register_oncall_routes(http::Router& router, teleconsult::CaseStore& store,
                            identity::AuthService& auth);

// Referrals:
//   POST /api/referrals                           up or down, to a member institution
//   GET  /api/referrals?status=                   incoming and outgoing of one's institutions
//   GET  /api/referrals/{id}                      with its history
//   POST /api/referrals/{id}/{accept|reject|schedule|arrive|complete|cancel}
//   PUT  /api/admin/referral-quotas/{code}        {daily}: slots per day (admin)
void register_referral_routes(http::Router& router, teleconsult::ReferralStore& store, Hub& hub,
                              pacs::Index& index, identity::Accounts& accounts,
                              identity::AuthService& auth);

// Notifications (also pushed on /ws, hub.h), each user's own:
//   GET  /api/notifications?before=&limit=        pending ones, newest first, and how many
//   POST /api/notifications/{id}/ack
//   POST /api/notifications/ack                   {upTo}: all up to that id
void register_notification_routes(http::Router& router, teleconsult::NotificationStore& store,
                                  identity::AuthService& auth);

void register_consult_routes(http::Router& router, teleconsult::ConsultStore& store, Hub& hub,
                             pacs::Index& index, reading::ReadingQueue& queue,
                             identity::Accounts& accounts, identity::AuthService& auth);

}  // namespace yilian::teleconsult
