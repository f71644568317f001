// `deviceops train ... --follow` against a fake daemon: progress from the job's Server-Sent
// Events as plain lines (a test's stream is not a terminal), the final state and exit status.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "client/cli.h"
#include "client/testing/cli_run.h"
#include "client/testing/fake_http_server.h"

namespace deviceops::client {
namespace {

using fakes::CannedReply;
using fakes::FakeHttpServer;
using fakes::RecordedRequest;
using Json = nlohmann::json;

std::string event(int id, const std::string& type, const Json& data) {
  return fmt::format("id: {}\nevent: {}\ndata: {}\n\n", id, type, data.dump());
}

CannedReply eventStream(const std::string& body) {
  CannedReply reply;
  reply.contentType = "text/event-stream";
  reply.body = body;
  return reply;
}

using fakes::CliRun;

CliRun run(const FakeHttpServer& server, std::vector<std::string> args) {
  return fakes::runCliAgainst(server.url(), std::move(args));
}

// A 2-epoch job of 6 steps; `finalState` is what GET /api/training/job-1 says at the end.
class TrainFollowTest : public ::testing::Test {
 protected:
  std::string finalState = "completed";
  // The stream opens after the job has done `replayedUpTo` steps (the snapshot says so).
  int snapshotStep = 0;

  FakeHttpServer server{[this](const RecordedRequest& request) {
    if (request.method == "POST" && request.target == "/api/training/start") {
      return CannedReply::json(202, R"({"jobId": "job-1", "state": "queued", "reason": ""})");
    }
    if (request.target == "/api/training/job-1/events") {
      const Json snapshot = {
          {"jobId", "job-1"},
          {"state", "running"},
          {"progress", {{"step", snapshotStep}, {"totalSteps", 6}, {"epochs", 2}}}};
      std::string body = "event: snapshot\ndata: " + snapshot.dump() + "\n\n";
      body += event(1, "started", {{"step", 0}, {"totalSteps", 6}, {"epochs", 2}});
      body += event(2, "progress", {{"epoch", 1}, {"step", 2}, {"totalSteps", 6}, {"loss", 0.9}});
      body += event(3, "epoch", {{"epoch", 1}, {"step", 3}, {"loss", 0.5}, {"accuracy", 0.75}});
      body += event(4, "progress",
                    {{"epoch", 2},
                     {"step", 5},
                     {"totalSteps", 6},
                     {"loss", 0.25},
                     {"samplesPerSecond", 1234.4}});
      body += event(5, "epoch", {{"epoch", 2}, {"step", 6}, {"loss", 0.2}, {"accuracy", 0.875}});
      body += event(6, "state", {{"state", finalState}, {"step", 6}});
      body += "event: end\ndata: {}\n\n";
      return eventStream(body);
    }
    if (request.target == "/api/training/job-1") {
      Json job = {{"jobId", "job-1"}, {"state", finalState}, {"reason", "finished all epochs"}};
      if (finalState == "failed") job["lastLogLines"] = {"boom"};
      return CannedReply::json(200, job.dump());
    }
    return CannedReply::json(404, R"({"error": {"code": "NOT_FOUND", "message": "no"}})");
  }};
};

TEST_F(TrainFollowTest, PlainLinePerEpochThenTheFinalState) {
  const CliRun result = run(server, {"train", "start", "--dataset", "d", "--follow"});
  EXPECT_EQ(result.exitCode, kExitOk) << result.err;
  EXPECT_EQ(result.out,
            "job-1 queued: \n"
            "job-1 50% 3/6 running epoch 1/2 loss 0.5000 accuracy 0.7500\n"
            "job-1 100% 6/6 running epoch 2/2 loss 0.2000 1234 samples/s accuracy 0.8750\n"
            "job-1 100% 6/6 completed epoch 2/2 loss 0.2000 1234 samples/s accuracy 0.8750\n"
            "job-1 completed: finished all epochs\n");
  EXPECT_EQ(result.err, "");
}

TEST_F(TrainFollowTest, EventsOlderThanTheSnapshotAreSkipped) {
  snapshotStep = 5;  // the stream opened late: epoch 1's line is history
  const CliRun result = run(server, {"train", "follow", "job-1"});
  EXPECT_EQ(result.exitCode, kExitOk) << result.err;
  EXPECT_EQ(result.out,
            "job-1 100% 6/6 running epoch 2/2 loss 0.2000 1234 samples/s accuracy 0.8750\n"
            "job-1 100% 6/6 completed epoch 2/2 loss 0.2000 1234 samples/s accuracy 0.8750\n"
            "job-1 completed: finished all epochs\n");
}

TEST_F(TrainFollowTest, AFailedJobExitsOneWithItsLog) {
  finalState = "failed";
  const CliRun result = run(server, {"train", "follow", "job-1"});
  EXPECT_EQ(result.exitCode, kExitServerError);
  EXPECT_NE(result.out.find("\njob-1 failed: finished all epochs\n  | boom\n"), std::string::npos)
      << result.out;
}

TEST_F(TrainFollowTest, AnUnknownJobIsAnError) {
  const CliRun result = run(server, {"train", "follow", "job-2"});
  EXPECT_EQ(result.exitCode, kExitServerError);
  EXPECT_EQ(result.err, "error: no (NOT_FOUND, HTTP 404)\n");
  EXPECT_EQ(result.out, "");
}

}  // namespace
}  // namespace deviceops::client
