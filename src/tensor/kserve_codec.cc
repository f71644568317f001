// The KServe v2 framing (request/response JSON, the binary extension's header and slicing) and
// the original /api/inference/execute format. Tensor elements are in kserve_codec_tensors.cc.
#include "tensor/kserve_codec.h"

#include <fmt/format.h>

#include <limits>
#include <set>

#include "tensor/kserve_codec_internal.h"

namespace deviceops::inference {
namespace {

using nlohmann::json;

using kserve_internal::requestError;
using kserve_internal::tensorError;

Result<std::vector<std::int64_t>> decodeShape(std::string_view role, const std::string& name,
                                              const json& shape) {
  if (!shape.is_array()) {
    return tensorError(role, name, "'shape' must be an array of non-negative integers");
  }
  std::vector<std::int64_t> dimensions;
  for (const json& dimension : shape) {
    if (!dimension.is_number_unsigned() ||
        dimension.get<std::uint64_t>() >
            static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      return tensorError(
          role, name,
          fmt::format("'shape' must be an array of non-negative integers, got {}", shape.dump()));
    }
    dimensions.push_back(static_cast<std::int64_t>(dimension.get<std::uint64_t>()));
  }
  return dimensions;
}

Result<DataType> decodeDataType(std::string_view role, const std::string& name,
                                const json& datatype) {
  std::optional<DataType> type;
  if (datatype.is_string()) type = parseDataType(datatype.get<std::string>());
  if (!type) {
    return tensorError(
        role, name,
        fmt::format("'datatype' must be one of BOOL, UINT8, UINT16, UINT32, UINT64, "
                    "INT8, INT16, INT32, INT64, FP16, BF16, FP32, FP64, BYTES; got {}",
                    datatype.dump()));
  }
  return *type;
}

Result<json> parseJsonText(std::string_view text, std::string_view what) {
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::parse_error& error) {
    std::string reason = error.what();
    reason = reason.substr(reason.find(':') + 1);
    return makeError(ErrorCode::kInvalidArgument,
                     fmt::format("{} is not valid JSON at byte {}:{}", what, error.byte, reason),
                     {{"position", error.byte}});
  } catch (const json::exception& error) {
    std::string reason = error.what();
    return makeError(ErrorCode::kInvalidArgument, fmt::format("{} is not valid JSON: {}", what,
                                                              reason.substr(reason.find(']') + 2)));
  }
}

Result<std::size_t> parseHeaderLength(std::string_view text, std::size_t bodySize) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  std::uint64_t value = 0;
  if (text.empty() || text.size() > 19 || text.find_first_not_of("0123456789") != text.npos) {
    return requestError(fmt::format("{} must be a decimal byte count, got '{}'",
                                    kInferenceHeaderContentLength, text));
  }
  for (const char digit : text) value = value * 10 + static_cast<std::uint64_t>(digit - '0');
  if (value > bodySize) {
    return requestError(fmt::format("{} is {} but the body has only {} bytes",
                                    kInferenceHeaderContentLength, value, bodySize));
  }
  return static_cast<std::size_t>(value);
}

// Splits `binary` into the tensors that declared binary_data_size, in order.
struct PendingBinary {
  std::size_t index;  // into the tensor list
  std::string name;
  DataType type;
  std::vector<std::int64_t> shape;
  std::uint64_t size;
};

Status sliceBinary(std::string_view role, std::string_view binary,
                   const std::vector<PendingBinary>& pending, std::vector<Tensor>& tensors) {
  std::uint64_t declared = 0;
  bool overflow = false;
  for (const PendingBinary& item : pending) {
    overflow = overflow || item.size > std::numeric_limits<std::uint64_t>::max() - declared;
    if (!overflow) declared += item.size;
  }
  if (overflow || declared != binary.size()) {
    return requestError(fmt::format(
        "binary data: the {}s declare {} bytes in binary_data_size, but {} bytes follow the "
        "JSON header",
        role, overflow ? std::string("more than 2^64") : std::to_string(declared), binary.size()));
  }
  std::size_t offset = 0;
  for (const PendingBinary& item : pending) {
    Result<Tensor> tensor =
        tensorFromBinary(role, item.name, item.type, item.shape, binary.substr(offset, item.size));
    if (!tensor.ok()) return tensor.error();
    tensors[item.index] = std::move(*tensor);
    offset += item.size;
  }
  return {};
}

