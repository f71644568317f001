#include "inference/session.h"

#include <gtest/gtest.h>
#include <onnxruntime_cxx_api.h>

#include <algorithm>
#include <cmath>
#include <future>
#include <random>
#include <thread>

#include "inference/ort_model_proto.h"
#include "inference/testing/ort_test_models.h"

namespace deviceops::inference {
namespace {

using namespace std::chrono_literals;
using testing::floatsOf;
using testing::floatTensor;
using testing::testModel;

// Generous bound for "returns promptly" (the machine may be shared); never a timing assertion.
constexpr auto kHangGuard = 30s;

std::unique_ptr<Session> openOrDie(const std::string& model, SessionOptions options = {}) {
  Result<std::unique_ptr<Session>> session = Session::open(testModel(model), options);
  EXPECT_TRUE(session.ok()) << session.error().message;
  return session.ok() ? std::move(session.value()) : nullptr;
}

TEST(InspectModelTest, ReadsEveryGeneratedModel) {
  struct Case {
    std::string file;
    std::vector<TensorSpec> inputs;
    std::vector<TensorSpec> outputs;
    std::string producerPrefix;
  };
  const std::vector<Case> cases = {
      {"mlp.onnx",
       {{"x", DataType::kFp32, {-1, 16}}},
       {{"y", DataType::kFp32, {-1, 4}}},
       "pytorch 1.13"},
      {"cnn.onnx",
       {{"image", DataType::kFp32, {-1, 3, 32, 32}}},
       {{"logits", DataType::kFp32, {-1, 10}}},
       "pytorch 1.13"},
      {"slow.onnx",
       {{"x", DataType::kFp32, {-1, 256}}},
       {{"y", DataType::kFp32, {-1, 256}}},
       "deviceops-tests 1"},
      {"multi_io.onnx",
       {{"a", DataType::kFp32, {-1, 3}},
        {"b", DataType::kInt64, {-1, 3}},
        {"c", DataType::kBool, {-1, 3}},
        {"d", DataType::kFp16, {-1, 3}},
        {"e", DataType::kFp64, {-1}}},
       {{"sum", DataType::kFp32, {-1, 3}},
        {"square", DataType::kInt64, {-1, 3}},
        {"negated", DataType::kBool, {-1, 3}},
        {"twice", DataType::kFp16, {-1, 3}},
        {"narrowed", DataType::kFp32, {-1}},
        {"count", DataType::kInt64, {}}},
       "deviceops-tests 1"},
      {"strings.onnx",
       {{"text", DataType::kBytes, {-1}}},
       {{"upper", DataType::kBytes, {-1}}, {"same", DataType::kBytes, {-1}}},
       "deviceops-tests 1"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.file);
    Result<ModelMetadata> metadata = inspectModel(testModel(c.file));
    ASSERT_TRUE(metadata.ok()) << metadata.error().message;
    EXPECT_EQ(metadata->opset, 14);
    EXPECT_EQ(metadata->producer.rfind(c.producerPrefix, 0), 0u) << metadata->producer;
    ASSERT_EQ(metadata->inputs.size(), c.inputs.size());
    for (std::size_t i = 0; i < c.inputs.size(); ++i) {
      EXPECT_EQ(metadata->inputs[i].name, c.inputs[i].name);
      EXPECT_EQ(metadata->inputs[i].type, c.inputs[i].type) << c.inputs[i].name;
      EXPECT_EQ(metadata->inputs[i].shape, c.inputs[i].shape) << c.inputs[i].name;
    }
    ASSERT_EQ(metadata->outputs.size(), c.outputs.size());
    for (std::size_t i = 0; i < c.outputs.size(); ++i) {
      EXPECT_EQ(metadata->outputs[i].name, c.outputs[i].name);
      EXPECT_EQ(metadata->outputs[i].type, c.outputs[i].type) << c.outputs[i].name;
      EXPECT_EQ(metadata->outputs[i].shape, c.outputs[i].shape) << c.outputs[i].name;
    }
  }
}

const std::vector<std::pair<std::string, DataType>> kAllTypes = {
    {"bool", DataType::kBool},     {"uint8", DataType::kUint8},   {"uint16", DataType::kUint16},
    {"uint32", DataType::kUint32}, {"uint64", DataType::kUint64}, {"int8", DataType::kInt8},
    {"int16", DataType::kInt16},   {"int32", DataType::kInt32},   {"int64", DataType::kInt64},
    {"float16", DataType::kFp16},  {"bfloat16", DataType::kBf16}, {"float", DataType::kFp32},
    {"double", DataType::kFp64},   {"string", DataType::kBytes},
};

TEST(InspectModelTest, AllTypesModelDeclaresEveryType) {
  Result<ModelMetadata> metadata = inspectModel(testModel("all_types.onnx"));
  ASSERT_TRUE(metadata.ok()) << metadata.error().message;
  ASSERT_EQ(metadata->inputs.size(), kAllTypes.size());
  for (std::size_t i = 0; i < kAllTypes.size(); ++i) {
    EXPECT_EQ(metadata->inputs[i].name, "in_" + kAllTypes[i].first);
    EXPECT_EQ(metadata->inputs[i].type, kAllTypes[i].second);
    EXPECT_EQ(metadata->inputs[i].shape, (std::vector<std::int64_t>{-1, 3}));
    EXPECT_EQ(metadata->outputs[i].type, kAllTypes[i].second);
  }
}

TEST(InspectModelTest, RejectsFilesThatAreNotModels) {
  for (const char* file : {"not_a_model.onnx", "truncated.onnx"}) {
    SCOPED_TRACE(file);
    Result<ModelMetadata> metadata = inspectModel(testModel(file));
    ASSERT_FALSE(metadata.ok());
    EXPECT_EQ(metadata.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(metadata.error().message.find("not a valid ONNX model"), std::string::npos)
        << metadata.error().message;
    Result<std::unique_ptr<Session>> session = Session::open(testModel(file), {});
    ASSERT_FALSE(session.ok());
    EXPECT_EQ(session.error().code, ErrorCode::kInvalidArgument);
  }
  // A valid model whose output is a sequence, which the API cannot serve: named in the error.
  Result<ModelMetadata> sequence = inspectModel(testModel("sequence.onnx"));
  ASSERT_FALSE(sequence.ok());
  EXPECT_EQ(sequence.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(sequence.error().message.find("output 'items' is not a tensor"), std::string::npos)
      << sequence.error().message;
  Result<ModelMetadata> missing = inspectModel(testModel("no_such_model.onnx"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
}

TEST(ModelProtoTest, RejectsMalformedBytesWithoutReadingPastTheEnd) {
  // Field 7 (graph) declared 100 bytes long with 2 present; a varint that never ends; a group
  // wire type; a valid minimal model (ir_version 8, empty graph, opset_import {"" 17}).
  const std::string truncatedGraph = std::string("\x08\x08\x3a\x64\x01\x02", 6);
  const std::string endlessVarint = std::string("\x08\xff\xff\xff", 4);
  const std::string group = std::string("\x08\x08\x0b", 3);
  const std::string minimal = std::string("\x08\x08\x3a\x00\x42\x02\x10\x11", 8);
  EXPECT_EQ(parseModelProto(truncatedGraph).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(parseModelProto(endlessVarint).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(parseModelProto(group).error().code, ErrorCode::kInvalidArgument);
  EXPECT_FALSE(parseModelProto("").ok());
  Result<ModelProtoSummary> summary = parseModelProto(minimal);
  ASSERT_TRUE(summary.ok()) << summary.error().message;
  EXPECT_EQ(summary->irVersion, 8);
  EXPECT_EQ(summary->opset, 17);
  // Every prefix of a valid model fails cleanly (or parses, for prefixes that end on a field).
  const std::string real = [] {
    std::ifstream in(testModel("mlp.onnx"), std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }();
  ASSERT_TRUE(parseModelProto(real).ok());
  for (std::size_t length = 0; length < real.size(); length += 7) {
    (void)parseModelProto(std::string_view(real).substr(0, length));
  }
}

// Random bytes for every type; BOOL as 0/1; BYTES with an empty string and an embedded NUL.
Tensor randomTensor(const std::string& name, DataType type, std::int64_t rows,
                    std::mt19937& generator) {
  Tensor tensor;
  tensor.name = name;
  tensor.type = type;
  tensor.shape = {rows, 3};
  const auto count = static_cast<std::size_t>(rows * 3);
  if (type == DataType::kBytes) {
    for (std::size_t i = 0; i < count; ++i) {
      tensor.strings.push_back(i == 0 ? std::string() : std::string("s\0") + std::to_string(i));
    }
    tensor.strings.back() = std::string("nul\0inside", 10);
    return tensor;
  }
  tensor.data.resize(count * elementSize(type));
  for (char& byte : tensor.data) {
    byte = static_cast<char>(type == DataType::kBool ? generator() % 2 : generator() % 256);
  }
  return tensor;
}

TEST(SessionTest, EveryTypeRoundTripsBitExact) {
  std::unique_ptr<Session> session = openOrDie("all_types.onnx");
  ASSERT_NE(session, nullptr);
  std::mt19937 generator(11);
  std::vector<Tensor> inputs;
  for (const auto& [name, type] : kAllTypes) {
    inputs.push_back(randomTensor("in_" + name, type, 4, generator));
  }
  Result<std::vector<Tensor>> outputs = session->run(inputs, {});
  ASSERT_TRUE(outputs.ok()) << outputs.error().message;
  ASSERT_EQ(outputs->size(), inputs.size());
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& output = outputs.value()[i];
    SCOPED_TRACE(output.name);
    EXPECT_EQ(output.name, "out_" + kAllTypes[i].first);
    EXPECT_EQ(output.type, inputs[i].type);
    EXPECT_EQ(output.shape, inputs[i].shape);
    EXPECT_EQ(output.data, inputs[i].data);
    EXPECT_EQ(output.strings, inputs[i].strings);
  }
  // A subset of outputs, in the order asked for.
  Result<std::vector<Tensor>> some = session->run(inputs, {"out_double", "out_bool"});
  ASSERT_TRUE(some.ok()) << some.error().message;
  ASSERT_EQ(some->size(), 2u);
  EXPECT_EQ(some.value()[0].name, "out_double");
  EXPECT_EQ(some.value()[1].data, inputs[0].data);
}

TEST(SessionTest, StringModel) {
  std::unique_ptr<Session> session = openOrDie("strings.onnx");
  ASSERT_NE(session, nullptr);
  Tensor text;
  text.name = "text";
  text.type = DataType::kBytes;
  text.shape = {3};
  text.strings = {"Hello", "", "mixed Case 42"};
  Result<std::vector<Tensor>> outputs = session->run({text}, {});
  ASSERT_TRUE(outputs.ok()) << outputs.error().message;
  ASSERT_EQ(outputs->size(), 2u);
  EXPECT_EQ(outputs.value()[0].name, "upper");
  EXPECT_EQ(outputs.value()[0].type, DataType::kBytes);
  EXPECT_EQ(outputs.value()[0].strings, (std::vector<std::string>{"HELLO", "", "MIXED CASE 42"}));
  EXPECT_EQ(outputs.value()[1].strings, text.strings);
  EXPECT_TRUE(outputs.value()[0].data.empty());
}

TEST(SessionTest, MultipleInputsAndOutputsOfDifferentTypes) {
  std::unique_ptr<Session> session = openOrDie("multi_io.onnx");
  ASSERT_NE(session, nullptr);
  Tensor a = floatTensor("a", {2, 3}, {0.5f, 1, 2, 3, 4, 5});
  Tensor b{"b", DataType::kInt64, {2, 3}, {}, {}};
  const std::vector<std::int64_t> bValues = {1, -2, 3, 4, 5, -6000000};
  b.data.assign(reinterpret_cast<const char*>(bValues.data()), bValues.size() * 8);
  Tensor c{"c", DataType::kBool, {2, 3}, std::string("\1\0\1\1\0\0", 6), {}};
  Tensor d{"d", DataType::kFp16, {2, 3}, {}, {}};
  const std::vector<std::uint16_t> dValues = {0x3c00, 0x4000, 0xbc00, 0x0000, 0x3800, 0x7bff};
  d.data.assign(reinterpret_cast<const char*>(dValues.data()), dValues.size() * 2);
  Tensor e{"e", DataType::kFp64, {2}, {}, {}};
  const std::vector<double> eValues = {0.1, -1e10};
  e.data.assign(reinterpret_cast<const char*>(eValues.data()), eValues.size() * 8);

  Result<std::vector<Tensor>> outputs = session->run({a, b, c, d, e}, {});
  ASSERT_TRUE(outputs.ok()) << outputs.error().message;
  ASSERT_EQ(outputs->size(), 6u);
  const std::vector<Tensor>& out = outputs.value();
  EXPECT_EQ(floatsOf(out[0]), (std::vector<float>{1.5f, -1.0f, 5.0f, 7.0f, 9.0f, -5999995.0f}));
  std::vector<std::int64_t> squares(6);
  std::memcpy(squares.data(), out[1].data.data(), 48);
  EXPECT_EQ(squares, (std::vector<std::int64_t>{1, 4, 9, 16, 25, 36000000000000}));
  EXPECT_EQ(out[2].type, DataType::kBool);
  EXPECT_EQ(out[2].data, std::string("\0\1\0\0\1\1", 6));
  std::vector<std::uint16_t> twice(6);
  std::memcpy(twice.data(), out[3].data.data(), 12);
  EXPECT_EQ(twice, (std::vector<std::uint16_t>{0x4000, 0x4400, 0xc000, 0x0000, 0x3c00, 0x7c00}));
  EXPECT_EQ(floatsOf(out[4]), (std::vector<float>{0.1f, -1e10f}));
  EXPECT_EQ(out[5].type, DataType::kInt64);
  EXPECT_TRUE(out[5].shape.empty());
  std::int64_t count = 0;
  std::memcpy(&count, out[5].data.data(), 8);
  EXPECT_EQ(count, 3);
}

// The MLP through our Session equals the exporting framework within 1e-5 and ONNX Runtime's own
// C++ API (same default options) bit for bit.
TEST(SessionTest, MlpMatchesTorchAndDirectOnnxRuntime) {
  std::unique_ptr<Session> session = openOrDie("mlp.onnx");
  ASSERT_NE(session, nullptr);
  const nlohmann::json reference = testing::readJson(testModel("mlp.reference.json"));
  const Tensor input = testing::referenceTensor(reference.at("input"));
  const Tensor expected = testing::referenceTensor(reference.at("output"));
  Result<std::vector<Tensor>> outputs = session->run({input}, {});
  ASSERT_TRUE(outputs.ok()) << outputs.error().message;
  const Tensor& y = outputs.value().at(0);
  EXPECT_EQ(y.shape, expected.shape);
  const std::vector<float> ours = floatsOf(y);
  const std::vector<float> torch = floatsOf(expected);
  ASSERT_EQ(ours.size(), torch.size());
  for (std::size_t i = 0; i < ours.size(); ++i) EXPECT_NEAR(ours[i], torch[i], 1e-5) << i;

  Ort::Env env(ORT_LOGGING_LEVEL_WARNING, "session_test");
  Ort::Session direct(env, testModel("mlp.onnx").c_str(), Ort::SessionOptions());
  std::vector<float> x = floatsOf(input);
  const std::vector<std::int64_t> shape = input.shape;
  Ort::MemoryInfo cpu = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
  Ort::Value value =
      Ort::Value::CreateTensor<float>(cpu, x.data(), x.size(), shape.data(), shape.size());
  const char* inputName = "x";
  const char* outputName = "y";
  std::vector<Ort::Value> directOutputs =
      direct.Run(Ort::RunOptions(), &inputName, &value, 1, &outputName, 1);
  const auto* directData = directOutputs[0].GetTensorData<char>();
  EXPECT_EQ(y.data, std::string(directData, directOutputs[0].GetTensorSizeInBytes()));
}

TEST(SessionTest, CnnMatchesTorch) {
  std::unique_ptr<Session> session = openOrDie("cnn.onnx");
  ASSERT_NE(session, nullptr);
  const nlohmann::json reference = testing::readJson(testModel("cnn.reference.json"));
  Result<std::vector<Tensor>> outputs =
      session->run({testing::referenceTensor(reference.at("input"))}, {});
  ASSERT_TRUE(outputs.ok()) << outputs.error().message;
  const std::vector<float> ours = floatsOf(outputs.value().at(0));
  const std::vector<float> torch = floatsOf(testing::referenceTensor(reference.at("output")));
  ASSERT_EQ(ours.size(), torch.size());
  for (std::size_t i = 0; i < ours.size(); ++i) EXPECT_NEAR(ours[i], torch[i], 1e-5) << i;
}

TEST(SessionTest, WarmUpRunsEveryModel) {
  for (const char* model :
       {"mlp.onnx", "cnn.onnx", "multi_io.onnx", "strings.onnx", "all_types.onnx"}) {
    SCOPED_TRACE(model);
    std::unique_ptr<Session> session = openOrDie(model);
    ASSERT_NE(session, nullptr);
    Status status = session->warmUp();
    EXPECT_TRUE(status.ok()) << status.error().message;
  }
}

TEST(SessionTest, ShapeErrorsFromOnnxRuntimeAreInvalidArgument) {
  std::unique_ptr<Session> session = openOrDie("mlp.onnx");
  ASSERT_NE(session, nullptr);
  Result<std::vector<Tensor>> outputs =
      session->run({floatTensor("x", {2, 15}, std::vector<float>(30))}, {});
  ASSERT_FALSE(outputs.ok());
  EXPECT_EQ(outputs.error().code, ErrorCode::kInvalidArgument) << outputs.error().message;
  Result<std::vector<Tensor>> unknown =
      session->run({floatTensor("x", {1, 16}, std::vector<float>(16))}, {"nope"});
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, ErrorCode::kInvalidArgument) << unknown.error().message;
}

TEST(SessionTest, OptionsAreApplied) {
  SessionOptions options;
  options.graphOptimizationLevel = 1;
  options.intraOpThreads = 1;
  options.interOpThreads = 2;
  options.cpuArena = false;
  options.memoryPattern = false;
  std::unique_ptr<Session> session = openOrDie("mlp.onnx", options);
  ASSERT_NE(session, nullptr);
  EXPECT_TRUE(session->warmUp().ok());
  options.graphOptimizationLevel = 5;
  Result<std::unique_ptr<Session>> bad = Session::open(testModel("mlp.onnx"), options);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
}

TEST(SessionTest, UnavailableProviderIsNamedNeverFallsBack) {
  EXPECT_EQ(availableProviders().front(), "cpu");
  EXPECT_EQ(parseProvider("cuda"), Provider::kCuda);
  EXPECT_EQ(providerName(Provider::kOpenVino), "openvino");
  EXPECT_FALSE(parseProvider("CUDA").has_value());
  const std::vector<std::string> available = availableProviders();
  for (Provider provider :
       {Provider::kCuda, Provider::kRocm, Provider::kMigraphx, Provider::kOpenVino}) {
    const std::string name(providerName(provider));
    if (std::find(available.begin(), available.end(), name) != available.end()) continue;
    SCOPED_TRACE(name);
    SessionOptions options;
    options.provider = provider;
    Result<std::unique_ptr<Session>> session = Session::open(testModel("mlp.onnx"), options);
    ASSERT_FALSE(session.ok());
    EXPECT_EQ(session.error().code, ErrorCode::kUnavailable);
    EXPECT_NE(session.error().message.find("execution provider " + name), std::string::npos)
        << session.error().message;
    EXPECT_NE(session.error().message.find("libonnxruntime_providers_" + name + ".so"),
              std::string::npos)
        << session.error().message;
    EXPECT_EQ(session.error().details.value("provider", ""), name);
  }
}

// slow.onnx with this many rows runs for about 25 s on 2 cores, 1 s on 16: long enough to stop it
// midway (rows of zeros cost as much as any others).
constexpr std::int64_t kSlowRows = 65536;

Tensor slowInput(std::int64_t rows) {
  return floatTensor("x", {rows, 256}, std::vector<float>(static_cast<std::size_t>(rows) * 256));
}

TEST(SessionTest, CancellingTerminatesARunningRun) {
  std::unique_ptr<Session> session = openOrDie("slow.onnx");
  ASSERT_NE(session, nullptr);
  const Tensor input = slowInput(kSlowRows);
  RunControl control;
  control.cancelled = std::make_shared<std::atomic<bool>>(false);
  auto run = std::async(std::launch::async, [&] { return session->run({input}, {}, control); });
  std::this_thread::sleep_for(100ms);
  control.cancelled->store(true);
  ASSERT_EQ(run.wait_for(kHangGuard), std::future_status::ready);
  Result<std::vector<Tensor>> result = run.get();
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(result.error().message, "cancelled: the client went away");
}

TEST(SessionTest, DeadlineTerminatesARunningRun) {
  std::unique_ptr<Session> session = openOrDie("slow.onnx");
  ASSERT_NE(session, nullptr);
  RunControl control;
  control.deadline = std::chrono::steady_clock::now() + 100ms;
  auto run = std::async(std::launch::async,
                        [&] { return session->run({slowInput(kSlowRows)}, {}, control); });
  ASSERT_EQ(run.wait_for(kHangGuard), std::future_status::ready);
  Result<std::vector<Tensor>> result = run.get();
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::kDeadlineExceeded) << result.error().message;

  // Already past or already cancelled: nothing runs.
  control.deadline = std::chrono::steady_clock::now() - 1ms;
  EXPECT_EQ(session->run({slowInput(1)}, {}, control).error().code, ErrorCode::kDeadlineExceeded);
  RunControl cancelled{std::make_shared<std::atomic<bool>>(true), std::nullopt};
  EXPECT_EQ(session->run({slowInput(1)}, {}, cancelled).error().code, ErrorCode::kUnavailable);
  // A generous deadline does not disturb a run.
  RunControl relaxed{std::make_shared<std::atomic<bool>>(false),
                     std::chrono::steady_clock::now() + 60s};
  EXPECT_TRUE(session->run({slowInput(2)}, {}, relaxed).ok());
}

}  // namespace
}  // namespace deviceops::inference
