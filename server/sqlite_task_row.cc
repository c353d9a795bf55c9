#include "server/sqlite_task_row.h"

#include <google/protobuf/struct.pb.h>

namespace taskwire::server {
namespace {

void encode_id(const TaskId& id, char (&bytes)[16]) {
  for (int i = 0; i < 8; ++i) {
    bytes[i] = static_cast<char>(id.high >> (56 - 8 * i));
    bytes[8 + i] = static_cast<char>(id.low >> (56 - 8 * i));
  }
}

bool decode_id(std::string_view bytes, TaskId* id) {
  if (bytes.size() != 16) return false;
  id->high = id->low = 0;
  for (int i = 0; i < 8; ++i) {
    id->high = id->high << 8 | static_cast<unsigned char>(bytes[i]);
    id->low = id->low << 8 | static_cast<unsigned char>(bytes[8 + i]);
  }
  return true;
}

std::string encode_labels(const std::map<std::string, std::string>& labels) {
  if (labels.empty()) return {};
  google::protobuf::Struct out;
  for (const auto& [key, value] : labels) (*out.mutable_fields())[key].set_string_value(value);
  return out.SerializeAsString();
}

bool decode_labels(std::string_view bytes, std::map<std::string, std::string>* labels) {
  if (bytes.empty()) return true;
  google::protobuf::Struct in;
  if (!in.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return false;
  for (const auto& [key, value] : in.fields()) (*labels)[key] = value.string_value();
  return true;
}

enum Column {
  kId,
  kKind,
  kArgs,
  kState,
  kAttempt,
  kCreate,
  kStart,
  kFinish,
  kTimeout,
  kResult,
  kError,
  kName,
  kLabels,
  kIdempotencyKey,
  kDispatch,
  kProgress,
  kBatchKey,
  kBatchSize,
};

}  // namespace

const char* const kUpsertTaskSql =
    "INSERT OR REPLACE INTO tasks (id, kind, args, state, attempt, create_unix_nanos, "
    "start_unix_nanos, finish_unix_nanos, timeout_nanos, result, error, name, labels, "
    "idempotency_key, dispatch, progress, batch_key, batch_size) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
const char* const kDeleteTaskSql = "DELETE FROM tasks WHERE id = ?";
const char* const kSelectTasksSql =
    "SELECT id, kind, args, state, attempt, create_unix_nanos, start_unix_nanos, "
    "finish_unix_nanos, timeout_nanos, result, error, name, labels, idempotency_key, dispatch, "
    "progress, batch_key, batch_size FROM tasks ORDER BY id";

TaskRow TaskRow::snapshot(const TaskRecord& record) {
  TaskRow row;
  row.id = record.id;
  row.kind = record.kind;
  row.args = record.args;
  row.state = record.state;
  row.attempt = record.attempt;
  row.create_unix_nanos = record.create_unix_nanos;
  row.start_unix_nanos = record.start_unix_nanos;
  row.finish_unix_nanos = record.finish_unix_nanos;
  row.timeout_nanos = record.timeout_nanos;
  row.result = record.result;
  if (record.error) record.error->SerializeToString(&row.error);
  if (record.extras) {
    row.name = record.extras->name;
    row.labels = record.extras->labels;
    row.idempotency_key = record.extras->idempotency_key;
    row.dispatch = record.extras->dispatch;
    row.progress = record.extras->progress;
    row.batch_key = record.extras->batch_key;
    row.batch_size = record.extras->batch_size;
  }
  return row;
}

void bind_id(SqliteStatement& statement, int index, const TaskId& id, char (&bytes)[16]) {
  encode_id(id, bytes);
  statement.bind_blob(index, std::string_view(bytes, sizeof bytes));
}

void bind_row(SqliteStatement& upsert, const TaskRow& row, std::string& scratch) {
  char id[16];
  encode_id(row.id, id);
  scratch.assign(id, sizeof id);
  const std::size_t id_size = scratch.size();
  scratch += encode_labels(row.labels);
  const std::string_view all(scratch);
  // Positions are 1-based.
  upsert.bind_blob(kId + 1, all.substr(0, id_size));
  upsert.bind_text(kKind + 1, row.kind);
  upsert.bind_blob(kArgs + 1, row.args);
  upsert.bind(kState + 1, row.state);
  upsert.bind(kAttempt + 1, row.attempt);
  upsert.bind(kCreate + 1, row.create_unix_nanos);
  upsert.bind(kStart + 1, row.start_unix_nanos);
  upsert.bind(kFinish + 1, row.finish_unix_nanos);
  upsert.bind(kTimeout + 1, row.timeout_nanos);
  upsert.bind_blob(kResult + 1, row.result);
  upsert.bind_blob(kError + 1, row.error);
  upsert.bind_text(kName + 1, row.name);
  upsert.bind_blob(kLabels + 1, all.substr(id_size));
  upsert.bind_text(kIdempotencyKey + 1, row.idempotency_key);
  upsert.bind_blob(kDispatch + 1, row.dispatch);
  upsert.bind_blob(kProgress + 1, row.progress);
  upsert.bind_text(kBatchKey + 1, row.batch_key);
  upsert.bind(kBatchSize + 1, row.batch_size);
}

std::unique_ptr<TaskRecord> read_row(const SqliteStatement& select, const std::string& path) {
  auto record = std::make_unique<TaskRecord>();
  auto bad = [&](const std::string& column) {
    std::string id = record->id.high == 0 && record->id.low == 0 ? "?" : record->id.to_string();
    return StoreError(path + ": task " + id + ": column '" + column + "' cannot be decoded");
  };
  if (!decode_id(select.column_bytes(kId), &record->id)) throw bad("id");
  record->kind = select.column_bytes(kKind);
  record->args = select.column_bytes(kArgs);
  const std::int64_t state = select.column_int(kState);
  if (!v1::TaskState_IsValid(static_cast<int>(state)) || state == v1::TASK_STATE_UNSPECIFIED)
    throw bad("state");
  record->state = static_cast<v1::TaskState>(state);
  record->attempt = static_cast<std::uint32_t>(select.column_int(kAttempt));
  record->create_unix_nanos = select.column_int(kCreate);
  record->start_unix_nanos = select.column_int(kStart);
  record->finish_unix_nanos = select.column_int(kFinish);
  record->timeout_nanos = select.column_int(kTimeout);
  record->result = select.column_bytes(kResult);
  if (std::string_view error = select.column_bytes(kError); !error.empty()) {
    record->error = std::make_unique<v1::TaskError>();
    if (!record->error->ParseFromArray(error.data(), static_cast<int>(error.size())))
      throw bad("error");
  }
  std::string_view name = select.column_bytes(kName);
  std::string_view labels = select.column_bytes(kLabels);
  std::string_view key = select.column_bytes(kIdempotencyKey);
  std::string_view dispatch = select.column_bytes(kDispatch);
  std::string_view progress = select.column_bytes(kProgress);
  std::string_view batch_key = select.column_bytes(kBatchKey);
  if (!name.empty() || !labels.empty() || !key.empty() || !dispatch.empty() || !progress.empty() ||
      !batch_key.empty()) {
    record->extras = std::make_unique<TaskExtras>();
    record->extras->name = name;
    if (!decode_labels(labels, &record->extras->labels)) throw bad("labels");
    record->extras->idempotency_key = key;
    record->extras->dispatch = dispatch;
    record->extras->progress = progress;
    record->extras->batch_key = batch_key;
    record->extras->batch_size = static_cast<std::uint32_t>(select.column_int(kBatchSize));
  }
  return record;
}

}  // namespace taskwire::server
