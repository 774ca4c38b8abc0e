// The PostgreSQL backend's placeholder translation: statements are written once in SQLite's
// styles and numbered the way SQLite numbers them.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "backend.h"

namespace yilian::storage::sql::backend {
namespace {

std::string translated(std::string_view q, int* count = nullptr,
                       std::map<std::string, int>* names = nullptr) {
  std::map<std::string, int> n;
  int c = 0;
  std::string out = translate_placeholders(q, n, c);
  if (count) *count = c;
  if (names) *names = n;
  return out;
}

TEST(PlaceholderTranslation, positional_numbered_and_named_parameters_become_dollar_numbers) {
  int count = 0;
  EXPECT_EQ(translated("SELECT * FROM t WHERE a = ? AND b = ?", &count),
            "SELECT * FROM t WHERE a = $1 AND b = $2");
  EXPECT_EQ(count, 2);
  EXPECT_EQ(translated("UPDATE t SET a = ?2 WHERE id = ?1 OR p = ?1", &count),
            "UPDATE t SET a = $2 WHERE id = $1 OR p = $1");
  EXPECT_EQ(count, 2);
  std::map<std::string, int> names;
  EXPECT_EQ(translated("SELECT :b, :a, :b, ?", &count, &names), "SELECT $1, $2, $1, $3");
  EXPECT_EQ(names.at(":b"), 1);
  EXPECT_EQ(names.at(":a"), 2);
  EXPECT_EQ(count, 3);
}

TEST(PlaceholderTranslation, literals_identifiers_comments_and_casts_are_left_alone) {
  EXPECT_EQ(translated("SELECT '?', 'it''s :x', \"a?b\" FROM t WHERE c = ?"),
            "SELECT '?', 'it''s :x', \"a?b\" FROM t WHERE c = $1");
  EXPECT_EQ(translated("SELECT ?::bigint -- a ? here\n, :n /* and :m */"),
            "SELECT $1::bigint -- a ? here\n, $2 /* and :m */");
}

}  // namespace
}  // namespace yilian::storage::sql::backend
