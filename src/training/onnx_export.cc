#include "training/onnx_export.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "common/atomic_file.h"

namespace deviceops::training {
namespace {

constexpr std::int64_t kIrVersion = 8;
constexpr std::int64_t kOpsetVersion = 13;
constexpr float kBatchNormEpsilon = 1e-5F;
constexpr float kLeakyReluSlope = 0.01F;  // libtorch's default negative_slope
constexpr char kInputName[] = "input";
constexpr char kOutputName[] = "output";
constexpr char kBatchDimension[] = "batch";

Error invalid(std::string message) {
  return makeError(ErrorCode::kInvalidArgument, std::move(message));
}

void addAttribute(onnx::NodeProto& node, const std::string& name, float value) {
  onnx::AttributeProto* attribute = node.add_attribute();
  attribute->set_name(name);
  attribute->set_type(onnx::AttributeProto::FLOAT);
  attribute->set_f(value);
}

void addAttribute(onnx::NodeProto& node, const std::string& name, std::int64_t value) {
  onnx::AttributeProto* attribute = node.add_attribute();
  attribute->set_name(name);
  attribute->set_type(onnx::AttributeProto::INT);
  attribute->set_i(value);
}

void addAttribute(onnx::NodeProto& node, const std::string& name,
                  const std::vector<std::int64_t>& values) {
  onnx::AttributeProto* attribute = node.add_attribute();
  attribute->set_name(name);
  attribute->set_type(onnx::AttributeProto::INTS);
  for (std::int64_t value : values) attribute->add_ints(value);
}

void setFloatTensorType(onnx::ValueInfoProto& info, const std::string& name,
                        std::int64_t features) {
  info.set_name(name);
  onnx::TypeProto_Tensor* tensor = info.mutable_type()->mutable_tensor_type();
  tensor->set_elem_type(onnx::TensorProto::FLOAT);
  onnx::TensorShapeProto* shape = tensor->mutable_shape();
  shape->add_dim()->set_dim_param(kBatchDimension);
  shape->add_dim()->set_dim_value(features);
}

// Appends the graph's nodes and initializers, one layer at a time. `current_` is the name of the
// tensor the next layer reads.
class GraphBuilder {
 public:
  GraphBuilder(onnx::GraphProto& graph, const SafeTensorFile& weights)
      : graph_(graph), weights_(weights) {}

