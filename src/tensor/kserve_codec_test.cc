#include "tensor/kserve_codec.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

namespace deviceops::inference {
namespace {

using nlohmann::json;

template <class T>
Tensor makeTensor(std::string name, DataType type, std::vector<std::int64_t> shape,
                  const std::vector<T>& values) {
  Tensor tensor;
  tensor.name = std::move(name);
  tensor.type = type;
  tensor.shape = std::move(shape);
  tensor.data.resize(values.size() * sizeof(T));
  std::memcpy(tensor.data.data(), values.data(), tensor.data.size());
  return tensor;
}

Tensor bytesTensor(std::string name, std::vector<std::string> strings) {
  Tensor tensor;
  tensor.name = std::move(name);
  tensor.type = DataType::kBytes;
  tensor.shape = {static_cast<std::int64_t>(strings.size())};
  tensor.strings = std::move(strings);
  return tensor;
}

// One tensor of every datatype, with each type's extremes.
std::vector<Tensor> everyType() {
  using L8 = std::numeric_limits<std::int8_t>;
  using L16 = std::numeric_limits<std::int16_t>;
  using L32 = std::numeric_limits<std::int32_t>;
  using L64 = std::numeric_limits<std::int64_t>;
  return {
      makeTensor<std::uint8_t>("bool", DataType::kBool, {3}, {1, 0, 1}),
      makeTensor<std::uint8_t>("u8", DataType::kUint8, {3}, {0, 7, 255}),
      makeTensor<std::uint16_t>("u16", DataType::kUint16, {3}, {0, 7, 65535}),
      makeTensor<std::uint32_t>("u32", DataType::kUint32, {3}, {0, 7, 4294967295u}),
      makeTensor<std::uint64_t>("u64", DataType::kUint64, {3},
                                {0, 7, std::numeric_limits<std::uint64_t>::max()}),
      makeTensor<std::int8_t>("i8", DataType::kInt8, {3}, {L8::min(), -1, L8::max()}),
      makeTensor<std::int16_t>("i16", DataType::kInt16, {3}, {L16::min(), -1, L16::max()}),
      makeTensor<std::int32_t>("i32", DataType::kInt32, {3}, {L32::min(), -1, L32::max()}),
      makeTensor<std::int64_t>("i64", DataType::kInt64, {3}, {L64::min(), -1, L64::max()}),
      // FP16: 1.0, -65504 (lowest), smallest subnormal, NaN, +inf, -0
      makeTensor<std::uint16_t>("f16", DataType::kFp16, {2, 3},
                                {0x3c00, 0xfbff, 0x0001, 0x7e00, 0x7c00, 0x8000}),
      makeTensor<std::uint16_t>("bf16", DataType::kBf16, {2, 3},
                                {0x3f80, 0xff7f, 0x0001, 0x7fc0, 0xff80, 0x8000}),
      makeTensor<float>(
          "f32", DataType::kFp32, {2, 3},
          {0.1f, -std::numeric_limits<float>::max(), std::numeric_limits<float>::denorm_min(),
           std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::infinity(),
           1.0f / 3.0f}),
      makeTensor<double>(
          "f64", DataType::kFp64, {2, 3},
          {0.1, std::numeric_limits<double>::max(), std::numeric_limits<double>::denorm_min(),
           std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(),
           1.0 / 3.0}),
      bytesTensor("bytes", {"hello", "", std::string("\0 caf\xc3\xa9", 7)}),
  };
}

void expectSameTensors(const std::vector<Tensor>& actual, const std::vector<Tensor>& expected) {
  ASSERT_EQ(actual.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    SCOPED_TRACE(expected[i].name);
    EXPECT_EQ(actual[i].name, expected[i].name);
    EXPECT_EQ(actual[i].type, expected[i].type);
    EXPECT_EQ(actual[i].shape, expected[i].shape);
    EXPECT_EQ(actual[i].data, expected[i].data);  // bit for bit, NaN payloads included
    EXPECT_EQ(actual[i].strings, expected[i].strings);
  }
}

// ---- narrow floats ----

TEST(NarrowFloatTest, HalfKnownValues) {
  struct Case {
    double value;
    std::uint16_t bits;
  };
  const Case cases[] = {
      {1.0, 0x3c00},
      {-2.0, 0xc000},
      {0.1, 0x2e66},
      {65504.0, 0x7bff},
      {65519.99, 0x7bff},
      {65520.0, 0x7c00},  // tie rounds to even: inf
      {std::ldexp(1, -24), 0x0001},
      {std::ldexp(1, -25), 0x0000},  // tie to 0
      {std::ldexp(3, -26), 0x0001},
      {std::ldexp(1, -14), 0x0400},
      {1.0 + std::ldexp(1, -11), 0x3c00},  // tie between 1 and 1+2^-10: even
      {1.0 + std::ldexp(3, -11), 0x3c02},  // tie between 1+2^-10 and 1+2^-9: even
      {-0.0, 0x8000},
      {1e-300, 0x0000},
      {1e300, 0x7c00},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.value);
    EXPECT_EQ(doubleToHalf(c.value), c.bits);
  }
  EXPECT_EQ(doubleToHalf(std::numeric_limits<double>::quiet_NaN()) & 0x7c00, 0x7c00);
  EXPECT_NE(doubleToHalf(std::numeric_limits<double>::quiet_NaN()) & 0x03ff, 0);
}

TEST(NarrowFloatTest, EveryHalfAndBfloat16RoundTrips) {
  for (std::uint32_t bits = 0; bits <= 0xffff; ++bits) {
    const auto value = static_cast<std::uint16_t>(bits);
    const bool halfNan = (value & 0x7c00) == 0x7c00 && (value & 0x3ff) != 0;
    if (!halfNan) {
      ASSERT_EQ(doubleToHalf(halfToDouble(value)), value) << bits;
    }
    const bool brainNan = (value & 0x7f80) == 0x7f80 && (value & 0x7f) != 0;
    if (!brainNan) {
      ASSERT_EQ(doubleToBfloat16(bfloat16ToDouble(value)), value) << bits;
    }
  }
}

TEST(NarrowFloatTest, Bfloat16MatchesFloatRounding) {
  // For a double that is exactly a float, RNE to bfloat16 is the classic bit trick.
  std::mt19937 random(42);
  for (int i = 0; i < 200000; ++i) {
    std::uint32_t bits = random();
    float value;
    std::memcpy(&value, &bits, 4);
    if (std::isnan(value)) continue;
    const std::uint32_t rounded = (bits + 0x7fff + ((bits >> 16) & 1)) >> 16;
    ASSERT_EQ(doubleToBfloat16(value), static_cast<std::uint16_t>(rounded)) << bits;
  }
}

// ---- JSON and binary round trips ----

TEST(KserveCodecTest, EveryDatatypeRoundTripsThroughJsonRequest) {
  const std::vector<Tensor> tensors = everyType();
  const EncodedBody encoded = encodeV2InferRequest(tensors, {}, false, false, "req-1");
  EXPECT_FALSE(encoded.jsonLength.has_value());
  // Non-finite floats travel as strings in JSON.
  const json parsed = json::parse(encoded.body);
  EXPECT_EQ(parsed["inputs"][11]["data"][3], "NaN");
  EXPECT_EQ(parsed["inputs"][11]["data"][4], "-Infinity");
  Result<V2InferRequest> decoded = decodeV2InferRequest(encoded.body, std::nullopt);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(decoded->id, "req-1");
  EXPECT_TRUE(decoded->outputs.empty());
  EXPECT_FALSE(decoded->binaryOutput);
  // NaN from JSON is the canonical quiet NaN, which is what everyType() holds.
  expectSameTensors(decoded->inputs, tensors);
}

TEST(KserveCodecTest, EveryDatatypeRoundTripsThroughBinaryRequest) {
  const std::vector<Tensor> tensors = everyType();
  const EncodedBody encoded = encodeV2InferRequest(tensors, {"y"}, true, true);
  ASSERT_TRUE(encoded.jsonLength.has_value());
  Result<V2InferRequest> decoded =
      decodeV2InferRequest(encoded.body, std::to_string(*encoded.jsonLength));
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  expectSameTensors(decoded->inputs, tensors);
  ASSERT_EQ(decoded->outputs.size(), 1u);
  EXPECT_EQ(decoded->outputs[0].name, "y");
  EXPECT_EQ(decoded->outputs[0].binary, true);
}

TEST(KserveCodecTest, NonUtf8BytesNeedBinary) {
  const Tensor tensor = bytesTensor("s", {std::string("\xff\xfe\0", 3)});
  const EncodedBody binary = encodeV2InferRequest({tensor}, {}, true, false);
  Result<V2InferRequest> decoded =
      decodeV2InferRequest(binary.body, std::to_string(*binary.jsonLength));
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->inputs[0].strings, tensor.strings);
  // JSON cannot carry invalid UTF-8: it is replaced by U+FFFD, as documented.
  const json inJson = tensorDataToJson(tensor);
  EXPECT_EQ(inJson.dump(-1, ' ', false, json::error_handler_t::replace),
            "[\"\xef\xbf\xbd\xef\xbf\xbd\\u0000\"]");
}

