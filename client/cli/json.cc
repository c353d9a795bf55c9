#include "client/cli/json.h"

#include <google/protobuf/util/json_util.h>

namespace taskwire::cli {

std::string to_json(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  std::string json;
  // Only unknown Any types can fail to print, and these messages hold none.
  (void)google::protobuf::util::MessageToJsonString(message, &json, options);
  return json;
}

bool parse_json(std::string_view text, google::protobuf::Value* value, std::string* error) {
  auto status = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(text.data(), text.size()), value);
  if (status.ok()) return true;
  // The parser's message repeats the input with a caret under the fault on
  // the following lines; the first line is the reason.
  std::string message(status.message());
  *error = message.substr(0, message.find('\n'));
  while (!error->empty() && error->back() == '.') error->pop_back();
  return false;
}

}  // namespace taskwire::cli
