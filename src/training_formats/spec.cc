#include "training_formats/spec.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <set>

namespace deviceops::training {

namespace {

using nlohmann::json;

constexpr std::int64_t kMaxLayerWidth = 65536;
constexpr std::size_t kMaxLayers = 64;
constexpr std::int64_t kMaxFeatures = std::int64_t{1} << 31;

template <class E>
struct EnumName {
  E value;
  std::string_view name;
};

constexpr EnumName<Task> kTasks[] = {{Task::kClassification, "classification"},
                                     {Task::kRegression, "regression"}};
constexpr EnumName<Activation> kActivations[] = {{Activation::kRelu, "relu"},
                                                 {Activation::kTanh, "tanh"},
                                                 {Activation::kSigmoid, "sigmoid"},
                                                 {Activation::kGelu, "gelu"},
                                                 {Activation::kLeakyRelu, "leaky_relu"}};

std::string joinNames(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& name : names) out += (out.empty() ? "" : " | ") + ("\"" + name + "\"");
  return out;
}

// Reads the members of one JSON object into a struct, remembering the first problem. Every
// accessor marks its key as known; finish() then refuses any key nobody asked for. Field paths in
// messages are "<prefix>.<key>" ("optimizer.learningRate: must be > 0").
// Thread-compatibility: one reader per object, used by one thread.
class ObjectReader {
 public:
  ObjectReader(const json& object, std::string prefix, std::optional<Error>& error)
      : object_(object), prefix_(std::move(prefix)), error_(error) {
    if (!error_ && !object_.is_object())
      fail(prefix_.empty() ? "body" : prefix_, "expected an object");
  }

  std::string path(std::string_view key) const {
    return prefix_.empty() ? std::string(key) : prefix_ + "." + std::string(key);
  }
  void fail(const std::string& field, const std::string& problem) {
    if (!error_) error_ = makeError(ErrorCode::kInvalidArgument, field + ": " + problem);
  }
  bool failed() const { return error_.has_value(); }

  // The member `key` when present, not null and no error happened yet.
  const json* find(std::string_view key) {
    known_.insert(std::string(key));
    if (error_ || !object_.is_object()) return nullptr;
    auto it = object_.find(key);
    if (it == object_.end() || it->is_null()) return nullptr;
    return &*it;
  }

