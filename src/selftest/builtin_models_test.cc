#include "selftest/builtin_models.h"

#include <gtest/gtest.h>
#include <onnxruntime_cxx_api.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "inference/ort_model_proto.h"

namespace deviceops::selftest {
namespace {

Ort::Env& ortEnv() {
  static Ort::Env* env = new Ort::Env(ORT_LOGGING_LEVEL_WARNING, "builtin_models_test");
  return *env;
}

struct OrtOutput {
  std::vector<std::int64_t> shape;
  std::vector<float> values;
};

// Runs a one-input, one-output float model from memory with ONNX Runtime on the CPU.
OrtOutput runOrt(const std::string& model, const char* inputName, const char* outputName,
                 std::vector<float> input, std::vector<std::int64_t> shape) {
  Ort::SessionOptions options;
  options.SetIntraOpNumThreads(1);
  options.SetInterOpNumThreads(1);
  Ort::Session session(ortEnv(), model.data(), model.size(), options);
  Ort::MemoryInfo cpu = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
  Ort::Value tensor =
      Ort::Value::CreateTensor<float>(cpu, input.data(), input.size(), shape.data(), shape.size());
  std::vector<Ort::Value> outputs =
      session.Run(Ort::RunOptions(), &inputName, &tensor, 1, &outputName, 1);
  OrtOutput result;
  result.shape = outputs[0].GetTensorTypeAndShapeInfo().GetShape();
  const float* data = outputs[0].GetTensorData<float>();
  result.values.assign(data, data + outputs[0].GetTensorTypeAndShapeInfo().GetElementCount());
  return result;
}

// Every |actual - expected| within 1e-4 of the largest |expected| (relative to the output's
// scale, so values near zero do not need an impossible relative precision).
void expectClose(const std::vector<float>& actual, const std::vector<float>& expected) {
  ASSERT_EQ(actual.size(), expected.size());
  float scale = 0;
  for (float value : expected) scale = std::max(scale, std::abs(value));
  ASSERT_GT(scale, 0.0F);
  for (std::size_t i = 0; i < expected.size(); ++i) {
    ASSERT_LE(std::abs(actual[i] - expected[i]), 1e-4F * scale)
        << "element " << i << ": " << actual[i] << " vs " << expected[i];
  }
}

TEST(BuiltinModelsTest, MatmulModelIsValidAndDescribed) {
  const std::string model = matmulModel(16);
  ASSERT_FALSE(model.empty());
  Status checked = checkModel(model);
  EXPECT_TRUE(checked.ok()) << checked.error().message;
  Result<inference::ModelProtoSummary> summary = inference::parseModelProto(model);
  ASSERT_TRUE(summary.ok()) << summary.error().message;
  EXPECT_EQ(summary->irVersion, 8);
  EXPECT_EQ(summary->opset, 17);
  EXPECT_EQ(summary->producerName, "deviceops-selftest");
  EXPECT_EQ(matmulModel(16), model);  // deterministic bytes
  EXPECT_NE(matmulModel(17), model);
  EXPECT_EQ(matmulFlops(16), 8192.0);
  EXPECT_EQ(matmulFlops(1000), 2e9);
}

TEST(BuiltinModelsTest, MatmulWeightsAreDeterministicInRange) {
  const std::vector<float> weights = matmulWeights(32);
  ASSERT_EQ(weights.size(), 32U * 32U);
  EXPECT_EQ(weights, matmulWeights(32));
  float low = 1;
  float high = -1;
  for (float value : weights) {
    low = std::min(low, value);
    high = std::max(high, value);
  }
  EXPECT_GE(low, -1.0F);
  EXPECT_LT(high, 1.0F);
  EXPECT_LT(low, -0.9F);  // spread over the range, not a constant
  EXPECT_GT(high, 0.9F);
  EXPECT_NE(matmulInput(32, 1), matmulInput(32, 2));
}

TEST(BuiltinModelsTest, MatmulReferenceOnAKnownProduct) {
  // With a = identity, c = b.
  const int n = 5;
  std::vector<float> identity(n * n, 0.0F);
  for (int i = 0; i < n; ++i) identity[i * n + i] = 1.0F;
  EXPECT_EQ(matmulReference(identity, n), matmulWeights(n));
  // With a = 2 * identity, c = 2 * b exactly.
  for (int i = 0; i < n; ++i) identity[i * n + i] = 2.0F;
  const std::vector<float> doubled = matmulReference(identity, n);
  const std::vector<float> weights = matmulWeights(n);
  for (std::size_t i = 0; i < weights.size(); ++i) EXPECT_EQ(doubled[i], 2 * weights[i]);
}

TEST(BuiltinModelsTest, MatmulRunsInOnnxRuntimeLikeTheReference) {
  for (int n : {1, 7, 64}) {
    SCOPED_TRACE(n);
    const std::vector<float> a = matmulInput(n, 42);
    OrtOutput output = runOrt(matmulModel(n), kMatmulInput, kMatmulOutput, a, {n, n});
    EXPECT_EQ(output.shape, (std::vector<std::int64_t>{n, n}));
    expectClose(output.values, matmulReference(a, n));
  }
}

TEST(BuiltinModelsTest, MatmulBadSizes) {
  for (int n : {0, -3, kMaxMatmulSize + 1}) {
    SCOPED_TRACE(n);
    EXPECT_EQ(matmulModel(n), "");
    EXPECT_TRUE(matmulWeights(n).empty());
    EXPECT_TRUE(matmulInput(n, 1).empty());
    EXPECT_TRUE(matmulReference({1.0F}, n).empty());
  }
  EXPECT_TRUE(matmulReference(std::vector<float>(15), 4).empty());  // not 4 x 4
}

TEST(BuiltinModelsTest, MlpModelIsValid) {
  const std::string model = mlpModel();
  Status checked = checkModel(model);
  EXPECT_TRUE(checked.ok()) << checked.error().message;
  EXPECT_EQ(mlpModel(), model);
  Ort::Session session(ortEnv(), model.data(), model.size(), Ort::SessionOptions());
  Ort::AllocatorWithDefaultOptions allocator;
  EXPECT_EQ(std::string(session.GetInputNameAllocated(0, allocator).get()), "x");
  EXPECT_EQ(std::string(session.GetOutputNameAllocated(0, allocator).get()), "y");
  EXPECT_EQ(session.GetInputTypeInfo(0).GetTensorTypeAndShapeInfo().GetShape(),
            (std::vector<std::int64_t>{-1, 64}));  // "batch" is dynamic
  EXPECT_EQ(session.GetOutputTypeInfo(0).GetTensorTypeAndShapeInfo().GetShape(),
            (std::vector<std::int64_t>{-1, 10}));
}

TEST(BuiltinModelsTest, MlpRunsInOnnxRuntimeLikeTheReference) {
  for (std::size_t batch : {1U, 5U, 32U}) {
    SCOPED_TRACE(batch);
    const std::vector<float> x = mlpInput(batch, 7);
    ASSERT_EQ(x.size(), batch * kMlpInputs);
    const auto rows = static_cast<std::int64_t>(batch);
    OrtOutput output = runOrt(mlpModel(), kMlpInput, kMlpOutput, x, {rows, 64});
    EXPECT_EQ(output.shape, (std::vector<std::int64_t>{rows, 10}));
    const std::vector<float> reference = mlpReference(x, batch);
    ASSERT_EQ(reference.size(), batch * kMlpOutputs);
    expectClose(output.values, reference);
  }
}

TEST(BuiltinModelsTest, MlpReferenceOnZeroInputAndPerRow) {
  // x = 0: y = Relu(b1) W2 + b2, which differs from b2 (some b1 are positive).
  const std::vector<float> y = mlpReference(std::vector<float>(kMlpInputs, 0.0F), 1);
  ASSERT_EQ(y.size(), kMlpOutputs);
  const std::vector<float> onlyBias =
      runOrt(mlpModel(), kMlpInput, kMlpOutput, std::vector<float>(kMlpInputs, 0.0F), {1, 64})
          .values;
  expectClose(onlyBias, y);
  // Rows are independent: row 1 of a batch equals that row run alone.
  const std::vector<float> x = mlpInput(2, 9);
  const std::vector<float> both = mlpReference(x, 2);
  const std::vector<float> second =
      mlpReference(std::vector<float>(x.begin() + kMlpInputs, x.end()), 1);
  EXPECT_EQ(std::vector<float>(both.begin() + kMlpOutputs, both.end()), second);
  EXPECT_NE(std::vector<float>(both.begin(), both.begin() + kMlpOutputs), second);
}

TEST(BuiltinModelsTest, MlpBadInputs) {
  EXPECT_TRUE(mlpReference(std::vector<float>(63), 1).empty());
  EXPECT_TRUE(mlpReference(std::vector<float>(64), 2).empty());
  EXPECT_TRUE(mlpReference({}, 0).empty());  // no rows: no outputs
  EXPECT_TRUE(mlpInput(0, 1).empty());
  EXPECT_EQ(mlpInput(3, 1), mlpInput(3, 1));
  EXPECT_NE(mlpInput(3, 1), mlpInput(3, 2));
}

TEST(BuiltinModelsTest, CheckModelRefusesWhatIsNotAModel) {
  EXPECT_EQ(checkModel("").error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(checkModel("not a protobuf \xff\xff\xff").error().code, ErrorCode::kInvalidArgument);
  const std::string model = mlpModel();
  EXPECT_FALSE(checkModel(model.substr(0, model.size() / 2)).ok());
  // A ModelProto with only ir_version (field 1 = 8) and no graph: parsed, refused by the checker.
  const Status noGraph = checkModel(std::string("\x08\x08", 2));
  ASSERT_FALSE(noGraph.ok());
  EXPECT_EQ(noGraph.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(noGraph.error().message.find("the ONNX checker refused the model"), std::string::npos);
}

}  // namespace
}  // namespace deviceops::selftest
