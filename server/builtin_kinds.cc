#include "server/builtin_kinds.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <initializer_list>
#include <random>
#include <string>

#include "core/sleep.h"

namespace taskwire::server {
namespace {

using google::protobuf::Struct;

std::string quoted_list(std::initializer_list<std::string_view> names) {
  std::string text;
  for (auto name : names) {
    if (!text.empty()) text += ", ";
    text += name;
  }
  return text.empty() ? "no arguments" : text;
}

// Checks that args is an object holding only the allowed fields and the
// required ones.
std::optional<std::string> check_object(const Value& args, std::string_view kind,
                                        std::initializer_list<std::string_view> required,
                                        std::initializer_list<std::string_view> optional = {}) {
  if (args.kind_case() != Value::kStructValue) {
    if (args.kind_case() == Value::KIND_NOT_SET && required.size() == 0) return std::nullopt;
    return "args: must be an object with " + quoted_list(required) + " for kind '" +
           std::string(kind) + "'";
  }
  const auto& fields = args.struct_value().fields();
  for (const auto& [name, value] : fields) {
    bool known = false;
    for (auto allowed : required) known = known || allowed == name;
    for (auto allowed : optional) known = known || allowed == name;
    if (!known) {
      std::string takes = quoted_list(required);
      if (optional.size() > 0) takes += " (optional: " + quoted_list(optional) + ")";
      return "args." + name + ": unknown field; kind '" + std::string(kind) + "' takes " + takes;
    }
  }
  for (auto name : required) {
    if (!fields.contains(std::string(name))) return "args." + std::string(name) + ": required";
  }
  return std::nullopt;
}

std::optional<std::string> check_seconds(const Value& args, const std::string& field) {
  const Value& value = args.struct_value().fields().at(field);
  if (value.kind_case() != Value::kNumberValue)
    return "args." + field + ": must be a number of seconds";
  double seconds = value.number_value();
  if (!std::isfinite(seconds)) return "args." + field + ": must be finite";
  if (seconds < 0) return "args." + field + ": must not be negative";
  if (seconds > kMaxSleepSeconds) return "args." + field + ": must be at most 31536000 (one year)";
  return std::nullopt;
}

Duration to_duration(double seconds) {
  return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(seconds));
}

Value null_value() {
  Value null;
  null.set_null_value(google::protobuf::NULL_VALUE);
  return null;
}

Value number(double v) {
  Value value;
  value.set_number_value(v);
  return value;
}

// What is left of a wait that began when the task first started.
Duration remaining(Duration wait, const TaskContext& context) {
  if (!context.extras) return wait;
  return std::max(Duration::zero(), wait - context.extras->ran_before);
}

class SleepKind final : public Kind {
 public:
  std::string_view name() const override { return "sleep"; }
  std::optional<std::string> validate(const Value& args) const override {
    if (auto error = check_object(args, name(), {"seconds"})) return error;
    return check_seconds(args, "seconds");
  }
  Task<Value> run(Value args, const TaskContext& context) override {
    Duration duration = to_duration(args.struct_value().fields().at("seconds").number_value());
    args = Value();  // A sleeping task should not hold its parsed arguments.
    duration = remaining(duration, context);
    co_await sleep(duration);
    co_return null_value();
  }
};

class WaitRandomKind final : public Kind {
 public:
  explicit WaitRandomKind(std::uint64_t seed) : random_(seed) {}
  std::string_view name() const override { return "wait_random"; }
  std::optional<std::string> validate(const Value& args) const override {
    if (auto error = check_object(args, name(), {"max_delay"})) return error;
    return check_seconds(args, "max_delay");
  }
  Task<Value> run(Value args, const TaskContext& context) override {
    double max_delay = args.struct_value().fields().at("max_delay").number_value();
    args = Value();
    double delay = std::uniform_real_distribution<double>(0.0, max_delay)(random_);
    Duration wait = remaining(to_duration(delay), context);
    co_await sleep(wait);
    co_return number(delay);
  }

 private:
  std::mt19937_64 random_;
};

class EchoKind final : public Kind {
 public:
  std::string_view name() const override { return "echo"; }
  std::optional<std::string> validate(const Value& args) const override {
    return check_object(args, name(), {"value"});
  }
  Task<Value> run(Value args, const TaskContext&) override {
    co_return std::move((*args.mutable_struct_value()->mutable_fields())["value"]);
  }
};

class FailKind final : public Kind {
 public:
  std::string_view name() const override { return "fail"; }
  std::optional<std::string> validate(const Value& args) const override {
    if (auto error = check_object(args, name(), {"message"}, {"type"})) return error;
    const auto& fields = args.struct_value().fields();
    if (fields.at("message").kind_case() != Value::kStringValue)
      return "args.message: must be a string";
    if (fields.contains("type") && fields.at("type").kind_case() != Value::kStringValue) {
      return "args.type: must be a string";
    }
    return std::nullopt;
  }
  Task<Value> run(Value args, const TaskContext&) override {
    const auto& fields = args.struct_value().fields();
    std::string type = fields.contains("type") ? fields.at("type").string_value() : "TaskFailure";
    throw TaskFailure(type.empty() ? "TaskFailure" : type, fields.at("message").string_value());
    co_return Value{};
  }
};

}  // namespace

void add_builtin_kinds(KindRegistry& registry, std::uint64_t random_seed) {
  registry.add(std::make_unique<SleepKind>());
  registry.add(std::make_unique<WaitRandomKind>(random_seed));
  registry.add(std::make_unique<EchoKind>());
  registry.add(std::make_unique<FailKind>());
}

}  // namespace taskwire::server
