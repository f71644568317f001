#include "api/inference_codec.h"

#include <gtest/gtest.h>

namespace deviceops::api {
namespace {

using nlohmann::json;

TEST(InferenceCodecTest, DecodesAFullLoadRequest) {
  const json body = json::parse(R"({"path": "/models/mlp.onnx", "name": "mlp", "version": 2,
      "devices": ["cpu0"], "replicas": 2, "provider": "cpu", "instances": 3, "maxQueue": 10,
      "batching": {"maxBatchSize": 16, "maxQueueDelayMicros": 500},
      "sessionOptions": {"graphOptimizationLevel": 1, "intraOpThreads": 2, "interOpThreads": 1,
                         "cpuArena": false, "memoryPattern": false},
      "persist": true, "pinned": true, "keepAliveSeconds": 60})");
  Result<inference::LoadRequest> request = decodeLoadRequest(body);
  ASSERT_TRUE(request.ok()) << request.error().message;
  EXPECT_EQ(request->path, "/models/mlp.onnx");
  EXPECT_EQ(request->name, "mlp");
  EXPECT_EQ(request->version, "2");
  EXPECT_EQ(request->devices, std::vector<std::string>{"cpu0"});
  EXPECT_EQ(request->replicas, 2);
  EXPECT_EQ(request->runner.instances, 3);
  EXPECT_EQ(request->runner.maxQueue, 10u);
  EXPECT_TRUE(request->runner.batching.enabled);
  EXPECT_EQ(request->runner.batching.maxBatchSize, 16);
  EXPECT_EQ(request->runner.batching.maxQueueDelay, std::chrono::microseconds(500));
  EXPECT_EQ(request->runner.session.graphOptimizationLevel, 1);
  EXPECT_EQ(request->runner.session.intraOpThreads, 2);
  EXPECT_FALSE(request->runner.session.cpuArena);
  EXPECT_TRUE(request->persist);
  EXPECT_TRUE(request->pinned);
  EXPECT_EQ(request->keepAlive, std::chrono::seconds(60));
}

TEST(InferenceCodecTest, UnsetRunnerFieldsAreLeftToTheRegistryDefaults) {
  Result<inference::LoadRequest> request = decodeLoadRequest(json{{"path", "/m.onnx"}});
  ASSERT_TRUE(request.ok());
  EXPECT_EQ(request->runner.instances, 0);  // RegistryOptions::defaultInstances applies
  EXPECT_EQ(request->runner.maxQueue, 0u);  // RegistryOptions::maxQueue applies
  EXPECT_FALSE(request->runner.batching.enabled);
  EXPECT_FALSE(request->keepAlive.has_value());
}

TEST(InferenceCodecTest, RejectsBadLoadRequestsNamingTheField) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({})", "path"},
      {R"({"path": ""})", "path"},
      {R"({"path": "/m", "bogus": 1})", "bogus"},
      {R"({"path": "/m", "name": "a/b"})", "name"},
      {R"({"path": "/m", "version": -1})", "version"},
      {R"({"path": "/m", "replicas": 0})", "replicas"},
      {R"({"path": "/m", "instances": 1.5})", "instances"},
      {R"({"path": "/m", "provider": "tpu"})", "provider"},
      {R"({"path": "/m", "batching": {"maxBatchSize": 0}})", "batching.maxBatchSize"},
      {R"({"path": "/m", "batching": {"size": 4}})", "batching.size"},
      {R"({"path": "/m", "sessionOptions": {"graphOptimizationLevel": 3}})",
       "sessionOptions.graphOptimizationLevel"},
      {R"({"path": "/m", "persist": "yes"})", "persist"},
      {R"({"path": "/m", "keepAliveSeconds": -5})", "keepAliveSeconds"},
      {R"({"path": "/m", "devices": "cpu0"})", "devices"},
  };
  for (const auto& [body, field] : cases) {
    SCOPED_TRACE(body);
    Result<inference::LoadRequest> request = decodeLoadRequest(json::parse(body));
    ASSERT_FALSE(request.ok());
    EXPECT_EQ(request.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(request.error().message.find(field), std::string::npos) << request.error().message;
  }
}

TEST(InferenceCodecTest, DecodesUploadQueryParameters) {
  Result<inference::LoadRequest> request = decodeLoadQuery({{"name", "up"},
                                                            {"version", "7"},
                                                            {"devices", "cpu0,sim-1"},
                                                            {"instances", "2"},
                                                            {"maxBatchSize", "4"},
                                                            {"pinned", "true"},
                                                            {"cpuArena", "false"}});
  ASSERT_TRUE(request.ok()) << request.error().message;
  EXPECT_EQ(request->name, "up");
  EXPECT_EQ(request->version, "7");
  EXPECT_EQ(request->devices, (std::vector<std::string>{"cpu0", "sim-1"}));
  EXPECT_EQ(request->runner.instances, 2);
  EXPECT_TRUE(request->runner.batching.enabled);
  EXPECT_EQ(request->runner.batching.maxBatchSize, 4);
  EXPECT_TRUE(request->pinned);
  EXPECT_FALSE(request->runner.session.cpuArena);
  EXPECT_TRUE(request->path.empty());

  EXPECT_FALSE(decodeLoadQuery({{"instances", "two"}}).ok());
  EXPECT_FALSE(decodeLoadQuery({{"pinned", "maybe"}}).ok());
  EXPECT_FALSE(decodeLoadQuery({{"path", "/etc/passwd"}}).ok());
  EXPECT_FALSE(decodeLoadQuery({{"colour", "red"}}).ok());
}

TEST(InferenceCodecTest, TritonStatisticsAndState) {
  inference::ModelInfo model;
  model.name = "mlp";
  model.version = "1";
  model.state = inference::ModelState::kReady;
  model.statistics.successCount = 3;
  model.statistics.failureCount = 1;
  model.statistics.executionCount = 2;
  model.statistics.inferenceCount = 3;
  model.statistics.requestTotal = std::chrono::nanoseconds(3000);
  model.statistics.queueTotal = std::chrono::nanoseconds(300);
  model.statistics.computeTotal = std::chrono::nanoseconds(2000);
  model.statistics.batchSizes = {{1, 1}, {2, 1}};
  model.statistics.lastInference =
      std::chrono::system_clock::time_point(std::chrono::milliseconds(1234));
  const json stats = encodeV2ModelStatistics(model);
  EXPECT_EQ(stats["last_inference"], 1234);
  EXPECT_EQ(stats["inference_count"], 3);
  EXPECT_EQ(stats["execution_count"], 2);
  EXPECT_EQ(stats["inference_stats"]["success"], json({{"count", 3}, {"ns", 3000}}));
  EXPECT_EQ(stats["inference_stats"]["fail"]["count"], 1);
  EXPECT_EQ(stats["inference_stats"]["queue"]["ns"], 300);
  EXPECT_EQ(stats["inference_stats"]["compute_infer"], json({{"count", 2}, {"ns", 2000}}));
  ASSERT_EQ(stats["batch_stats"].size(), 2u);
  EXPECT_EQ(stats["batch_stats"][1]["batch_size"], 2);

  EXPECT_EQ(tritonState(model, true), "READY");
  model.evicted = true;
  EXPECT_EQ(tritonState(model, true), "READY");
  EXPECT_EQ(tritonState(model, false), "UNAVAILABLE");
  model.state = inference::ModelState::kLoading;
  EXPECT_EQ(tritonState(model, true), "LOADING");
}

}  // namespace
}  // namespace deviceops::api
