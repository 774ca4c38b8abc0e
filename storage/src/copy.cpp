#include "yilian/storage/copy.h"

#include <algorithm>
#include <map>
#include <set>

#include "yilian/storage/sql.h"

namespace yilian::storage {
namespace {

struct Column {
  std::string name;
  bool row_id = false;  // the table's INTEGER PRIMARY KEY
};

struct Table {
  std::string name;
  std::vector<Column> columns;
  std::set<std::string> parents;  // tables its foreign keys point to
};

std::string quoted(const std::string& name) { return "\"" + name + "\""; }

// Rows per transaction on the target: large enough that commits do not dominate, small
// enough that a failure names a narrow range.
constexpr int kRowsPerWrite = 2000;

Result<std::vector<Table>> sqlite_tables(Database& db, const std::vector<std::string>& skip) {
  std::vector<Table> tables;
  Status s = read(db, [&](sql::Db& c) -> Status {
    std::vector<std::string> names;
    if (Status q = sql::query(
            c,
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "ORDER BY name",
            [](sql::Stmt&) {}, [&](sql::Stmt& st) { names.push_back(st.text(0)); });
        !q)
      return q;
    for (const std::string& n : names) {
      if (std::find(skip.begin(), skip.end(), n) != skip.end()) continue;
      Table t{n, {}, {}};
      int pk_columns = 0;
      if (Status q = sql::query(
              c, "SELECT name, upper(type), pk FROM pragma_table_info(?1) ORDER BY cid",
              [&](sql::Stmt& st) { st.bind(1, n); },
              [&](sql::Stmt& st) {
                const bool pk = st.int64(2) > 0;
                pk_columns += pk ? 1 : 0;
                t.columns.push_back({st.text(0), pk && st.text(1) == "INTEGER"});
              });
          !q)
        return q;
      if (pk_columns != 1) {
        for (Column& col : t.columns) col.row_id = false;
      }
      if (Status q = sql::query(
              c, "SELECT \"table\" FROM pragma_foreign_key_list(?1)",
              [&](sql::Stmt& st) { st.bind(1, n); },
              [&](sql::Stmt& st) {
                if (st.text(0) != n) t.parents.insert(st.text(0));
              });
          !q)
        return q;
      tables.push_back(std::move(t));
    }
    return Status::Ok();
  });
  if (!s) return s.error();
  // Parents first (the schema has no cycles; a table whose parents never come is last).
  std::vector<Table> ordered;
  std::set<std::string> placed;
  while (!tables.empty()) {
    auto ready = std::find_if(tables.begin(), tables.end(), [&](const Table& t) {
      return std::all_of(t.parents.begin(), t.parents.end(), [&](const std::string& p) {
        return placed.count(p) || std::none_of(tables.begin(), tables.end(),
                                               [&](const Table& o) { return o.name == p; });
      });
    });
    if (ready == tables.end()) ready = tables.begin();
    placed.insert(ready->name);
    ordered.push_back(std::move(*ready));
    tables.erase(ready);
  }
  return ordered;
}

}  // namespace

Result<std::int64_t> count_rows(Database& db, const std::string& table) {
  std::int64_t n = 0;
  Status s = read(db, [&](sql::Db& c) {
    return sql::query(
        c, "SELECT count(*) FROM " + quoted(table), [](sql::Stmt&) {},
        [&](sql::Stmt& st) { n = st.int64(0); });
  });
  if (!s) return s.error();
  return n;
}

Result<std::vector<TableCopy>> copy_tables(Database& from, Database& to,
                                           const std::vector<std::string>& skip,
                                           const std::function<void(const TableCopy&)>& progress) {
  if (from.dialect() != sql::Dialect::sqlite || to.dialect() != sql::Dialect::postgres) {
    return make_error(Errc::invalid_argument, "copies from SQLite to PostgreSQL only");
  }
  auto tables = sqlite_tables(from, skip);
  if (!tables.ok()) return tables.error();
  // Nothing is copied onto rows that are there already.
  for (const Table& t : *tables) {
    auto n = count_rows(to, t.name);
    if (!n.ok()) return make_error(n.error().code, t.name + ": " + n.error().message);
    if (*n > 0) {
      return make_error(Errc::conflict, "the target already has rows in " + t.name +
                                            ": copy into a new, empty database");
    }
  }
  std::vector<TableCopy> report;
  for (const Table& t : *tables) {
    TableCopy done{t.name, 0, 0};
    auto source = count_rows(from, t.name);
    if (!source.ok()) return source.error();
    done.source_rows = *source;
    std::string cols, params;
    for (std::size_t i = 0; i < t.columns.size(); ++i) {
      cols += (i ? ", " : "") + quoted(t.columns[i].name);
      params += (i ? ", ?" : "?") + std::to_string(i + 1);
    }
    // In id order, so rows that refer to earlier rows of their own table come after them.
    std::string order;
    for (const Column& c : t.columns) {
      if (c.row_id) order = " ORDER BY " + quoted(c.name);
    }
    const std::string select = "SELECT " + cols + " FROM " + quoted(t.name) + order;
    const std::string insert =
        "INSERT INTO " + quoted(t.name) + "(" + cols + ") VALUES(" + params + ")";
    // Read in one pass on a read connection; written in batches of kRowsPerWrite rows.
    using Row = std::vector<std::optional<std::string>>;
    std::vector<Row> batch;
    Status failed = Status::Ok();
    auto flush = [&]() -> Status {
      if (batch.empty()) return Status::Ok();
      Status w = write(to, [&](sql::Db& c) -> Status {
        for (const Row& r : batch) {
          Status s = sql::run(c, insert, [&](sql::Stmt& st) {
            for (std::size_t i = 0; i < r.size(); ++i) {
              if (r[i]) {
                st.bind(static_cast<int>(i + 1), *r[i]);
              } else {
                st.bind_null(static_cast<int>(i + 1));
              }
            }
          });
          if (!s) return s;
        }
        return Status::Ok();
      });
      if (!w) return make_error(w.error().code, t.name + ": " + w.error().message);
      done.copied_rows += static_cast<std::int64_t>(batch.size());
      batch.clear();
      return Status::Ok();
    };
    Status r = read(from, [&](sql::Db& c) {
      return sql::query(
          c, select, [](sql::Stmt&) {},
          [&](sql::Stmt& st) {
            if (!failed) return;
            Row row;
            for (std::size_t i = 0; i < t.columns.size(); ++i) {
              const int col = static_cast<int>(i);
              row.push_back(st.is_null(col) ? std::nullopt
                                            : std::optional<std::string>(st.text(col)));
            }
            batch.push_back(std::move(row));
            if (batch.size() >= kRowsPerWrite) failed = flush();
          });
    });
    if (!r) return r.error();
    if (!failed) return failed.error();
    if (Status f = flush(); !f) return f.error();
    // The id counter continues after the copied ids.
    for (const Column& c : t.columns) {
      if (!c.row_id) continue;
      Status s = write(to, [&](sql::Db& db) {
        return sql::query(
            db,
            "SELECT setval(pg_get_serial_sequence('" + t.name + "', '" + c.name +
                "'), coalesce(max(" + quoted(c.name) + "), 0) + 1, false) FROM " + quoted(t.name),
            [](sql::Stmt&) {}, [](sql::Stmt&) {});
      });
      if (!s) return make_error(s.error().code, t.name + ": " + s.error().message);
    }
    if (progress) progress(done);
    report.push_back(std::move(done));
  }
  // Fresh planner statistics: the copied tables are as large now as they will be for a while.
  if (Status s = write(to, [](sql::Db& db) { return db.exec("ANALYZE"); }); !s) return s.error();
  return report;
}

}  // namespace yilian::storage
