#pragma once

#include <span>

#include "server/sqlite_database.h"

namespace taskwire::server {

// One step of the task store's schema: the SQL that brings a file of
// version `version - 1` to `version`. Steps are never edited once
// released; a change to the schema is a new step at the end.
struct SqliteMigration {
  int version;
  const char* sql;
};

// The task store's steps, version 1 first.
std::span<const SqliteMigration> task_store_migrations();

// Brings the file's schema (PRAGMA user_version; 0 for a new file) to the
// last of `migrations`, one transaction per step, so that a failed step
// leaves the file at the version before it. Throws StoreError if the file's
// version is newer than the last step (written by a newer taskwired).
void migrate(SqliteDatabase& db, std::span<const SqliteMigration> migrations);

}  // namespace taskwire::server