  Status addLayer(const Layer& layer, std::size_t index) {
    const std::string tag = layer.name.empty() ? fmt::format("layer{}", index) : layer.name;
    switch (layer.kind) {
      case LayerKind::kReshape: {
        if (layer.shape.size() != 3) {
          return invalid(
              fmt::format("layer {} (reshape): expected [channels, height, width]", layer.name));
        }
        const std::string shapeName = fmt::format("{}.shape", tag);
        onnx::TensorProto* shape = graph_.add_initializer();
        shape->set_name(shapeName);
        shape->set_data_type(onnx::TensorProto::INT64);
        shape->add_dims(4);
        shape->add_int64_data(-1);
        for (std::int64_t dimension : layer.shape) shape->add_int64_data(dimension);
        addNode("Reshape", tag, {current_, shapeName});
        return Status::success();
      }
      case LayerKind::kLinear: {
        Status status =
            addWeights(layer, {{".weight", {layer.out, layer.in}}, {".bias", {layer.out}}});
        if (!status.ok()) return status;
        onnx::NodeProto& node =
            addNode("Gemm", tag, {current_, layer.name + ".weight", layer.name + ".bias"});
        addAttribute(node, "transB", std::int64_t{1});
        return Status::success();
      }
      case LayerKind::kConv2d: {
        Status status =
            addWeights(layer, {{".weight", {layer.out, layer.in, layer.kernel, layer.kernel}},
                               {".bias", {layer.out}}});
        if (!status.ok()) return status;
        onnx::NodeProto& node =
            addNode("Conv", tag, {current_, layer.name + ".weight", layer.name + ".bias"});
        addAttribute(node, "kernel_shape", std::vector<std::int64_t>{layer.kernel, layer.kernel});
        addAttribute(node, "strides", std::vector<std::int64_t>{layer.stride, layer.stride});
        addAttribute(node, "pads", std::vector<std::int64_t>(4, layer.padding));
        return Status::success();
      }
      case LayerKind::kBatchNorm: {
        Status status = addWeights(layer, {{".weight", {layer.in}},
                                           {".bias", {layer.in}},
                                           {".running_mean", {layer.in}},
                                           {".running_var", {layer.in}}});
        if (!status.ok()) return status;
        onnx::NodeProto& node =
            addNode("BatchNormalization", tag,
                    {current_, layer.name + ".weight", layer.name + ".bias",
                     layer.name + ".running_mean", layer.name + ".running_var"});
        addAttribute(node, "epsilon", kBatchNormEpsilon);
        return Status::success();
      }
      case LayerKind::kActivation:
        addActivation(layer.activation, tag);
        return Status::success();
      case LayerKind::kDropout:
        return Status::success();  // identity at inference
      case LayerKind::kMaxPool2d: {
        onnx::NodeProto& node = addNode("MaxPool", tag, {current_});
        addAttribute(node, "kernel_shape", std::vector<std::int64_t>{layer.kernel, layer.kernel});
        addAttribute(node, "strides", std::vector<std::int64_t>{layer.kernel, layer.kernel});
        return Status::success();
      }
      case LayerKind::kFlatten: {
        onnx::NodeProto& node = addNode("Flatten", tag, {current_});
        addAttribute(node, "axis", std::int64_t{1});
        return Status::success();
      }
    }
    return makeError(ErrorCode::kInternal, fmt::format("layer {}: unknown kind", layer.name));
  }

  // Makes the last tensor the graph output "output".
  void finish() {
    if (graph_.node_size() == 0) addNode("Identity", "output", {current_});
    graph_.mutable_node(graph_.node_size() - 1)->set_output(0, kOutputName);
  }

 private:
  struct Expected {
    std::string suffix;
    std::vector<std::int64_t> shape;
  };

  // Checks each "<layer.name><suffix>" against its expected shape and makes it an initializer.
  Status addWeights(const Layer& layer, const std::vector<Expected>& expected) {
    for (const Expected& entry : expected) {
      const std::string name = layer.name + entry.suffix;
      const SafeTensor* tensor = weights_.find(name);
      if (tensor == nullptr) {
        return invalid(fmt::format("weights: tensor \"{}\" is missing (expected F32 [{}])", name,
                                   fmt::join(entry.shape, ", ")));
      }
      if (tensor->dtype != SafeDtype::kF32) {
        return invalid(fmt::format("weights: tensor \"{}\" is {}, expected F32", name,
                                   safeDtypeName(tensor->dtype)));
      }
      if (tensor->shape != entry.shape) {
        return invalid(fmt::format("weights: tensor \"{}\" has shape [{}], expected [{}]", name,
                                   fmt::join(tensor->shape, ", "), fmt::join(entry.shape, ", ")));
      }
      if (tensor->data.size() != static_cast<std::size_t>(tensor->elementCount()) * 4) {
        return invalid(fmt::format("weights: tensor \"{}\" holds {} bytes, expected {}", name,
                                   tensor->data.size(), tensor->elementCount() * 4));
      }
      onnx::TensorProto* initializer = graph_.add_initializer();
      initializer->set_name(name);
      initializer->set_data_type(onnx::TensorProto::FLOAT);
      for (std::int64_t dimension : tensor->shape) initializer->add_dims(dimension);
      // Both safetensors and ONNX raw_data are packed little-endian.
      initializer->set_raw_data(tensor->data);
    }
    return Status::success();
  }

  const std::string& scalar(const std::string& name, float value) {
    onnx::TensorProto* constant = graph_.add_initializer();
    constant->set_name(name);
    constant->set_data_type(onnx::TensorProto::FLOAT);
    constant->add_float_data(value);  // no dims: a scalar
    return constant->name();
  }

