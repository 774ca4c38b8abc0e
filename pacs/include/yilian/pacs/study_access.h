// The one read check every PACS entry point uses (REST, DICOMweb, the reading queue,
// C-FIND/C-MOVE/C-GET): the study's access facts from the index, judged by identity's rules.
#pragma once

#include <string_view>

#include "yilian/common/principal.h"
#include "yilian/common/result.h"
#include "yilian/pacs/index.h"

namespace yilian::pacs {

// Whether `p` may read the study `study_uid` at `now`; false when no such study exists, so
// that a hidden study and a missing one look alike.
Result<bool> may_read_study(pacs::Index& index, const Principal& p, std::string_view study_uid,
                            std::string_view now);

// Whether `p` may pass the study on to another institution (a share, a referral): only
// someone who reaches it directly, never through a share of their own.
Result<bool> may_share_study(pacs::Index& index, const Principal& p, std::string_view study_uid,
                             std::string_view now);

}  // namespace yilian::pacs
