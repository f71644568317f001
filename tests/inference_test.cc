// Inference through the real daemon: the original /api/inference paths, the KServe v2 flow
// exactly as tritonclient's HTTP client sends it (JSON and binary tensor data), uploads, the
// model roots, bad input, every tensor type, and the CLI. Outputs are compared bit for bit with
// ONNX Runtime called directly in this process, and with the exporting framework within 1e-5.
#include <gtest/gtest.h>
#include <onnxruntime_cxx_api.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "tensor/kserve_codec.h"
#include "tensor/npy.h"
#include "test_daemon.h"

namespace deviceops::testing {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;
using inference::DataType;
using inference::Tensor;

const fs::path kModels = DEVICEOPS_TEST_MODELS_DIR;

std::string config() { return "[inference]\nmodelRoots = [\"" + kModels.string() + "\"]\n"; }

std::string readFile(const fs::path& path) {
  std::ifstream input(path, std::ios::binary);
  std::stringstream content;
  content << input.rdbuf();
  return content.str();
}

struct Reference {
  std::string inputName, outputName;
  std::vector<std::int64_t> inputShape, outputShape;
  std::vector<float> input, framework;  // the exporting framework's output
};

Reference reference(const std::string& stem) {
  const json file = json::parse(readFile(kModels / (stem + ".reference.json")));
  Reference r;
  r.inputName = file["input"]["name"];
  r.outputName = file["output"]["name"];
  r.inputShape = file["input"]["shape"].get<std::vector<std::int64_t>>();
  r.outputShape = file["output"]["shape"].get<std::vector<std::int64_t>>();
  for (const json& value : file["input"]["data"]) r.input.push_back(value.get<float>());
  for (const json& value : file["output"]["data"]) r.framework.push_back(value.get<float>());
  return r;
}

// ONNX Runtime called directly, with its default options (as the daemon's defaults).
std::vector<float> runDirectly(const std::string& stem, const Reference& r) {
  static Ort::Env env(ORT_LOGGING_LEVEL_WARNING, "inference_test");
  Ort::SessionOptions options;
  Ort::Session session(env, (kModels / (stem + ".onnx")).c_str(), options);
  auto memory = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
  std::vector<float> input = r.input;
  Ort::Value tensor = Ort::Value::CreateTensor<float>(memory, input.data(), input.size(),
                                                      r.inputShape.data(), r.inputShape.size());
  const char* inputNames[] = {r.inputName.c_str()};
  const char* outputNames[] = {r.outputName.c_str()};
  auto outputs = session.Run(Ort::RunOptions{nullptr}, inputNames, &tensor, 1, outputNames, 1);
  const float* data = outputs[0].GetTensorData<float>();
  return {data, data + outputs[0].GetTensorTypeAndShapeInfo().GetElementCount()};
}

std::vector<float> floats(const std::string& bytes) {
  std::vector<float> values(bytes.size() / 4);
  std::memcpy(values.data(), bytes.data(), values.size() * 4);
  return values;
}

void expectBitEqual(const std::vector<float>& actual, const std::vector<float>& expected) {
  ASSERT_EQ(actual.size(), expected.size());
  EXPECT_EQ(std::memcmp(actual.data(), expected.data(), actual.size() * 4), 0);
}

void expectClose(const std::vector<float>& actual, const std::vector<float>& expected) {
  ASSERT_EQ(actual.size(), expected.size());
  for (std::size_t i = 0; i < actual.size(); ++i) EXPECT_NEAR(actual[i], expected[i], 1e-5) << i;
}

RawResponse loadModel(TestDaemon& daemon, const std::string& file, const std::string& name) {
  return daemon.post("/api/inference/model/load",
                     {{"path", (kModels / file).string()}, {"name", name}});
}

TEST(InferenceIntegrationTest, ApiLoadListExecuteSessionsUnload) {
  TestDaemon daemon(config());
  ASSERT_TRUE(daemon.started()) << daemon.log();
  const Reference r = reference("mlp");
  const RawResponse loaded = loadModel(daemon, "mlp.onnx", "mlp");
  ASSERT_EQ(loaded.status, 201) << loaded.body;
  const json model = loaded.json();
  const std::string id = model["id"];
  EXPECT_EQ(model["state"], "ready");
  EXPECT_EQ(model["inputs"][0]["name"], "x");
  EXPECT_EQ(model["inputs"][0]["datatype"], "FP32");
  EXPECT_EQ(model["inputs"][0]["shape"], json::array({-1, 16}));
  EXPECT_EQ(model["sizeBytes"], fs::file_size(kModels / "mlp.onnx"));
  EXPECT_EQ(loaded.headers.at("location"), "/api/inference/model/" + id);

  const json list = daemon.get("/api/inference/models").json();
  EXPECT_EQ(list["count"], 1);
  EXPECT_EQ(daemon.get("/api/inference/model/" + id).json()["name"], "mlp");

  const RawResponse executed = daemon.post(
      "/api/inference/execute",
      {{"modelId", "mlp"},
       {"inputs", {{"x", {{"datatype", "FP32"}, {"shape", r.inputShape}, {"data", r.input}}}}}});
  ASSERT_EQ(executed.status, 200) << executed.body;
  const json body = executed.json();
  EXPECT_EQ(body["modelId"], id);
  EXPECT_EQ(body["outputs"]["y"]["shape"], json(r.outputShape));
  std::vector<float> y;
  for (const json& value : body["outputs"]["y"]["data"])
    y.push_back(static_cast<float>(value.get<double>()));
  expectBitEqual(y, runDirectly("mlp", r));
  expectClose(y, r.framework);
  EXPECT_GE(body["timings"]["totalMs"].get<double>(), body["timings"]["computeMs"].get<double>());

  const json sessions = daemon.get("/api/inference/sessions").json();
  ASSERT_EQ(sessions["count"], 1);
  EXPECT_EQ(sessions["sessions"][0]["statistics"]["successCount"], 1);
  EXPECT_EQ(sessions["sessions"][0]["statistics"]["totalSeconds"]["count"], 1);

  const RawResponse unloaded = daemon.request("DELETE", "/api/inference/model/" + id);
  ASSERT_EQ(unloaded.status, 200) << unloaded.body;
  EXPECT_TRUE(unloaded.json().contains("releasedBytes"));
  EXPECT_EQ(daemon.get("/api/inference/model/" + id).status, 404);
  EXPECT_EQ(daemon.get("/api/inference/models").json()["count"], 0);
}

// Every request as tritonclient.http.InferenceServerClient sends it (no Content-Type on infer,
// Inference-Header-Content-Length with binary inputs, binary_data_output when no outputs are
// named).
TEST(InferenceIntegrationTest, TritonClientFlowJsonAndBinary) {
  TestDaemon daemon(config());
  ASSERT_TRUE(daemon.started()) << daemon.log();
  const Reference r = reference("mlp");
  const std::vector<float> direct = runDirectly("mlp", r);

  EXPECT_EQ(daemon.get("/v2/health/live").status, 200);
  EXPECT_EQ(daemon.get("/v2/health/ready").status, 200);
  const json server = daemon.get("/v2").json();
  EXPECT_EQ(server["name"], "deviceops");
  EXPECT_NE(server["extensions"].dump().find("binary_tensor_data"), std::string::npos);

  EXPECT_EQ(daemon.get("/v2/models/mlp/ready").status, 400);  // Triton: not ready is 400
  const RawResponse repoLoad = daemon.request("POST", "/v2/repository/models/mlp/load");
  ASSERT_EQ(repoLoad.status, 200) << repoLoad.body;
  EXPECT_EQ(daemon.get("/v2/models/mlp/ready").status, 200);
  EXPECT_EQ(daemon.get("/v2/models/mlp/versions/1/ready").status, 200);
  const json metadata = daemon.get("/v2/models/mlp").json();
  EXPECT_EQ(metadata["name"], "mlp");
  EXPECT_EQ(metadata["versions"], json::array({"1"}));
  EXPECT_EQ(metadata["platform"], "onnxruntime_onnx");
  EXPECT_EQ(metadata["inputs"][0],
            json({{"name", "x"}, {"datatype", "FP32"}, {"shape", {-1, 16}}}));

  // JSON tensors, output requested in JSON.
  const json jsonRequest = {
      {"inputs",
       {{{"name", "x"}, {"shape", r.inputShape}, {"datatype", "FP32"}, {"data", r.input}}}},
      {"outputs", {{{"name", "y"}, {"parameters", {{"binary_data", false}}}}}}};
  const RawResponse jsonAnswer = daemon.request("POST", "/v2/models/mlp/infer", jsonRequest.dump());
  ASSERT_EQ(jsonAnswer.status, 200) << jsonAnswer.body;
  EXPECT_EQ(jsonAnswer.headers.count("inference-header-content-length"), 0u);
  const json jsonBody = jsonAnswer.json();
  EXPECT_EQ(jsonBody["model_name"], "mlp");
  EXPECT_EQ(jsonBody["model_version"], "1");
  std::vector<float> y;
  for (const json& value : jsonBody["outputs"][0]["data"])
    y.push_back(static_cast<float>(value.get<double>()));
  expectBitEqual(y, direct);

  // Binary tensors both ways.
  const std::string header = json({{"id", "42"},
                                   {"inputs",
                                    {{{"name", "x"},
                                      {"shape", r.inputShape},
                                      {"datatype", "FP32"},
                                      {"parameters", {{"binary_data_size", r.input.size() * 4}}}}}},
                                   {"parameters", {{"binary_data_output", true}}}})
                                 .dump();
  std::string raw(r.input.size() * 4, '\0');
  std::memcpy(raw.data(), r.input.data(), raw.size());
  const RawResponse binaryAnswer =
      daemon.request("POST", "/v2/models/mlp/versions/1/infer", header + raw,
                     {{"Inference-Header-Content-Length", std::to_string(header.size())}});
  ASSERT_EQ(binaryAnswer.status, 200) << binaryAnswer.body;
  EXPECT_EQ(binaryAnswer.headers.at("content-type"), "application/octet-stream");
  const std::size_t jsonLength =
      std::stoul(binaryAnswer.headers.at("inference-header-content-length"));
  const json binaryHeader = json::parse(binaryAnswer.body.substr(0, jsonLength));
  EXPECT_EQ(binaryHeader["id"], "42");
  EXPECT_EQ(binaryHeader["outputs"][0]["parameters"]["binary_data_size"], direct.size() * 4);
  expectBitEqual(floats(binaryAnswer.body.substr(jsonLength)), direct);
  expectClose(floats(binaryAnswer.body.substr(jsonLength)), r.framework);

  const json stats = daemon.get("/v2/models/mlp/stats").json();
  ASSERT_EQ(stats["model_stats"].size(), 1u);
  EXPECT_EQ(stats["model_stats"][0]["name"], "mlp");
  EXPECT_EQ(stats["model_stats"][0]["inference_stats"]["success"]["count"], 2);
  EXPECT_GT(stats["model_stats"][0]["inference_stats"]["compute_infer"]["ns"].get<std::uint64_t>(),
            0u);
  EXPECT_GT(stats["model_stats"][0]["last_inference"].get<std::uint64_t>(), 0u);
  EXPECT_EQ(daemon.get("/v2/models/stats").json()["model_stats"].size(), 1u);

  const json index = daemon.request("POST", "/v2/repository/index", "{\"ready\": true}").json();
  ASSERT_EQ(index.size(), 1u);
  EXPECT_EQ(index[0], json({{"name", "mlp"}, {"version", "1"}, {"state", "READY"}}));
  const json all = daemon.request("POST", "/v2/repository/index").json();
  EXPECT_GT(all.size(), 3u);  // the other files of the model root, not loaded

  // Triton's error shape on /v2.
  const RawResponse unknown = daemon.request("POST", "/v2/models/nope/infer", jsonRequest.dump());
  EXPECT_EQ(unknown.status, 404);
  EXPECT_TRUE(unknown.json()["error"].is_string()) << unknown.body;
  EXPECT_EQ(daemon.get("/v2/models/nope/ready").status, 400);
  EXPECT_EQ(daemon.get("/v2/models/nope").status, 404);

  EXPECT_EQ(daemon.request("POST", "/v2/repository/models/mlp/unload").status, 200);
  EXPECT_EQ(daemon.get("/v2/models/mlp/ready").status, 400);
  EXPECT_EQ(daemon.request("POST", "/v2/repository/models/missing/load").status, 404);
}

TEST(InferenceIntegrationTest, UploadRootsAndBadModels) {
  TestDaemon daemon(config());
  ASSERT_TRUE(daemon.started()) << daemon.log();
  const std::string bytes = readFile(kModels / "mlp.onnx");
  const RawResponse uploaded =
      daemon.request("POST", "/api/inference/model/load?name=uploaded&version=3&instances=2", bytes,
                     {{"Content-Type", "application/octet-stream"}});
  ASSERT_EQ(uploaded.status, 201) << uploaded.body;
  EXPECT_EQ(uploaded.json()["name"], "uploaded");
  EXPECT_EQ(uploaded.json()["version"], "3");
  EXPECT_EQ(uploaded.json()["instances"], 2);
  EXPECT_EQ(uploaded.json()["sizeBytes"], bytes.size());
  const Reference r = reference("mlp");
  const RawResponse executed = daemon.post(
      "/api/inference/execute",
      {{"modelId", "uploaded"},
       {"inputs", {{"x", {{"datatype", "FP32"}, {"shape", r.inputShape}, {"data", r.input}}}}}});
  EXPECT_EQ(executed.status, 200) << executed.body;

  // A copy outside the model roots.
  const fs::path outside = daemon.directory() / "mlp.onnx";
  fs::copy_file(kModels / "mlp.onnx", outside);
  const RawResponse denied =
      daemon.post("/api/inference/model/load", {{"path", outside.string()}, {"name", "x"}});
  EXPECT_EQ(denied.status, 403) << denied.body;
  EXPECT_EQ(
      daemon.post("/api/inference/model/load", {{"path", (kModels / "../../etc/passwd").string()}})
          .status,
      403);
  EXPECT_EQ(loadModel(daemon, "not_a_model.onnx", "junk").status, 400);
  EXPECT_EQ(loadModel(daemon, "truncated.onnx", "cut").status, 400);
  EXPECT_EQ(daemon.post("/api/inference/model/load", {{"path", "x"}, {"bogus", 1}}).status, 400);
  EXPECT_EQ(daemon.request("DELETE", "/api/inference/model/model-0000000000000000").status, 404);
  EXPECT_EQ(daemon
                .post("/api/inference/execute",
                      {{"modelId", "ghost"},
                       {"inputs", {{"x", {{"datatype", "FP32"}, {"shape", {1}}, {"data", {1}}}}}}})
                .status,
            404);
}

TEST(InferenceIntegrationTest, UploadsAreStreamedToDiskUnderTheirOwnLimit) {
  // The general body limit (4 KiB) is below the model (7.5 KB): uploads have their own limit and
  // never pass through memory.
  TestDaemon daemon("[server]\nmaxBodyBytes = \"4KiB\"\n[inference]\nmodelRoots = [\"" +
                    kModels.string() + "\"]\nmaxUploadBytes = \"64KiB\"\n");
  ASSERT_TRUE(daemon.started()) << daemon.log();
  const std::string mlp = readFile(kModels / "mlp.onnx");
  ASSERT_GT(mlp.size(), 4096u);
  const RawResponse uploaded = daemon.request("POST", "/api/inference/model/load?name=streamed",
                                              mlp, {{"Content-Type", "application/octet-stream"}});
  ASSERT_EQ(uploaded.status, 201) << uploaded.body;
  EXPECT_EQ(uploaded.json()["sizeBytes"], mlp.size());
  const std::string slow = readFile(kModels / "slow.onnx");
  ASSERT_GT(slow.size(), 65536u);
  const RawResponse tooLarge = daemon.request("POST", "/api/inference/model/load?name=big", slow,
                                              {{"Content-Type", "application/octet-stream"}});
  EXPECT_EQ(tooLarge.status, 413) << tooLarge.body;
  // Other routes keep the general limit.
  EXPECT_EQ(daemon.request("POST", "/api/inference/execute", std::string(5000, ' ')).status, 413);
  // Nothing is left half-written, and the stored upload is named by its digest.
  std::size_t partial = 0;
  for (const auto& entry : fs::recursive_directory_iterator(daemon.directory())) {
    if (entry.path().extension() == ".part") ++partial;
  }
  EXPECT_EQ(partial, 0u);
  EXPECT_EQ(daemon.get("/api/inference/models").status, 200);
  EXPECT_EQ(daemon.request("DELETE", "/api/inference/model/streamed").status, 200);
}

TEST(InferenceIntegrationTest, BadInputsAre400NamingTheTensor) {
  TestDaemon daemon(config());
  ASSERT_TRUE(daemon.started()) << daemon.log();
  ASSERT_EQ(loadModel(daemon, "mlp.onnx", "mlp").status, 201);
  std::vector<float> sixteen(16, 0.5f);
  const auto v2 = [](const std::string& name, const std::string& datatype, json shape, json data) {
    return json{
        {"inputs", {{{"name", name}, {"shape", shape}, {"datatype", datatype}, {"data", data}}}}}
        .dump();
  };
  struct Case {
    const char* what;
    std::string body;
    std::map<std::string, std::string> headers;
    const char* message;
  };
  std::vector<float> fifteen(15, 0.5f);
  const std::string binaryHeader =
      R"({"inputs":[{"name":"x","shape":[1,16],"datatype":"FP32","parameters":{"binary_data_size":64}}]})";
  const std::vector<Case> cases = {
      {"wrong input name", v2("z", "FP32", {1, 16}, sixteen), {}, "'z'"},
      {"wrong dtype", v2("x", "FP64", {1, 16}, sixteen), {}, "input 'x': expected datatype FP32"},
      {"wrong rank", v2("x", "FP32", {16}, sixteen), {}, "input 'x': expected rank 2"},
      {"wrong dimension",
       v2("x", "FP32", {1, 15}, fifteen),
       {},
       "input 'x': dimension 1 must be 16"},
      {"length mismatch",
       v2("x", "FP32", {1, 16}, fifteen),
       {},
       "input 'x': expected 16 FP32 elements for shape [1,16], got 15"},
      {"huge shape",
       v2("x", "FP32", {4294967296LL, 4294967296LL}, json::array()),
       {},
       "input 'x': shape [4294967296,4294967296] has too many elements"},
      {"binary size mismatch",
       binaryHeader + std::string(60, '\0'),
       {{"Inference-Header-Content-Length", std::to_string(binaryHeader.size())}},
       "declare 64 bytes"},
      {"missing header",
       binaryHeader + std::string(64, '\0'),
       {},
       "Inference-Header-Content-Length"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    const RawResponse answer = daemon.request("POST", "/v2/models/mlp/infer", c.body, c.headers);
    EXPECT_EQ(answer.status, 400) << answer.body;
    const json body = json::parse(answer.body, nullptr, false);
    ASSERT_TRUE(body.contains("error") && body["error"].is_string()) << answer.body;
    EXPECT_NE(body["error"].get<std::string>().find(c.message), std::string::npos) << answer.body;
  }
  // The same check through the original API: our error shape.
  const RawResponse api = daemon.post(
      "/api/inference/execute",
      {{"modelId", "mlp"},
       {"inputs", {{"x", {{"datatype", "FP32"}, {"shape", {1, 16}}, {"data", fifteen}}}}}});
  EXPECT_EQ(api.status, 400);
  EXPECT_EQ(api.json()["error"]["code"], "INVALID_ARGUMENT");
  EXPECT_NE(api.json()["error"]["message"].get<std::string>().find("input 'x'"), std::string::npos);

  // NaN is allowed and passes through.
  std::vector<json> withNan(16, 0.5);
  withNan[3] = "NaN";
  const RawResponse nan =
      daemon.request("POST", "/v2/models/mlp/infer", v2("x", "FP32", {1, 16}, withNan));
  EXPECT_EQ(nan.status, 200) << nan.body;
  EXPECT_EQ(daemon.get("/api/inference/models").status, 200);  // still serving
}

// all_types.onnx: one Identity per ONNX type; every type comes back bit for bit.
TEST(InferenceIntegrationTest, EveryTensorTypeRoundTripsThroughBothEncodings) {
  TestDaemon daemon(config());
  ASSERT_TRUE(daemon.started()) << daemon.log();
  ASSERT_EQ(loadModel(daemon, "all_types.onnx", "all_types").status, 201);
  const std::vector<std::pair<std::string, DataType>> types = {
      {"bool", DataType::kBool},     {"uint8", DataType::kUint8},   {"uint16", DataType::kUint16},
      {"uint32", DataType::kUint32}, {"uint64", DataType::kUint64}, {"int8", DataType::kInt8},
      {"int16", DataType::kInt16},   {"int32", DataType::kInt32},   {"int64", DataType::kInt64},
      {"float16", DataType::kFp16},  {"bfloat16", DataType::kBf16}, {"float", DataType::kFp32},
      {"double", DataType::kFp64},   {"string", DataType::kBytes}};
  std::vector<Tensor> inputs;
  for (const auto& [name, type] : types) {
    Tensor tensor;
    tensor.name = "in_" + name;
    tensor.type = type;
    tensor.shape = {2, 3};
    if (type == DataType::kBytes) {
      tensor.strings = {"a", "", "ü", "longer text", "x", "y"};
    } else {
      for (std::size_t i = 0; i < 6 * inference::elementSize(type); ++i) {
        tensor.data.push_back(type == DataType::kBool ? static_cast<char>(i % 2)
                                                      : static_cast<char>(i * 29 + 3));
      }
    }
    inputs.push_back(std::move(tensor));
  }
  for (const bool binary : {false, true}) {
    SCOPED_TRACE(binary ? "binary" : "json");
    const inference::EncodedBody request =
        inference::encodeV2InferRequest(inputs, {}, binary, binary);
    std::map<std::string, std::string> headers;
    if (request.jsonLength)
      headers["Inference-Header-Content-Length"] = std::to_string(*request.jsonLength);
    const RawResponse answer =
        daemon.request("POST", "/v2/models/all_types/infer", request.body, headers);
    ASSERT_EQ(answer.status, 200) << answer.body.substr(0, 500);
    std::optional<std::string> length;
    if (answer.headers.count("inference-header-content-length")) {
      length = answer.headers.at("inference-header-content-length");
    }
    auto decoded = inference::decodeV2InferResponse(answer.body, length);
    ASSERT_TRUE(decoded.ok()) << decoded.error().message;
    ASSERT_EQ(decoded->outputs.size(), inputs.size());
    for (const Tensor& output : decoded->outputs) {
      const std::string name = "in_" + output.name.substr(4);
      const auto input = std::find_if(inputs.begin(), inputs.end(),
                                      [&](const Tensor& t) { return t.name == name; });
      ASSERT_NE(input, inputs.end()) << output.name;
      SCOPED_TRACE(output.name);
      EXPECT_EQ(output.type, input->type);
      EXPECT_EQ(output.shape, input->shape);
      EXPECT_EQ(output.data, input->data);
      EXPECT_EQ(output.strings, input->strings);
    }
  }
}

// One instance and room for one queued request: a third request arriving meanwhile is refused
// with 503 and Retry-After (Triton's error shape on /v2); the running and queued ones succeed.
TEST(InferenceIntegrationTest, FullQueueIs503WithRetryAfter) {
  TestDaemon daemon(config());
  ASSERT_TRUE(daemon.started()) << daemon.log();
  const RawResponse loaded =
      daemon.post("/api/inference/model/load", {{"path", (kModels / "slow.onnx").string()},
                                                {"name", "slow"},
                                                {"instances", 1},
                                                {"maxQueue", 1}});
  ASSERT_EQ(loaded.status, 201) << loaded.body;
  const auto request = [](std::int64_t batch) {
    Tensor tensor;
    tensor.name = "x";
    tensor.type = DataType::kFp32;
    tensor.shape = {batch, 256};
    tensor.data.assign(static_cast<std::size_t>(batch) * 256 * 4, '\0');
    return inference::encodeV2InferRequest({tensor}, {}, true, true);
  };
  const auto send = [&](const inference::EncodedBody& body) {
    return daemon.request("POST", "/v2/models/slow/infer", body.body,
                          {{"Inference-Header-Content-Length", std::to_string(*body.jsonLength)}});
  };
  const auto waitInFlight = [&](int wanted) {
    for (int attempt = 0; attempt < 1000; ++attempt) {
      const json sessions = daemon.get("/api/inference/sessions").json();
      if (sessions["sessions"][0]["inFlight"].get<int>() >= wanted) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return false;
  };
  const inference::EncodedBody big = request(16384);
  RawResponse first, second;
  std::thread running([&] { first = send(big); });
  ASSERT_TRUE(waitInFlight(1));
  std::thread queued([&] { second = send(big); });
  const bool full = waitInFlight(2);
  const RawResponse refused = send(request(1));
  running.join();
  queued.join();
  ASSERT_TRUE(full);
  EXPECT_EQ(refused.status, 503) << refused.body.substr(0, 300);
  EXPECT_EQ(refused.headers.count("retry-after"), 1u);
  EXPECT_TRUE(json::parse(refused.body, nullptr, false)["error"].is_string())
      << refused.body.substr(0, 300);
  EXPECT_EQ(first.status, 200) << first.body.substr(0, 300);
  EXPECT_EQ(second.status, 200) << second.body.substr(0, 300);
}

TEST(InferenceIntegrationTest, CliModelsAndInfer) {
  TestDaemon daemon(config());
  ASSERT_TRUE(daemon.started()) << daemon.log();
  const std::string url = "http://127.0.0.1:" + std::to_string(daemon.port());
  const auto cli = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {DEVICEOPS_CLI_PATH, "--url", url});
    return runProgram(args);
  };
  auto [loadStatus, loadOut] =
      cli({"models", "load", (kModels / "mlp.onnx").string(), "--name", "mlp"});
  ASSERT_EQ(loadStatus, 0) << loadOut;
  EXPECT_NE(loadOut.find("ready"), std::string::npos) << loadOut;
  auto [listStatus, listOut] = cli({"models", "list"});
  EXPECT_EQ(listStatus, 0);
  EXPECT_NE(listOut.find("mlp"), std::string::npos) << listOut;
  auto [showStatus, showOut] = cli({"--json", "models", "show", "mlp"});
  EXPECT_EQ(showStatus, 0);
  EXPECT_EQ(json::parse(showOut)["name"], "mlp");

  const Reference r = reference("mlp");
  const std::vector<float> direct = runDirectly("mlp", r);
  const fs::path outputs = daemon.directory() / "outputs";
  for (const bool binary : {false, true}) {
    SCOPED_TRACE(binary);
    std::vector<std::string> args = {"infer",        "mlp",
                                     "--input",      "x=" + (kModels / "mlp.input.npy").string(),
                                     "--output-dir", outputs.string()};
    if (binary) args.push_back("--binary");
    auto [inferStatus, inferOut] = cli(args);
    ASSERT_EQ(inferStatus, 0) << inferOut;
    auto written = inference::readNpyFile(outputs / "y.npy");
    ASSERT_TRUE(written.ok()) << written.error().message;
    expectBitEqual(floats(written->data), direct);
  }
  auto [summaryStatus, summaryOut] =
      cli({"infer", "mlp", "--input", "x=" + (kModels / "mlp.input.npy").string()});
  EXPECT_EQ(summaryStatus, 0);
  EXPECT_NE(summaryOut.find("FP32"), std::string::npos) << summaryOut;
  auto [badStatus, badOut] =
      cli({"infer", "mlp", "--input", "z=" + (kModels / "mlp.input.npy").string()});
  EXPECT_EQ(badStatus, 1) << badOut;
  EXPECT_NE(badOut.find("'z'"), std::string::npos) << badOut;
  auto [unloadStatus, unloadOut] = cli({"models", "unload", "mlp"});
  EXPECT_EQ(unloadStatus, 0) << unloadOut;
  EXPECT_NE(unloadOut.find("released"), std::string::npos) << unloadOut;
}

}  // namespace
}  // namespace deviceops::testing

