// Reading Server-Sent Events (text/event-stream, as the WHATWG HTML standard defines them) from
// a body that arrives in pieces: the daemon's job event streams (/api/generation/{id}/events).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace deviceops::client {

struct ServerSentEvent {
  std::string id;    // the last "id:" seen so far in the stream (it carries over), "" if none
  std::string type;  // "event:", "message" when the event named none
  std::string data;  // the "data:" lines joined by '\n'
  bool operator==(const ServerSentEvent&) const = default;
};

// Incremental parser: feed() takes bytes in any split (lines may end in CRLF, LF or CR) and
// returns the events that the bytes complete, in order. Comments (": ...") and "retry:" are
// skipped; an event without data is not dispatched, as the standard says. Not thread-safe.
class EventStreamParser {
 public:
  std::vector<ServerSentEvent> feed(std::string_view bytes);

 private:
  void processLine(std::string_view line, std::vector<ServerSentEvent>& events);

  std::string line_;           // the incomplete last line
  bool skipLineFeed_ = false;  // the previous piece ended in CR: a leading LF belongs to it
  std::string lastId_;
  std::string type_;
  std::string data_;
  bool hasData_ = false;
};

}  // namespace deviceops::client