TEST(KserveCodecTest, BinaryNanPayloadPassesThrough) {
  const Tensor tensor =
      makeTensor<std::uint32_t>("x", DataType::kFp32, {2}, {0x7fa00001u, 0xffc00123u});
  const EncodedBody encoded = encodeV2InferRequest({tensor}, {}, true, false);
  Result<V2InferRequest> decoded =
      decodeV2InferRequest(encoded.body, std::to_string(*encoded.jsonLength));
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->inputs[0].data, tensor.data);
}

TEST(KserveCodecTest, EveryDatatypeRoundTripsThroughResponses) {
  const std::vector<Tensor> tensors = everyType();
  for (const bool binary : {false, true}) {
    SCOPED_TRACE(binary ? "binary" : "json");
    V2InferRequest request;
    request.binaryOutput = binary;
    const EncodedBody encoded = encodeV2InferResponse({"mlp", "1", "abc", tensors}, request);
    EXPECT_EQ(encoded.jsonLength.has_value(), binary);
    Result<V2InferResponse> decoded = decodeV2InferResponse(
        encoded.body, encoded.jsonLength
                          ? std::optional<std::string>(std::to_string(*encoded.jsonLength))
                          : std::nullopt);
    ASSERT_TRUE(decoded.ok()) << decoded.error().message;
    EXPECT_EQ(decoded->modelName, "mlp");
    EXPECT_EQ(decoded->modelVersion, "1");
    EXPECT_EQ(decoded->id, "abc");
    expectSameTensors(decoded->outputs, tensors);
  }
}

