#include "training/onnx_export.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <onnxruntime_cxx_api.h>

#include <array>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "common/testing/temp_dir.h"
#include "inference/ort_model_proto.h"
#include "tensor/npy.h"
#include "training_formats/safetensors.h"
#include "training_formats/spec.h"

namespace deviceops::training {
namespace {

namespace fs = std::filesystem;
using deviceops::testing::TempDir;
using ::testing::HasSubstr;

// Debian's python3-torch lives in the system interpreter (not in a pyenv shim on PATH).
constexpr char kPython[] = "/usr/bin/python3";
constexpr float kTolerance = 1e-5F;  // absolute, ORT vs torch.nn (both float32)
constexpr std::uint32_t kSeed = 20240606;

ModelSpec mlpSpec(Activation activation, bool batchNorm, double dropout) {
  ModelSpec spec;
  spec.type = "mlp";
  spec.inputs = 6;
  spec.outputs = 3;
  spec.mlp.hidden = {8, 5};
  spec.mlp.activation = activation;
  spec.mlp.batchNorm = batchNorm;
  spec.mlp.dropout = dropout;
  return spec;
}

ModelSpec linearSpec() {
  ModelSpec spec;
  spec.type = "linear";
  spec.inputs = 4;
  spec.outputs = 2;
  return spec;
}

// 2 x 16 x 12 -> conv 3x3 pad 1, bn, pool 2 -> 4 x 8 x 6 -> conv 3x3, bn, pool 2 -> 5 x 3 x 2
// -> flatten (30) -> 7 -> 4.
ModelSpec cnnSpec() {
  ModelSpec spec;
  spec.type = "cnn";
  spec.cnn.channels = 2;
  spec.cnn.height = 16;
  spec.cnn.width = 12;
  spec.inputs = 2 * 16 * 12;
  spec.outputs = 4;
  spec.cnn.blocks = {
      {.channels = 4, .kernel = 3, .stride = 1, .padding = 1, .batchNorm = true, .pool = 2},
      {.channels = 5, .kernel = 3, .stride = 1, .padding = 0, .batchNorm = true, .pool = 2}};
  spec.cnn.head = {7};
  return spec;
}

// Strided convolution without pooling, then an odd-sized pool; no head; gelu; dropout.
ModelSpec stridedCnnSpec() {
  ModelSpec spec;
  spec.type = "cnn";
  spec.cnn.channels = 1;
  spec.cnn.height = 9;
  spec.cnn.width = 7;
  spec.inputs = 9 * 7;
  spec.outputs = 2;
  spec.cnn.blocks = {
      {.channels = 3, .kernel = 3, .stride = 2, .padding = 1, .batchNorm = false, .pool = 1},
      {.channels = 4, .kernel = 2, .stride = 1, .padding = 0, .batchNorm = true, .pool = 2}};
  spec.cnn.activation = Activation::kGelu;
  spec.cnn.dropout = 0.25;
  return spec;
}

std::vector<float> uniform(std::mt19937& generator, std::int64_t count, float low, float high) {
  std::uniform_real_distribution<float> distribution(low, high);
  std::vector<float> values(static_cast<std::size_t>(count));
  for (float& value : values) value = distribution(generator);
  return values;
}

// Random weights of the right names and shapes; scaled like torch's default initialisation so
// that activations stay O(1); batch-norm variances positive.
SafeTensorFile randomWeights(const ModelSpec& spec, std::uint32_t seed) {
  std::mt19937 generator(seed);
  SafeTensorFile file;
  for (const Layer& layer : buildLayers(spec)) {
    auto add = [&](const std::string& suffix, std::vector<std::int64_t> shape, float low,
                   float high) {
      std::int64_t count = 1;
      for (std::int64_t dimension : shape) count *= dimension;
      file.tensors[layer.name + suffix] =
          makeF32Tensor(std::move(shape), uniform(generator, count, low, high));
    };
    if (layer.kind == LayerKind::kLinear || layer.kind == LayerKind::kConv2d) {
      const std::int64_t fanIn =
          layer.in * (layer.kind == LayerKind::kConv2d ? layer.kernel * layer.kernel : 1);
      const float bound = 1.0F / std::sqrt(static_cast<float>(fanIn));
      std::vector<std::int64_t> shape = {layer.out, layer.in};
      if (layer.kind == LayerKind::kConv2d)
        shape = {layer.out, layer.in, layer.kernel, layer.kernel};
      add(".weight", shape, -bound, bound);
      add(".bias", {layer.out}, -bound, bound);
    } else if (layer.kind == LayerKind::kBatchNorm) {
      add(".weight", {layer.in}, 0.5F, 1.5F);
      add(".bias", {layer.in}, -0.5F, 0.5F);
      add(".running_mean", {layer.in}, -0.5F, 0.5F);
      add(".running_var", {layer.in}, 0.05F, 1.0F);
    }
  }
  return file;
}

// In LayerKind order; the names src/training/testing/onnx_reference.py reads.
constexpr std::array<std::string_view, 8> kKindNames = {
    "reshape", "linear", "conv2d", "batch_norm", "activation", "dropout", "max_pool2d", "flatten"};

// The layer list for src/training/testing/onnx_reference.py.
nlohmann::json layersJson(const ModelSpec& spec) {
  nlohmann::json layers = nlohmann::json::array();
  for (const Layer& layer : buildLayers(spec)) {
    layers.push_back({{"kind", kKindNames[static_cast<std::size_t>(layer.kind)]},
                      {"name", layer.name},
                      {"in", layer.in},
                      {"out", layer.out},
                      {"kernel", layer.kernel},
                      {"stride", layer.stride},
                      {"padding", layer.padding},
                      {"spatial", layer.spatial},
                      {"activation", activationName(layer.activation)},
                      {"dropout", layer.dropout},
                      {"shape", layer.shape}});
  }
  return layers;
}

std::vector<float> randomInput(std::int64_t batch, std::int64_t features, std::uint32_t seed) {
  std::mt19937 generator(seed);
  std::normal_distribution<float> normal;
  std::vector<float> values(static_cast<std::size_t>(batch * features));
  for (float& value : values) value = normal(generator);
  return values;
}

inference::Tensor floatTensor(std::vector<std::int64_t> shape, const std::vector<float>& values) {
  inference::Tensor tensor;
  tensor.type = inference::DataType::kFp32;
  tensor.shape = std::move(shape);
  tensor.data.assign(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
  return tensor;
}

std::vector<float> floatsOf(const std::string& data) {
  std::vector<float> values(data.size() / sizeof(float));
  if (!values.empty()) std::memcpy(values.data(), data.data(), data.size());
  return values;
}

Ort::Env& ortEnv() {
  static Ort::Env* env = new Ort::Env(ORT_LOGGING_LEVEL_WARNING, "onnx_export_test");
  return *env;
}

struct OrtOutput {
  std::vector<std::int64_t> shape;
  std::vector<float> values;
};

// Runs the exported model on `x` ([batch, features]) with ONNX Runtime (one thread).
OrtOutput runOrt(const fs::path& model, std::vector<float> x, std::int64_t batch,
                 std::int64_t features) {
  Ort::SessionOptions options;
  options.SetIntraOpNumThreads(1);
  options.SetInterOpNumThreads(1);
  Ort::Session session(ortEnv(), model.c_str(), options);
  Ort::MemoryInfo cpu = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
  std::vector<std::int64_t> shape = {batch, features};
  Ort::Value input =
      Ort::Value::CreateTensor<float>(cpu, x.data(), x.size(), shape.data(), shape.size());
  const char* inputName = "input";
  const char* outputName = "output";
  std::vector<Ort::Value> outputs =
      session.Run(Ort::RunOptions(), &inputName, &input, 1, &outputName, 1);
  OrtOutput result;
  result.shape = outputs[0].GetTensorTypeAndShapeInfo().GetShape();
  const float* data = outputs[0].GetTensorData<float>();
  result.values.assign(data, data + outputs[0].GetTensorTypeAndShapeInfo().GetElementCount());
  return result;
}

float maxAbsDifference(const std::vector<float>& a, const std::vector<float>& b) {
  float worst = 0;
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) {
    worst = std::max(worst, std::abs(a[i] - b[i]));
  }
  return worst;
}

std::string readFile(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

TEST(OnnxExportTest, MatchesTorchReference) {
  struct Case {
    std::string label;
    ModelSpec spec;
  };
  const std::vector<Case> cases = {
      {"mlp_relu_bn", mlpSpec(Activation::kRelu, true, 0.0)},
      {"mlp_tanh_bn_dropout", mlpSpec(Activation::kTanh, true, 0.5)},
      {"mlp_sigmoid", mlpSpec(Activation::kSigmoid, false, 0.0)},
      {"mlp_gelu_bn", mlpSpec(Activation::kGelu, true, 0.0)},
      {"mlp_leaky_relu_bn", mlpSpec(Activation::kLeakyRelu, true, 0.1)},
      {"linear", linearSpec()},
      {"cnn", cnnSpec()},
      {"cnn_strided_gelu", stridedCnnSpec()},
  };
  constexpr std::int64_t kBatch = 5;
  TempDir temp("onnx-export-test");
  std::string command =
      std::string(kPython) + " " + DEVICEOPS_SOURCE_DIR + "/src/training/testing/onnx_reference.py";
  for (std::size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].label);
    const ModelSpec& spec = cases[i].spec;
    ASSERT_TRUE(validateModelSpec(spec).ok()) << validateModelSpec(spec).error().message;
    const fs::path dir = temp.path(cases[i].label);
    fs::create_directories(dir);
    const SafeTensorFile weights = randomWeights(spec, kSeed + static_cast<std::uint32_t>(i));
    ASSERT_TRUE(writeSafeTensorsFile(dir / "weights.safetensors", weights).ok());
    std::ofstream(dir / "layers.json") << layersJson(spec).dump();
    const std::vector<float> x = randomInput(kBatch, spec.inputs, kSeed + 100 + i);
    ASSERT_TRUE(
        inference::writeNpyFile(dir / "input.npy", floatTensor({kBatch, spec.inputs}, x)).ok());
    Status exported = exportOnnx(spec, weights, dir / "model.onnx");
    ASSERT_TRUE(exported.ok()) << exported.error().message;
    command += " " + dir.string();
  }
  ASSERT_EQ(std::system(command.c_str()), 0) << "reference failed: " << command;