// Decodes one tensor entry {name, shape, datatype, parameters?, data?} of a request or
// response. A binary one is left empty in `tensors` and listed in `pending`.
Status decodeTensorEntry(std::string_view role, const json& entry, std::set<std::string>& names,
                         std::vector<Tensor>& tensors, std::vector<PendingBinary>& pending) {
  if (!entry.is_object()) {
    return requestError(fmt::format("each {} must be a JSON object", role));
  }
  const auto nameIt = entry.find("name");
  if (nameIt == entry.end() || !nameIt->is_string() ||
      nameIt->get_ref<const std::string&>().empty()) {
    return requestError(fmt::format("each {} needs a non-empty string 'name'", role));
  }
  const std::string name = nameIt->get<std::string>();
  if (!names.insert(name).second) {
    return tensorError(role, name, fmt::format("{} name given more than once", role));
  }
  if (!entry.contains("datatype")) return tensorError(role, name, "'datatype' is missing");
  Result<DataType> type = decodeDataType(role, name, entry["datatype"]);
  if (!type.ok()) return type.error();
  if (!entry.contains("shape")) return tensorError(role, name, "'shape' is missing");
  Result<std::vector<std::int64_t>> shape = decodeShape(role, name, entry["shape"]);
  if (!shape.ok()) return shape.error();

  std::optional<std::uint64_t> binarySizeField;
  if (const auto parameters = entry.find("parameters"); parameters != entry.end()) {
    if (!parameters->is_object()) return tensorError(role, name, "'parameters' must be an object");
    for (const auto& [key, value] : parameters->items()) {
      if (key == "binary_data_size") {
        if (!value.is_number_unsigned()) {
          return tensorError(role, name, "'binary_data_size' must be a non-negative integer");
        }
        binarySizeField = value.get<std::uint64_t>();
      } else if (key.rfind("shared_memory", 0) == 0) {
        return tensorError(role, name,
                           "the shared memory extension is not supported; send the data in "
                           "JSON or with binary_data_size");
      }
    }
  }
  const bool hasData = entry.contains("data");
  if (hasData == binarySizeField.has_value()) {
    return tensorError(role, name,
                       hasData ? "give either 'data' or parameters.binary_data_size, not both"
                               : "no data: give 'data' or parameters.binary_data_size");
  }
  tensors.emplace_back();
  if (binarySizeField) {
    pending.push_back({tensors.size() - 1, name, *type, *shape, *binarySizeField});
    return {};
  }
  Result<Tensor> tensor = tensorFromJson(role, name, *type, *shape, entry["data"]);
  if (!tensor.ok()) return tensor.error();
  tensors.back() = std::move(*tensor);
  return {};
}

Status decodeOutputs(const json& outputs, std::vector<RequestedOutput>& requested) {
  if (!outputs.is_array()) return requestError("'outputs' must be an array");
  std::set<std::string> names;
  for (const json& output : outputs) {
    if (!output.is_object() || !output.contains("name") || !output["name"].is_string() ||
        output["name"].get_ref<const std::string&>().empty()) {
      return requestError("each requested output needs a non-empty string 'name'");
    }
    RequestedOutput entry;
    entry.name = output["name"].get<std::string>();
    if (!names.insert(entry.name).second) {
      return tensorError("output", entry.name, "requested more than once");
    }
    if (const auto parameters = output.find("parameters"); parameters != output.end()) {
      if (!parameters->is_object()) {
        return tensorError("output", entry.name, "'parameters' must be an object");
      }
      for (const auto& [key, value] : parameters->items()) {
        if (key == "binary_data") {
          if (!value.is_boolean())
            return tensorError("output", entry.name, "'binary_data' must be true or false");
          entry.binary = value.get<bool>();
        } else if (key == "classification") {
          return tensorError("output", entry.name,
                             "the classification extension is not supported; request the raw "
                             "output");
        } else if (key.rfind("shared_memory", 0) == 0) {
          return tensorError("output", entry.name, "the shared memory extension is not supported");
        }
      }
    }
    requested.push_back(std::move(entry));
  }
  return {};
}

