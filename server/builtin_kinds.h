#pragma once

#include <cstdint>

#include "server/kind.h"

namespace taskwire::server {

// The kinds every server runs on its own loop:
//   sleep {seconds}         sleeps, returns null
//   wait_random {max_delay} sleeps a uniform random time in [0, max_delay]
//                           seconds and returns it
//   echo {value}            returns value
//   fail {message, type?}   fails with that message and type (default
//                           "TaskFailure"), for tests and demos
void add_builtin_kinds(KindRegistry& registry, std::uint64_t random_seed);

// The longest sleep a built-in kind accepts, in seconds (one year).
inline constexpr double kMaxSleepSeconds = 365.0 * 24 * 3600;

}  // namespace taskwire::server
