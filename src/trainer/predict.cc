#include "trainer/predict.h"

#include <torch/torch.h>

#include <fstream>
#include <sstream>

#include "tensor/npy.h"
#include "trainer/model.h"
#include "training_formats/safetensors.h"
#include "training_formats/spec.h"

namespace deviceops::trainer {

namespace {

using inference::DataType;

Error invalid(std::string message) {
  return makeError(ErrorCode::kInvalidArgument, std::move(message));
}

std::optional<at::ScalarType> scalarType(DataType type) {
  switch (type) {
    case DataType::kFp32:
      return at::kFloat;
    case DataType::kFp64:
      return at::kDouble;
    case DataType::kFp16:
      return at::kHalf;
    case DataType::kBf16:
      return at::kBFloat16;
    case DataType::kInt64:
      return at::kLong;
    case DataType::kInt32:
      return at::kInt;
    case DataType::kInt16:
      return at::kShort;
    case DataType::kInt8:
      return at::kChar;
    case DataType::kUint8:
      return at::kByte;
    case DataType::kBool:
      return at::kBool;
    default:
      return std::nullopt;
  }
}

Result<training::JobSpec> readJob(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) return makeError(ErrorCode::kNotFound, "cannot open " + file.string());
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json json = nlohmann::json::parse(text.str(), nullptr, false);
  if (json.is_discarded()) return invalid(file.string() + ": not valid JSON");
  Result<training::JobSpec> spec = training::parseJobFile(json);
  if (!spec.ok()) return invalid(file.string() + ": " + spec.error().message);
  if (Status s = training::validateModelSpec(spec->model); !s.ok()) {
    return invalid(file.string() + ": " + s.error().message);
  }
  return spec;
}

}  // namespace

Status runPredict(const PredictRequest& request) {
  Result<training::JobSpec> spec = readJob(request.job);
  if (!spec.ok()) return spec.error();
  Result<inference::Tensor> input = inference::readNpyFile(request.input, "input");
  if (!input.ok()) return input.error();
  std::optional<at::ScalarType> type = scalarType(input->type);
  if (!type) {
    return invalid(request.input.string() + ": dtype " +
                   std::string(inference::dataTypeName(input->type)) + " is not numeric");
  }
  const std::int64_t inputs = spec->model.inputs;
  const std::vector<std::int64_t>& shape = input->shape;
  std::int64_t trailing = 1;
  for (std::size_t i = 1; i < shape.size(); ++i) trailing *= shape[i];
  const bool single = shape.size() == 1 && shape[0] == inputs;
  if (!single && (shape.size() < 2 || trailing != inputs)) {
    return invalid(request.input.string() + ": expected [N, " + std::to_string(inputs) +
                   "] (or trailing dimensions multiplying to " + std::to_string(inputs) + ")");
  }
  const std::int64_t rows = single ? 1 : shape[0];
  try {
    Result<std::unique_ptr<TrainModel>> model = buildModel(spec->model);
    if (!model.ok()) return model.error();
    Result<training::SafeTensorFile> weights = training::readSafeTensorsFile(request.weights);
    if (!weights.ok()) return weights.error();
    if (Status s = loadWeights(**model, *weights); !s.ok()) {
      return makeError(s.error().code, request.weights.string() + ": " + s.error().message);
    }
    (*model)->setTraining(false);
    torch::NoGradGuard noGrad;
    at::Tensor x = torch::from_blob(input->data.data(), {rows, inputs}, *type).to(at::kFloat);
    at::Tensor y = (*model)->forward(x).to(at::kFloat).contiguous();
    inference::Tensor output;
    output.name = "output";
    output.type = DataType::kFp32;
    output.shape = y.sizes().vec();
    if (single && output.shape.size() > 1 && output.shape[0] == 1)
      output.shape.erase(output.shape.begin());
    output.data.assign(static_cast<const char*>(y.data_ptr()), y.numel() * sizeof(float));
    return inference::writeNpyFile(request.output, output);
  } catch (const std::exception& e) {
    std::string what = e.what();
    return makeError(ErrorCode::kInternal, what.substr(0, what.find('\n')));
  }
}

}  // namespace deviceops::trainer
