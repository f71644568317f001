// StaticAssets: the files of one directory served over HTTP (the dashboard's web/dist, Swagger
// UI's swagger-ui-dist). Each file is read once and kept in memory until its size or modification
// time changes (a rebuilt bundle is picked up without a restart). Replies carry a strong ETag (a
// hash of the bytes) and answer If-None-Match with 304; when the client accepts gzip and a
// `<file>.gz` sibling exists (web/build.mjs writes them), its bytes are sent with
// Content-Encoding: gzip and the same ETag suffixed "-gz". Names with '/', "..", or a leading '.'
// are 404: nothing outside the directory is reachable.
//
// Thread-safety: serve() may be called from any thread.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "common/result.h"
#include "http/message.h"

namespace deviceops::api {

class StaticAssets {
 public:
  // `missingHint` completes the 503 message when the directory does not exist
  // ("run scripts/setup.sh ...").
  StaticAssets(std::filesystem::path root, std::string missingHint);

  // The reply for `file` (a plain name, e.g. "app.js") to `request` (its Accept-Encoding and
  // If-None-Match headers are read). `cacheControl` is sent as is.
  Result<http::Reply> serve(const std::string& file, const http::Request& request,
                            const std::string& cacheControl = "no-cache");

  const std::filesystem::path& root() const { return root_; }

 private:
  struct Cached {
    std::filesystem::file_time_type modified;
    std::uintmax_t size = 0;
    std::string bytes;
    std::string etag;
  };
  // The file's bytes, from the cache or read now; nullptr when it does not exist.
  std::shared_ptr<const Cached> load(const std::string& name);

  const std::filesystem::path root_;
  const std::string missingHint_;
  std::mutex mutex_;  // guards files_
  std::map<std::string, std::shared_ptr<const Cached>> files_;
};

// The Content-Type for a file name by its extension.
std::string contentTypeFor(std::string_view file);

// True when an Accept-Encoding header value allows gzip (a "gzip" coding without q=0).
bool acceptsGzip(std::string_view acceptEncoding);

}  // namespace deviceops::api