TEST(KserveCodecTest, Float32JsonIsExactForRandomBits) {
  std::mt19937 random(7);
  std::vector<float> values;
  while (values.size() < 50000) {
    std::uint32_t bits = random();
    float value;
    std::memcpy(&value, &bits, 4);
    if (std::isfinite(value)) values.push_back(value);
  }
  const Tensor tensor =
      makeTensor("x", DataType::kFp32, {static_cast<std::int64_t>(values.size())}, values);
  V2InferRequest request;
  const EncodedBody encoded = encodeV2InferResponse({"m", "1", "", {tensor}}, request);
  // Parse as a generic JSON client would (double), then round to float.
  const json parsed = json::parse(encoded.body);
  const json& data = parsed["outputs"][0]["data"];
  ASSERT_EQ(data.size(), values.size());
  for (std::size_t i = 0; i < values.size(); ++i) {
    const auto back = static_cast<float>(data[i].get<double>());
    ASSERT_EQ(std::memcmp(&back, &values[i], 4), 0) << i;
  }
}

TEST(KserveCodecTest, PerOutputBinaryFlagOverridesTheRequestDefault) {
  const Tensor y = makeTensor<float>("y", DataType::kFp32, {1}, {2.5f});
  const Tensor z = makeTensor<float>("z", DataType::kFp32, {1}, {3.5f});
  V2InferRequest request;
  request.binaryOutput = true;
  request.outputs = {{"y", false}, {"z", std::nullopt}};
  const EncodedBody encoded = encodeV2InferResponse({"m", "1", "", {y, z}}, request);
  ASSERT_TRUE(encoded.jsonLength.has_value());
  const json header = json::parse(encoded.body.substr(0, *encoded.jsonLength));
  EXPECT_EQ(header["outputs"][0]["data"], json::array({2.5}));
  EXPECT_EQ(header["outputs"][1]["parameters"]["binary_data_size"], 4);
  EXPECT_EQ(encoded.body.size(), *encoded.jsonLength + 4);
}