json tensorHeader(const Tensor& tensor) {
  return {{"name", tensor.name}, {"datatype", dataTypeName(tensor.type)}, {"shape", tensor.shape}};
}

std::string dumpJson(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

// Bytes of `body` that are JSON: all of it, or Inference-Header-Content-Length when given.
Result<std::size_t> jsonPartLength(std::string_view body,
                                   std::optional<std::string_view> headerLength) {
  if (!headerLength) return body.size();
  return parseHeaderLength(*headerLength, body.size());
}

}  // namespace

Result<V2InferRequest> decodeV2InferRequest(std::string_view body,
                                            std::optional<std::string_view> headerLength) {
  Result<std::size_t> jsonPart = jsonPartLength(body, headerLength);
  if (!jsonPart.ok()) return jsonPart.error();
  const std::size_t jsonLength = *jsonPart;
  if (jsonLength == 0) return requestError("the inference request has no JSON header");
  Result<json> parsed = parseJsonText(body.substr(0, jsonLength), "the inference request");
  if (!parsed.ok()) {
    // Binary tensor data sent without the header: valid JSON followed by bytes.
    const json& details = parsed.error().details;
    const auto position = details.find("position");
    if (!headerLength && position != details.end() && position->is_number_unsigned() &&
        position->get<std::size_t>() > 1 && position->get<std::size_t>() - 1 <= body.size() &&
        json::accept(body.substr(0, position->get<std::size_t>() - 1))) {
      return requestError(fmt::format(
          "{} bytes follow the JSON of the inference request; binary tensor data needs the {} "
          "header (the JSON's length)",
          body.size() - (position->get<std::size_t>() - 1), kInferenceHeaderContentLength));
    }
    return parsed.error();
  }
  const json& request = *parsed;
  if (!request.is_object()) {
    return requestError(
        fmt::format("the inference request must be a JSON object, not {}", request.type_name()));
  }
  V2InferRequest decoded;
  if (const auto id = request.find("id"); id != request.end()) {
    if (!id->is_string()) return requestError("'id' must be a string");
    decoded.id = id->get<std::string>();
  }
  if (const auto parameters = request.find("parameters"); parameters != request.end()) {
    if (!parameters->is_object()) return requestError("'parameters' must be an object");
    if (const auto binary = parameters->find("binary_data_output"); binary != parameters->end()) {
      if (!binary->is_boolean()) return requestError("'binary_data_output' must be true or false");
      decoded.binaryOutput = binary->get<bool>();
    }
    if (const auto timeout = parameters->find("timeout"); timeout != parameters->end()) {
      if (!timeout->is_number_unsigned() || timeout->get<std::uint64_t>() > 86'400'000'000ull) {
        return requestError(
            "'timeout' must be a non-negative integer number of microseconds "
            "(at most one day)");
      }
      if (timeout->get<std::uint64_t>() > 0) {
        decoded.timeout = std::chrono::microseconds(timeout->get<std::uint64_t>());
      }
    }
  }
  const auto inputs = request.find("inputs");
  // An empty array is valid: models without inputs (Constant graphs) exist; a model that has
  // inputs then reports each missing one by name.
  if (inputs == request.end() || !inputs->is_array()) {
    return requestError("'inputs' must be an array of tensors");
  }
  std::set<std::string> names;
  std::vector<PendingBinary> pending;
  for (const json& input : *inputs) {
    Status entry = decodeTensorEntry("input", input, names, decoded.inputs, pending);
    if (!entry.ok()) return entry.error();
  }
  if (!pending.empty() && !headerLength) {
    return tensorError("input", pending.front().name,
                       fmt::format("parameters.binary_data_size is given but the request has no "
                                   "{} header saying where the JSON ends",
                                   kInferenceHeaderContentLength));
  }
  Status sliced = sliceBinary("input", body.substr(jsonLength), pending, decoded.inputs);
  if (!sliced.ok()) return sliced.error();
  if (const auto outputs = request.find("outputs"); outputs != request.end()) {
    Status decodedOutputs = decodeOutputs(*outputs, decoded.outputs);
    if (!decodedOutputs.ok()) return decodedOutputs.error();
  }
  return decoded;
}

