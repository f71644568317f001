#include "api/static_assets.h"

#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include "common/testing/temp_dir.h"

namespace deviceops::api {
namespace {

void writeFile(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

http::Request requestWith(std::map<std::string, std::string> headers) {
  http::Request request;
  request.headers = std::move(headers);
  return request;
}

std::string headerOf(const http::Reply& reply, const std::string& name) {
  for (const auto& [key, value] : reply.headers) {
    if (key == name) return value;
  }
  return "";
}

TEST(StaticAssetsTest, ServesWithAnEtagAnd304WhenItMatches) {
  testing::TempDir dir;
  writeFile(dir.root() / "app.js", "console.log(1)");
  StaticAssets assets(dir.root(), "build it");
  const Result<http::Reply> first = assets.serve("app.js", requestWith({}));
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->status, 200);
  EXPECT_EQ(first->body, "console.log(1)");
  EXPECT_EQ(first->contentType, "application/javascript; charset=utf-8");
  const std::string etag = headerOf(*first, "ETag");
  ASSERT_EQ(etag.size(), 18u);  // "16 hex digits"
  EXPECT_EQ(headerOf(*first, "Content-Encoding"), "");

  const auto again = assets.serve("app.js", requestWith({{"if-none-match", etag}}));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->status, 304);
  EXPECT_TRUE(again->body.empty());
  const auto listed =
      assets.serve("app.js", requestWith({{"if-none-match", "\"other\", W/" + etag}}));
  EXPECT_EQ(listed->status, 304);
  const auto stale = assets.serve("app.js", requestWith({{"if-none-match", "\"other\""}}));
  EXPECT_EQ(stale->status, 200);
}

TEST(StaticAssetsTest, SendsTheGzipCopyOnlyToClientsThatAcceptIt) {
  testing::TempDir dir;
  writeFile(dir.root() / "app.css", "body{}");
  writeFile(dir.root() / "app.css.gz", "GZBYTES");
  StaticAssets assets(dir.root(), "build it");
  const auto gzipped = assets.serve("app.css", requestWith({{"accept-encoding", "br, gzip"}}));
  ASSERT_TRUE(gzipped.ok());
  EXPECT_EQ(gzipped->body, "GZBYTES");
  EXPECT_EQ(headerOf(*gzipped, "Content-Encoding"), "gzip");
  EXPECT_EQ(headerOf(*gzipped, "Vary"), "Accept-Encoding");
  EXPECT_EQ(gzipped->contentType, "text/css; charset=utf-8");  // the original's type
  const std::string gzEtag = headerOf(*gzipped, "ETag");
  EXPECT_TRUE(gzEtag.ends_with("-gz\""));

  const auto refused =
      assets.serve("app.css", requestWith({{"accept-encoding", "gzip;q=0, identity"}}));
  EXPECT_EQ(refused->body, "body{}");
  EXPECT_NE(headerOf(*refused, "ETag"), gzEtag);  // the two representations differ
  const auto plain = assets.serve("app.css", requestWith({}));
  EXPECT_EQ(plain->body, "body{}");
  // The gzip ETag does not validate the plain representation.
  EXPECT_EQ(assets.serve("app.css", requestWith({{"if-none-match", gzEtag}}))->status, 200);

  EXPECT_TRUE(acceptsGzip("gzip"));
  EXPECT_TRUE(acceptsGzip("deflate, gzip;q=0.5"));
  EXPECT_TRUE(acceptsGzip("*"));
  EXPECT_FALSE(acceptsGzip("gzip;q=0"));
  EXPECT_FALSE(acceptsGzip("gzip;q=0.000"));
  EXPECT_FALSE(acceptsGzip("br, deflate"));
  EXPECT_FALSE(acceptsGzip(""));
}

TEST(StaticAssetsTest, PicksUpARebuiltFile) {
  testing::TempDir dir;
  writeFile(dir.root() / "index.html", "one");
  StaticAssets assets(dir.root(), "build it");
  EXPECT_EQ(assets.serve("index.html", requestWith({}))->body, "one");
  writeFile(dir.root() / "index.html", "two, longer");  // another size: seen at once
  EXPECT_EQ(assets.serve("index.html", requestWith({}))->body, "two, longer");
}

TEST(StaticAssetsTest, NothingOutsideTheDirectoryAndA503WhenItIsMissing) {
  testing::TempDir dir;
  std::filesystem::create_directories(dir.root() / "dist");
  writeFile(dir.root() / "secret.txt", "no");
  writeFile(dir.root() / "dist" / ".env", "no");
  StaticAssets assets(dir.root() / "dist", "build it");
  for (const char* name : {"../secret.txt", "..", "", ".env", "a/b.js", "..%2Fsecret.txt",
                           "missing.js", "sub\\..\\x"}) {
    SCOPED_TRACE(name);
    const auto reply = assets.serve(name, requestWith({}));
    ASSERT_FALSE(reply.ok());
    EXPECT_EQ(reply.error().code, ErrorCode::kNotFound);
  }
  StaticAssets missing(dir.root() / "not-built", "run scripts/setup.sh");
  const auto reply = missing.serve("index.html", requestWith({}));
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(reply.error().message.find("run scripts/setup.sh"), std::string::npos);
}

}  // namespace
}  // namespace deviceops::api
