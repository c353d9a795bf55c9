#include "server/sqlite_task_schema.h"

#include <string>

namespace taskwire::server {
namespace {

// Version 1. One row per task, upserted whole on each change. The id is
// the ULID's 16 bytes, big-endian, so rows sort in creation order; WITHOUT
// ROWID keeps rows in that one B-tree rather than a table plus an index.
// Values (args, result, error, labels, dispatch, progress) are serialized
// Protobuf messages (google.protobuf.Value, taskwire.v1.TaskError,
// google.protobuf.Struct of strings, taskwire.v1.DispatchOptions); NULL
// stands for none. Times are Unix nanoseconds, 0 for not yet.
constexpr const char* kVersion1 = R"sql(
CREATE TABLE tasks (
  id BLOB PRIMARY KEY NOT NULL,
  kind TEXT NOT NULL,
  args BLOB,
  state INTEGER NOT NULL,
  attempt INTEGER NOT NULL,
  create_unix_nanos INTEGER NOT NULL,
  start_unix_nanos INTEGER NOT NULL,
  finish_unix_nanos INTEGER NOT NULL,
  timeout_nanos INTEGER NOT NULL,
  result BLOB,
  error BLOB,
  name TEXT,
  labels BLOB,
  idempotency_key TEXT,
  dispatch BLOB,
  progress BLOB
) WITHOUT ROWID;
)sql";

// Version 2: the idempotency key of a whole CreateTasks call, kept on the
// first task it created with the number of tasks it created.
constexpr const char* kVersion2 = R"sql(
ALTER TABLE tasks ADD COLUMN batch_key TEXT;
ALTER TABLE tasks ADD COLUMN batch_size INTEGER NOT NULL DEFAULT 0;
)sql";

constexpr SqliteMigration kMigrations[] = {
    {1, kVersion1},
    {2, kVersion2},
};

}  // namespace

std::span<const SqliteMigration> task_store_migrations() { return kMigrations; }

void migrate(SqliteDatabase& db, std::span<const SqliteMigration> migrations) {
  const int latest = migrations.empty() ? 0 : migrations.back().version;
  const auto found = db.query_int("PRAGMA user_version");
  if (found > latest) {
    throw StoreError(db.path() + ": schema version " + std::to_string(found) +
                     " is newer than this taskwired knows (" + std::to_string(latest) +
                     "): it was written by a newer taskwired");
  }
  if (found < 0) {
    throw StoreError(db.path() + ": schema version " + std::to_string(found) + " is not valid");
  }
  for (const SqliteMigration& step : migrations) {
    if (step.version <= found) continue;
    db.exec("BEGIN IMMEDIATE");
    try {
      db.exec(step.sql);
      db.exec("PRAGMA user_version = " + std::to_string(step.version));
      db.exec("COMMIT");
    } catch (const StoreError& e) {
      sqlite3_exec(db.get(), "ROLLBACK", nullptr, nullptr, nullptr);
      throw StoreError(std::string(e.what()) + " (migrating to schema version " +
                       std::to_string(step.version) + ")");
    }
  }
}

}  // namespace taskwire::server