TEST(KserveCodecTest, AcceptsNestedDataNanStringsAndIntegralFloats) {
  const std::string body = R"({"inputs": [
      {"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [[1, "NaN"], ["Infinity", -0.5]]},
      {"name": "n", "shape": [2], "datatype": "INT64", "data": [3.0, -1e3]},
      {"name": "h", "shape": [1], "datatype": "FP16", "data": [0.1]},
      {"name": "s", "shape": [1, 1], "datatype": "BYTES", "data": [["héllo"]]},
      {"name": "b", "shape": [2], "datatype": "BOOL", "data": [true, false]}],
    "outputs": [{"name": "y", "parameters": {"binary_data": false}}],
    "parameters": {"binary_data_output": true, "timeout": 5000, "priority": 1}})";
  Result<V2InferRequest> decoded = decodeV2InferRequest(body, std::nullopt);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  float x[4];
  std::memcpy(x, decoded->inputs[0].data.data(), 16);
  EXPECT_EQ(x[0], 1.0f);
  EXPECT_TRUE(std::isnan(x[1]));
  EXPECT_TRUE(std::isinf(x[2]) && x[2] > 0);
  EXPECT_EQ(x[3], -0.5f);
  std::int64_t n[2];
  std::memcpy(n, decoded->inputs[1].data.data(), 16);
  EXPECT_EQ(n[0], 3);
  EXPECT_EQ(n[1], -1000);
  EXPECT_EQ(decoded->inputs[2].data, std::string("\x66\x2e", 2));
  EXPECT_EQ(decoded->inputs[3].strings, std::vector<std::string>{"héllo"});
  EXPECT_EQ(decoded->inputs[4].data, std::string("\1\0", 2));
  EXPECT_TRUE(decoded->binaryOutput);
  EXPECT_EQ(decoded->timeout, std::chrono::microseconds(5000));
  ASSERT_EQ(decoded->outputs.size(), 1u);
  EXPECT_EQ(decoded->outputs[0].binary, false);
}

// ---- bad input: every case of the issue's "Bad input" list that the codec sees ----

struct BadCase {
  const char* name;
  std::string body;
  std::optional<std::string> headerLength;
  const char* message;  // a substring of the error message
};

// headerLength placeholder: the JSON ends at the body's last '}'.
const std::string kAuto = "auto";

std::string withBinary(const std::string& header, const std::string& binary) {
  return header + binary;
}