  void integer(std::string_view key, std::int64_t& out, std::int64_t min, std::int64_t max) {
    const json* value = find(key);
    if (!value) return;
    if (!value->is_number_integer() ||
        (value->is_number_unsigned() &&
         value->get<std::uint64_t>() > std::uint64_t(std::numeric_limits<std::int64_t>::max()))) {
      return fail(path(key), "expected an integer");
    }
    std::int64_t v = value->get<std::int64_t>();
    if (v < min || v > max) {
      return fail(path(key),
                  "must be between " + std::to_string(min) + " and " + std::to_string(max));
    }
    out = v;
  }
  void integer(std::string_view key, int& out, int min, int max) {
    std::int64_t v = out;
    integer(key, v, min, max);
    out = static_cast<int>(v);
  }
  void unsignedInteger(std::string_view key, std::uint64_t& out) {
    const json* value = find(key);
    if (!value) return;
    if (!value->is_number_integer() ||
        (!value->is_number_unsigned() && value->get<std::int64_t>() < 0)) {
      return fail(path(key), "expected a non-negative integer");
    }
    out = value->get<std::uint64_t>();
  }
  // `check` returns an empty string when the value is acceptable, else the problem.
  template <class Check>
  void number(std::string_view key, double& out, Check check) {
    const json* value = find(key);
    if (!value) return;
    if (!value->is_number()) return fail(path(key), "expected a number");
    double v = value->get<double>();
    if (!std::isfinite(v)) return fail(path(key), "must be finite");
    if (std::string problem = check(v); !problem.empty()) return fail(path(key), problem);
    out = v;
  }
  void boolean(std::string_view key, bool& out) {
    const json* value = find(key);
    if (!value) return;
    if (!value->is_boolean()) return fail(path(key), "expected true or false");
    out = value->get<bool>();
  }
  void string(std::string_view key, std::string& out, std::size_t maxLength = 4096) {
    const json* value = find(key);
    if (!value) return;
    if (!value->is_string()) return fail(path(key), "expected a string");
    std::string v = value->get<std::string>();
    if (v.size() > maxLength) return fail(path(key), "too long");
    out = std::move(v);
  }
  // A string that must be one of `choices`; returns false when absent or refused.
  bool choice(std::string_view key, std::string& out, const std::vector<std::string>& choices) {
    const json* value = find(key);
    if (!value) return false;
    if (!value->is_string()) {
      fail(path(key), "expected a string");
      return false;
    }
    std::string v = value->get<std::string>();
    if (std::find(choices.begin(), choices.end(), v) == choices.end()) {
      fail(path(key), "must be one of " + joinNames(choices));
      return false;
    }
    out = std::move(v);
    return true;
  }
  template <class E, std::size_t N>
  void enumeration(std::string_view key, E& out, const EnumName<E> (&table)[N]) {
    std::vector<std::string> names;
    for (const auto& entry : table) names.emplace_back(entry.name);
    std::string name;
    if (!choice(key, name, names)) return;
    for (const auto& entry : table) {
      if (entry.name == name) out = entry.value;
    }
  }
  void sizes(std::string_view key, std::vector<std::int64_t>& out, std::size_t minCount) {
    const json* value = find(key);
    if (!value) return;
    if (!value->is_array()) return fail(path(key), "expected an array of integers");
    if (value->size() < minCount || value->size() > kMaxLayers) {
      return fail(path(key), "must have " + std::to_string(minCount) + " to " +
                                 std::to_string(kMaxLayers) + " entries");
    }
    std::vector<std::int64_t> result;
    for (std::size_t i = 0; i < value->size(); ++i) {
      const json& item = (*value)[i];
      std::string field = path(key) + "[" + std::to_string(i) + "]";
      if (!item.is_number_integer()) return fail(field, "expected an integer");
      if (item.is_number_unsigned() && item.get<std::uint64_t>() > std::uint64_t(kMaxLayerWidth)) {
        return fail(field, "must be between 1 and " + std::to_string(kMaxLayerWidth));
      }
      std::int64_t v = item.get<std::int64_t>();
      if (v < 1 || v > kMaxLayerWidth) {
        return fail(field, "must be between 1 and " + std::to_string(kMaxLayerWidth));
      }
      result.push_back(v);
    }
    out = std::move(result);
  }

  void finish() {
    if (error_ || !object_.is_object()) return;
    for (auto it = object_.begin(); it != object_.end(); ++it) {
      if (!known_.count(it.key())) {
        std::string where = prefix_.empty() ? "" : prefix_ + ": ";
        error_ =
            makeError(ErrorCode::kInvalidArgument, where + "unknown field \"" + it.key() + "\"");
        return;
      }
    }
  }

