#include "inference/session.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <onnxruntime_cxx_api.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <new>

#include "inference/ort_convert.h"
#include "inference/ort_model_proto.h"
#include "inference/ort_run_watchdog.h"

namespace deviceops::inference {
namespace {

struct ProviderInfo {
  Provider provider;
  std::string_view name;     // API name
  std::string_view ortName;  // Ort::GetAvailableProviders() name
  std::string_view library;  // the shared library ONNX Runtime loads for it
};

constexpr std::array<ProviderInfo, 5> kProviders{{
    {Provider::kCpu, "cpu", "CPUExecutionProvider", "libonnxruntime.so"},
    {Provider::kCuda, "cuda", "CUDAExecutionProvider", "libonnxruntime_providers_cuda.so"},
    {Provider::kRocm, "rocm", "ROCMExecutionProvider", "libonnxruntime_providers_rocm.so"},
    {Provider::kMigraphx, "migraphx", "MIGraphXExecutionProvider",
     "libonnxruntime_providers_migraphx.so"},
    {Provider::kOpenVino, "openvino", "OpenVINOExecutionProvider",
     "libonnxruntime_providers_openvino.so"},
}};

const ProviderInfo& infoOf(Provider provider) {
  for (const ProviderInfo& info : kProviders) {
    if (info.provider == provider) return info;
  }
  return kProviders.front();
}

void logFromOrt(void* /*param*/, OrtLoggingLevel severity, const char* category,
                const char* /*logid*/, const char* codeLocation, const char* message) {
  spdlog::level::level_enum level = spdlog::level::debug;
  switch (severity) {
    case ORT_LOGGING_LEVEL_VERBOSE:
      level = spdlog::level::trace;
      break;
    case ORT_LOGGING_LEVEL_INFO:
      level = spdlog::level::debug;
      break;
    case ORT_LOGGING_LEVEL_WARNING:
      level = spdlog::level::warn;
      break;
    default:
      level = spdlog::level::err;
      break;
  }
  spdlog::log(level, "onnxruntime [{}] {} ({})", category, message, codeLocation);
}

// The process-wide environment. Deliberately never destroyed: sessions owned by other statics may
// outlive any destruction order we could pick, and ONNX Runtime reclaims it at exit.
Ort::Env& ortEnvironment() {
  static Ort::Env* env = new Ort::Env(ORT_LOGGING_LEVEL_WARNING, "deviceops", &logFromOrt, nullptr);
  return *env;
}

Error fromException(const Ort::Exception& exception, ErrorCode code, std::string_view context) {
  return makeError(code, fmt::format("{}: {}", context, exception.what()),
                   {{"onnxruntimeCode", static_cast<int>(exception.GetOrtErrorCode())}});
}

bool isModelProblem(OrtErrorCode code) {
  switch (code) {
    case ORT_INVALID_ARGUMENT:
    case ORT_INVALID_PROTOBUF:
    case ORT_INVALID_GRAPH:
    case ORT_NO_MODEL:
    case ORT_NOT_IMPLEMENTED:
      return true;
    default:
      return false;
  }
}

Status appendProvider(Ort::SessionOptions& ortOptions, const SessionOptions& options) {
  const ProviderInfo& info = infoOf(options.provider);
  if (options.provider == Provider::kCpu) return {};
  const std::vector<std::string> ortAvailable = Ort::GetAvailableProviders();
  if (std::find(ortAvailable.begin(), ortAvailable.end(), info.ortName) == ortAvailable.end()) {
    const std::vector<std::string> available = availableProviders();
    return makeError(
        ErrorCode::kUnavailable,
        fmt::format("execution provider {} is not in this ONNX Runtime build ({} not found); "
                    "available: {}",
                    info.name, info.library, fmt::join(available, ", ")),
        {{"provider", info.name}, {"library", info.library}, {"available", available}});
  }
  const std::string device = std::to_string(options.deviceOrdinal);
  try {
    switch (options.provider) {
      case Provider::kCuda: {
        Ort::CUDAProviderOptions cuda;
        cuda.Update({{"device_id", device}});
        ortOptions.AppendExecutionProvider_CUDA_V2(*cuda);
        break;
      }
      case Provider::kRocm: {
        OrtROCMProviderOptions rocm;
        rocm.device_id = options.deviceOrdinal;
        ortOptions.AppendExecutionProvider_ROCM(rocm);
        break;
      }
      case Provider::kMigraphx: {
        OrtMIGraphXProviderOptions migraphx{};
        migraphx.device_id = options.deviceOrdinal;
        ortOptions.AppendExecutionProvider_MIGraphX(migraphx);
        break;
      }
      case Provider::kOpenVino:
        ortOptions.AppendExecutionProvider_OpenVINO_V2({});
        break;
      case Provider::kCpu:
        break;
    }
  } catch (const Ort::Exception& exception) {
    return makeError(ErrorCode::kUnavailable,
                     fmt::format("execution provider {} could not be loaded ({}): {}", info.name,
                                 info.library, exception.what()),
                     {{"provider", info.name}, {"library", info.library}});
  }
  return {};
}

Result<GraphOptimizationLevel> optimizationLevel(int level) {
  switch (level) {
    case 0:
      return ORT_DISABLE_ALL;
    case 1:
      return ORT_ENABLE_BASIC;
    case 2:
      return ORT_ENABLE_EXTENDED;
    case 99:
      return ORT_ENABLE_ALL;
    default:
      return makeError(ErrorCode::kInvalidArgument,
                       fmt::format("graphOptimizationLevel must be 0, 1, 2 or 99, got {}", level));
  }
}

// Applies everything but the provider. Throws Ort::Exception only on ORT failures.
Result<Ort::SessionOptions> makeSessionOptions(const SessionOptions& options) {
  Result<GraphOptimizationLevel> level = optimizationLevel(options.graphOptimizationLevel);
  if (!level.ok()) return level.error();
  if (options.intraOpThreads < 0 || options.interOpThreads < 0 || options.deviceOrdinal < 0) {
    return makeError(ErrorCode::kInvalidArgument,
                     "intraOpThreads, interOpThreads and deviceOrdinal must not be negative");
  }
  Ort::SessionOptions ortOptions;
  ortOptions.SetGraphOptimizationLevel(level.value());
  ortOptions.SetIntraOpNumThreads(options.intraOpThreads);
  ortOptions.SetInterOpNumThreads(options.interOpThreads);
  // Inter-op threads are only used by the parallel executor.
  if (options.interOpThreads > 1) ortOptions.SetExecutionMode(ORT_PARALLEL);
  if (options.cpuArena) {
    ortOptions.EnableCpuMemArena();
  } else {
    ortOptions.DisableCpuMemArena();
  }
  if (options.memoryPattern) {
    ortOptions.EnableMemPattern();
  } else {
    ortOptions.DisableMemPattern();
  }
  return ortOptions;
}

Result<TensorSpec> specOf(const std::string& name, const Ort::TypeInfo& typeInfo,
                          std::string_view kind) {
  if (typeInfo.GetONNXType() != ONNX_TYPE_TENSOR) {
    return makeError(ErrorCode::kInvalidArgument,
                     fmt::format("{} '{}' is not a tensor (sequences, maps and optionals are not "
                                 "served)",
                                 kind, name),
                     {{"tensor", name}});
  }
  auto tensorInfo = typeInfo.GetTensorTypeAndShapeInfo();
  const ONNXTensorElementDataType ortType = tensorInfo.GetElementType();
  const std::optional<DataType> type = fromOrtElementType(ortType);
  if (!type) {
    return makeError(ErrorCode::kInvalidArgument,
                     fmt::format("{} '{}' has element type {}, which is not served", kind, name,
                                 ortElementTypeName(ortType)),
                     {{"tensor", name}});
  }
  TensorSpec spec{name, *type, tensorInfo.GetShape()};
  for (std::int64_t& dimension : spec.shape) {
    if (dimension < 0) dimension = -1;  // symbolic and unknown dimensions
  }
  return spec;
}

// Reads the metadata of an open session; the opset and producer come from the file itself.
Result<ModelMetadata> readMetadata(Ort::Session& session, const ModelProtoSummary& proto) {
  ModelMetadata metadata;
  metadata.opset = proto.opset;
  metadata.producer = proto.producerName;
  if (!proto.producerVersion.empty()) {
    metadata.producer += (metadata.producer.empty() ? "" : " ") + proto.producerVersion;
  }
  Ort::AllocatorWithDefaultOptions allocator;
  Ort::ModelMetadata modelMetadata = session.GetModelMetadata();
  metadata.graphName = modelMetadata.GetGraphNameAllocated(allocator).get();
  metadata.description = modelMetadata.GetDescriptionAllocated(allocator).get();
  for (std::size_t i = 0; i < session.GetInputCount(); ++i) {
    Result<TensorSpec> spec = specOf(session.GetInputNameAllocated(i, allocator).get(),
                                     session.GetInputTypeInfo(i), "input");
    if (!spec.ok()) return spec.error();
    metadata.inputs.push_back(std::move(spec.value()));
  }
  for (std::size_t i = 0; i < session.GetOutputCount(); ++i) {
    Result<TensorSpec> spec = specOf(session.GetOutputNameAllocated(i, allocator).get(),
                                     session.GetOutputTypeInfo(i), "output");
    if (!spec.ok()) return spec.error();
    metadata.outputs.push_back(std::move(spec.value()));
  }
  return metadata;
}

struct OpenedSession {
  std::unique_ptr<Ort::Session> session;
  ModelMetadata metadata;
};

Result<OpenedSession> openSession(const std::filesystem::path& file,
                                  const SessionOptions& options) {
  // Our own reader first: it rejects non-models and truncated files with a precise reason and
  // gives the opset, which ONNX Runtime's API does not expose.
  Result<ModelProtoSummary> proto = readModelProto(file);
  if (!proto.ok()) return proto.error();
  const std::string_view provider = providerName(options.provider);
  try {
    Result<Ort::SessionOptions> ortOptions = makeSessionOptions(options);
    if (!ortOptions.ok()) return ortOptions.error();
    Status appended = appendProvider(ortOptions.value(), options);
    if (!appended.ok()) return appended.error();
    OpenedSession opened;
    try {
      opened.session =
          std::make_unique<Ort::Session>(ortEnvironment(), file.c_str(), ortOptions.value());
    } catch (const Ort::Exception& exception) {
      const OrtErrorCode code = exception.GetOrtErrorCode();
      if (code == ORT_NO_SUCHFILE) {
        return fromException(exception, ErrorCode::kNotFound, "cannot open model");
      }
      if (isModelProblem(code) || options.provider == Provider::kCpu) {
        return fromException(exception, ErrorCode::kInvalidArgument,
                             "ONNX Runtime cannot load the model");
      }
      Error error =
          fromException(exception, ErrorCode::kUnavailable,
                        fmt::format("execution provider {} failed to create a session", provider));
      error.details["provider"] = provider;
      return error;
    }
    Result<ModelMetadata> metadata = readMetadata(*opened.session, proto.value());
    if (!metadata.ok()) return metadata.error();
    opened.metadata = std::move(metadata.value());
    return opened;
  } catch (const Ort::Exception& exception) {
    return fromException(exception, ErrorCode::kInternal, "ONNX Runtime failed");
  } catch (const std::bad_alloc&) {
    return makeError(ErrorCode::kResourceExhausted, "out of memory while loading the model");
  } catch (const std::exception& exception) {
    return makeError(ErrorCode::kInternal,
                     fmt::format("loading the model failed: {}", exception.what()));
  }
}

Error stopError(StopReason reason) {
  if (reason == StopReason::kCancelled) {
    return makeError(ErrorCode::kUnavailable, "cancelled: the client went away");
  }
  return makeError(ErrorCode::kDeadlineExceeded, "deadline exceeded before the model finished");
}

}  // namespace

std::string_view providerName(Provider provider) { return infoOf(provider).name; }

std::optional<Provider> parseProvider(std::string_view name) {
  for (const ProviderInfo& info : kProviders) {
    if (info.name == name) return info.provider;
  }
  return std::nullopt;
}

std::vector<std::string> availableProviders() {
  std::vector<std::string> names;
  try {
    for (const std::string& ortName : Ort::GetAvailableProviders()) {
      auto known = std::find_if(kProviders.begin(), kProviders.end(),
                                [&](const ProviderInfo& info) { return info.ortName == ortName; });
      if (known != kProviders.end()) {
        names.emplace_back(known->name);
        continue;
      }
      // Providers we do not drive ("AzureExecutionProvider" -> "azure"), listed for information.
      std::string name = ortName.substr(0, ortName.rfind("ExecutionProvider"));
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      names.push_back(std::move(name));
    }
  } catch (const Ort::Exception& exception) {
    spdlog::warn("cannot list ONNX Runtime providers: {}", exception.what());
  }
  return names;
}

Result<ModelMetadata> inspectModel(const std::filesystem::path& file) {
  SessionOptions options;
  options.graphOptimizationLevel = 0;  // inspection needs no optimized graph
  options.intraOpThreads = 1;
  options.cpuArena = false;
  Result<OpenedSession> opened = openSession(file, options);
  if (!opened.ok()) return opened.error();
  return std::move(opened.value().metadata);
}

class Session::Impl {
 public:
  Impl(OpenedSession opened)
      : session_(std::move(opened.session)),
        metadata_(std::move(opened.metadata)),
        cpu_(Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault)) {
    for (const TensorSpec& output : metadata_.outputs) allOutputs_.push_back(output.name);
  }

