#include "server/sqlite_task_store.h"

#include <gmock/gmock.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>
#include <vector>

#include "core/event_loop.h"
#include "core/sleep.h"
#include "server/sqlite_task_schema.h"

namespace taskwire::server {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// A fresh directory under the test's temporary directory.
std::string temp_dir(const std::string& name) {
  const char* root = std::getenv("TEST_TMPDIR");
  fs::path dir = fs::path(root != nullptr ? root : fs::temp_directory_path().string()) /
                 ("sqlite_store_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  return dir.string();
}

std::string db_path(const std::string& dir) {
  return (fs::path(dir) / SqliteTaskStore::kFileName).string();
}

// Runs `body` as the loop's main task: the store's commits complete through
// the loop.
template <typename Body>
void run_on_loop(EventLoop& loop, Body body) {
  loop.run([](Body body) -> Task<void> { co_await body(); }(std::move(body)));
}

std::unique_ptr<TaskRecord> make_record(TaskIdGenerator& ids, std::int64_t now) {
  auto record = std::make_unique<TaskRecord>();
  record->id = ids.next(now / 1'000'000);
  record->kind = "echo";
  record->create_unix_nanos = now;
  return record;
}

// A record with every persisted field set.
std::unique_ptr<TaskRecord> make_full_record(TaskIdGenerator& ids) {
  auto record = make_record(ids, 1'700'000'000'123'456'789);
  record->kind = "wordcount";
  google::protobuf::Value args;
  (*args.mutable_struct_value()->mutable_fields())["text"].set_string_value("to be or not");
  args.SerializeToString(&record->args);
  record->state = v1::TASK_STATE_FAILED;
  record->attempt = 3;
  record->start_unix_nanos = 1'700'000'001'000'000'001;
  record->finish_unix_nanos = 1'700'000'002'000'000'002;
  record->timeout_nanos = 30'500'000'000;
  google::protobuf::Value result;
  result.set_number_value(42);
  result.SerializeToString(&record->result);
  record->error = std::make_unique<v1::TaskError>();
  record->error->set_type("ValueError");
  record->error->set_message("bad input");
  record->error->mutable_details()->set_string_value("line 3");
  record->extras = std::make_unique<TaskExtras>();
  record->extras->name = "nightly count";
  record->extras->labels = {{"team", "data"}, {"env", "prod"}};
  record->extras->idempotency_key = "count-2026-11-26";
  record->extras->batch_key = "nightly-batch";
  record->extras->batch_size = 3;
  v1::DispatchOptions dispatch;
  dispatch.mutable_start_to_close_timeout()->set_seconds(5);
  dispatch.SerializeToString(&record->extras->dispatch);
  google::protobuf::Value progress;
  progress.set_string_value("half way");
  progress.SerializeToString(&record->extras->progress);
  return record;
}

v1::Task as_proto(const TaskRecord& record) {
  v1::Task task;
  record.to_proto(&task);
  return task;
}

// The database and its WAL: rows are in the WAL until a checkpoint.
std::uintmax_t files_size(const std::string& dir) {
  std::uintmax_t total = 0;
  for (const auto& entry : fs::directory_iterator(dir)) total += entry.file_size();
  return total;
}

std::int64_t count_rows(const std::string& path) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* statement = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, "SELECT count(*) FROM tasks", -1, &statement, nullptr),
            SQLITE_OK)
      << sqlite3_errmsg(db);
  std::int64_t rows = -1;
  if (sqlite3_step(statement) == SQLITE_ROW) rows = sqlite3_column_int64(statement, 0);
  sqlite3_finalize(statement);
  sqlite3_close(db);
  return rows;
}

void exec_sql(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* error = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
  std::string message = error != nullptr ? error : "";
  sqlite3_free(error);
  sqlite3_close(db);
  ASSERT_EQ(rc, SQLITE_OK) << message;
}