EncodedBody encodeV2InferResponse(const V2InferResponse& response, const V2InferRequest& request) {
  json header = {{"model_name", response.modelName}, {"model_version", response.modelVersion}};
  if (!response.id.empty()) header["id"] = response.id;
  json outputs = json::array();
  std::string binary;
  bool anyBinary = false;
  for (const Tensor& tensor : response.outputs) {
    bool asBinary = request.binaryOutput;
    for (const RequestedOutput& requested : request.outputs) {
      if (requested.name == tensor.name && requested.binary) asBinary = *requested.binary;
    }
    json entry = tensorHeader(tensor);
    if (asBinary) {
      entry["parameters"] = {{"binary_data_size", binarySize(tensor)}};
      appendBinary(tensor, binary);
      anyBinary = true;
    } else {
      entry["data"] = tensorDataToJson(tensor);
    }
    outputs.push_back(std::move(entry));
  }
  header["outputs"] = std::move(outputs);
  EncodedBody encoded{dumpJson(header), std::nullopt};
  if (anyBinary) {
    encoded.jsonLength = encoded.body.size();
    encoded.body += binary;
  }
  return encoded;
}

EncodedBody encodeV2InferRequest(const std::vector<Tensor>& inputs,
                                 const std::vector<std::string>& outputs, bool binaryInputs,
                                 bool binaryOutputs, std::string_view id) {
  json request = json::object();
  if (!id.empty()) request["id"] = std::string(id);
  json entries = json::array();
  std::string binary;
  for (const Tensor& tensor : inputs) {
    json entry = tensorHeader(tensor);
    if (binaryInputs) {
      entry["parameters"] = {{"binary_data_size", binarySize(tensor)}};
      appendBinary(tensor, binary);
    } else {
      entry["data"] = tensorDataToJson(tensor);
    }
    entries.push_back(std::move(entry));
  }
  request["inputs"] = std::move(entries);
  if (!outputs.empty()) {
    json requested = json::array();
    for (const std::string& name : outputs) {
      requested.push_back({{"name", name}, {"parameters", {{"binary_data", binaryOutputs}}}});
    }
    request["outputs"] = std::move(requested);
  } else if (binaryOutputs) {
    request["parameters"] = {{"binary_data_output", true}};
  }
  EncodedBody encoded{dumpJson(request), std::nullopt};
  if (binaryInputs) {
    encoded.jsonLength = encoded.body.size();
    encoded.body += binary;
  }
  return encoded;
}

Result<V2InferResponse> decodeV2InferResponse(std::string_view body,
                                              std::optional<std::string_view> headerLength) {
  Result<std::size_t> jsonPart = jsonPartLength(body, headerLength);
  if (!jsonPart.ok()) return jsonPart.error();
  const std::size_t jsonLength = *jsonPart;
  Result<json> parsed = parseJsonText(body.substr(0, jsonLength), "the inference response");
  if (!parsed.ok()) return parsed.error();
  const json& response = *parsed;
  if (!response.is_object() || !response.contains("outputs") || !response["outputs"].is_array()) {
    return requestError("the inference response has no 'outputs' array");
  }
  V2InferResponse decoded;
  if (response.contains("model_name") && response["model_name"].is_string()) {
    decoded.modelName = response["model_name"].get<std::string>();
  }
  if (response.contains("model_version") && response["model_version"].is_string()) {
    decoded.modelVersion = response["model_version"].get<std::string>();
  }
  if (response.contains("id") && response["id"].is_string()) {
    decoded.id = response["id"].get<std::string>();
  }
  std::set<std::string> names;
  std::vector<PendingBinary> pending;
  for (const json& output : response["outputs"]) {
    Status entry = decodeTensorEntry("output", output, names, decoded.outputs, pending);
    if (!entry.ok()) return entry.error();
  }
  Status sliced = sliceBinary("output", body.substr(jsonLength), pending, decoded.outputs);
  if (!sliced.ok()) return sliced.error();
  return decoded;
}

