#pragma once

#include <grpcpp/support/status.h>

#include <stdexcept>
#include <string>

#include "core/errors.h"

namespace taskwire::client {

// A call to the server failed (not a task: the call itself).
class RpcError : public std::runtime_error {
 public:
  explicit RpcError(const grpc::Status& status)
      : std::runtime_error(describe(status)),
        code_(status.error_code()),
        details_(status.error_message()) {}
  grpc::StatusCode code() const noexcept { return code_; }
  const std::string& details() const noexcept { return details_; }

 private:
  static std::string describe(const grpc::Status& status);
  grpc::StatusCode code_;
  std::string details_;
};

// The server could not be reached, or went away (UNAVAILABLE).
class ServerUnavailable : public RpcError {
 public:
  using RpcError::RpcError;
};

// The call's deadline passed (DEADLINE_EXCEEDED).
class DeadlineExceeded : public RpcError {
 public:
  using RpcError::RpcError;
};

// The server refused the request as invalid (INVALID_ARGUMENT, NOT_FOUND,
// RESOURCE_EXHAUSTED, ...); the message names the field.
class RequestRejected : public RpcError {
 public:
  using RpcError::RpcError;
};

// A remote task failed: carries the type and message it failed with.
class RemoteTaskError : public std::runtime_error {
 public:
  RemoteTaskError(std::string task_id, std::string type, std::string message)
      : std::runtime_error(type + ": " + message),
        task_id_(std::move(task_id)),
        type_(std::move(type)),
        message_(std::move(message)) {}
  const std::string& task_id() const noexcept { return task_id_; }
  const std::string& type() const noexcept { return type_; }
  const std::string& message() const noexcept { return message_; }

 private:
  std::string task_id_;
  std::string type_;
  std::string message_;
};

// Throws the RpcError subclass that fits `status` (which is not OK).
[[noreturn]] void throw_rpc_error(const grpc::Status& status);

}  // namespace taskwire::client
