#pragma once

#include <google/protobuf/message.h>
#include <google/protobuf/struct.pb.h>

#include <string>
#include <string_view>

namespace taskwire::cli {

// A message (or a google.protobuf.Value) as compact, one-line JSON in
// proto3's canonical mapping, with the .proto's snake_case field names so
// that the output reads like the documented API.
std::string to_json(const google::protobuf::Message& message);

// Parses any JSON value (object, array, string, number, true, false, null).
// On failure returns false and sets *error to a one-line reason.
bool parse_json(std::string_view text, google::protobuf::Value* value, std::string* error);

}  // namespace taskwire::cli
