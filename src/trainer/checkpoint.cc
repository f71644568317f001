#include "trainer/checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <mutex>
#include <sstream>

namespace deviceops::trainer {

namespace {

std::string archiveKey(std::string name) {
  std::string out;
  for (char c : name) {
    if (c == '.') {
      out += "__";
    } else {
      out += c;
    }
  }
  return out;
}

NamedTensors modelTensors(TrainModel& model) {
  NamedTensors all = model.parameters();
  for (auto& entry : model.buffers()) all.push_back(entry);
  return all;
}

}  // namespace

std::string serializeCheckpoint(TrainModel& model, torch::optim::Optimizer& optimizer,
                                const nlohmann::json& meta) {
  torch::serialize::OutputArchive archive;
  torch::serialize::OutputArchive modelArchive;
  for (auto& [name, tensor] : modelTensors(model)) {
    modelArchive.write(archiveKey(name), tensor.detach().cpu());
  }
  archive.write("model", modelArchive);
  torch::serialize::OutputArchive optimizerArchive;
  optimizer.save(optimizerArchive);
  archive.write("optimizer", optimizerArchive);
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  at::Tensor rng;
  {
    std::lock_guard<std::mutex> lock(generator.mutex());
    rng = generator.get_state();
  }
  archive.write("rng", rng);
  archive.write("meta", c10::IValue(meta.dump()));
  std::ostringstream out;
  archive.save_to(out);
  return out.str();
}

Result<nlohmann::json> restoreCheckpoint(std::string_view bytes, TrainModel& model,
                                         torch::optim::Optimizer& optimizer,
                                         const at::Device& device) {
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(bytes.data(), bytes.size(), device);
    c10::IValue metaValue;
    if (!archive.try_read("meta", metaValue) || !metaValue.isString()) {
      return makeError(ErrorCode::kInvalidArgument, "no meta record");
    }
    nlohmann::json meta = nlohmann::json::parse(metaValue.toStringRef(), nullptr, false);
    if (!meta.is_object() || !meta.contains("step")) {
      return makeError(ErrorCode::kInvalidArgument, "meta is not a checkpoint record");
    }
    torch::serialize::InputArchive modelArchive;
    if (!archive.try_read("model", modelArchive)) {
      return makeError(ErrorCode::kInvalidArgument, "no model record");
    }
    torch::NoGradGuard noGrad;
    for (auto& [name, tensor] : modelTensors(model)) {
      at::Tensor saved;
      if (!modelArchive.try_read(archiveKey(name), saved)) {
        return makeError(ErrorCode::kInvalidArgument, "no tensor " + name);
      }
      if (saved.sizes() != tensor.sizes()) {
        return makeError(ErrorCode::kInvalidArgument, "tensor " + name + " has another shape");
      }
      tensor.copy_(saved);
    }
    torch::serialize::InputArchive optimizerArchive;
    if (!archive.try_read("optimizer", optimizerArchive)) {
      return makeError(ErrorCode::kInvalidArgument, "no optimizer record");
    }
    optimizer.load(optimizerArchive);
    at::Tensor rng;
    if (!archive.try_read("rng", rng))
      return makeError(ErrorCode::kInvalidArgument, "no rng record");
    at::Generator generator = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(generator.mutex());
    generator.set_state(rng.cpu());
    return meta;
  } catch (const std::exception& e) {
    std::string what = e.what();
    return makeError(ErrorCode::kInvalidArgument, what.substr(0, what.find('\n')));
  }
}

}  // namespace deviceops::trainer