 private:
  const json& object_;
  std::string prefix_;
  std::optional<Error>& error_;
  std::set<std::string> known_;
};

auto positive = [](double v) { return v > 0 ? "" : std::string("must be > 0"); };
auto nonNegative = [](double v) { return v >= 0 ? "" : std::string("must be >= 0"); };
auto unitOpen = [](double v) { return v >= 0 && v < 1 ? "" : std::string("must be in [0, 1)"); };

void readMlp(ObjectReader& reader, MlpSpec& mlp) {
  reader.sizes("hidden", mlp.hidden, 0);
  reader.enumeration("activation", mlp.activation, kActivations);
  reader.number("dropout", mlp.dropout, unitOpen);
  reader.boolean("batchNorm", mlp.batchNorm);
}

void readCnn(ObjectReader& reader, CnnSpec& cnn, std::optional<Error>& error) {
  reader.integer("channels", cnn.channels, 1, kMaxLayerWidth);
  reader.integer("height", cnn.height, 1, kMaxLayerWidth);
  reader.integer("width", cnn.width, 1, kMaxLayerWidth);
  if (const json* blocks = reader.find("blocks")) {
    if (!blocks->is_array() || blocks->size() > kMaxLayers) {
      reader.fail(reader.path("blocks"), "expected an array of at most 64 blocks");
    } else {
      cnn.blocks.clear();
      for (std::size_t i = 0; i < blocks->size(); ++i) {
        ConvBlockSpec block;
        ObjectReader b((*blocks)[i], reader.path("blocks") + "[" + std::to_string(i) + "]", error);
        b.integer("channels", block.channels, 1, kMaxLayerWidth);
        b.integer("kernel", block.kernel, 1, 1024);
        b.integer("stride", block.stride, 1, 1024);
        b.integer("padding", block.padding, 0, 1024);
        b.boolean("batchNorm", block.batchNorm);
        b.integer("pool", block.pool, 0, 1024);
        b.finish();
        cnn.blocks.push_back(block);
      }
    }
  }
  reader.sizes("head", cnn.head, 0);
  reader.enumeration("activation", cnn.activation, kActivations);
  reader.number("dropout", cnn.dropout, unitOpen);
  if (!reader.failed() && cnn.height == 0) reader.fail(reader.path("height"), "required for a cnn");
  if (!reader.failed() && cnn.width == 0) reader.fail(reader.path("width"), "required for a cnn");
}

void readModel(const json& body, ModelSpec& model, bool daemonFields, std::optional<Error>& error) {
  ObjectReader reader(body, "model", error);
  reader.choice("type", model.type, {"mlp", "cnn", "linear", "torchscript"});
  if (model.type == "mlp") readMlp(reader, model.mlp);
  if (model.type == "cnn") readCnn(reader, model.cnn, error);
  if (daemonFields) {
    reader.integer("inputs", model.inputs, 0, kMaxFeatures);
    reader.integer("outputs", model.outputs, 0, kMaxFeatures);
    if (model.type == "torchscript") reader.string("torchscriptPath", model.torchscriptPath);
  }
  reader.finish();
}

// Spatial size after a convolution or pooling; < 1 when the input is too small.
std::int64_t convolvedSize(std::int64_t size, std::int64_t kernel, std::int64_t stride,
                           std::int64_t padding) {
  return (size + 2 * padding - kernel) / stride + 1;
}

Error invalid(std::string message) {
  return makeError(ErrorCode::kInvalidArgument, std::move(message));
}

Layer makeLayer(LayerKind kind, std::int64_t in, std::int64_t out) {
  Layer layer{};
  layer.kind = kind;
  layer.in = in;
  layer.out = out;
  return layer;
}

// Structure of a model independent of the dataset; with `requireIo` also inputs/outputs.
Status checkModel(const ModelSpec& spec, bool requireIo) {
  if (requireIo) {
    if (spec.inputs < 1) return invalid("model.inputs: must be > 0");
    if (spec.outputs < 1) return invalid("model.outputs: must be > 0");
  }
  if (spec.type == "torchscript" && requireIo && spec.torchscriptPath.empty()) {
    return invalid("model.torchscriptPath: required for a torchscript model");
  }
  if (spec.type != "cnn") return Status::success();
  const CnnSpec& cnn = spec.cnn;
  if (cnn.channels < 1 || cnn.height < 1 || cnn.width < 1 || cnn.channels > kMaxLayerWidth ||
      cnn.height > kMaxLayerWidth || cnn.width > kMaxLayerWidth) {
    return invalid("model: channels, height and width must be between 1 and 65536");
  }
  if (requireIo && cnn.channels * cnn.height * cnn.width != spec.inputs) {
    return invalid(
        "model: channels*height*width = " + std::to_string(cnn.channels * cnn.height * cnn.width) +
        " does not match the dataset's " + std::to_string(spec.inputs) + " features");
  }
  std::int64_t h = cnn.height, w = cnn.width;
  for (std::size_t i = 0; i < cnn.blocks.size(); ++i) {
    const ConvBlockSpec& b = cnn.blocks[i];
    h = convolvedSize(h, b.kernel, b.stride, b.padding);
    w = convolvedSize(w, b.kernel, b.stride, b.padding);
    if (b.pool > 1) {
      h = h >= b.pool ? convolvedSize(h, b.pool, b.pool, 0) : 0;
      w = w >= b.pool ? convolvedSize(w, b.pool, b.pool, 0) : 0;
    }
    if (h < 1 || w < 1) {
      return invalid("model.blocks[" + std::to_string(i) + "]: the image shrinks below 1x1 (" +
                     std::to_string(std::max<std::int64_t>(h, 0)) + "x" +
                     std::to_string(std::max<std::int64_t>(w, 0)) + ")");
    }
  }
  std::int64_t last = cnn.blocks.empty() ? cnn.channels : cnn.blocks.back().channels;
  if (last * h * w > kMaxFeatures) return invalid("model: the flattened conv output is too large");
  return Status::success();
}

std::vector<std::string> metricsFor(Task task) {
  if (task == Task::kClassification) return {"val_loss", "val_accuracy", "loss"};
  return {"val_loss", "val_mae", "val_rmse", "loss"};
}

Result<JobSpec> parse(const json& body, bool daemonFields) {
  std::optional<Error> error;
  JobSpec spec;
  ObjectReader top(body, "", error);
  top.string("name", spec.name, 256);
  top.string("dataset", spec.dataset, 256);
  top.enumeration("task", spec.task, kTasks);
  spec.loss = spec.task == Task::kClassification ? "cross_entropy" : "mse";
  if (spec.task == Task::kClassification) {
    top.choice("loss", spec.loss, {"cross_entropy"});
  } else {
    top.choice("loss", spec.loss, {"mse", "mae", "huber"});
  }
  if (const json* model = top.find("model")) readModel(*model, spec.model, daemonFields, error);
  if (const json* o = top.find("optimizer")) {
    ObjectReader r(*o, "optimizer", error);
    r.choice("type", spec.optimizer.type, {"sgd", "adam", "adamw"});
    r.number("learningRate", spec.optimizer.learningRate, positive);
    r.number("weightDecay", spec.optimizer.weightDecay, nonNegative);
    r.number("momentum", spec.optimizer.momentum, unitOpen);
    r.boolean("nesterov", spec.optimizer.nesterov);
    r.number("beta1", spec.optimizer.beta1, unitOpen);
    r.number("beta2", spec.optimizer.beta2, unitOpen);
    r.number("epsilon", spec.optimizer.epsilon, positive);
    r.finish();
    if (!error && spec.optimizer.nesterov && spec.optimizer.momentum == 0) {
      r.fail("optimizer.nesterov", "needs momentum > 0");
    }
  }
  if (const json* s = top.find("schedule")) {
    ObjectReader r(*s, "schedule", error);
    r.choice("type", spec.schedule.type, {"constant", "step", "cosine"});
    r.integer("warmupSteps", spec.schedule.warmupSteps, 0, std::int64_t{1} << 40);
    r.integer("stepEpochs", spec.schedule.stepEpochs, 1, 100000);
    r.number("gamma", spec.schedule.gamma,
             [](double v) { return v > 0 && v <= 1 ? "" : std::string("must be in (0, 1]"); });
    r.number("minLearningRate", spec.schedule.minLearningRate, nonNegative);
    r.finish();
  }
  top.integer("epochs", spec.epochs, 1, 100000);
  top.integer("batchSize", spec.batchSize, 1, 1000000);
  top.number("validationSplit", spec.validationSplit,
             [](double v) { return v >= 0 && v <= 0.9 ? "" : std::string("must be in [0, 0.9]"); });
  top.unsignedInteger("seed", spec.seed);
  if (const json* devices = top.find("devices")) {
    if (!devices->is_array() || devices->empty() || devices->size() > 64) {
      top.fail("devices", "expected an array of 1 to 64 device ids");
    } else {
      spec.devices.clear();
      for (std::size_t i = 0; i < devices->size(); ++i) {
        const json& d = (*devices)[i];
        if (!d.is_string() || d.get<std::string>().empty() || d.get<std::string>().size() > 128) {
          top.fail("devices[" + std::to_string(i) + "]", "expected a device id");
          break;
        }
        spec.devices.push_back(d.get<std::string>());
      }
    }
  }
  top.integer("threads", spec.threads, 0, 1024);
  if (const json* c = top.find("checkpoint")) {
    ObjectReader r(*c, "checkpoint", error);
    r.integer("everySteps", spec.checkpoint.everySteps, 0, std::int64_t{1} << 40);
    r.integer("keepLast", spec.checkpoint.keepLast, 1, 100);
    r.boolean("keepBest", spec.checkpoint.keepBest);
    r.finish();
  }
  if (const json* e = top.find("earlyStopping")) {
    ObjectReader r(*e, "earlyStopping", error);
    r.boolean("enabled", spec.earlyStopping.enabled);
    r.choice("metric", spec.earlyStopping.metric, metricsFor(spec.task));
    r.integer("patience", spec.earlyStopping.patience, 1, 100000);
    r.number("minDelta", spec.earlyStopping.minDelta, nonNegative);
    r.finish();
  }
  top.integer("progressIntervalMs", spec.progressIntervalMs, 50, 60000);
  if (const json* m = top.find("memoryBytes")) {
    if (!m->is_number_integer() || (!m->is_number_unsigned() && m->get<std::int64_t>() <= 0) ||
        m->get<std::uint64_t>() == 0) {
      top.fail("memoryBytes", "expected a positive integer");
    } else {
      spec.memoryBytes = m->get<std::uint64_t>();
    }
  }
  if (daemonFields) {
    top.string("datasetPath", spec.datasetPath);
    top.string("workDir", spec.workDir);
  }
  top.finish();
  if (error) return *error;

  auto metrics = metricsFor(spec.task);
  if (std::find(metrics.begin(), metrics.end(), spec.earlyStopping.metric) == metrics.end()) {
    return invalid("earlyStopping.metric: must be one of " + joinNames(metrics) + " for " +
                   std::string(taskName(spec.task)));
  }
  if (spec.earlyStopping.enabled && spec.validationSplit == 0 &&
      spec.earlyStopping.metric != "loss") {
    return invalid("earlyStopping.metric: " + spec.earlyStopping.metric +
                   " needs validationSplit > 0");
  }
  if (spec.task == Task::kRegression && spec.model.outputs > 1) {
    return invalid("model.outputs: regression has one output");
  }
  if (Status s = checkModel(spec.model, false); !s.ok()) return s.error();
  return spec;
}

json activationJson(Activation a) { return std::string(activationName(a)); }

}  // namespace

