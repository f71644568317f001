#include "selftest/builtin_models.h"

#include <fmt/format.h>
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>

#include <algorithm>
#include <bit>
#include <exception>
#include <limits>
#include <string>

namespace deviceops::selftest {
namespace {

constexpr std::int64_t kIrVersion = 8;
constexpr std::int64_t kOpsetVersion = 17;
constexpr char kProducer[] = "deviceops-selftest";
constexpr char kBatchDimension[] = "batch";

// Fixed streams per tensor, so that changing one tensor's size never changes another's values.
constexpr std::uint64_t kMatmulWeightStream = 0x6d61746d756c0062ULL;
constexpr std::uint64_t kMlpW1Stream = 0x6d6c700077310000ULL;
constexpr std::uint64_t kMlpB1Stream = 0x6d6c700062310000ULL;
constexpr std::uint64_t kMlpW2Stream = 0x6d6c700077320000ULL;
constexpr std::uint64_t kMlpB2Stream = 0x6d6c700062320000ULL;

// A 64-bit LCG (Knuth's MMIX constants); each value uses the top 24 bits, so it is an exact
// float in [-1, 1) on every platform.
class Generator {
 public:
  explicit Generator(std::uint64_t seed) : state_(seed ^ 0x853c49e6748fea9bULL) {}
  float next() {
    state_ = state_ * 6364136223846793005ULL + 1442695040888963407ULL;
    const auto top = static_cast<std::int64_t>(state_ >> 40);  // 0 .. 2^24 - 1
    return static_cast<float>(top - (std::int64_t{1} << 23)) / static_cast<float>(1 << 23);
  }

