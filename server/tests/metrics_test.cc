// The metrics registry and its text exposition (format 0.0.4), checked
// against the exact text; and the task metrics fed by a real TaskManager
// on virtual time.
#include <gmock/gmock.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <limits>
#include <stdexcept>
#include <string>

#include "core/sleep.h"
#include "core/tests/test_loop.h"
#include "server/builtin_kinds.h"
#include "server/memory_task_store.h"
#include "server/metrics/exposition.h"
#include "server/metrics/registry.h"
#include "server/metrics/rpc_metrics.h"
#include "server/metrics/task_metrics.h"
#include "server/task_manager.h"
#include "server/tests/stored_task.h"

namespace taskwire::server::metrics {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

TEST(Exposition, ACounterWithoutLabelsShowsZeroBeforeAnyIncrement) {
  Registry registry;
  registry.counter("jobs_total", "Jobs done.");
  EXPECT_EQ(render_text(registry),
            "# HELP jobs_total Jobs done.\n"
            "# TYPE jobs_total counter\n"
            "jobs_total 0\n");
}

TEST(Exposition, LabelledChildrenAppearInOrderOfCreation) {
  Registry registry;
  auto& family = registry.counter("tasks_total", "Tasks.", {"kind", "outcome"});
  Counter& echo = family.with({"echo", "ok"});
  family.with({"sleep", "failed"}).inc(3);
  echo.inc();
  echo.inc();
  EXPECT_EQ(&family.with({"echo", "ok"}), &echo);
  EXPECT_EQ(render_text(registry),
            "# HELP tasks_total Tasks.\n"
            "# TYPE tasks_total counter\n"
            "tasks_total{kind=\"echo\",outcome=\"ok\"} 2\n"
            "tasks_total{kind=\"sleep\",outcome=\"failed\"} 3\n");
}

TEST(Exposition, ALabelledFamilyWithoutChildrenHasOnlyItsHeader) {
  Registry registry;
  registry.gauge("depth", "Queue depth.", {"kind"});
  EXPECT_EQ(render_text(registry),
            "# HELP depth Queue depth.\n"
            "# TYPE depth gauge\n");
}

TEST(Exposition, LabelValuesAndHelpAreEscaped) {
  Registry registry;
  registry.gauge("g", "Back\\slash and\nnewline \"kept\".", {"name"})
      .with({"a\"b\\c\nd"})
      .set(-1.5);
  EXPECT_EQ(render_text(registry),
            "# HELP g Back\\\\slash and\\nnewline \"kept\".\n"
            "# TYPE g gauge\n"
            "g{name=\"a\\\"b\\\\c\\nd\"} -1.5\n");
}

TEST(Exposition, AHistogramHasCumulativeBucketsThenSumAndCount) {
  Registry registry;
  auto& family = registry.histogram("latency_seconds", "Latency.", {"method"}, {0.1, 0.5, 1});
  Histogram& get = family.with({"Get"});
  for (double value : {0.05, 0.1, 0.3, 0.7, 2.0}) get.observe(value);
  EXPECT_EQ(render_text(registry),
            "# HELP latency_seconds Latency.\n"
            "# TYPE latency_seconds histogram\n"
            "latency_seconds_bucket{method=\"Get\",le=\"0.1\"} 2\n"
            "latency_seconds_bucket{method=\"Get\",le=\"0.5\"} 3\n"
            "latency_seconds_bucket{method=\"Get\",le=\"1\"} 4\n"
            "latency_seconds_bucket{method=\"Get\",le=\"+Inf\"} 5\n"
            "latency_seconds_sum{method=\"Get\"} 3.15\n"
            "latency_seconds_count{method=\"Get\"} 5\n");
}

TEST(Exposition, AnUnlabelledHistogramPutsOnlyLeInItsBuckets) {
  Registry registry;
  registry.histogram("h", "H.", {}, {1}).with({}).observe(1);
  EXPECT_EQ(render_text(registry),
            "# HELP h H.\n"
            "# TYPE h histogram\n"
            "h_bucket{le=\"1\"} 1\n"
            "h_bucket{le=\"+Inf\"} 1\n"
            "h_sum 1\n"
            "h_count 1\n");
}

TEST(Exposition, CollectorsRunBeforeEachRender) {
  Registry registry;
  Gauge& gauge = registry.gauge("live", "Live.").with({});
  int value = 1;
  registry.add_collector([&] { gauge.set(value); });
  EXPECT_THAT(render_text(registry), HasSubstr("\nlive 1\n"));
  value = 7;
  EXPECT_THAT(render_text(registry), HasSubstr("\nlive 7\n"));
}

TEST(Exposition, ValuesAreWrittenAsPrometheusReadsThem) {
  EXPECT_EQ(format_value(0), "0");
  EXPECT_EQ(format_value(42), "42");
  EXPECT_EQ(format_value(0.005), "0.005");
  EXPECT_EQ(format_value(1e21), "1e+21");
  EXPECT_EQ(format_value(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(format_value(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(format_value(std::numeric_limits<double>::quiet_NaN()), "NaN");
}

TEST(Registry, RefusesNamesPrometheusWouldNotAccept) {
  Registry registry;
  EXPECT_THROW(registry.counter("1st", "x"), std::invalid_argument);
  EXPECT_THROW(registry.counter("a-b", "x"), std::invalid_argument);
  EXPECT_THROW(registry.counter("ok", "x", {"le"}), std::invalid_argument);
  EXPECT_THROW(registry.counter("ok", "x", {"__reserved"}), std::invalid_argument);
  EXPECT_THROW(registry.counter("ok", "x", {"a", "a"}), std::invalid_argument);
  EXPECT_THROW(registry.histogram("h", "x", {}, {1, 1}), std::invalid_argument);
  EXPECT_NO_THROW(registry.counter("ns:sub_total", "x", {"a_1"}));
}

TEST(RpcMetrics, EachStatusCodeGetsItsOwnSeriesNamedAsGrpcNamesIt) {
  Registry registry;
  auto& family = registry.histogram("rpc_seconds", "RPC.", {"method", "code"}, {1});
  RpcMetrics rpc(family, "svc/Get");
  rpc.observe(0, 0.5);
  rpc.observe(3, 2);
  rpc.observe(0, 0.25);
  rpc.observe(99, 0.1);  // Not a code: counted as UNKNOWN.
  std::string text = render_text(registry);
  EXPECT_THAT(text, HasSubstr("rpc_seconds_count{method=\"svc/Get\",code=\"OK\"} 2\n"));
  EXPECT_THAT(
      text,
      HasSubstr("rpc_seconds_bucket{method=\"svc/Get\",code=\"INVALID_ARGUMENT\",le=\"1\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("rpc_seconds_count{method=\"svc/Get\",code=\"UNKNOWN\"} 1\n"));
  EXPECT_EQ(RpcMetrics::code_name(16), std::string("UNAUTHENTICATED"));
}

// A TaskManager on virtual time with TaskMetrics as its observer.
class TaskMetricsTest : public ::testing::Test {
 protected:
  TaskMetricsTest() {
    add_builtin_kinds(kinds_, 1);
    manager_.add_observer(&metrics_);
  }

  static v1::CreateTaskRequest request(const std::string& kind, const std::string& args_json) {
    v1::CreateTaskRequest request;
    request.set_kind(kind);
    EXPECT_TRUE(
        google::protobuf::util::JsonStringToMessage(args_json, request.mutable_args()).ok());
    return request;
  }

  Task<std::string> create(v1::CreateTaskRequest request) {
    v1::Task task;
    auto status = co_await manager_.create_task(request, &task);
    EXPECT_TRUE(status.ok()) << status.error_message();
    co_return task.id();
  }

  void run(std::function<Task<void>()> body) {
    v_.loop().set_exception_handler([](const std::string&, std::exception_ptr) {});
    v_.run(body());
  }

  std::string text() const { return render_text(registry_); }

  testing::VirtualLoop v_;
  KindRegistry kinds_;
  MemoryTaskStore store_;
  TaskManager manager_{v_.loop(), kinds_, store_, Limits{}, 7};
  Registry registry_;
  TaskMetrics metrics_{registry_};
};

TEST_F(TaskMetricsTest, CountsEachOutcomeAndTimesTasksFromTheRecordsOwnClock) {
  run([&]() -> Task<void> {
    std::string ok = co_await create(request("sleep", R"({"seconds": 0.2})"));
    co_await create(request("fail", R"({"message": "no"})"));
    auto slow = request("sleep", R"({"seconds": 10})");
    slow.mutable_timeout()->set_seconds(1);
    co_await create(slow);
    std::string doomed = co_await create(request("sleep", R"({"seconds": 10})"));
    co_await sleep(0s);
    std::string during = text();
    EXPECT_THAT(during, HasSubstr("\ntaskwire_tasks_running 3\n"));
    EXPECT_THAT(during, HasSubstr("\ntaskwire_tasks_pending 0\n"));
    v1::CancelTaskRequest cancel;
    cancel.set_id(doomed);
    v1::Task cancelled;
    EXPECT_TRUE((co_await manager_.cancel_task(cancel, &cancelled)).ok());
    co_await sleep(2s);
  });
  std::string after = text();
  SCOPED_TRACE(after);
  for (const char* line : {
           "taskwire_tasks_created_total{kind=\"sleep\"} 3\n",
           "taskwire_tasks_created_total{kind=\"fail\"} 1\n",
           "taskwire_tasks_finished_total{kind=\"sleep\",outcome=\"succeeded\"} 1\n",
           "taskwire_tasks_finished_total{kind=\"sleep\",outcome=\"timed_out\"} 1\n",
           "taskwire_tasks_finished_total{kind=\"sleep\",outcome=\"cancelled\"} 1\n",
           "taskwire_tasks_finished_total{kind=\"sleep\",outcome=\"failed\"} 0\n",
           "taskwire_tasks_finished_total{kind=\"fail\",outcome=\"failed\"} 1\n",
           "taskwire_tasks_running 0\n",
           "taskwire_tasks_pending 0\n",
           // 0.2 s and 1 s (the timeout); the cancelled sleep took no loop time.
           "taskwire_task_duration_seconds_bucket{kind=\"sleep\",le=\"0.1\"} 1\n",
           "taskwire_task_duration_seconds_bucket{kind=\"sleep\",le=\"0.5\"} 2\n",
           "taskwire_task_duration_seconds_bucket{kind=\"sleep\",le=\"1\"} 3\n",
           "taskwire_task_duration_seconds_sum{kind=\"sleep\"} 1.2\n",
           "taskwire_task_duration_seconds_count{kind=\"sleep\"} 3\n",
           "taskwire_task_queue_wait_seconds_count{kind=\"sleep\"} 3\n",
       }) {
    EXPECT_THAT(after, HasSubstr(line));
  }
}

TEST_F(TaskMetricsTest, ATaskCancelledBeforeItStartsIsNeverTimed) {
  run([&]() -> Task<void> {
    std::string id = co_await create(request("sleep", R"({"seconds": 1})"));
    EXPECT_THAT(text(), HasSubstr("\ntaskwire_tasks_pending 1\n"));
    v1::CancelTaskRequest cancel;
    cancel.set_id(id);
    v1::Task cancelled;
    EXPECT_TRUE((co_await manager_.cancel_task(cancel, &cancelled)).ok());
  });
  std::string after = text();
  EXPECT_THAT(after,
              HasSubstr("taskwire_tasks_finished_total{kind=\"sleep\",outcome=\"cancelled\"} 1\n"));
  EXPECT_THAT(after, HasSubstr("taskwire_task_duration_seconds_count{kind=\"sleep\"} 0\n"));
  EXPECT_THAT(after, HasSubstr("\ntaskwire_tasks_pending 0\n"));
}

TEST_F(TaskMetricsTest, TasksTakenOverAfterARestartAreCountedOnceAndFinish) {
  store_task(store_, {.kind = "sleep",
                      .args_json = R"({"seconds": 10})",
                      .state = v1::TASK_STATE_RUNNING,
                      .attempt = 1,
                      .created_ago = 1s,
                      .started_ago = 1s});
  store_task(store_, {.kind = "echo", .args_json = R"({"value": 1})"});
  manager_.recover();
  EXPECT_THAT(text(), HasSubstr("\ntaskwire_tasks_running 1\n"));
  EXPECT_THAT(text(), HasSubstr("\ntaskwire_tasks_pending 1\n"));
  run([&]() -> Task<void> { co_await sleep(20s); });
  std::string after = text();
  SCOPED_TRACE(after);
  EXPECT_THAT(after, HasSubstr("\ntaskwire_tasks_running 0\n"));
  EXPECT_THAT(after, HasSubstr("\ntaskwire_tasks_pending 0\n"));
  EXPECT_THAT(after,
              HasSubstr("taskwire_tasks_finished_total{kind=\"sleep\",outcome=\"succeeded\"} 1\n"));
  EXPECT_THAT(after,
              HasSubstr("taskwire_tasks_finished_total{kind=\"echo\",outcome=\"succeeded\"} 1\n"));
}

}  // namespace
}  // namespace taskwire::server::metrics