std::string_view taskName(Task task) {
  for (const auto& entry : kTasks) {
    if (entry.value == task) return entry.name;
  }
  return "classification";
}

std::string_view activationName(Activation activation) {
  for (const auto& entry : kActivations) {
    if (entry.value == activation) return entry.name;
  }
  return "relu";
}

Result<JobSpec> parseJobSpec(const nlohmann::json& body) { return parse(body, false); }
Result<JobSpec> parseJobFile(const nlohmann::json& json) { return parse(json, true); }

Status validateModelSpec(const ModelSpec& spec) { return checkModel(spec, true); }

nlohmann::json toJson(const JobSpec& spec) {
  json model = {
      {"type", spec.model.type}, {"inputs", spec.model.inputs}, {"outputs", spec.model.outputs}};
  if (spec.model.type == "mlp") {
    model["hidden"] = spec.model.mlp.hidden;
    model["activation"] = activationJson(spec.model.mlp.activation);
    model["dropout"] = spec.model.mlp.dropout;
    model["batchNorm"] = spec.model.mlp.batchNorm;
  } else if (spec.model.type == "cnn") {
    const CnnSpec& cnn = spec.model.cnn;
    json blocks = json::array();
    for (const auto& b : cnn.blocks) {
      blocks.push_back({{"channels", b.channels},
                        {"kernel", b.kernel},
                        {"stride", b.stride},
                        {"padding", b.padding},
                        {"batchNorm", b.batchNorm},
                        {"pool", b.pool}});
    }
    model["channels"] = cnn.channels;
    model["height"] = cnn.height;
    model["width"] = cnn.width;
    model["blocks"] = blocks;
    model["head"] = cnn.head;
    model["activation"] = activationJson(cnn.activation);
    model["dropout"] = cnn.dropout;
  } else if (spec.model.type == "torchscript") {
    model["torchscriptPath"] = spec.model.torchscriptPath;
  }
  const OptimizerSpec& o = spec.optimizer;
  const ScheduleSpec& s = spec.schedule;
  json out = {
      {"name", spec.name},
      {"dataset", spec.dataset},
      {"task", std::string(taskName(spec.task))},
      {"loss", spec.loss},
      {"model", model},
      {"optimizer",
       {{"type", o.type},
        {"learningRate", o.learningRate},
        {"weightDecay", o.weightDecay},
        {"momentum", o.momentum},
        {"nesterov", o.nesterov},
        {"beta1", o.beta1},
        {"beta2", o.beta2},
        {"epsilon", o.epsilon}}},
      {"schedule",
       {{"type", s.type},
        {"warmupSteps", s.warmupSteps},
        {"stepEpochs", s.stepEpochs},
        {"gamma", s.gamma},
        {"minLearningRate", s.minLearningRate}}},
      {"epochs", spec.epochs},
      {"batchSize", spec.batchSize},
      {"validationSplit", spec.validationSplit},
      {"seed", spec.seed},
      {"devices", spec.devices},
      {"threads", spec.threads},
      {"checkpoint",
       {{"everySteps", spec.checkpoint.everySteps},
        {"keepLast", spec.checkpoint.keepLast},
        {"keepBest", spec.checkpoint.keepBest}}},
      {"earlyStopping",
       {{"enabled", spec.earlyStopping.enabled},
        {"metric", spec.earlyStopping.metric},
        {"patience", spec.earlyStopping.patience},
        {"minDelta", spec.earlyStopping.minDelta}}},
      {"progressIntervalMs", spec.progressIntervalMs},
      {"datasetPath", spec.datasetPath},
      {"workDir", spec.workDir},
  };
  if (spec.memoryBytes) out["memoryBytes"] = *spec.memoryBytes;
  return out;
}