// The message of the StoreError that opening `dir` throws, or "" if none.
std::string open_error(const std::string& dir) {
  EventLoop loop;
  try {
    SqliteTaskStore store(loop, dir);
  } catch (const StoreError& e) {
    return e.what();
  }
  return "";
}

TEST(SqliteTaskStore, RoundTripsEveryFieldThroughCloseAndReopen) {
  const std::string dir = temp_dir("round_trip");
  TaskIdGenerator ids(1);
  v1::Task full_before, plain_before;
  TaskId full_id, plain_id;
  {
    EventLoop loop;
    SqliteTaskStore store(loop, dir);
    EXPECT_EQ(store.loaded(), 0u);
    TaskRecord& full = store.insert(make_full_record(ids));
    TaskRecord& plain = store.insert(make_record(ids, 1'700'000'003'000'000'000));
    full_id = full.id;
    plain_id = plain.id;
    run_on_loop(loop, [&]() -> Task<void> {
      const TaskRecord* both[] = {&full, &plain};
      co_await store.commit(both);
    });
    full_before = as_proto(full);
    plain_before = as_proto(plain);
  }
  EventLoop loop;
  SqliteTaskStore store(loop, dir);
  EXPECT_EQ(store.loaded(), 2u);
  EXPECT_THAT(store.describe(), HasSubstr(db_path(dir)));
  ASSERT_NE(store.find(full_id), nullptr);
  ASSERT_NE(store.find(plain_id), nullptr);
  v1::Task full_after = as_proto(*store.find(full_id));
  v1::Task plain_after = as_proto(*store.find(plain_id));
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(full_before, full_after))
      << "before:\n"
      << full_before.DebugString() << "after:\n"
      << full_after.DebugString();
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(plain_before, plain_after))
      << "before:\n"
      << plain_before.DebugString() << "after:\n"
      << plain_after.DebugString();
  EXPECT_EQ(store.find(plain_id)->extras, nullptr);
  EXPECT_EQ(store.find(plain_id)->error, nullptr);
  // The idempotency key is indexed again at load.
  TaskRecord* by_key = store.find_by_idempotency_key("count-2026-11-26");
  ASSERT_NE(by_key, nullptr);
  EXPECT_EQ(by_key->id, full_id);
  // So is a CreateTasks call's key, with the size of its batch.
  TaskRecord* by_batch_key = store.find_by_batch_key("nightly-batch");
  ASSERT_NE(by_batch_key, nullptr);
  EXPECT_EQ(by_batch_key->id, full_id);
  EXPECT_EQ(by_batch_key->extras->batch_size, 3u);
  std::vector<TaskId> order;
  store.scan(std::nullopt, [&](const TaskRecord& record) {
    order.push_back(record.id);
    return true;
  });
  EXPECT_EQ(order, (std::vector<TaskId>{full_id, plain_id}));
}

TEST(SqliteTaskStore, KeepsTheLastCommittedStateOfEachRecord) {
  const std::string dir = temp_dir("last_state");
  TaskIdGenerator ids(2);
  TaskId id;
  {
    EventLoop loop;
    SqliteTaskStore store(loop, dir);
    TaskRecord& record = store.insert(make_record(ids, 1'700'000'000'000'000'000));
    id = record.id;
    run_on_loop(loop, [&]() -> Task<void> {
      co_await store.commit_one(record);
      record.state = v1::TASK_STATE_RUNNING;
      record.attempt = 1;
      co_await store.commit_one(record);
      record.state = v1::TASK_STATE_SUCCEEDED;
      google::protobuf::Value one;
      one.set_number_value(1);
      one.SerializeToString(&record.result);
      co_await store.commit_one(record);
      // Changed after the last commit: not recorded.
      record.attempt = 9;
    });
  }
  EventLoop loop;
  SqliteTaskStore store(loop, dir);
  TaskRecord* record = store.find(id);
  ASSERT_NE(record, nullptr);
  EXPECT_EQ(record->state, v1::TASK_STATE_SUCCEEDED);
  EXPECT_EQ(record->attempt, 1u);
  EXPECT_EQ(as_proto(*record).result().number_value(), 1.0);
}

