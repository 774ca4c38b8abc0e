#include "schema.h"

#include <algorithm>

#include "yilian/edge/uploads.h"
#include "yilian/identity/schema.h"
#include "yilian/lab/schema.h"
#include "yilian/pacs/schema.h"
#include "yilian/reading/schema.h"
#include "yilian/storage/cluster.h"
#include "yilian/teleconsult/schema.h"

namespace yilian::app {

std::vector<storage::SchemaStep> consortium_schema() {
  std::vector<storage::SchemaStep> steps;
  for (auto part : {pacs::schema_steps(), identity::schema_steps(), reading::schema_steps(),
                    teleconsult::schema_steps(), storage::cluster_schema_steps(),
                    edge::schema_steps(), lab::schema_steps()}) {
    steps.insert(steps.end(), part.begin(), part.end());
  }
  std::sort(steps.begin(), steps.end(),
            [](const storage::SchemaStep& a, const storage::SchemaStep& b) {
              return a.version < b.version;
            });
  return steps;
}

Result<std::unique_ptr<storage::Database>> open_index_database(const std::filesystem::path& path,
                                                               int target) {
  auto db = storage::Database::open(path.string());
  if (!db.ok()) return db.error();
  auto steps = consortium_schema();
  auto v = (*db)->migrate(steps, target);
  if (!v.ok()) return v.error();
  return std::move(*db);
}

}  // namespace yilian::app