TEST(KserveCodecTest, RejectsBadRequestsNamingTheTensor) {
  const std::string oneFloat =
      R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":4}}]})";
  const std::string len = std::to_string(oneFloat.size());
  std::string data63 = "[";
  for (int i = 0; i < 63; ++i) data63 += (i ? ",1" : "1");
  data63 += "]";
  const std::vector<BadCase> cases = {
      {"count mismatch",
       R"({"inputs":[{"name":"x","shape":[4,16],"datatype":"FP32","data":)" + data63 + "}]}",
       std::nullopt, "input 'x': expected 64 FP32 elements for shape [4,16], got 63"},
      {"unknown datatype", R"({"inputs":[{"name":"x","shape":[1],"datatype":"FLOAT","data":[1]}]})",
       std::nullopt, "input 'x': 'datatype' must be one of"},
      {"negative dimension",
       R"({"inputs":[{"name":"x","shape":[-1],"datatype":"FP32","data":[]}]})", std::nullopt,
       "input 'x': 'shape' must be an array of non-negative integers"},
      {"float dimension", R"({"inputs":[{"name":"x","shape":[1.5],"datatype":"FP32","data":[1]}]})",
       std::nullopt, "input 'x': 'shape'"},
      {"overflowing shape",
       R"({"inputs":[{"name":"x","shape":[4294967296,4294967296],"datatype":"FP32","data":[]}]})",
       std::nullopt, "input 'x': shape [4294967296,4294967296] has too many elements"},
      {"overflowing bytes",
       R"({"inputs":[{"name":"x","shape":[1073741824,1073741824],"datatype":"FP64","data":[]}]})",
       std::nullopt, "input 'x': shape [1073741824,1073741824] of FP64 is too large"},
      {"huge binary shape",
       R"({"inputs":[{"name":"x","shape":[4294967296,4294967296],"datatype":"BYTES","parameters":{"binary_data_size":0}}]})",
       kAuto, "input 'x': shape"},
      {"uint8 out of range",
       R"({"inputs":[{"name":"x","shape":[2],"datatype":"UINT8","data":[1,300]}]})", std::nullopt,
       "input 'x': element 1: expected an integer in [0, 255], got 300"},
      {"int8 out of range",
       R"({"inputs":[{"name":"x","shape":[1],"datatype":"INT8","data":[-129]}]})", std::nullopt,
       "expected an integer in [-128, 127], got -129"},
      {"negative unsigned",
       R"({"inputs":[{"name":"x","shape":[1],"datatype":"UINT64","data":[-1]}]})", std::nullopt,
       "got -1"},
      {"non-integer", R"({"inputs":[{"name":"x","shape":[1],"datatype":"INT32","data":[3.5]}]})",
       std::nullopt, "non-integer 3.5"},
      {"int64 beyond 2^63",
       R"({"inputs":[{"name":"x","shape":[1],"datatype":"INT64","data":[9223372036854775808]}]})",
       std::nullopt, "input 'x': element 0"},
      {"string for int", R"({"inputs":[{"name":"x","shape":[1],"datatype":"INT32","data":["1"]}]})",
       std::nullopt, "got string"},
      {"number for bool", R"({"inputs":[{"name":"x","shape":[1],"datatype":"BOOL","data":[1]}]})",
       std::nullopt, "expected true or false"},
      {"number for bytes", R"({"inputs":[{"name":"x","shape":[1],"datatype":"BYTES","data":[1]}]})",
       std::nullopt, "expected a string for BYTES"},
      {"fp16 overflow", R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP16","data":[70000]}]})",
       std::nullopt, "70000 is out of range for FP16"},
      {"fp32 overflow", R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1e39]}]})",
       std::nullopt, "out of range for FP32"},
      {"bad nan string",
       R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":["nan"]}]})", std::nullopt,
       "expected a number or \"NaN\""},
      {"data not array", R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":1}]})",
       std::nullopt, "'data' must be an array"},
      {"too deep",
       R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":)" + std::string(70, '[') +
           "1" + std::string(70, ']') + "}]}",
       std::nullopt, "nested deeper than 64"},
      {"duplicate input",
       R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]},{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]})",
       std::nullopt, "input 'x': input name given more than once"},
      {"no name", R"({"inputs":[{"shape":[1],"datatype":"FP32","data":[1]}]})", std::nullopt,
       "non-empty string 'name'"},
      {"no data", R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP32"}]})", std::nullopt,
       "input 'x': no data"},
      {"data and binary",
       R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1],"parameters":{"binary_data_size":4}}]})",
       kAuto, "not both"},
      {"inputs missing", R"({"outputs":[]})", std::nullopt, "'inputs' must be an array"},
      {"inputs not an array", R"({"inputs":{}})", std::nullopt, "'inputs' must be an array"},
      {"not an object", "[1,2]", std::nullopt, "must be a JSON object"},
      {"invalid JSON", "{\"inputs\": [", std::nullopt, "not valid JSON at byte"},
      {"empty body", "", std::nullopt, "no JSON header"},
      {"number beyond double (fuzzer finding)", "9999e9999992", std::nullopt, "not valid JSON"},
      {"binary without header", withBinary(oneFloat, "abcd"), std::nullopt,
       "4 bytes follow the JSON of the inference request; binary tensor data needs the "
       "Inference-Header-Content-Length header"},
      {"binary size without header or data", oneFloat, std::nullopt,
       "input 'x': parameters.binary_data_size is given but the request has no "
       "Inference-Header-Content-Length header"},
      {"binary short", withBinary(oneFloat, "abc"), len,
       "the inputs declare 4 bytes in binary_data_size, but 3 bytes follow"},
      {"binary long", withBinary(oneFloat, "abcde"), len,
       "the inputs declare 4 bytes in binary_data_size, but 5 bytes follow"},
      {"binary size is not the shape's",
       R"({"inputs":[{"name":"x","shape":[2],"datatype":"FP32","parameters":{"binary_data_size":4}}]})"
       "abcd",
       std::to_string(
           std::string(
               R"({"inputs":[{"name":"x","shape":[2],"datatype":"FP32","parameters":{"binary_data_size":4}}]})")
               .size()),
       "input 'x': expected 8 bytes (2 FP32 elements for shape [2]), got 4 bytes"},
      {"binary sizes overflow",
       R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":18446744073709551615}},{"name":"y","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":2}}]})",
       kAuto, "more than 2^64"},
      {"header beyond body", oneFloat, "100000", "is 100000 but the body has only"},
      {"header not a number", oneFloat, "12x", "must be a decimal byte count"},
      {"header negative", oneFloat, "-1", "must be a decimal byte count"},
      {"bool binary byte 2",
       R"({"inputs":[{"name":"x","shape":[1],"datatype":"BOOL","parameters":{"binary_data_size":1}}]})"
       "\x02",
       kAuto, "BOOL bytes must be 0 or 1"},
      {"bytes element truncated",
       std::string(
           R"({"inputs":[{"name":"s","shape":[1],"datatype":"BYTES","parameters":{"binary_data_size":6}}]})") +
           std::string("\x05\x00\x00\x00"
                       "ab",
                       6),
       kAuto, "input 's': BYTES element 0 declares 5 bytes but only 2 remain"},
      {"bytes too many elements",
       std::string(
           R"({"inputs":[{"name":"s","shape":[1],"datatype":"BYTES","parameters":{"binary_data_size":8}}]})") +
           std::string(8, '\0'),
       kAuto, "holds more"},
      {"shared memory",
       R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP32","parameters":{"shared_memory_region":"r"}}]})",
       std::nullopt, "shared memory extension is not supported"},
      {"classification",
       R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}],"outputs":[{"name":"y","parameters":{"classification":3}}]})",
       std::nullopt, "output 'y': the classification extension is not supported"},
      {"duplicate output",
       R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}],"outputs":[{"name":"y"},{"name":"y"}]})",
       std::nullopt, "output 'y': requested more than once"},
      {"bad timeout",
       R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}],"parameters":{"timeout":-5}})",
       std::nullopt, "'timeout' must be"},
      {"id not string",
       R"({"id":5,"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]})", std::nullopt,
       "'id' must be a string"},
  };
  for (const BadCase& c : cases) {
    SCOPED_TRACE(c.name);
    std::optional<std::string> header = c.headerLength;
    if (header == kAuto) header = std::to_string(c.body.rfind('}') + 1);  // JSON ends there
    Result<V2InferRequest> decoded = decodeV2InferRequest(
        c.body, header ? std::optional<std::string_view>(*header) : std::nullopt);
    ASSERT_FALSE(decoded.ok());
    EXPECT_EQ(decoded.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(decoded.error().message.find(c.message), std::string::npos)
        << decoded.error().message;
  }
}

