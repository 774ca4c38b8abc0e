// The hub's side of an edge node's back channel (edge credentials only; docs/API.md):
//   GET  /api/edge/v1/sync?after=N    what the clinic must be able to read while its link is
//                                     down: the final reports and addenda of its studies (report
//                                     ids above N), its critical results (open, and those
//                                     acknowledged in the last 7 days), its consults and its
//                                     referrals (up and down) changed in the last 30 days, as
//                                     they stand (status, opinion, answer, slot, discharge
//                                     summary and follow-up plan), and the accounts of its
//                                     own users (password hashes included), so that its doctors
//                                     sign in at the edge with their usual password
//   POST /api/edge/v1/critical-results/{id}/acknowledge   {"by": username}: a doctor of the
//                                     clinic acknowledged it at the edge; the hub records it as
//                                     theirs
//   GET  /api/edge/v1/priors?patientId=P&by=U   the studies of patient P that doctor U of the
//                                     clinic may read at the hub (their own access rules)
//   GET  /api/edge/v1/priors/{study}?by=U       one of them whole: a bundle (multipart/related
//                                     of the stored files, byte for byte), streamed
// `by` names who asked at the edge: the hub judges and audits as that doctor.
#pragma once

#include "yilian/identity/accounts.h"
#include "yilian/identity/auth.h"
#include "yilian/net/http.h"
#include "yilian/pacs/index.h"
#include "yilian/reading/reading_queue.h"
#include "yilian/storage/blob_store.h"
#include "yilian/storage/database.h"

namespace yilian::edge {

// `national_issuer` ([queue] national_id_issuer): under it a Patient ID names one person at
// every member (identity/patient.h), which the priors listed to an edge follow.
void register_back_channel_routes(http::Router& router, storage::Database& db,
                                  identity::Accounts& accounts, reading::ReadingQueue& queue,
                                  identity::AuthService& auth, pacs::Index& index,
                                  storage::BlobStore& blobs, std::string national_issuer);

}  // namespace yilian::edge