  const ModelMetadata& metadata() const { return metadata_; }

  Result<std::vector<Tensor>> run(const std::vector<Tensor>& inputs,
                                  const std::vector<std::string>& outputNames,
                                  const RunControl& control) {
    const StopReason early = stopReason(control, std::chrono::steady_clock::now());
    if (early != StopReason::kNone) return stopError(early);
    const std::vector<std::string>& outputs = outputNames.empty() ? allOutputs_ : outputNames;
    try {
      std::vector<Ort::Value> values;
      std::vector<const char*> inputNames;
      values.reserve(inputs.size());
      for (const Tensor& input : inputs) {
        values.push_back(toOrtValue(input, cpu_, allocator_));
        inputNames.push_back(input.name.c_str());
      }
      std::vector<const char*> outputPointers;
      for (const std::string& name : outputs) outputPointers.push_back(name.c_str());

      Ort::RunOptions runOptions;
      std::vector<Ort::Value> results;
      {
        std::optional<RunWatchdog::Watch> watch;
        if (control.cancelled || control.deadline) {
          watch.emplace(RunWatchdog::instance(), runOptions, control);
        }
        try {
          results = session_->Run(runOptions, inputNames.data(), values.data(), values.size(),
                                  outputPointers.data(), outputPointers.size());
        } catch (const Ort::Exception&) {
          if (watch && watch->reason() != StopReason::kNone) return stopError(watch->reason());
          throw;
        }
      }
      std::vector<Tensor> tensors;
      tensors.reserve(results.size());
      for (std::size_t i = 0; i < results.size(); ++i) {
        Result<Tensor> tensor = fromOrtValue(outputs[i], results[i]);
        if (!tensor.ok()) return tensor.error();
        tensors.push_back(std::move(tensor.value()));
      }
      return tensors;
    } catch (const Ort::Exception& exception) {
      if (exception.GetOrtErrorCode() == ORT_INVALID_ARGUMENT) {
        return fromException(exception, ErrorCode::kInvalidArgument, "invalid inputs");
      }
      return fromException(exception, ErrorCode::kInternal, "ONNX Runtime run failed");
    } catch (const std::bad_alloc&) {
      return makeError(ErrorCode::kResourceExhausted, "out of memory while running the model");
    } catch (const std::exception& exception) {
      return makeError(ErrorCode::kInternal,
                       fmt::format("running the model failed: {}", exception.what()));
    }
  }

