// The teleconsult module's stores, for what uses several of them (the live hub).
#pragma once

#include "yilian/teleconsult/case_store.h"
#include "yilian/teleconsult/consult_store.h"
#include "yilian/teleconsult/notification_store.h"
#include "yilian/teleconsult/referral_store.h"

namespace yilian::teleconsult {

struct Stores {
  ConsultStore& consults;
  CaseStore& cases;
  ReferralStore& referrals;
  NotificationStore& notifications;
};

}  // namespace yilian::teleconsult
