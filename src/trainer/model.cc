#include "trainer/model.h"

#include <torch/script.h>
#include <torch/torch.h>

namespace deviceops::trainer {

namespace {

using training::Activation;
using training::Layer;
using training::LayerKind;

at::Tensor activate(const at::Tensor& x, Activation activation) {
  switch (activation) {
    case Activation::kRelu:
      return torch::relu(x);
    case Activation::kTanh:
      return torch::tanh(x);
    case Activation::kSigmoid:
      return torch::sigmoid(x);
    case Activation::kGelu:
      return torch::gelu(x);  // exact (erf) form
    case Activation::kLeakyRelu:
      return torch::leaky_relu(x, 0.01);
  }
  return x;
}

// The built-in architectures: a torch::nn::Module whose submodules are named after the layers.
class LayerStack : public torch::nn::Module {
 public:
  explicit LayerStack(std::vector<Layer> layers) : layers_(std::move(layers)) {
    modules_.resize(layers_.size());
    for (std::size_t i = 0; i < layers_.size(); ++i) {
      const Layer& l = layers_[i];
      switch (l.kind) {
        case LayerKind::kLinear:
          modules_[i] = torch::nn::AnyModule(
              register_module(l.name, torch::nn::Linear(torch::nn::LinearOptions(l.in, l.out))));
          break;
        case LayerKind::kConv2d:
          modules_[i] = torch::nn::AnyModule(register_module(
              l.name, torch::nn::Conv2d(torch::nn::Conv2dOptions(l.in, l.out, l.kernel)
                                            .stride(l.stride)
                                            .padding(l.padding))));
          break;
        case LayerKind::kBatchNorm:
          if (l.spatial) {
            modules_[i] = torch::nn::AnyModule(register_module(
                l.name, torch::nn::BatchNorm2d(torch::nn::BatchNorm2dOptions(l.in).eps(1e-5))));
          } else {
            modules_[i] = torch::nn::AnyModule(register_module(
                l.name, torch::nn::BatchNorm1d(torch::nn::BatchNorm1dOptions(l.in).eps(1e-5))));
          }
          break;
        default:
          break;
      }
    }
  }

  at::Tensor forward(at::Tensor x) {
    for (std::size_t i = 0; i < layers_.size(); ++i) {
      const Layer& l = layers_[i];
      switch (l.kind) {
        case LayerKind::kReshape:
          x = x.reshape({x.size(0), l.shape[0], l.shape[1], l.shape[2]});
          break;
        case LayerKind::kLinear:
        case LayerKind::kConv2d:
        case LayerKind::kBatchNorm:
          x = modules_[i].forward(x);
          break;
        case LayerKind::kActivation:
          x = activate(x, l.activation);
          break;
        case LayerKind::kDropout:
          x = torch::dropout(x, l.dropout, is_training());
          break;
        case LayerKind::kMaxPool2d:
          x = torch::max_pool2d(x, {l.kernel, l.kernel}, {l.stride, l.stride});
          break;
        case LayerKind::kFlatten:
          x = x.flatten(1);
          break;
      }
    }
    return x;
  }

 private:
  std::vector<Layer> layers_;
  std::vector<torch::nn::AnyModule> modules_;  // empty for layers without parameters
};

NamedTensors toVector(const torch::OrderedDict<std::string, at::Tensor>& dict) {
  NamedTensors out;
  for (const auto& item : dict) out.emplace_back(item.key(), item.value());
  return out;
}

class BuiltInModel : public TrainModel {
 public:
  explicit BuiltInModel(const training::ModelSpec& spec)
      : stack_(std::make_shared<LayerStack>(training::buildLayers(spec))) {}
  at::Tensor forward(const at::Tensor& input) override { return stack_->forward(input); }
  void setTraining(bool training) override { stack_->train(training); }
  NamedTensors parameters() override { return toVector(stack_->named_parameters()); }
  NamedTensors buffers() override { return toVector(stack_->named_buffers()); }
  void to(const at::Device& device) override { stack_->to(device); }
  Status saveTorchScript(const std::filesystem::path&) override { return Status::success(); }

 private:
  std::shared_ptr<LayerStack> stack_;
};

class ScriptModel : public TrainModel {
 public:
  explicit ScriptModel(torch::jit::Module module) : module_(std::move(module)) {}
  at::Tensor forward(const at::Tensor& input) override {
    return module_.forward({input}).toTensor();
  }
  void setTraining(bool training) override { module_.train(training); }
  NamedTensors parameters() override {
    NamedTensors out;
    for (const auto& item : module_.named_parameters(true)) out.emplace_back(item.name, item.value);
    return out;
  }
  NamedTensors buffers() override {
    NamedTensors out;
    for (const auto& item : module_.named_buffers(true)) out.emplace_back(item.name, item.value);
    return out;
  }
  void to(const at::Device& device) override { module_.to(device); }
  Status saveTorchScript(const std::filesystem::path& file) override {
    try {
      module_.save(file.string());
    } catch (const std::exception& e) {
      return makeError(ErrorCode::kUnavailable, "cannot save " + file.string() + ": " + e.what());
    }
    return Status::success();
  }

 private:
  torch::jit::Module module_;
};

}  // namespace

Result<std::unique_ptr<TrainModel>> buildModel(const training::ModelSpec& spec) {
  if (spec.builtIn()) return std::unique_ptr<TrainModel>(std::make_unique<BuiltInModel>(spec));
  try {
    torch::jit::Module module = torch::jit::load(spec.torchscriptPath);
    return std::unique_ptr<TrainModel>(std::make_unique<ScriptModel>(std::move(module)));
  } catch (const std::exception& e) {
    std::string what = e.what();
    return makeError(ErrorCode::kInvalidArgument,
                     "the TorchScript model " + spec.torchscriptPath +
                         " does not load: " + what.substr(0, what.find('\n')));
  }
}

NamedTensors floatTensors(TrainModel& model) {
  NamedTensors out;
  for (auto& entry : model.parameters()) out.push_back(entry);
  for (auto& entry : model.buffers()) {
    if (entry.second.is_floating_point()) out.push_back(entry);
  }
  return out;
}

training::SafeTensorFile weightsFile(TrainModel& model) {
  training::SafeTensorFile file;
  for (auto& [name, tensor] : floatTensors(model)) {
    at::Tensor cpu = tensor.detach().to(at::kCPU, at::kFloat).contiguous();
    training::SafeTensor t;
    t.dtype = training::SafeDtype::kF32;
    t.shape = cpu.sizes().vec();
    t.data.assign(static_cast<const char*>(cpu.data_ptr()), cpu.numel() * sizeof(float));
    file.tensors.emplace(name, std::move(t));
  }
  return file;
}

Status loadWeights(TrainModel& model, const training::SafeTensorFile& weights) {
  torch::NoGradGuard noGrad;
  for (auto& [name, tensor] : floatTensors(model)) {
    const training::SafeTensor* saved = weights.find(name);
    if (!saved) return makeError(ErrorCode::kInvalidArgument, "no tensor \"" + name + "\"");
    if (saved->shape != tensor.sizes().vec()) {
      return makeError(ErrorCode::kInvalidArgument,
                       "tensor \"" + name + "\" has another shape than the model's");
    }
    std::vector<float> values = saved->toFloat();
    tensor.copy_(torch::from_blob(values.data(), tensor.sizes(), at::kFloat));
  }
  return Status::success();
}

}  // namespace deviceops::trainer
