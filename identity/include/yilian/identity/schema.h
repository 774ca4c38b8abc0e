#pragma once

#include <span>

#include "yilian/storage/database.h"

namespace yilian::identity {

// This module's steps of the index database's schema history.
std::span<const storage::SchemaStep> schema_steps();

}  // namespace yilian::identity
