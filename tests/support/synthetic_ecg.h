// Synthetic 12-lead ECGs with known intervals and ST levels (yilian/ecg/synthetic.h), under the
// names the tests use.
#pragma once

#include "yilian/ecg/synthetic.h"

namespace yilian::testing {

using ecg::LeadShape;
using ecg::make_ecg;
using ecg::Synthetic;

}  // namespace yilian::testing