TEST(SqliteTaskStore, SnapshotsTheRecordWhenCommitIsCalled) {
  const std::string dir = temp_dir("snapshot");
  TaskIdGenerator ids(3);
  TaskId id;
  {
    EventLoop loop;
    SqliteTaskStore store(loop, dir);
    TaskRecord& record = store.insert(make_record(ids, 1'700'000'000'000'000'000));
    id = record.id;
    run_on_loop(loop, [&]() -> Task<void> {
      // The task is started on a later pass; the state it commits is the
      // one at the call.
      record.state = v1::TASK_STATE_RUNNING;
      TaskHandle<void> commit = loop.create_task(store.commit_one(record));
      record.state = v1::TASK_STATE_CANCELLED;
      co_await commit;
    });
  }
  EventLoop loop;
  SqliteTaskStore store(loop, dir);
  ASSERT_NE(store.find(id), nullptr);
  EXPECT_EQ(store.find(id)->state, v1::TASK_STATE_RUNNING);
}

TEST(SqliteTaskStore, CommitCompletesOnTheLoopThreadAfterItsTransaction) {
  const std::string dir = temp_dir("loop_thread");
  TaskIdGenerator ids(4);
  EventLoop loop;
  SqliteTaskStore store(loop, dir);
  TaskRecord& record = store.insert(make_record(ids, 1'700'000'000'000'000'000));
  const std::thread::id loop_thread = std::this_thread::get_id();
  std::thread::id resumed_on;
  std::uint64_t transactions_after = 0;
  run_on_loop(loop, [&]() -> Task<void> {
    co_await store.commit_one(record);
    resumed_on = std::this_thread::get_id();
    transactions_after = store.transactions();
  });
  EXPECT_EQ(resumed_on, loop_thread);
  EXPECT_EQ(transactions_after, 1u);
}

TEST(SqliteTaskStore, CommitsQueuedDuringATransactionShareTheNext) {
  const std::string dir = temp_dir("group_commit");
  TaskIdGenerator ids(5);
  // The writer is held before its first transaction until every commit is
  // queued: they must then all go into that one transaction.
  std::mutex mutex;
  std::condition_variable changed;
  bool released = false;
  SqliteTaskStoreOptions options;
  options.before_transaction = [&] {
    std::unique_lock lock(mutex);
    changed.wait(lock, [&] { return released; });
  };
  EventLoop loop;
  SqliteTaskStore store(loop, dir, options);
  constexpr int kCommits = 200;
  std::vector<TaskRecord*> records;
  for (int i = 0; i < kCommits; ++i)
    records.push_back(&store.insert(make_record(ids, 1'700'000'000'000'000'000 + i)));
  int completed = 0;
  run_on_loop(loop, [&]() -> Task<void> {
    std::vector<TaskHandle<void>> commits;
    for (TaskRecord* record : records) {
      commits.push_back(loop.create_task(
          [](SqliteTaskStore& store, const TaskRecord& record, int& completed) -> Task<void> {
            co_await store.commit_one(record);
            ++completed;
          }(store, *record, completed)));
    }
    co_await taskwire::sleep(std::chrono::milliseconds(1));  // Every commit has run up to its wait.
    {
      std::lock_guard lock(mutex);
      released = true;
    }
    changed.notify_all();
    for (auto& commit : commits) co_await commit;
  });
  EXPECT_EQ(completed, kCommits);
  EXPECT_EQ(store.transactions(), 1u)
      << "200 commits queued together took " << store.transactions() << " transactions";
}