// ---- the original /api/inference/execute format ----

TEST(ExecuteCodecTest, DecodesAndEncodes) {
  const json body = json::parse(R"({"modelId": "mlp", "version": "2",
      "inputs": {"x": {"datatype": "FP32", "shape": [1, 2], "data": [[1.5, -2]]}},
      "outputs": ["y"], "timeoutMs": 250})");
  Result<ExecuteRequest> request = decodeExecuteRequest(body);
  ASSERT_TRUE(request.ok()) << request.error().message;
  EXPECT_EQ(request->model, "mlp");
  EXPECT_EQ(request->version, "2");
  ASSERT_EQ(request->inputs.size(), 1u);
  EXPECT_EQ(request->inputs[0].name, "x");
  EXPECT_EQ(request->inputs[0].shape, (std::vector<std::int64_t>{1, 2}));
  EXPECT_EQ(request->outputs, std::vector<std::string>{"y"});
  EXPECT_EQ(request->timeout, std::chrono::milliseconds(250));

  const json encoded = encodeExecuteResponse(
      "model-1", "mlp", "2", {makeTensor<float>("y", DataType::kFp32, {1}, {0.25f})},
      {1.0, 2.0, 3.5}, 4);
  EXPECT_EQ(encoded["outputs"]["y"]["data"], json::array({0.25}));
  EXPECT_EQ(encoded["outputs"]["y"]["datatype"], "FP32");
  EXPECT_EQ(encoded["timings"]["totalMs"], 3.5);
  EXPECT_EQ(encoded["batchSize"], 4);
}

