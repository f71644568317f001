#include "http/message.h"

namespace deviceops::http {
namespace {

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string_view Request::header(const std::string& lowercaseName) const {
  auto it = headers.find(lowercaseName);
  return it == headers.end() ? std::string_view() : std::string_view(it->second);
}

std::optional<std::string> Request::queryParam(const std::string& name) const {
  auto it = query.find(name);
  if (it == query.end()) return std::nullopt;
  return it->second;
}

const std::string& Request::pathParam(const std::string& name) const { return pathParams.at(name); }

Reply Reply::withHeader(std::string name, std::string value) && {
  headers.emplace_back(std::move(name), std::move(value));
  return std::move(*this);
}

Reply jsonReply(int status, const nlohmann::json& body) {
  Reply reply;
  reply.status = status;
  reply.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return reply;
}

Reply bytesReply(int status, std::string contentType, std::string body) {
  Reply reply;
  reply.status = status;
  reply.contentType = std::move(contentType);
  reply.body = std::move(body);
  return reply;
}

Reply emptyReply(int status) {
  Reply reply;
  reply.status = status;
  return reply;
}

Reply streamReply(std::shared_ptr<ResponseStream> stream, std::string contentType) {
  Reply reply;
  reply.contentType = std::move(contentType);
  reply.stream = std::move(stream);
  return reply;
}

std::optional<std::string> percentDecode(std::string_view text, bool plusIsSpace) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size()) return std::nullopt;
      const int high = hexValue(text[i + 1]);
      const int low = hexValue(text[i + 2]);
      if (high < 0 || low < 0) return std::nullopt;
      out.push_back(static_cast<char>(high * 16 + low));
      i += 2;
    } else if (c == '+' && plusIsSpace) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::optional<ParsedTarget> parseTarget(std::string_view target) {
  if (target.empty() || target.front() != '/') return std::nullopt;
  ParsedTarget parsed;
  const std::size_t question = target.find('?');
  std::string_view rawPath = target.substr(0, question);
  if (const std::size_t hash = rawPath.find('#'); hash != std::string_view::npos) {
    rawPath = rawPath.substr(0, hash);
  }
  auto path = percentDecode(rawPath, false);
  if (!path || path->find('\0') != std::string::npos) return std::nullopt;
  parsed.path = std::move(*path);
  if (question == std::string_view::npos) return parsed;
  std::string_view query = target.substr(question + 1);
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    const std::size_t equals = pair.find('=');
    auto key = percentDecode(pair.substr(0, equals), true);
    auto value = percentDecode(
        equals == std::string_view::npos ? std::string_view() : pair.substr(equals + 1), true);
    if (!key || !value) return std::nullopt;
    parsed.query[*key] = *value;
  }
  return parsed;
}

}  // namespace deviceops::http