 private:
  std::uint64_t state_;
};

std::vector<float> generate(std::size_t count, std::uint64_t stream, float scale) {
  Generator generator(stream);
  std::vector<float> values(count);
  for (float& value : values) value = generator.next() * scale;
  return values;
}

// Powers of two keep the scaled values exact; about 1 / sqrt(fan-in) keeps activations near 1.
std::vector<float> mlpW1() { return generate(kMlpInputs * kMlpHidden, kMlpW1Stream, 0.125F); }
std::vector<float> mlpB1() { return generate(kMlpHidden, kMlpB1Stream, 0.5F); }
std::vector<float> mlpW2() { return generate(kMlpHidden * kMlpOutputs, kMlpW2Stream, 0.0625F); }
std::vector<float> mlpB2() { return generate(kMlpOutputs, kMlpB2Stream, 0.5F); }

bool validMatmulSize(int n) { return n >= 1 && n <= kMaxMatmulSize; }

// ONNX raw_data is little-endian whatever the host.
std::string littleEndianBytes(const std::vector<float>& values) {
  std::string bytes(values.size() * 4, '\0');
  for (std::size_t i = 0; i < values.size(); ++i) {
    const auto bits = std::bit_cast<std::uint32_t>(values[i]);
    for (int b = 0; b < 4; ++b) bytes[i * 4 + b] = static_cast<char>(bits >> (8 * b) & 0xff);
  }
  return bytes;
}

onnx::ModelProto emptyModel(const std::string& graphName) {
  onnx::ModelProto model;
  model.set_ir_version(kIrVersion);
  model.set_producer_name(kProducer);
  onnx::OperatorSetIdProto* opset = model.add_opset_import();
  opset->set_domain("");
  opset->set_version(kOpsetVersion);
  model.mutable_graph()->set_name(graphName);
  return model;
}

// A float tensor type; a dimension of -1 is the dynamic "batch".
void setFloatTensor(onnx::ValueInfoProto& info, const std::string& name,
                    const std::vector<std::int64_t>& shape) {
  info.set_name(name);
  onnx::TypeProto_Tensor* tensor = info.mutable_type()->mutable_tensor_type();
  tensor->set_elem_type(onnx::TensorProto::FLOAT);
  onnx::TensorShapeProto* tensorShape = tensor->mutable_shape();
  for (std::int64_t dimension : shape) {
    if (dimension < 0) {
      tensorShape->add_dim()->set_dim_param(kBatchDimension);
    } else {
      tensorShape->add_dim()->set_dim_value(dimension);
    }
  }
}

void addInitializer(onnx::GraphProto& graph, const std::string& name,
                    const std::vector<std::int64_t>& shape, const std::vector<float>& values) {
  onnx::TensorProto* initializer = graph.add_initializer();
  initializer->set_name(name);
  initializer->set_data_type(onnx::TensorProto::FLOAT);
  for (std::int64_t dimension : shape) initializer->add_dims(dimension);
  initializer->set_raw_data(littleEndianBytes(values));
}

void addNode(onnx::GraphProto& graph, const std::string& opType,
             const std::vector<std::string>& inputs, const std::string& output) {
  onnx::NodeProto* node = graph.add_node();
  node->set_op_type(opType);
  node->set_name(output);
  for (const std::string& input : inputs) node->add_input(input);
  node->add_output(output);
}

std::string serialize(const onnx::ModelProto& model) {
  std::string bytes;
  // Cannot fail below protobuf's 2 GiB limit, far above kMaxMatmulSize's 64 MiB.
  if (!model.SerializeToString(&bytes)) return "";
  return bytes;
}

}  // namespace

std::string matmulModel(int n) {
  if (!validMatmulSize(n)) return "";
  onnx::ModelProto model = emptyModel(fmt::format("selftest_matmul_{}", n));
  onnx::GraphProto& graph = *model.mutable_graph();
  const std::vector<std::int64_t> square = {n, n};
  setFloatTensor(*graph.add_input(), kMatmulInput, square);
  setFloatTensor(*graph.add_output(), kMatmulOutput, square);
  addInitializer(graph, "b", square, matmulWeights(n));
  addNode(graph, "MatMul", {kMatmulInput, "b"}, kMatmulOutput);
  return serialize(model);
}

std::vector<float> matmulWeights(int n) {
  if (!validMatmulSize(n)) return {};
  const auto size = static_cast<std::size_t>(n);
  return generate(size * size, kMatmulWeightStream, 1.0F);
}

std::vector<float> matmulInput(int n, std::uint64_t seed) {
  if (!validMatmulSize(n)) return {};
  const auto size = static_cast<std::size_t>(n);
  return generate(size * size, seed, 1.0F);
}

std::vector<float> matmulReference(const std::vector<float>& a, int n) {
  if (!validMatmulSize(n)) return {};
  const auto size = static_cast<std::size_t>(n);
  if (a.size() != size * size) return {};
  const std::vector<float> b = matmulWeights(n);
  std::vector<double> row(size);
  std::vector<float> c(size * size);
  for (std::size_t i = 0; i < size; ++i) {
    std::fill(row.begin(), row.end(), 0.0);
    for (std::size_t k = 0; k < size; ++k) {
      const double left = a[i * size + k];
      const float* right = &b[k * size];
      for (std::size_t j = 0; j < size; ++j) row[j] += left * right[j];
    }
    for (std::size_t j = 0; j < size; ++j) c[i * size + j] = static_cast<float>(row[j]);
  }
  return c;
}

double matmulFlops(int n) {
  const auto size = static_cast<double>(n);
  return 2.0 * size * size * size;
}

std::string mlpModel() {
  onnx::ModelProto model = emptyModel("selftest_mlp");
  onnx::GraphProto& graph = *model.mutable_graph();
  const auto inputs = static_cast<std::int64_t>(kMlpInputs);
  const auto hidden = static_cast<std::int64_t>(kMlpHidden);
  const auto outputs = static_cast<std::int64_t>(kMlpOutputs);
  setFloatTensor(*graph.add_input(), kMlpInput, {-1, inputs});
  setFloatTensor(*graph.add_output(), kMlpOutput, {-1, outputs});
  addInitializer(graph, "w1", {inputs, hidden}, mlpW1());
  addInitializer(graph, "b1", {hidden}, mlpB1());
  addInitializer(graph, "w2", {hidden, outputs}, mlpW2());
  addInitializer(graph, "b2", {outputs}, mlpB2());
  addNode(graph, "MatMul", {kMlpInput, "w1"}, "hidden_matmul");
  addNode(graph, "Add", {"hidden_matmul", "b1"}, "hidden_add");
  addNode(graph, "Relu", {"hidden_add"}, "hidden");
  addNode(graph, "MatMul", {"hidden", "w2"}, "output_matmul");
  addNode(graph, "Add", {"output_matmul", "b2"}, kMlpOutput);
  return serialize(model);
}

std::vector<float> mlpInput(std::size_t batch, std::uint64_t seed) {
  return generate(batch * kMlpInputs, seed, 1.0F);
}

std::vector<float> mlpReference(const std::vector<float>& x, std::size_t batch) {
  if (x.size() != batch * kMlpInputs) return {};
  const std::vector<float> w1 = mlpW1();
  const std::vector<float> b1 = mlpB1();
  const std::vector<float> w2 = mlpW2();
  const std::vector<float> b2 = mlpB2();
  std::vector<float> y(batch * kMlpOutputs);
  std::vector<double> hidden(kMlpHidden);
  for (std::size_t row = 0; row < batch; ++row) {
    for (std::size_t h = 0; h < kMlpHidden; ++h) {
      double sum = b1[h];
      for (std::size_t i = 0; i < kMlpInputs; ++i) {
        sum += static_cast<double>(x[row * kMlpInputs + i]) * w1[i * kMlpHidden + h];
      }
      hidden[h] = sum > 0 ? sum : 0;
    }
    for (std::size_t o = 0; o < kMlpOutputs; ++o) {
      double sum = b2[o];
      for (std::size_t h = 0; h < kMlpHidden; ++h) sum += hidden[h] * w2[h * kMlpOutputs + o];
      y[row * kMlpOutputs + o] = static_cast<float>(sum);
    }
  }
  return y;
}

Status checkModel(std::string_view serialized) {
  onnx::ModelProto model;
  if (serialized.empty() ||
      serialized.size() > static_cast<std::size_t>(std::numeric_limits<int>::max()) ||
      !model.ParseFromArray(serialized.data(), static_cast<int>(serialized.size()))) {
    return makeError(ErrorCode::kInvalidArgument, "the bytes are not an ONNX ModelProto");
  }
  try {
    onnx::checker::check_model(model);
    // Strict: a node whose input shapes do not fit throws.
    onnx::shape_inference::InferShapes(model, onnx::OpSchemaRegistry::Instance(),
                                       onnx::ShapeInferenceOptions(true, 1, false));
  } catch (const std::exception& e) {
    return makeError(ErrorCode::kInvalidArgument,
                     fmt::format("the ONNX checker refused the model: {}", e.what()));
  }
  return Status::success();
}

}  // namespace deviceops::selftest
