// Consults over REST (live traffic is on /ws, hub.h):
//   POST /api/consults                          a township doctor asks a specialty
//   GET  /api/consults?status=&limit=&offset=   one's own consults and open requests one may take
//   GET  /api/consults/{id}                     detail: attachments, participants, history, opinion
//   POST /api/consults/{id}/{accept|start|conclude|decline|cancel}
//   GET  /api/consults/{id}/messages?afterSeq=&limit=   the chat log
// Every call is authorised by consult_rules.h and audited.
#pragma once

#include "yilian/common/http.h"
#include "yilian/identity/auth.h"
#include "yilian/storage/accounts.h"
#include "yilian/storage/consult_store.h"
#include "yilian/storage/index.h"
#include "yilian/storage/queue_store.h"
#include "yilian/teleconsult/hub.h"

namespace yilian::teleconsult {

void register_consult_routes(http::Router& router, storage::ConsultStore& store, Hub& hub,
                             storage::Index& index, storage::QueueStore& queue,
                             storage::Accounts& accounts, identity::AuthService& auth);

}  // namespace yilian::teleconsult
