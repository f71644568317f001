#include "api/static_assets.h"

#include <fmt/format.h>

#include <fstream>
#include <sstream>
#include <vector>

namespace deviceops::api {
namespace {

std::string_view trimView(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

std::vector<std::string_view> splitView(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  for (std::size_t start = 0;;) {
    const std::size_t end = text.find(separator, start);
    parts.push_back(text.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

// FNV-1a, 64 bits: a content hash for ETags (not a security boundary).
std::uint64_t fnv1a(std::string_view bytes) {
  std::uint64_t hash = 14695981039346656037ull;
  for (unsigned char c : bytes) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  return hash;
}

bool safeName(const std::string& file) {
  return !file.empty() && file.find('/') == std::string::npos &&
         file.find('\\') == std::string::npos && file.find("..") == std::string::npos &&
         file.front() != '.';
}

// True when If-None-Match lists `etag` (or is "*").
bool matches(std::string_view ifNoneMatch, const std::string& etag) {
  if (ifNoneMatch.empty()) return false;
  for (std::string_view item : splitView(ifNoneMatch, ',')) {
    item = trimView(item);
    if (item.starts_with("W/")) item.remove_prefix(2);
    if (item == "*" || item == etag) return true;
  }
  return false;
}

}  // namespace

std::string contentTypeFor(std::string_view file) {
  const auto endsWith = [&](std::string_view suffix) { return file.ends_with(suffix); };
  if (endsWith(".html")) return "text/html; charset=utf-8";
  if (endsWith(".js")) return "application/javascript; charset=utf-8";
  if (endsWith(".css")) return "text/css; charset=utf-8";
  if (endsWith(".png")) return "image/png";
  if (endsWith(".svg")) return "image/svg+xml";
  if (endsWith(".ico")) return "image/x-icon";
  if (endsWith(".json") || endsWith(".map")) return "application/json";
  return "application/octet-stream";
}

bool acceptsGzip(std::string_view acceptEncoding) {
  for (std::string_view item : splitView(acceptEncoding, ',')) {
    item = trimView(item);
    const std::size_t semicolon = item.find(';');
    std::string_view coding = trimView(item.substr(0, semicolon));
    if (coding != "gzip" && coding != "*") continue;
    if (semicolon == std::string_view::npos) return true;
    std::string_view parameter = trimView(item.substr(semicolon + 1));
    if (!parameter.starts_with("q=")) return true;
    parameter.remove_prefix(2);
    // q=0, q=0.0, q=0.000 refuse; anything else accepts.
    return parameter.find_first_not_of("0.") != std::string_view::npos;
  }
  return false;
}

StaticAssets::StaticAssets(std::filesystem::path root, std::string missingHint)
    : root_(std::move(root)), missingHint_(std::move(missingHint)) {}

std::shared_ptr<const StaticAssets::Cached> StaticAssets::load(const std::string& name) {
  const std::filesystem::path path = root_ / name;
  std::error_code error;
  const auto modified = std::filesystem::last_write_time(path, error);
  if (error) return nullptr;
  const std::uintmax_t size = std::filesystem::file_size(path, error);
  if (error) return nullptr;
  std::lock_guard lock(mutex_);
  auto found = files_.find(name);
  if (found != files_.end() && found->second->modified == modified && found->second->size == size)
    return found->second;
  std::ifstream input(path, std::ios::binary);
  if (!input) return nullptr;
  std::stringstream content;
  content << input.rdbuf();
  auto cached = std::make_shared<Cached>();
  cached->modified = modified;
  cached->size = size;
  cached->bytes = content.str();
  cached->etag = fmt::format("\"{:016x}\"", fnv1a(cached->bytes));
  files_[name] = cached;
  return cached;
}

Result<http::Reply> StaticAssets::serve(const std::string& file, const http::Request& request,
                                        const std::string& cacheControl) {
  if (!safeName(file)) return makeError(ErrorCode::kNotFound, "no such file: " + file);
  std::shared_ptr<const Cached> plain = load(file);
  if (!plain) {
    std::error_code error;
    if (!std::filesystem::is_directory(root_, error)) {
      return makeError(
          ErrorCode::kUnavailable,
          fmt::format("the web assets are not built at {}; {}", root_.string(), missingHint_));
    }
    return makeError(ErrorCode::kNotFound, "no such file: " + file);
  }
  std::shared_ptr<const Cached> body = plain;
  std::string etag = plain->etag;
  bool gzipped = false;
  if (acceptsGzip(request.header("accept-encoding"))) {
    if (std::shared_ptr<const Cached> compressed = load(file + ".gz")) {
      body = compressed;
      etag = plain->etag.substr(0, plain->etag.size() - 1) + "-gz\"";
      gzipped = true;
    }
  }
  if (matches(request.header("if-none-match"), etag)) {
    return http::bytesReply(304, contentTypeFor(file), "")
        .withHeader("ETag", etag)
        .withHeader("Cache-Control", cacheControl)
        .withHeader("Vary", "Accept-Encoding");
  }
  http::Reply reply = http::bytesReply(200, contentTypeFor(file), body->bytes)
                          .withHeader("ETag", etag)
                          .withHeader("Cache-Control", cacheControl)
                          .withHeader("Vary", "Accept-Encoding");
  if (gzipped) reply = std::move(reply).withHeader("Content-Encoding", "gzip");
  return reply;
}

}  // namespace deviceops::api
