#include "onnx_conformance.h"

#include <fmt/format.h>
#include <onnx/onnx_pb.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include "tensor/kserve_codec.h"

namespace deviceops::testing {
namespace {

using nlohmann::json;

struct WireTensor {
  std::string name;
  std::string datatype;  // KServe v2 name
  std::vector<std::int64_t> shape;
  std::string bytes;  // v2 binary encoding
};

std::optional<std::string> readFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

template <class T, class Field>
std::string packAs(const Field& field) {
  std::string bytes(field.size() * sizeof(T), '\0');
  for (int i = 0; i < field.size(); ++i) {
    const T value = static_cast<T>(field.Get(i));
    std::memcpy(bytes.data() + static_cast<std::size_t>(i) * sizeof(T), &value, sizeof(T));
  }
  return bytes;
}

// TensorProto -> v2 binary tensor. nullopt (with reason) for types the protocol cannot carry.
std::optional<WireTensor> toWire(const onnx::TensorProto& tensor, std::string& reason) {
  WireTensor wire;
  wire.name = tensor.name();
  for (const auto dimension : tensor.dims()) wire.shape.push_back(dimension);
  const bool raw = tensor.has_raw_data();
  switch (tensor.data_type()) {
    case onnx::TensorProto::FLOAT:
      wire.datatype = "FP32";
      wire.bytes = raw ? tensor.raw_data() : packAs<float>(tensor.float_data());
      break;
    case onnx::TensorProto::DOUBLE:
      wire.datatype = "FP64";
      wire.bytes = raw ? tensor.raw_data() : packAs<double>(tensor.double_data());
      break;
    case onnx::TensorProto::FLOAT16:
      wire.datatype = "FP16";
      wire.bytes = raw ? tensor.raw_data() : packAs<std::uint16_t>(tensor.int32_data());
      break;
    case onnx::TensorProto::BFLOAT16:
      wire.datatype = "BF16";
      wire.bytes = raw ? tensor.raw_data() : packAs<std::uint16_t>(tensor.int32_data());
      break;
    case onnx::TensorProto::INT8:
      wire.datatype = "INT8";
      wire.bytes = raw ? tensor.raw_data() : packAs<std::int8_t>(tensor.int32_data());
      break;
    case onnx::TensorProto::INT16:
      wire.datatype = "INT16";
      wire.bytes = raw ? tensor.raw_data() : packAs<std::int16_t>(tensor.int32_data());
      break;
    case onnx::TensorProto::INT32:
      wire.datatype = "INT32";
      wire.bytes = raw ? tensor.raw_data() : packAs<std::int32_t>(tensor.int32_data());
      break;
    case onnx::TensorProto::INT64:
      wire.datatype = "INT64";
      wire.bytes = raw ? tensor.raw_data() : packAs<std::int64_t>(tensor.int64_data());
      break;
    case onnx::TensorProto::UINT8:
      wire.datatype = "UINT8";
      wire.bytes = raw ? tensor.raw_data() : packAs<std::uint8_t>(tensor.int32_data());
      break;
    case onnx::TensorProto::UINT16:
      wire.datatype = "UINT16";
      wire.bytes = raw ? tensor.raw_data() : packAs<std::uint16_t>(tensor.int32_data());
      break;
    case onnx::TensorProto::UINT32:
      wire.datatype = "UINT32";
      wire.bytes = raw ? tensor.raw_data() : packAs<std::uint32_t>(tensor.uint64_data());
      break;
    case onnx::TensorProto::UINT64:
      wire.datatype = "UINT64";
      wire.bytes = raw ? tensor.raw_data() : packAs<std::uint64_t>(tensor.uint64_data());
      break;
    case onnx::TensorProto::BOOL:
      wire.datatype = "BOOL";
      wire.bytes = raw ? tensor.raw_data() : packAs<std::uint8_t>(tensor.int32_data());
      break;
    case onnx::TensorProto::STRING:
      wire.datatype = "BYTES";
      for (const std::string& element : tensor.string_data()) {
        const auto length = static_cast<std::uint32_t>(element.size());
        wire.bytes.append(reinterpret_cast<const char*>(&length), 4);
        wire.bytes += element;
      }
      break;
    default:
      reason = fmt::format("tensor '{}': element type {} has no KServe v2 datatype", wire.name,
                           tensor.data_type());
      return std::nullopt;
  }
  return wire;
}

std::optional<WireTensor> readTensor(const std::filesystem::path& file, std::string& reason) {
  const std::optional<std::string> bytes = readFile(file);
  onnx::TensorProto tensor;
  if (!bytes || !tensor.ParseFromString(*bytes)) {
    reason = fmt::format("{} is not a TensorProto (a sequence or optional input?)",
                         file.filename().string());
    return std::nullopt;
  }
  return toWire(tensor, reason);
}

bool closeEnough(double expected, double actual) {
  if (std::isnan(expected)) return std::isnan(actual);
  if (std::isinf(expected)) return expected == actual;
  return std::fabs(expected - actual) <= 1e-7 + 1e-3 * std::fabs(expected);
}

template <class T>
double elementAt(const std::string& bytes, std::size_t index) {
  T value{};
  std::memcpy(&value, bytes.data() + index * sizeof(T), sizeof(T));
  return static_cast<double>(value);
}

// Empty when equal within tolerance, else the first difference.
std::string compare(const WireTensor& expected, const std::string& datatype,
                    const std::vector<std::int64_t>& shape, const std::string& actual) {
  if (datatype != expected.datatype) {
    return fmt::format("output '{}': datatype {} != expected {}", expected.name, datatype,
                       expected.datatype);
  }
  if (shape != expected.shape) {
    return fmt::format("output '{}': shape [{}] != expected [{}]", expected.name,
                       fmt::join(shape, ","), fmt::join(expected.shape, ","));
  }
  if (actual.size() != expected.bytes.size()) {
    return fmt::format("output '{}': {} bytes != expected {}", expected.name, actual.size(),
                       expected.bytes.size());
  }
  double (*read)(const std::string&, std::size_t) = nullptr;
  std::size_t size = 0;
  if (datatype == "FP32") {
    read = elementAt<float>, size = 4;
  } else if (datatype == "FP64") {
    read = elementAt<double>, size = 8;
  } else if (datatype == "FP16") {
    read = [](const std::string& bytes, std::size_t index) {
      return inference::halfToDouble(
          static_cast<std::uint16_t>(elementAt<std::uint16_t>(bytes, index)));
    };
    size = 2;
  } else if (datatype == "BF16") {
    read = [](const std::string& bytes, std::size_t index) {
      return inference::bfloat16ToDouble(
          static_cast<std::uint16_t>(elementAt<std::uint16_t>(bytes, index)));
    };
    size = 2;
  }
  if (read == nullptr) {  // integers, BOOL, BYTES: exact
    if (actual != expected.bytes) return fmt::format("output '{}': values differ", expected.name);
    return "";
  }
  for (std::size_t i = 0; i < actual.size() / size; ++i) {
    const double want = read(expected.bytes, i);
    const double got = read(actual, i);
    if (!closeEnough(want, got)) {
      return fmt::format("output '{}': element {} is {} , expected {}", expected.name, i, got,
                         want);
    }
  }
  return "";
}

ConformanceResult fail(std::string stage, std::string reason) {
  return ConformanceResult{false, std::move(stage), std::move(reason)};
}

// The model's declared datatypes by tensor name (GET /v2/models/{m}).
std::map<std::string, std::string> declaredTypes(TestDaemon& daemon, const std::string& model) {
  std::map<std::string, std::string> types;
  const RawResponse response = daemon.get("/v2/models/" + model);
  const json metadata = json::parse(response.body, nullptr, false);
  if (!metadata.is_object()) return types;
  for (const char* key : {"inputs", "outputs"}) {
    for (const json& tensor : metadata.value(key, json::array())) {
      types[tensor.value("name", "")] = tensor.value("datatype", "");
    }
  }
  return types;
}

// numpy has no bfloat16: ONNX's test data stores BF16 tensors as UINT16 bit patterns.
void relabelBfloat16(std::vector<WireTensor>& tensors,
                     const std::map<std::string, std::string>& declared) {
  for (WireTensor& tensor : tensors) {
    auto it = declared.find(tensor.name);
    if (tensor.datatype == "UINT16" && it != declared.end() && it->second == "BF16") {
      tensor.datatype = "BF16";
    }
  }
}

ConformanceResult runDataSet(TestDaemon& daemon, const std::string& model,
                             const std::map<std::string, std::string>& declared,
                             const std::filesystem::path& dataSet) {
  std::vector<WireTensor> inputs;
  std::vector<WireTensor> outputs;
  std::string reason;
  for (int i = 0;; ++i) {
    const auto file = dataSet / fmt::format("input_{}.pb", i);
    if (!std::filesystem::exists(file)) break;
    std::optional<WireTensor> tensor = readTensor(file, reason);
    if (!tensor) return fail("input", reason);
    inputs.push_back(std::move(*tensor));
  }
  for (int i = 0;; ++i) {
    const auto file = dataSet / fmt::format("output_{}.pb", i);
    if (!std::filesystem::exists(file)) break;
    std::optional<WireTensor> tensor = readTensor(file, reason);
    if (!tensor) return fail("input", reason);
    outputs.push_back(std::move(*tensor));
  }
  relabelBfloat16(inputs, declared);
  relabelBfloat16(outputs, declared);
  // The request and the reply go through the project's client-side codec (as the CLI's).
  std::vector<inference::Tensor> tensors;
  for (const WireTensor& input : inputs) {
    Result<inference::Tensor> tensor = inference::tensorFromBinary(
        "input", input.name, *inference::parseDataType(input.datatype), input.shape, input.bytes);
    if (!tensor.ok()) return fail("input", tensor.error().message);
    tensors.push_back(std::move(*tensor));
  }
  std::vector<std::string> outputNames;
  for (const WireTensor& output : outputs) outputNames.push_back(output.name);
  const inference::EncodedBody request =
      inference::encodeV2InferRequest(tensors, outputNames, true, true);
  const RawResponse response = daemon.request(
      "POST", "/v2/models/" + model + "/infer", request.body,
      {{"Content-Type", "application/octet-stream"},
       {"Inference-Header-Content-Length", std::to_string(request.jsonLength.value_or(0))}});
  if (response.status != 200) {
    return fail("infer", fmt::format("HTTP {}: {}", response.status, response.body.substr(0, 300)));
  }
  std::optional<std::string_view> headerLength;
  if (auto it = response.headers.find("inference-header-content-length");
      it != response.headers.end()) {
    headerLength = it->second;
  }
  Result<inference::V2InferResponse> reply =
      inference::decodeV2InferResponse(response.body, headerLength);
  if (!reply.ok()) return fail("infer", "unparsable reply: " + reply.error().message);
  std::map<std::string, std::tuple<std::string, std::vector<std::int64_t>, std::string>> got;
  for (const inference::Tensor& output : reply->outputs) {
    std::string bytes;
    inference::appendBinary(output, bytes);
    got[output.name] = {std::string(inference::dataTypeName(output.type)), output.shape,
                        std::move(bytes)};
  }
  for (const WireTensor& expected : outputs) {
    auto it = got.find(expected.name);
    if (it == got.end()) return fail("compare", "output '" + expected.name + "' missing");
    const auto& [datatype, shape, bytes] = it->second;
    if (std::string difference = compare(expected, datatype, shape, bytes); !difference.empty()) {
      return fail("compare", difference);
    }
  }
  return ConformanceResult{true, "", ""};
}

}  // namespace

ConformanceResult runConformanceCase(TestDaemon& daemon, const std::filesystem::path& caseDir) {
  const std::string name = caseDir.filename().string();
  const RawResponse loaded =
      daemon.post("/api/inference/model/load",
                  json{{"path", (caseDir / "model.onnx").string()}, {"name", name}});
  if (loaded.status != 200 && loaded.status != 201) {
    return fail("load", fmt::format("HTTP {}: {}", loaded.status, loaded.body.substr(0, 300)));
  }
  const json model = json::parse(loaded.body, nullptr, false);
  const std::string id = model.is_object() ? model.value("id", name) : name;
  const auto declared = declaredTypes(daemon, name);
  ConformanceResult result{true, "", ""};
  for (int set = 0; result.passed; ++set) {
    const auto dataSet = caseDir / fmt::format("test_data_set_{}", set);
    if (!std::filesystem::exists(dataSet)) break;
    result = runDataSet(daemon, name, declared, dataSet);
  }
  daemon.request("DELETE", "/api/inference/model/" + id);
  return result;
}

}  // namespace deviceops::testing