std::vector<Layer> buildLayers(const ModelSpec& spec) {
  std::vector<Layer> layers;
  auto add = [&](Layer layer) {
    layer.name = "l" + std::to_string(layers.size());
    layers.push_back(std::move(layer));
  };
  auto linear = [&](std::int64_t in, std::int64_t out) {
    Layer l = makeLayer(LayerKind::kLinear, in, out);
    add(l);
  };
  auto activation = [&](Activation a, std::int64_t width) {
    Layer l = makeLayer(LayerKind::kActivation, width, width);
    l.activation = a;
    add(l);
  };
  auto dropout = [&](double p, std::int64_t width) {
    if (p <= 0) return;
    Layer l = makeLayer(LayerKind::kDropout, width, width);
    l.dropout = p;
    add(l);
  };
  if (spec.type == "linear") {
    linear(spec.inputs, spec.outputs);
  } else if (spec.type == "mlp") {
    std::int64_t in = spec.inputs;
    for (std::int64_t h : spec.mlp.hidden) {
      linear(in, h);
      if (spec.mlp.batchNorm) add(makeLayer(LayerKind::kBatchNorm, h, h));
      activation(spec.mlp.activation, h);
      dropout(spec.mlp.dropout, h);
      in = h;
    }
    linear(in, spec.outputs);
  } else if (spec.type == "cnn") {
    const CnnSpec& cnn = spec.cnn;
    Layer reshape = makeLayer(LayerKind::kReshape, spec.inputs, spec.inputs);
    reshape.shape = {cnn.channels, cnn.height, cnn.width};
    add(reshape);
    std::int64_t c = cnn.channels, h = cnn.height, w = cnn.width;
    for (const ConvBlockSpec& b : cnn.blocks) {
      Layer conv = makeLayer(LayerKind::kConv2d, c, b.channels);
      conv.kernel = b.kernel;
      conv.stride = b.stride;
      conv.padding = b.padding;
      add(conv);
      c = b.channels;
      h = convolvedSize(h, b.kernel, b.stride, b.padding);
      w = convolvedSize(w, b.kernel, b.stride, b.padding);
      if (b.batchNorm) {
        Layer bn = makeLayer(LayerKind::kBatchNorm, c, c);
        bn.spatial = true;
        add(bn);
      }
      activation(cnn.activation, c);
      if (b.pool > 1) {
        Layer pool = makeLayer(LayerKind::kMaxPool2d, c, c);
        pool.kernel = b.pool;
        pool.stride = b.pool;
        add(pool);
        h = convolvedSize(h, b.pool, b.pool, 0);
        w = convolvedSize(w, b.pool, b.pool, 0);
      }
    }
    std::int64_t in = c * h * w;
    add(makeLayer(LayerKind::kFlatten, in, in));
    for (std::int64_t size : cnn.head) {
      linear(in, size);
      activation(cnn.activation, size);
      dropout(cnn.dropout, size);
      in = size;
    }
    linear(in, spec.outputs);
  }
  return layers;
}

