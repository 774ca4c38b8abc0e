// The laboratory module's steps of the index database's schema history (storage/database.h).
#pragma once

#include <span>

#include "yilian/storage/database.h"

namespace yilian::lab {

std::span<const storage::SchemaStep> schema_steps();

}  // namespace yilian::lab
