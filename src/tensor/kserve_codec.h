// Wire formats of inference requests and responses, as pure functions (no ONNX Runtime, no
// HTTP): the KServe v2 / Triton protocol with its binary tensor data extension, and the
// original /api/inference/execute format.
//
// KServe v2 request: a JSON object {id?, parameters?, inputs[{name, shape, datatype,
// parameters?{binary_data_size}, data?}], outputs?[{name, parameters?{binary_data}}]}. With the
// binary extension the HTTP body is the JSON (its length in the `Inference-Header-Content-Length`
// header) followed by the inputs' raw bytes, concatenated in input order, each input declaring
// its share in parameters.binary_data_size. Raw bytes are little-endian elements as ONNX Runtime
// lays them out; a BYTES element is a 4-byte little-endian length followed by the bytes
// (Triton's layout).
//
// JSON tensor data (both protocols), decided here once:
// - `data` is a flat or nested array, read in row-major order; only the element count is
//   checked against the shape (nesting is not required to follow it, as in Triton).
// - BOOL: true/false. Integer types: integral numbers within the type's range (3.0 is 3; 3.5
//   and 300 for UINT8 are errors). FP16/BF16/FP32/FP64: numbers, rounded to the nearest value
//   (ties to even) — a finite number that rounds beyond the type's range is an error. BYTES:
//   strings.
// - JSON has no NaN or infinity: float inputs accept the strings "NaN", "Infinity" and
//   "-Infinity", and float outputs carry those strings in JSON. Binary data passes NaN through.
// - JSON output of FP32/FP16/BF16 is the exact value as a double, so parsing it back and
//   rounding to the tensor's type gives the same bits.
//
// Every error is kInvalidArgument naming the tensor and what was expected, e.g.
// "input 'x': expected 64 FP32 elements for shape [4,16], got 63".
#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "tensor/tensor.h"

namespace deviceops::inference {

// ---- Tensor data as JSON (shared by both protocols) ------------------------------------------

// Builds a tensor from JSON `data` (see above). `role` prefixes messages ("input", "output").
Result<Tensor> tensorFromJson(std::string_view role, std::string name, DataType type,
                              std::vector<std::int64_t> shape, const nlohmann::json& data);
// The elements of a valid tensor as a flat JSON array.
nlohmann::json tensorDataToJson(const Tensor& tensor);

// ---- Binary tensor data ----------------------------------------------------------------------

// Bytes the tensor occupies in the binary extension (BYTES: 4 + length per element).
std::uint64_t binarySize(const Tensor& tensor);
// Appends the tensor's binary form to `out`.
void appendBinary(const Tensor& tensor, std::string& out);
// Builds a tensor from its binary form; `bytes` must be exactly the tensor's bytes.
Result<Tensor> tensorFromBinary(std::string_view role, std::string name, DataType type,
                                std::vector<std::int64_t> shape, std::string_view bytes);

// ---- KServe v2 -------------------------------------------------------------------------------

// The response header and request header of the binary extension.
inline constexpr std::string_view kInferenceHeaderContentLength = "Inference-Header-Content-Length";

struct RequestedOutput {
  std::string name;
  std::optional<bool> binary;  // parameters.binary_data; unset: the request's default
};

struct V2InferRequest {
  std::string id;                        // echoed in the response when non-empty
  std::vector<Tensor> inputs;            // in request order, names unique
  std::vector<RequestedOutput> outputs;  // empty: every output of the model
  bool binaryOutput = false;             // parameters.binary_data_output
  // parameters.timeout (Triton: microseconds); unset when absent.
  std::optional<std::chrono::microseconds> timeout;
};

// Decodes an infer request body. `headerLength` is the value of the
// Inference-Header-Content-Length header when the request has one (nullopt: the whole body is
// JSON). Validates everything listed in this file's comment plus: binary_data_size given
// without the header, a header length beyond the body, binary sizes that do not add up to the
// bytes after the JSON, duplicated input or output names, unsupported extensions
// (shared memory, classification).
Result<V2InferRequest> decodeV2InferRequest(std::string_view body,
                                            std::optional<std::string_view> headerLength);

struct V2InferResponse {
  std::string modelName;
  std::string modelVersion;
  std::string id;
  std::vector<Tensor> outputs;
};

// An encoded body: `jsonLength` is set when binary data follows the JSON (send it as
// Inference-Header-Content-Length, with Content-Type application/octet-stream).
struct EncodedBody {
  std::string body;
  std::optional<std::size_t> jsonLength;
};

// Encodes a response; an output goes binary when its RequestedOutput says so, else when the
// request set binary_data_output. Precondition: every output is valid (Tensor::validate).
EncodedBody encodeV2InferResponse(const V2InferResponse& response, const V2InferRequest& request);

// The client side (CLI, tests, benchmarks): an infer request with every input binary
// (`binaryInputs`) or in JSON, and every output requested binary or not.
EncodedBody encodeV2InferRequest(const std::vector<Tensor>& inputs,
                                 const std::vector<std::string>& outputs, bool binaryInputs,
                                 bool binaryOutputs, std::string_view id = {});
Result<V2InferResponse> decodeV2InferResponse(std::string_view body,
                                              std::optional<std::string_view> headerLength);

// ---- The original API: POST /api/inference/execute -------------------------------------------

// {"modelId": "model-…" or a name, "version"?: "1",
//  "inputs": {"x": {"datatype": "FP32", "shape": [1,16], "data": [...]}},
//  "outputs"?: ["y"], "timeoutMs"?: 1000}
struct ExecuteRequest {
  std::string model;
  std::string version;
  std::vector<Tensor> inputs;
  std::vector<std::string> outputs;
  std::optional<std::chrono::milliseconds> timeout;
};
Result<ExecuteRequest> decodeExecuteRequest(const nlohmann::json& body);

// {"modelId", "modelName", "modelVersion", "outputs": {"y": {"datatype", "shape", "data"}},
//  "timings": {"queueMs", "computeMs", "totalMs"}, "batchSize"}
struct ExecuteTimings {
  double queueMs = 0;
  double computeMs = 0;
  double totalMs = 0;
};
nlohmann::json encodeExecuteResponse(const std::string& modelId, const std::string& modelName,
                                     const std::string& modelVersion,
                                     const std::vector<Tensor>& outputs,
                                     const ExecuteTimings& timings, int batchSize);

// ---- Narrow floats (exposed for tests and NumPy conversion) -----------------------------------

// Rounds to the nearest FP16 / BF16 (ties to even); overflow gives infinity, NaN stays NaN.
std::uint16_t doubleToHalf(double value);
std::uint16_t doubleToBfloat16(double value);
double halfToDouble(std::uint16_t bits);
double bfloat16ToDouble(std::uint16_t bits);

}  // namespace deviceops::inference