std::int64_t parameterCount(const ModelSpec& spec) {
  std::int64_t count = 0;
  for (const Layer& layer : buildLayers(spec)) {
    switch (layer.kind) {
      case LayerKind::kLinear:
        count += layer.in * layer.out + layer.out;
        break;
      case LayerKind::kConv2d:
        count += layer.out * layer.in * layer.kernel * layer.kernel + layer.out;
        break;
      case LayerKind::kBatchNorm:
        count += 2 * layer.in;
        break;
      default:
        break;
    }
  }
  return count;
}

double learningRateAt(const ScheduleSpec& schedule, double baseRate, std::int64_t step,
                      std::int64_t stepsPerEpoch, std::int64_t totalSteps) {
  if (step < 0) step = 0;
  if (schedule.warmupSteps > 0 && step < schedule.warmupSteps) {
    return baseRate * double(step + 1) / double(schedule.warmupSteps);
  }
  if (schedule.type == "step") {
    std::int64_t epoch = stepsPerEpoch > 0 ? step / stepsPerEpoch : 0;
    std::int64_t drops = schedule.stepEpochs > 0 ? epoch / schedule.stepEpochs : 0;
    return baseRate * std::pow(schedule.gamma, double(drops));
  }
  if (schedule.type == "cosine") {
    std::int64_t span = totalSteps - schedule.warmupSteps;
    if (span <= 1) return baseRate;
    double progress = double(step - schedule.warmupSteps) / double(span - 1);
    progress = std::clamp(progress, 0.0, 1.0);
    return schedule.minLearningRate + 0.5 * (baseRate - schedule.minLearningRate) *
                                          (1.0 + std::cos(std::numbers::pi * progress));
  }
  return baseRate;
}

}  // namespace deviceops::training
