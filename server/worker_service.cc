#include "server/worker_service.h"

#include <deque>
#include <optional>

#include "rpc/message_batch.h"
#include "rpc/owed_read.h"

namespace taskwire::server {
namespace {

// How late a worker with nothing running here may have its messages read
// (heartbeats, stale answers, its end of the stream): far below any
// timeout the dispatcher keeps, far above the gap between one task's
// answer and the next task's assignment under steady load.
constexpr Duration kIdleWorkerReadLinger = std::chrono::milliseconds(1);

}  // namespace

// One worker's Connect stream, from its arrival to its end, on the loop
// thread. One read outstanding at a time, messages handed to the
// dispatcher as they come; the next read starts with the next write, or
// once the loop is idle (rpc::OwedRead; 1 ms later if the worker has
// nothing running here), so that its flow-control update leaves after the
// answers the message led to, or with the assignments it made room for.
// One write at a time: what is sent during a loop pass is
// written at the start of the next (or once the write in flight is done),
// all together, as one ServerBatch if the worker understands batches, so
// the 64 assignments that 64 results make room for go out in one message,
// not one and then 63. The object lives until every operation it started
// has come back from the queue.
class WorkerCall final : public WorkerStream {
 public:
  static void listen(WorkerService& service) { (new WorkerCall(service))->request(); }

  void send(v1::ServerMessage message) override {
    if (finishing_ || done_seen_) return;
    queue_.push_back(std::move(message));
    if (!writing_ && !flush_scheduled_) {
      flush_scheduled_ = true;
      flush_ = service_.loop_.call_soon([this] {
        flush_scheduled_ = false;
        if (!writing_ && !finishing_ && !queue_.empty()) write_next();
      });
    }
  }

  void allow_batches() override { batches_ = true; }

  void close(const grpc::Status& status) override {
    if (finishing_) return;
    finishing_ = true;
    final_status_ = status;
    if (!writing_) finish();
  }

 private:
  explicit WorkerCall(WorkerService& service) : service_(service), stream_(&context_) {
    service_.live_.created();
  }
  ~WorkerCall() {
    flush_.cancel();
    service_.live_.destroyed();
  }

  void request() {
    context_.AsyncNotifyWhenDone(&done_);
    service_.service_.RequestConnect(&context_, &stream_, service_.queue_, service_.queue_,
                                     &arrived_);
  }

  void on_arrived(bool ok) {
    if (!ok) {
      delete this;  // Shutting down; no done event comes.
      return;
    }
    listen(service_);
    id_ = service_.dispatcher_.attach(this);
    attached_ = true;
    read_next();
  }

  void read_next() {
    reading_ = true;
    stream_.Read(&incoming_, &read_);
  }

  void on_read(bool ok) {
    reading_ = false;
    if (!ok) {
      // The worker closed its side (or the call broke): end the stream.
      close(grpc::Status::OK);
      detach();
      delete_if_over();
      return;
    }
    if (attached_) service_.dispatcher_.receive(id_, incoming_);
    incoming_.Clear();
    if (!done_seen_) {
      if (attached_ && service_.dispatcher_.owes_answers(id_)) {
        owed_read_.owe();
      } else {
        // The worker has nothing running here: what it may say next can
        // wait for the next assignment, or a moment.
        owed_read_.owe_within(service_.loop_, kIdleWorkerReadLinger);
      }
    }
    delete_if_over();
  }

  void on_read_due(bool queue_open) {
    if (owed_read_.due(queue_open) && !done_seen_) read_next();
    delete_if_over();
  }

  void write_next() {
    writing_ = true;
    rpc::take_next_write(queue_, batches_, outgoing_);
    stream_.Write(outgoing_, &written_);
    if (owed_read_.take() && !done_seen_) read_next();
  }

  void on_written(bool ok) {
    writing_ = false;
    if (!ok) {
      queue_.clear();
      if (!finishing_) {
        finishing_ = true;
        final_status_ = grpc::Status(grpc::StatusCode::UNAVAILABLE, "write failed");
      }
    }
    if (!queue_.empty() && !finishing_) {
      write_next();
    } else if (finishing_ && !finish_started_) {
      finish();
    }
    delete_if_over();
  }

  void finish() {
    finish_started_ = true;
    stream_.Finish(final_status_, &finished_);
  }

  void on_finished(bool) {
    finished_seen_ = true;
    detach();
    delete_if_over();
  }

  void on_done(bool) {
    done_seen_ = true;
    // The dispatcher forgets the worker; its running attempts are
    // dispatched again.
    detach();
    if (!finish_started_ && !writing_) {
      finishing_ = true;
      final_status_ = grpc::Status(grpc::StatusCode::CANCELLED, "stream ended");
      finish();
    }
    delete_if_over();
  }

  void detach() {
    if (!attached_) return;
    attached_ = false;
    service_.dispatcher_.detach(id_);
  }

  void delete_if_over() {
    // Every stream is finished in the end (on_done or on_written see to
    // it), so done, finished and nothing in flight means nothing is left.
    if (done_seen_ && finished_seen_ && !reading_ && !owed_read_.deferred() && !writing_)
      delete this;
  }

  WorkerService& service_;
  grpc::ServerContext context_;
  grpc::ServerAsyncReaderWriter<v1::ServerMessage, v1::WorkerMessage> stream_;
  v1::WorkerMessage incoming_;
  v1::ServerMessage outgoing_;           // Being written.
  std::deque<v1::ServerMessage> queue_;  // Waiting for the next write.
  Dispatcher::WorkerId id_ = 0;
  CallbackHandle flush_;  // The write at the start of the next pass.
  bool flush_scheduled_ = false;
  bool batches_ = false;
  bool attached_ = false;
  bool reading_ = false;
  bool writing_ = false;
  bool finishing_ = false;
  bool finish_started_ = false;
  bool finished_seen_ = false;
  bool done_seen_ = false;
  grpc::Status final_status_;
  rpc::MemberTag<WorkerCall, &WorkerCall::on_arrived> arrived_{this};
  rpc::MemberTag<WorkerCall, &WorkerCall::on_read> read_{this};
  rpc::MemberTag<WorkerCall, &WorkerCall::on_read_due> read_due_{this};
  rpc::OwedRead owed_read_{*service_.poller_, read_due_};
  rpc::MemberTag<WorkerCall, &WorkerCall::on_written> written_{this};
  rpc::MemberTag<WorkerCall, &WorkerCall::on_finished> finished_{this};
  rpc::MemberTag<WorkerCall, &WorkerCall::on_done> done_{this};
};

void WorkerService::listen(grpc::ServerCompletionQueue& queue, rpc::CqPoller& poller) {
  queue_ = &queue;
  poller_ = &poller;
  constexpr int kConnectsRequestedAhead = 8;
  for (int i = 0; i < kConnectsRequestedAhead; ++i) WorkerCall::listen(*this);
}

}  // namespace taskwire::server
