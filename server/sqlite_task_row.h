#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "server/sqlite_database.h"
#include "server/task_id.h"
#include "server/task_record.h"

namespace taskwire::server {

// What the store keeps of a task: the persisted fields of a TaskRecord,
// copied (snapshot) on the loop thread so that the writer thread can write
// them while the record changes on.
struct TaskRow {
  TaskId id;
  std::string kind;
  std::string args;
  std::int32_t state = 0;
  std::uint32_t attempt = 0;
  std::int64_t create_unix_nanos = 0;
  std::int64_t start_unix_nanos = 0;
  std::int64_t finish_unix_nanos = 0;
  std::int64_t timeout_nanos = 0;
  std::string result;
  std::string error;  // A serialized v1::TaskError; empty for none.
  std::string name;
  std::map<std::string, std::string> labels;
  std::string idempotency_key;
  std::string dispatch;
  std::string progress;
  std::string batch_key;
  std::uint32_t batch_size = 0;

  static TaskRow snapshot(const TaskRecord& record);
};

// The SQL that reads and writes rows, with the columns in the order
// bind_row() and read_row() use.
extern const char* const kUpsertTaskSql;
extern const char* const kDeleteTaskSql;
extern const char* const kSelectTasksSql;

// Binds `row` to kUpsertTaskSql. `scratch` holds the encoded id and labels
// until the statement has run.
void bind_row(SqliteStatement& upsert, const TaskRow& row, std::string& scratch);
// Binds a task id (16 bytes, big-endian) held in `bytes` until the
// statement has run.
void bind_id(SqliteStatement& statement, int index, const TaskId& id, char (&bytes)[16]);
// Reads the current row of kSelectTasksSql; throws StoreError naming the
// row if a column cannot be decoded.
std::unique_ptr<TaskRecord> read_row(const SqliteStatement& select, const std::string& path);

}  // namespace taskwire::server
