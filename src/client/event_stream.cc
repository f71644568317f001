#include "client/event_stream.h"

namespace deviceops::client {

std::vector<ServerSentEvent> EventStreamParser::feed(std::string_view bytes) {
  std::vector<ServerSentEvent> events;
  for (const char c : bytes) {
    if (skipLineFeed_) {
      skipLineFeed_ = false;
      if (c == '\n') continue;
    }
    if (c == '\r' || c == '\n') {
      skipLineFeed_ = c == '\r';
      processLine(line_, events);
      line_.clear();
    } else {
      line_.push_back(c);
    }
  }
  return events;
}

void EventStreamParser::processLine(std::string_view line, std::vector<ServerSentEvent>& events) {
  if (line.empty()) {  // the end of an event
    if (hasData_) events.push_back({lastId_, type_.empty() ? "message" : type_, data_});
    type_.clear();
    data_.clear();
    hasData_ = false;
    return;
  }
  if (line.front() == ':') return;  // a comment (keep-alive)
  const std::size_t colon = line.find(':');
  const std::string_view field = line.substr(0, colon);
  std::string_view value = colon == std::string_view::npos ? "" : line.substr(colon + 1);
  if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  if (field == "data") {
    if (hasData_) data_.push_back('\n');
    data_.append(value);
    hasData_ = true;
  } else if (field == "event") {
    type_ = std::string(value);
  } else if (field == "id" && value.find('\0') == std::string_view::npos) {
    lastId_ = std::string(value);
  }
}

}  // namespace deviceops::client