Result<ExecuteRequest> decodeExecuteRequest(const json& body) {
  static const std::set<std::string> kKnown = {"modelId", "version", "inputs", "outputs",
                                               "timeoutMs"};
  for (const auto& [key, value] : body.items()) {
    if (kKnown.count(key) == 0) {
      return makeError(ErrorCode::kInvalidArgument,
                       fmt::format("unknown field '{}'; expected modelId, version, inputs, "
                                   "outputs, timeoutMs",
                                   key),
                       {{"field", key}});
    }
  }
  ExecuteRequest request;
  if (!body.contains("modelId") || !body["modelId"].is_string() ||
      body["modelId"].get_ref<const std::string&>().empty()) {
    return makeError(ErrorCode::kInvalidArgument,
                     "'modelId' must be a model id or name from GET /api/inference/models",
                     {{"field", "modelId"}});
  }
  request.model = body["modelId"].get<std::string>();
  if (body.contains("version")) {
    if (!body["version"].is_string()) {
      return makeError(ErrorCode::kInvalidArgument, "'version' must be a string",
                       {{"field", "version"}});
    }
    request.version = body["version"].get<std::string>();
  }
  if (!body.contains("inputs") || !body["inputs"].is_object() || body["inputs"].empty()) {
    return makeError(ErrorCode::kInvalidArgument,
                     "'inputs' must be an object mapping input names to "
                     "{\"datatype\", \"shape\", \"data\"}",
                     {{"field", "inputs"}});
  }
  for (const auto& [name, entry] : body["inputs"].items()) {
    if (!entry.is_object()) {
      return tensorError("input", name, "must be an object {\"datatype\", \"shape\", \"data\"}");
    }
    for (const auto& [key, value] : entry.items()) {
      if (key != "datatype" && key != "shape" && key != "data") {
        return tensorError("input", name,
                           fmt::format("unknown field '{}'; expected datatype, shape, data", key));
      }
    }
    for (const char* required : {"datatype", "shape", "data"}) {
      if (!entry.contains(required)) {
        return tensorError("input", name, fmt::format("'{}' is missing", required));
      }
    }
    Result<DataType> type = decodeDataType("input", name, entry["datatype"]);
    if (!type.ok()) return type.error();
    Result<std::vector<std::int64_t>> shape = decodeShape("input", name, entry["shape"]);
    if (!shape.ok()) return shape.error();
    Result<Tensor> tensor = tensorFromJson("input", name, *type, *shape, entry["data"]);
    if (!tensor.ok()) return tensor.error();
    request.inputs.push_back(std::move(*tensor));
  }
  if (body.contains("outputs")) {
    const json& outputs = body["outputs"];
    std::set<std::string> names;
    if (!outputs.is_array()) {
      return makeError(ErrorCode::kInvalidArgument, "'outputs' must be an array of output names",
                       {{"field", "outputs"}});
    }
    for (const json& name : outputs) {
      if (!name.is_string() || name.get_ref<const std::string&>().empty()) {
        return makeError(ErrorCode::kInvalidArgument, "'outputs' must be an array of output names",
                         {{"field", "outputs"}});
      }
      if (!names.insert(name.get<std::string>()).second) {
        return tensorError("output", name.get<std::string>(), "requested more than once");
      }
      request.outputs.push_back(name.get<std::string>());
    }
  }
  if (body.contains("timeoutMs")) {
    const json& timeout = body["timeoutMs"];
    if (!timeout.is_number_unsigned() || timeout.get<std::uint64_t>() == 0 ||
        timeout.get<std::uint64_t>() > 86'400'000ull) {
      return makeError(ErrorCode::kInvalidArgument,
                       "'timeoutMs' must be a positive integer number of milliseconds (at most "
                       "one day)",
                       {{"field", "timeoutMs"}});
    }
    request.timeout = std::chrono::milliseconds(timeout.get<std::uint64_t>());
  }
  return request;
}

json encodeExecuteResponse(const std::string& modelId, const std::string& modelName,
                           const std::string& modelVersion, const std::vector<Tensor>& outputs,
                           const ExecuteTimings& timings, int batchSize) {
  json encoded = json::object();
  for (const Tensor& tensor : outputs) {
    encoded[tensor.name] = {{"datatype", dataTypeName(tensor.type)},
                            {"shape", tensor.shape},
                            {"data", tensorDataToJson(tensor)}};
  }
  return {{"modelId", modelId},
          {"modelName", modelName},
          {"modelVersion", modelVersion},
          {"outputs", std::move(encoded)},
          {"timings",
           {{"queueMs", timings.queueMs},
            {"computeMs", timings.computeMs},
            {"totalMs", timings.totalMs}}},
          {"batchSize", batchSize}};
}

}  // namespace deviceops::inference