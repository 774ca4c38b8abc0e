#include "yilian/pacs/study_access.h"

#include "yilian/identity/policy.h"

namespace yilian::pacs {

Result<bool> may_read_study(pacs::Index& index, const Principal& p, std::string_view study_uid,
                            std::string_view now) {
  auto facts = index.study_access(study_uid, p.user_id, identity::share_institutions(p), now);
  if (!facts.ok()) return facts.error();
  return facts->has_value() && identity::may_read_study(p, **facts);
}

Result<bool> may_share_study(pacs::Index& index, const Principal& p, std::string_view study_uid,
                             std::string_view now) {
  auto facts = index.study_access(study_uid, p.user_id, identity::share_institutions(p), now);
  if (!facts.ok()) return facts.error();
  return facts->has_value() && identity::may_share_study(p, **facts);
}

}  // namespace yilian::pacs