TEST(SqliteTaskStore, AFailedTransactionFailsItsCommitsAndTheNextOneWorks) {
  const std::string dir = temp_dir("failed_commit");
  TaskIdGenerator ids(8);
  EventLoop loop;
  SqliteTaskStore store(loop, dir);
  // A task without a kind breaks the table's NOT NULL: the transaction
  // that holds it fails as a whole.
  TaskRecord& bad = store.insert(make_record(ids, 1'700'000'000'000'000'000));
  bad.kind.clear();
  TaskRecord& good = store.insert(make_record(ids, 1'700'000'000'000'000'001));
  std::string error;
  bool later_commit_ok = false;
  run_on_loop(loop, [&]() -> Task<void> {
    const TaskRecord* both[] = {&bad, &good};
    try {
      co_await store.commit(both);
    } catch (const StoreError& e) {
      error = e.what();
    }
    co_await store.commit_one(good);
    later_commit_ok = true;
  });
  EXPECT_THAT(error, HasSubstr("commit failed"));
  EXPECT_THAT(error, HasSubstr("NOT NULL constraint failed: tasks.kind"));
  EXPECT_THAT(error, HasSubstr(db_path(dir)));
  EXPECT_TRUE(later_commit_ok);
  EXPECT_EQ(store.transactions(), 2u);
}

TEST(SqliteTaskStore, EvictDeletesTheRowAndChurnKeepsTheFileBounded) {
  const std::string dir = temp_dir("evict");
  TaskIdGenerator ids(6);
  constexpr int kRounds = 30;
  constexpr int kPerRound = 1000;
  constexpr int kKept = 10;  // Not evicted, from the last round.
  std::vector<TaskId> kept;
  std::uintmax_t size_after_first_rounds = 0;
  {
    EventLoop loop;
    SqliteTaskStore store(loop, dir);
    google::protobuf::Value args;
    args.set_string_value(std::string(200, 'x'));  // Rows of a realistic size.
    run_on_loop(loop, [&]() -> Task<void> {
      for (int round = 0; round < kRounds; ++round) {
        std::vector<const TaskRecord*> batch;
        for (int i = 0; i < kPerRound; ++i) {
          auto record = make_record(ids, 1'700'000'000'000'000'000 + round * kPerRound + i);
          args.SerializeToString(&record->args);
          batch.push_back(&store.insert(std::move(record)));
        }
        co_await store.commit(batch);
        const bool last = round == kRounds - 1;
        for (int i = 0; i < kPerRound; ++i) {
          if (last && i < kKept) {
            kept.push_back(batch[i]->id);
          } else {
            store.evict(batch[i]->id);
          }
        }
        if (round == 2) size_after_first_rounds = files_size(dir);
      }
      // Deletions are written in the next transaction: make one.
      const TaskRecord* last_kept = store.find(kept.back());
      co_await store.commit_one(*last_kept);
    });
    EXPECT_EQ(store.size(), static_cast<std::size_t>(kKept));
    EXPECT_TRUE(store.evicted(ids.next(0)) == false);
  }
  EXPECT_EQ(count_rows(db_path(dir)), kKept);
  const std::uintmax_t final_size = files_size(dir);
  // Freed pages are reused: the file stays near the size of one round.
  EXPECT_LE(final_size, 2 * size_after_first_rounds + 64 * 1024)
      << "after 3 rounds: " << size_after_first_rounds << " bytes, after " << kRounds << ": "
      << final_size;
  EventLoop loop;
  SqliteTaskStore store(loop, dir);
  EXPECT_EQ(store.loaded(), static_cast<std::size_t>(kKept));
  for (const TaskId& id : kept) EXPECT_NE(store.find(id), nullptr) << id.to_string();
}

TEST(SqliteTaskStore, AGarbageFileIsAClearError) {
  const std::string dir = temp_dir("garbage");
  fs::create_directories(dir);
  std::ofstream(db_path(dir)) << std::string(8192, 'g');
  const std::string error = open_error(dir);
  EXPECT_THAT(error, HasSubstr(db_path(dir)));
  EXPECT_THAT(error, HasSubstr("not a database"));
}