namespace deviceops::testing {
namespace {

// A binary v2 request for slow.onnx (x[rows,256] -> 96 x (MatMul, Tanh)).
std::string slowRequest(int port, int rows) {
  const std::string data(static_cast<std::size_t>(rows) * 256 * sizeof(float), '\0');
  const std::string header = json{{"inputs",
                                   {{{"name", "x"},
                                     {"datatype", "FP32"},
                                     {"shape", {rows, 256}},
                                     {"parameters", {{"binary_data_size", data.size()}}}}}}}
                                 .dump();
  return "POST /v2/models/slow/infer HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
         "\r\nContent-Type: application/octet-stream\r\nInference-Header-Content-Length: " +
         std::to_string(header.size()) +
         "\r\nContent-Length: " + std::to_string(header.size() + data.size()) + "\r\n\r\n" +
         header + data;
}

std::uint64_t inFlight(TestDaemon& daemon) {
  const json model = daemon.get("/api/inference/model/slow").json();
  return model.value("inFlight", std::uint64_t{99});
}

TEST(InferenceIntegrationTest, ClientDisconnectCancelsTheRunAndFreesTheInstance) {
  TestDaemon daemon("[inference]\nmodelRoots = [\"" + kModels.string() + "\"]\n");
  ASSERT_TRUE(daemon.started()) << daemon.log();
  ASSERT_EQ(daemon
                .post("/api/inference/model/load",
                      {{"path", (kModels / "slow.onnx").string()}, {"name", "slow"}})
                .status,
            201);
  constexpr int kRows = 16384;  // ~200 GFLOP: about a second even on a fast idle 2-core machine
  // How long the run takes when nobody leaves.
  const auto started = std::chrono::steady_clock::now();
  {
    Connection client(daemon.port());
    ASSERT_TRUE(client.send(slowRequest(daemon.port(), kRows)));
    const auto reply = client.read(std::chrono::seconds(120));
    ASSERT_TRUE(reply.has_value());
    ASSERT_EQ(reply->status, 200);
  }
  const auto fullRun = std::chrono::steady_clock::now() - started;

  // Three times the work, and the client hangs up while it runs: finishing would take about
  // 3 x fullRun, so a run that is not cancelled cannot free the instance within fullRun / 2 nor
  // count as a success, even when the machine's load changes between the two runs.
  {
    Connection client(daemon.port());
    ASSERT_TRUE(client.send(slowRequest(daemon.port(), 3 * kRows)));
    for (int i = 0; i < 200 && inFlight(daemon) == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    ASSERT_EQ(inFlight(daemon), 1u) << "the request never started";
  }  // closes the connection
  const auto closed = std::chrono::steady_clock::now();
  while (inFlight(daemon) != 0 && std::chrono::steady_clock::now() - closed < fullRun * 4) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const auto freedAfter = std::chrono::steady_clock::now() - closed;
  EXPECT_EQ(inFlight(daemon), 0u);
  EXPECT_LT(freedAfter, fullRun / 2) << "the run went on after its client left";
  const json stats = daemon.get("/v2/models/slow/stats").json();
  EXPECT_EQ(stats["model_stats"][0]["inference_stats"]["success"]["count"], 1);
  EXPECT_EQ(stats["model_stats"][0]["inference_stats"]["fail"]["count"], 1);
  // The instance is free again: a small request is answered.
  const auto small = daemon.request("POST", "/v2/models/slow/infer",
                                    json{{"inputs",
                                          {{{"name", "x"},
                                            {"datatype", "FP32"},
                                            {"shape", {1, 256}},
                                            {"data", std::vector<float>(256, 0.0f)}}}}}
                                        .dump());
  EXPECT_EQ(small.status, 200) << small.body;
}

}  // namespace
}  // namespace deviceops::testing