  void addActivation(Activation activation, const std::string& tag) {
    switch (activation) {
      case Activation::kRelu:
        addNode("Relu", tag, {current_});
        return;
      case Activation::kTanh:
        addNode("Tanh", tag, {current_});
        return;
      case Activation::kSigmoid:
        addNode("Sigmoid", tag, {current_});
        return;
      case Activation::kLeakyRelu:
        addAttribute(addNode("LeakyRelu", tag, {current_}), "alpha", kLeakyReluSlope);
        return;
      case Activation::kGelu: {
        // 0.5 * x * (1 + erf(x / sqrt(2))).
        const std::string x = current_;
        const std::string sqrt2 = scalar(tag + ".sqrt2", static_cast<float>(std::sqrt(2.0)));
        const std::string one = scalar(tag + ".one", 1.0F);
        const std::string half = scalar(tag + ".half", 0.5F);
        addNode("Div", tag + "_div", {x, sqrt2});
        addNode("Erf", tag + "_erf", {current_});
        addNode("Add", tag + "_add", {current_, one});
        addNode("Mul", tag + "_mul", {x, current_});
        addNode("Mul", tag + "_half", {current_, half});
        return;
      }
    }
  }

  // Adds a node named `name` whose single output is also `name`, and makes it current.
  onnx::NodeProto& addNode(const std::string& opType, const std::string& name,
                           const std::vector<std::string>& inputs) {
    onnx::NodeProto* node = graph_.add_node();
    node->set_op_type(opType);
    node->set_name(name);
    for (const std::string& input : inputs) node->add_input(input);
    node->add_output(name);
    current_ = name;
    return *node;
  }

  onnx::GraphProto& graph_;
  const SafeTensorFile& weights_;
  std::string current_ = kInputName;
};

Result<onnx::ModelProto> buildModel(const ModelSpec& spec, const SafeTensorFile& weights) {
  onnx::ModelProto model;
  model.set_ir_version(kIrVersion);
  model.set_producer_name("deviceops");
  onnx::OperatorSetIdProto* opset = model.add_opset_import();
  opset->set_domain("");
  opset->set_version(kOpsetVersion);

  onnx::GraphProto* graph = model.mutable_graph();
  graph->set_name("deviceops_" + spec.type);
  setFloatTensorType(*graph->add_input(), kInputName, spec.inputs);
  setFloatTensorType(*graph->add_output(), kOutputName, spec.outputs);

  GraphBuilder builder(*graph, weights);
  const std::vector<Layer> layers = buildLayers(spec);
  for (std::size_t i = 0; i < layers.size(); ++i) {
    Status status = builder.addLayer(layers[i], i);
    if (!status.ok()) return status.error();
  }
  builder.finish();
  return model;
}

}  // namespace

Status exportOnnx(const ModelSpec& spec, const SafeTensorFile& weights,
                  const std::filesystem::path& output) {
  if (!spec.builtIn()) {
    return invalid(
        "torchscript models cannot be exported to ONNX; only the built-in architectures "
        "(mlp, cnn, linear) can");
  }
  if (Status valid = validateModelSpec(spec); !valid.ok()) return valid;

  std::string bytes;
  try {
    Result<onnx::ModelProto> model = buildModel(spec, weights);
    if (!model.ok()) return model.error();
    onnx::checker::check_model(*model);
    // Strict: a node whose input shapes do not fit (e.g. a weight of the wrong size) throws.
    onnx::shape_inference::InferShapes(*model, onnx::OpSchemaRegistry::Instance(),
                                       onnx::ShapeInferenceOptions(true, 1, false));
    if (!model->SerializeToString(&bytes)) {
      return makeError(ErrorCode::kInternal,
                       "the ONNX model cannot be serialized (larger than 2 GiB?)");
    }
  } catch (const std::exception& e) {
    return makeError(ErrorCode::kInternal,
                     fmt::format("the ONNX checker refused the exported model: {}", e.what()));
  }
  return writeFileAtomically(output, bytes);
}

}  // namespace deviceops::training