 private:
  std::unique_ptr<Ort::Session> session_;
  ModelMetadata metadata_;
  std::vector<std::string> allOutputs_;
  Ort::MemoryInfo cpu_;
  Ort::AllocatorWithDefaultOptions allocator_;
};

Session::Session(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Session::~Session() = default;

Result<std::unique_ptr<Session>> Session::open(const std::filesystem::path& file,
                                               const SessionOptions& options) {
  Result<OpenedSession> opened = openSession(file, options);
  if (!opened.ok()) return opened.error();
  try {
    return std::unique_ptr<Session>(new Session(std::make_unique<Impl>(std::move(opened.value()))));
  } catch (const Ort::Exception& exception) {
    return fromException(exception, ErrorCode::kInternal, "ONNX Runtime failed");
  }
}

const ModelMetadata& Session::metadata() const { return impl_->metadata(); }

Result<std::vector<Tensor>> Session::run(const std::vector<Tensor>& inputs,
                                         const std::vector<std::string>& outputNames,
                                         const RunControl& control) {
  return impl_->run(inputs, outputNames, control);
}

Status Session::warmUp() {
  std::vector<Tensor> inputs;
  for (const TensorSpec& spec : metadata().inputs) {
    Tensor tensor;
    tensor.name = spec.name;
    tensor.type = spec.type;
    tensor.shape = spec.shape;
    for (std::int64_t& dimension : tensor.shape) {
      if (dimension < 0) dimension = 1;
    }
    Result<std::uint64_t> bytes = byteCount(spec.type, tensor.shape);
    if (!bytes.ok()) return bytes.error();
    if (spec.type == DataType::kBytes) {
      tensor.strings.resize(elementCount(tensor.shape).value());
    } else {
      tensor.data.assign(bytes.value(), '\0');
    }
    inputs.push_back(std::move(tensor));
  }
  Result<std::vector<Tensor>> outputs = run(inputs, {});
  if (!outputs.ok()) return outputs.error();
  return {};
}

}  // namespace deviceops::inference