  for (std::size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].label);
    const ModelSpec& spec = cases[i].spec;
    const fs::path dir = temp.path(cases[i].label);
    Result<inference::Tensor> reference = inference::readNpyFile(dir / "output.npy");
    ASSERT_TRUE(reference.ok()) << reference.error().message;
    ASSERT_EQ(reference->shape, (std::vector<std::int64_t>{kBatch, spec.outputs}));
    const std::vector<float> expected = floatsOf(reference->data);
    float largest = 0;
    for (float value : expected) largest = std::max(largest, std::abs(value));
    ASSERT_GT(largest, 1e-2F) << "degenerate reference output";

    const std::vector<float> x = randomInput(kBatch, spec.inputs, kSeed + 100 + i);
    OrtOutput actual;
    try {
      actual = runOrt(dir / "model.onnx", x, kBatch, spec.inputs);
    } catch (const Ort::Exception& e) {
      FAIL() << "ONNX Runtime: " << e.what();
    }
    ASSERT_EQ(actual.shape, (std::vector<std::int64_t>{kBatch, spec.outputs}));
    EXPECT_LE(maxAbsDifference(actual.values, expected), kTolerance);
  }
}

TEST(OnnxExportTest, WritesModelHeaderAndSymbolicBatch) {
  const ModelSpec spec = mlpSpec(Activation::kRelu, true, 0.0);
  const SafeTensorFile weights = randomWeights(spec, kSeed);
  TempDir temp("onnx-export-test");
  const fs::path model = temp.path("model.onnx");
  Status exported = exportOnnx(spec, weights, model);
  ASSERT_TRUE(exported.ok()) << exported.error().message;

  Result<inference::ModelProtoSummary> summary = inference::readModelProto(model);
  ASSERT_TRUE(summary.ok()) << summary.error().message;
  EXPECT_EQ(summary->irVersion, 8);
  EXPECT_EQ(summary->opset, 13);
  EXPECT_EQ(summary->producerName, "deviceops");
  // Only the model: no temporary file left beside it.
  EXPECT_EQ(std::distance(fs::directory_iterator(temp.root()), fs::directory_iterator()), 1);

  try {
    Ort::Session session(ortEnv(), model.c_str(), Ort::SessionOptions());
    ASSERT_EQ(session.GetInputCount(), 1U);
    ASSERT_EQ(session.GetOutputCount(), 1U);
    Ort::AllocatorWithDefaultOptions allocator;
    EXPECT_EQ(std::string(session.GetInputNameAllocated(0, allocator).get()), "input");
    EXPECT_EQ(std::string(session.GetOutputNameAllocated(0, allocator).get()), "output");
    Ort::TypeInfo inputType = session.GetInputTypeInfo(0);
    auto inputInfo = inputType.GetTensorTypeAndShapeInfo();
    EXPECT_EQ(inputInfo.GetElementType(), ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT);
    EXPECT_EQ(inputInfo.GetShape(), (std::vector<std::int64_t>{-1, spec.inputs}));
    EXPECT_STREQ(inputInfo.GetSymbolicDimensions()[0], "batch");
    Ort::TypeInfo outputType = session.GetOutputTypeInfo(0);
    auto outputInfo = outputType.GetTensorTypeAndShapeInfo();
    EXPECT_EQ(outputInfo.GetShape(), (std::vector<std::int64_t>{-1, spec.outputs}));
    EXPECT_STREQ(outputInfo.GetSymbolicDimensions()[0], "batch");

    // Batch 7 at once gives, row by row, what batch 1 gives for each row alone.
    const std::vector<float> x = randomInput(7, spec.inputs, kSeed);
    OrtOutput all = runOrt(model, x, 7, spec.inputs);
    ASSERT_EQ(all.shape, (std::vector<std::int64_t>{7, spec.outputs}));
    for (std::int64_t row = 0; row < 7; ++row) {
      SCOPED_TRACE(row);
      std::vector<float> one(x.begin() + row * spec.inputs, x.begin() + (row + 1) * spec.inputs);
      OrtOutput single = runOrt(model, one, 1, spec.inputs);
      ASSERT_EQ(single.shape, (std::vector<std::int64_t>{1, spec.outputs}));
      std::vector<float> expected(all.values.begin() + row * spec.outputs,
                                  all.values.begin() + (row + 1) * spec.outputs);
      EXPECT_LE(maxAbsDifference(single.values, expected), 1e-6F);
    }
  } catch (const Ort::Exception& e) {
    FAIL() << "ONNX Runtime: " << e.what();
  }
}