TEST(ExecuteCodecTest, RejectsBadRequests) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"inputs": {"x": {"datatype": "FP32", "shape": [1], "data": [1]}}})", "'modelId'"},
      {R"({"modelId": "m", "inputs": {}})", "'inputs' must be an object"},
      {R"({"modelId": "m", "inputs": {"x": {"datatype": "FP32", "shape": [2], "data": [1]}}})",
       "input 'x': expected 2 FP32 elements for shape [2], got 1"},
      {R"({"modelId": "m", "inputs": {"x": {"datatype": "FP32", "shape": [1]}}})",
       "input 'x': 'data' is missing"},
      {R"({"modelId": "m", "inputs": {"x": {"datatype": "FP32", "shape": [1], "data": [1], "b": 1}}})",
       "input 'x': unknown field 'b'"},
      {R"({"modelId": "m", "model": "x", "inputs": {"x": {"datatype": "FP32", "shape": [1], "data": [1]}}})",
       "unknown field 'model'"},
      {R"({"modelId": "m", "inputs": {"x": {"datatype": "FP32", "shape": [1], "data": [1]}}, "outputs": "y"})",
       "'outputs' must be an array"},
      {R"({"modelId": "m", "inputs": {"x": {"datatype": "FP32", "shape": [1], "data": [1]}}, "timeoutMs": 0})",
       "'timeoutMs'"},
  };
  for (const auto& [body, message] : cases) {
    SCOPED_TRACE(body);
    Result<ExecuteRequest> request = decodeExecuteRequest(json::parse(body));
    ASSERT_FALSE(request.ok());
    EXPECT_EQ(request.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(request.error().message.find(message), std::string::npos) << request.error().message;
  }
}

}  // namespace
}  // namespace deviceops::inference