TEST(SqliteTaskStore, ACorruptDatabaseIsAClearError) {
  const std::string dir = temp_dir("corrupt");
  TaskIdGenerator ids(7);
  {
    EventLoop loop;
    SqliteTaskStore store(loop, dir);
    google::protobuf::Value args;
    args.set_string_value(std::string(500, 'y'));
    std::vector<const TaskRecord*> batch;
    for (int i = 0; i < 2000; ++i) {
      auto record = make_record(ids, 1'700'000'000'000'000'000 + i);
      args.SerializeToString(&record->args);
      batch.push_back(&store.insert(std::move(record)));
    }
    run_on_loop(loop, [&]() -> Task<void> { co_await store.commit(batch); });
  }
  // Scribble over pages in the middle of the B-tree, leaving the header.
  {
    std::fstream file(db_path(dir), std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(8 * 4096);
    const std::string junk(16 * 4096, '\x5a');
    file.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  const std::string error = open_error(dir);
  EXPECT_THAT(error, HasSubstr(db_path(dir)));
  EXPECT_THAT(error, ::testing::AnyOf(HasSubstr("integrity check"), HasSubstr("malformed")));
}

TEST(SqliteTaskStore, ADataDirectoryThatIsAFileIsAClearError) {
  const std::string dir = temp_dir("dir_is_file");
  fs::create_directories(fs::path(dir).parent_path());
  std::ofstream(dir) << "not a directory";
  const std::string error = open_error(dir);
  EXPECT_THAT(error, HasSubstr(dir));
  EXPECT_THAT(error, ::testing::AnyOf(HasSubstr("not a directory"), HasSubstr("Not a directory")));
  fs::remove(dir);
}

TEST(SqliteTaskStore, ADatabasePathThatIsADirectoryIsAClearError) {
  const std::string dir = temp_dir("db_is_dir");
  fs::create_directories(db_path(dir));
  const std::string error = open_error(dir);
  EXPECT_THAT(error, HasSubstr(db_path(dir)));
  EXPECT_THAT(error, HasSubstr("not a regular file"));
}

TEST(SqliteTaskStore, AnUnreadableDirectoryIsAClearError) {
  if (::geteuid() == 0) GTEST_SKIP() << "root reads any directory";
  const std::string dir = temp_dir("unreadable");
  fs::create_directories(dir);
  ::chmod(dir.c_str(), 0);
  const std::string error = open_error(dir);
  ::chmod(dir.c_str(), 0700);
  EXPECT_THAT(error, HasSubstr(db_path(dir)));
  EXPECT_THAT(error, HasSubstr("cannot open"));
}

TEST(SqliteTaskStore, ANewerSchemaIsAClearError) {
  const std::string dir = temp_dir("newer");
  {
    EventLoop loop;
    SqliteTaskStore store(loop, dir);
  }
  exec_sql(db_path(dir), "PRAGMA user_version = 99");
  const std::string error = open_error(dir);
  EXPECT_THAT(error, HasSubstr(db_path(dir)));
  EXPECT_THAT(error, HasSubstr("schema version 99 is newer"));
}

TEST(SqliteTaskStore, ASecondStoreOnTheSameDirectoryIsRefused) {
  const std::string dir = temp_dir("locked");
  EventLoop loop;
  SqliteTaskStore store(loop, dir);
  const std::string error = open_error(dir);
  EXPECT_THAT(error, HasSubstr(db_path(dir)));
  EXPECT_THAT(error, HasSubstr("in use by another process"));
}

// Version 1 as released, written out here rather than taken from the
// schema code, so that a changed step 1 shows up as a failure.
constexpr const char* kVersion1Schema = R"sql(
CREATE TABLE tasks (
  id BLOB PRIMARY KEY NOT NULL, kind TEXT NOT NULL, args BLOB, state INTEGER NOT NULL,
  attempt INTEGER NOT NULL, create_unix_nanos INTEGER NOT NULL,
  start_unix_nanos INTEGER NOT NULL, finish_unix_nanos INTEGER NOT NULL,
  timeout_nanos INTEGER NOT NULL, result BLOB, error BLOB, name TEXT, labels BLOB,
  idempotency_key TEXT, dispatch BLOB, progress BLOB
) WITHOUT ROWID;
PRAGMA user_version = 1;
)sql";

TEST(SqliteTaskStore, ReadsAVersion1File) {
  const std::string dir = temp_dir("version1");
  fs::create_directories(dir);
  // One finished echo task, written with plain SQL: id 01ARZ3NDEKTSV4RRFFQ69G5FAV.
  const TaskId id = *TaskId::parse("01ARZ3NDEKTSV4RRFFQ69G5FAV");
  char id_hex[33];
  std::snprintf(id_hex, sizeof id_hex, "%016llx%016llx", static_cast<unsigned long long>(id.high),
                static_cast<unsigned long long>(id.low));
  exec_sql(db_path(dir), std::string(kVersion1Schema) + "INSERT INTO tasks VALUES (X'" + id_hex +
                             "', 'echo', NULL, 3, 1, 1000, 2000, 3000, 0, "
                             "X'1a026869', NULL, 'greeting', NULL, 'key-1', NULL, NULL);");
  EventLoop loop;
  SqliteTaskStore store(loop, dir);
  ASSERT_EQ(store.loaded(), 1u);
  TaskRecord* record = store.find(id);
  ASSERT_NE(record, nullptr);
  v1::Task task = as_proto(*record);
  EXPECT_EQ(task.kind(), "echo");
  EXPECT_EQ(task.state(), v1::TASK_STATE_SUCCEEDED);
  EXPECT_EQ(task.result().string_value(), "hi");
  EXPECT_EQ(task.name(), "greeting");
  EXPECT_EQ(store.find_by_idempotency_key("key-1"), record);
  EXPECT_EQ(task.finish_time().nanos(), 3000);
}

TEST(SqliteMigrations, BringAVersion1FileToTheLatestInOrder) {
  const std::string dir = temp_dir("migrate");
  fs::create_directories(dir);
  exec_sql(db_path(dir), std::string(kVersion1Schema) +
                             "INSERT INTO tasks (id, kind, state, attempt, create_unix_nanos, "
                             "start_unix_nanos, finish_unix_nanos, timeout_nanos) "
                             "VALUES (X'00', 'echo', 1, 0, 0, 0, 0, 0);");
  // Two steps of a later release after today's: the second depends on the
  // first.
  std::vector<SqliteMigration> steps(task_store_migrations().begin(),
                                     task_store_migrations().end());
  const int latest = steps.back().version;
  steps.push_back({latest + 1, "ALTER TABLE tasks ADD COLUMN owner TEXT;"});
  steps.push_back({latest + 2, "UPDATE tasks SET owner = 'migrated';"});
  SqliteDatabase db(db_path(dir));
  migrate(db, steps);
  EXPECT_EQ(db.query_int("PRAGMA user_version"), latest + 2);
  EXPECT_EQ(db.query_text("SELECT owner FROM tasks"), "migrated");
  // Migrating again does nothing.
  migrate(db, steps);
  EXPECT_EQ(db.query_int("PRAGMA user_version"), latest + 2);
}

TEST(SqliteMigrations, AFailedStepLeavesTheVersionBeforeIt) {
  const std::string dir = temp_dir("failed_step");
  fs::create_directories(dir);
  exec_sql(db_path(dir), kVersion1Schema);
  std::vector<SqliteMigration> steps(task_store_migrations().begin(),
                                     task_store_migrations().end());
  const int latest = steps.back().version;
  steps.push_back({latest + 1, "ALTER TABLE no_such_table ADD COLUMN x TEXT;"});
  SqliteDatabase db(db_path(dir));
  try {
    migrate(db, steps);
    ADD_FAILURE() << "the last step should have failed";
  } catch (const StoreError& e) {
    EXPECT_THAT(e.what(), HasSubstr("schema version " + std::to_string(latest + 1)));
    EXPECT_THAT(e.what(), HasSubstr(db_path(dir)));
  }
  EXPECT_EQ(db.query_int("PRAGMA user_version"), latest);
}

}  // namespace
}  // namespace taskwire::server