TEST(OnnxExportTest, RefusesBadInputsAndLeavesOutputUntouched) {
  // l0: linear 6->8, l1: batch norm 8, l2: relu, l3: linear 8->5, ...
  const ModelSpec good = mlpSpec(Activation::kRelu, true, 0.0);
  struct Case {
    std::string label;
    ModelSpec spec;
    SafeTensorFile weights;
    std::vector<std::string> messageParts;
  };
  std::vector<Case> cases;
  {
    SafeTensorFile weights = randomWeights(good, kSeed);
    weights.tensors.erase("l1.running_var");
    cases.push_back({"missing tensor", good, weights, {"l1.running_var", "missing"}});
  }
  {
    SafeTensorFile weights = randomWeights(good, kSeed);
    weights.tensors["l0.weight"] = makeF32Tensor({6, 8}, std::vector<float>(48, 0.1F));
    cases.push_back({"transposed weight", good, weights, {"l0.weight", "[6, 8]", "[8, 6]"}});
  }
  {
    SafeTensorFile weights = randomWeights(good, kSeed);
    weights.tensors["l3.bias"] = makeF32Tensor({4}, std::vector<float>(4, 0.1F));
    cases.push_back({"short bias", good, weights, {"l3.bias", "[5]"}});
  }
  {
    SafeTensorFile weights = randomWeights(good, kSeed);
    weights.tensors["l0.bias"] = makeI64Tensor({8}, std::vector<std::int64_t>(8, 1));
    cases.push_back({"integer bias", good, weights, {"l0.bias", "I64", "F32"}});
  }
  {
    ModelSpec cnn = cnnSpec();
    SafeTensorFile weights = randomWeights(cnn, kSeed);
    weights.tensors["l1.weight"] = makeF32Tensor({4, 2, 5, 5}, std::vector<float>(200, 0.1F));
    cases.push_back({"conv kernel", cnn, weights, {"l1.weight", "[4, 2, 3, 3]"}});
  }
  {
    ModelSpec torchscript;
    torchscript.type = "torchscript";
    torchscript.inputs = 6;
    torchscript.outputs = 3;
    torchscript.torchscriptPath = "/tmp/model.pt";
    cases.push_back({"torchscript", torchscript, randomWeights(good, kSeed), {"torchscript"}});
  }
  {
    ModelSpec invalid = good;
    invalid.inputs = 0;
    cases.push_back({"invalid spec", invalid, randomWeights(good, kSeed), {}});
  }

  for (const Case& c : cases) {
    SCOPED_TRACE(c.label);
    TempDir temp("onnx-export-test");
    const fs::path model = temp.path("model.onnx");
    std::ofstream(model) << "previous model";
    Status status = exportOnnx(c.spec, c.weights, model);
    ASSERT_FALSE(status.ok());
    EXPECT_EQ(status.error().code, ErrorCode::kInvalidArgument);
    for (const std::string& part : c.messageParts) {
      EXPECT_THAT(status.error().message, HasSubstr(part));
    }
    EXPECT_EQ(readFile(model), "previous model");
    EXPECT_EQ(std::distance(fs::directory_iterator(temp.root()), fs::directory_iterator()), 1);
  }
}

TEST(OnnxExportTest, ReportsUnwritableOutput) {
  const ModelSpec spec = linearSpec();
  TempDir temp("onnx-export-test");
  const fs::path output = temp.path("missing-directory") / "model.onnx";
  Status status = exportOnnx(spec, randomWeights(spec, kSeed), output);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().code, ErrorCode::kUnavailable);
  EXPECT_THAT(status.error().message, HasSubstr(output.string()));
  EXPECT_FALSE(fs::exists(output));
}

TEST(OnnxExportTest, ReplacesAnExistingFile) {
  const ModelSpec spec = linearSpec();
  TempDir temp("onnx-export-test");
  const fs::path model = temp.path("model.onnx");
  std::ofstream(model) << "previous model";
  Status status = exportOnnx(spec, randomWeights(spec, kSeed), model);
  ASSERT_TRUE(status.ok()) << status.error().message;
  EXPECT_TRUE(inference::readModelProto(model).ok());
}

}  // namespace
}  // namespace deviceops::training
