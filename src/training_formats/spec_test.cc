#include "training_formats/spec.h"

#include <gtest/gtest.h>

#include <cmath>

namespace deviceops::training {
namespace {

using nlohmann::json;

std::string parseError(const json& body) {
  Result<JobSpec> spec = parseJobSpec(body);
  if (spec.ok()) return "";
  EXPECT_EQ(spec.error().code, ErrorCode::kInvalidArgument);
  return spec.error().message;
}

TEST(JobSpecTest, EmptyBodyTakesDefaults) {
  Result<JobSpec> spec = parseJobSpec(json::object());
  ASSERT_TRUE(spec.ok()) << spec.error().message;
  EXPECT_EQ(spec->task, Task::kClassification);
  EXPECT_EQ(spec->loss, "cross_entropy");
  EXPECT_EQ(spec->model.type, "mlp");
  EXPECT_EQ(spec->model.mlp.hidden, std::vector<std::int64_t>{128});
  EXPECT_EQ(spec->epochs, 10);
  EXPECT_EQ(spec->optimizer.type, "adam");
  EXPECT_EQ(spec->devices, std::vector<std::string>{"cpu"});
}

TEST(JobSpecTest, LossDefaultsByTask) {
  Result<JobSpec> spec = parseJobSpec({{"task", "regression"}});
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(spec->loss, "mse");
}

TEST(JobSpecTest, ReadsEveryField) {
  json body = {{"name", "demo"},
               {"dataset", "ds1"},
               {"task", "regression"},
               {"loss", "huber"},
               {"model",
                {{"type", "mlp"},
                 {"hidden", {32, 16}},
                 {"activation", "gelu"},
                 {"dropout", 0.25},
                 {"batchNorm", true}}},
               {"optimizer",
                {{"type", "sgd"},
                 {"learningRate", 0.05},
                 {"momentum", 0.9},
                 {"nesterov", true},
                 {"weightDecay", 1e-4}}},
               {"schedule", {{"type", "cosine"}, {"warmupSteps", 10}, {"minLearningRate", 1e-5}}},
               {"epochs", 7},
               {"batchSize", 128},
               {"validationSplit", 0.2},
               {"seed", 42},
               {"devices", {"cpu", "cpu"}},
               {"threads", 2},
               {"checkpoint", {{"everySteps", 100}, {"keepLast", 5}, {"keepBest", false}}},
               {"earlyStopping",
                {{"enabled", true}, {"metric", "val_mae"}, {"patience", 4}, {"minDelta", 0.01}}},
               {"progressIntervalMs", 1000},
               {"memoryBytes", 1048576}};
  Result<JobSpec> spec = parseJobSpec(body);
  ASSERT_TRUE(spec.ok()) << spec.error().message;
  EXPECT_EQ(spec->name, "demo");
  EXPECT_EQ(spec->loss, "huber");
  EXPECT_EQ(spec->model.mlp.hidden, (std::vector<std::int64_t>{32, 16}));
  EXPECT_EQ(spec->model.mlp.activation, Activation::kGelu);
  EXPECT_DOUBLE_EQ(spec->model.mlp.dropout, 0.25);
  EXPECT_TRUE(spec->model.mlp.batchNorm);
  EXPECT_EQ(spec->optimizer.type, "sgd");
  EXPECT_TRUE(spec->optimizer.nesterov);
  EXPECT_EQ(spec->schedule.warmupSteps, 10);
  EXPECT_EQ(spec->seed, 42u);
  EXPECT_EQ(spec->devices.size(), 2u);
  EXPECT_EQ(spec->checkpoint.keepLast, 5);
  EXPECT_FALSE(spec->checkpoint.keepBest);
  EXPECT_EQ(spec->earlyStopping.metric, "val_mae");
  EXPECT_EQ(spec->memoryBytes, std::optional<std::uint64_t>(1048576));
}

TEST(JobSpecTest, RefusesBadInputNamingTheField) {
  struct Case {
    json body;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{{"foo", 1}}, "unknown field \"foo\""},
      {{{"optimizer", {{"lr", 1}}}}, "optimizer: unknown field \"lr\""},
      {{{"epochs", "3"}}, "epochs: expected an integer"},
      {{{"epochs", 2.5}}, "epochs: expected an integer"},
      {{{"epochs", 0}}, "epochs: must be between 1 and 100000"},
      {{{"epochs", 100001}}, "epochs: must be between 1 and 100000"},
      {{{"batchSize", 1000001}}, "batchSize: must be between 1 and 1000000"},
      {{{"optimizer", {{"learningRate", 0}}}}, "optimizer.learningRate: must be > 0"},
      {{{"optimizer", {{"type", "rmsprop"}}}}, "optimizer.type: must be one of"},
      {{{"validationSplit", 0.95}}, "validationSplit: must be in [0, 0.9]"},
      {{{"loss", "mse"}}, "loss: must be one of \"cross_entropy\""},
      {{{"task", "regression"}, {"loss", "cross_entropy"}}, "loss: must be one of \"mse\""},
      {{{"task", "ranking"}}, "task: must be one of"},
      {{{"devices", json::array()}}, "devices: expected an array of 1 to 64 device ids"},
      {{{"devices", std::vector<std::string>(65, "cpu")}}, "devices: expected an array"},
      {{{"devices", {"cpu", 3}}}, "devices[1]: expected a device id"},
      {{{"threads", 1025}}, "threads: must be between 0 and 1024"},
      {{{"checkpoint", {{"keepLast", 0}}}}, "checkpoint.keepLast: must be between 1 and 100"},
      {{{"checkpoint", {{"keepLast", 101}}}}, "checkpoint.keepLast: must be between 1 and 100"},
      {{{"progressIntervalMs", 49}}, "progressIntervalMs: must be between 50 and 60000"},
      {{{"model", {{"hidden", {0}}}}}, "model.hidden[0]: must be between 1 and 65536"},
      {{{"model", {{"hidden", {65537}}}}}, "model.hidden[0]: must be between 1 and 65536"},
      {{{"model", {{"hidden", std::vector<int>(65, 8)}}}}, "model.hidden: must have 0 to 64"},
      {{{"model", {{"dropout", 1.0}}}}, "model.dropout: must be in [0, 1)"},
      {{{"model", {{"activation", "swish"}}}}, "model.activation: must be one of"},
      {{{"model", {{"type", "rnn"}}}}, "model.type: must be one of"},
      {{{"model", {{"type", "linear"}, {"hidden", {4}}}}}, "model: unknown field \"hidden\""},
      {{{"model", {{"type", "mlp"}, {"inputs", 4}}}}, "model: unknown field \"inputs\""},
      {{{"model", {{"type", "torchscript"}, {"torchscriptPath", "/x.pt"}}}},
       "model: unknown field \"torchscriptPath\""},
      {{{"model", {{"type", "cnn"}, {"height", 8}}}}, "model.width: required for a cnn"},
      {{{"model", {{"type", "cnn"}, {"height", 8}, {"width", 8}, {"blocks", {{{"kernel", 0}}}}}}},
       "model.blocks[0].kernel: must be between 1 and 1024"},
      {{{"model",
         {{"type", "cnn"},
          {"height", 4},
          {"width", 4},
          {"blocks", {{{"pool", 2}}, {{"pool", 2}}, {{"pool", 2}}}}}}},
       "model.blocks[2]: the image shrinks below 1x1"},
      {{{"earlyStopping", {{"metric", "val_mae"}}}}, "earlyStopping.metric: must be one of"},
      {{{"earlyStopping", {{"enabled", true}}}, {"validationSplit", 0}},
       "earlyStopping.metric: val_loss needs validationSplit > 0"},
      {{{"seed", -1}}, "seed: expected a non-negative integer"},
      {{{"datasetPath", "/etc/passwd"}}, "unknown field \"datasetPath\""},
      {{{"optimizer", 3}}, "optimizer: expected an object"},
      {json::array(), "body: expected an object"},
      {{{"memoryBytes", 0}}, "memoryBytes: expected a positive integer"},
      {{{"memoryBytes", -5}}, "memoryBytes: expected a positive integer"},
      {{{"optimizer", {{"nesterov", true}}}}, "optimizer.nesterov: needs momentum > 0"},
      {{{"schedule", {{"gamma", 0}}}}, "schedule.gamma: must be in (0, 1]"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.body.dump());
    std::string message = parseError(c.body);
    EXPECT_NE(message.find(c.message), std::string::npos) << "got: " << message;
  }
}

JobSpec fullSpec() {
  json body = {
      {"task", "classification"},
      {"model",
       {{"type", "cnn"},
        {"channels", 1},
        {"height", 8},
        {"width", 8},
        {"blocks",
         {{{"channels", 4}, {"kernel", 3}, {"padding", 1}, {"batchNorm", true}, {"pool", 2}}}},
        {"head", {16}},
        {"activation", "tanh"},
        {"dropout", 0.1}}},
      {"seed", 18446744073709551615ull},
      {"optimizer", {{"learningRate", 0.1234567891234}}},
      {"memoryBytes", 123}};
  Result<JobSpec> spec = parseJobSpec(body);
  EXPECT_TRUE(spec.ok()) << spec.error().message;
  JobSpec out = *spec;
  out.model.inputs = 64;
  out.model.outputs = 3;
  out.datasetPath = "/data/training/datasets/d1/data.safetensors";
  out.workDir = "/data/training/jobs/j1";
  return out;
}

TEST(JobSpecTest, JobFileRoundTrips) {
  for (const std::string type : {"cnn", "mlp", "linear", "torchscript"}) {
    SCOPED_TRACE(type);
    JobSpec spec = fullSpec();
    spec.model.type = type;
    if (type == "torchscript") spec.model.torchscriptPath = "/data/models/m.pt";
    json first = toJson(spec);
    Result<JobSpec> back = parseJobFile(first);
    ASSERT_TRUE(back.ok()) << back.error().message;
    EXPECT_EQ(toJson(*back), first);
    EXPECT_EQ(back->datasetPath, spec.datasetPath);
    EXPECT_EQ(back->model.inputs, 64);
  }
}

TEST(JobSpecTest, ClientBodyCannotSetDaemonFields) {
  json file = toJson(fullSpec());
  EXPECT_TRUE(parseJobFile(file).ok());
  EXPECT_FALSE(parseJobSpec(file).ok());
}

TEST(ModelSpecTest, ValidatesCnnAgainstInputs) {
  JobSpec spec = fullSpec();
  EXPECT_TRUE(validateModelSpec(spec.model).ok());
  spec.model.inputs = 65;
  Status s = validateModelSpec(spec.model);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("channels*height*width = 64"), std::string::npos);
  spec.model.inputs = 64;
  spec.model.outputs = 0;
  EXPECT_FALSE(validateModelSpec(spec.model).ok());
}

TEST(ModelSpecTest, MlpLayers) {
  ModelSpec model;
  model.inputs = 10;
  model.outputs = 3;
  model.mlp.hidden = {8, 4};
  model.mlp.batchNorm = true;
  model.mlp.dropout = 0.5;
  std::vector<Layer> layers = buildLayers(model);
  std::vector<LayerKind> kinds;
  for (const Layer& l : layers) kinds.push_back(l.kind);
  using K = LayerKind;
  EXPECT_EQ(kinds,
            (std::vector<K>{K::kLinear, K::kBatchNorm, K::kActivation, K::kDropout, K::kLinear,
                            K::kBatchNorm, K::kActivation, K::kDropout, K::kLinear}));
  for (std::size_t i = 0; i < layers.size(); ++i)
    EXPECT_EQ(layers[i].name, "l" + std::to_string(i));
  EXPECT_EQ(layers[0].in, 10);
  EXPECT_EQ(layers[0].out, 8);
  EXPECT_EQ(layers[4].in, 8);
  EXPECT_EQ(layers[8].out, 3);
  EXPECT_EQ(parameterCount(model), (10 * 8 + 8) + 2 * 8 + (8 * 4 + 4) + 2 * 4 + (4 * 3 + 3));
  model.mlp.dropout = 0;
  model.mlp.batchNorm = false;
  EXPECT_EQ(buildLayers(model).size(), 5u);
  model.type = "linear";
  ASSERT_EQ(buildLayers(model).size(), 1u);
  EXPECT_EQ(parameterCount(model), 10 * 3 + 3);
}

TEST(ModelSpecTest, CnnLayers) {
  JobSpec spec = fullSpec();
  std::vector<Layer> layers = buildLayers(spec.model);
  using K = LayerKind;
  std::vector<K> kinds;
  for (const Layer& l : layers) kinds.push_back(l.kind);
  EXPECT_EQ(kinds,
            (std::vector<K>{K::kReshape, K::kConv2d, K::kBatchNorm, K::kActivation, K::kMaxPool2d,
                            K::kFlatten, K::kLinear, K::kActivation, K::kDropout, K::kLinear}));
  EXPECT_EQ(layers[0].shape, (std::vector<std::int64_t>{1, 8, 8}));
  EXPECT_EQ(layers[1].kernel, 3);
  EXPECT_EQ(layers[1].padding, 1);
  EXPECT_TRUE(layers[2].spatial);
  EXPECT_EQ(layers[4].kernel, 2);
  EXPECT_EQ(layers[5].out, 4 * 4 * 4);
  EXPECT_EQ(layers[6].in, 64);
  EXPECT_EQ(layers[9].out, 3);
  EXPECT_EQ(parameterCount(spec.model), (4 * 9 + 4) + 8 + (64 * 16 + 16) + (16 * 3 + 3));
}

TEST(LearningRateTest, Curves) {
  ScheduleSpec constant;
  EXPECT_DOUBLE_EQ(learningRateAt(constant, 0.1, 0, 10, 100), 0.1);
  EXPECT_DOUBLE_EQ(learningRateAt(constant, 0.1, 99, 10, 100), 0.1);

  ScheduleSpec warm;
  warm.warmupSteps = 4;
  EXPECT_DOUBLE_EQ(learningRateAt(warm, 0.1, 0, 10, 100), 0.025);
  EXPECT_DOUBLE_EQ(learningRateAt(warm, 0.1, 1, 10, 100), 0.05);
  EXPECT_DOUBLE_EQ(learningRateAt(warm, 0.1, 3, 10, 100), 0.1);
  EXPECT_DOUBLE_EQ(learningRateAt(warm, 0.1, 50, 10, 100), 0.1);

  ScheduleSpec step;
  step.type = "step";
  step.stepEpochs = 2;
  step.gamma = 0.5;
  EXPECT_DOUBLE_EQ(learningRateAt(step, 0.1, 19, 10, 100), 0.1);   // epoch 2 (0-based 1)
  EXPECT_DOUBLE_EQ(learningRateAt(step, 0.1, 20, 10, 100), 0.05);  // epoch 3
  EXPECT_DOUBLE_EQ(learningRateAt(step, 0.1, 45, 10, 100), 0.025);

  ScheduleSpec cosine;
  cosine.type = "cosine";
  cosine.minLearningRate = 0.01;
  EXPECT_DOUBLE_EQ(learningRateAt(cosine, 0.1, 0, 10, 101), 0.1);
  EXPECT_NEAR(learningRateAt(cosine, 0.1, 50, 10, 101), 0.055, 1e-12);
  EXPECT_NEAR(learningRateAt(cosine, 0.1, 100, 10, 101), 0.01, 1e-12);
  double previous = 1;
  for (int s = 0; s < 101; ++s) {
    double rate = learningRateAt(cosine, 0.1, s, 10, 101);
    EXPECT_LE(rate, previous);
    previous = rate;
  }
  cosine.warmupSteps = 10;
  EXPECT_DOUBLE_EQ(learningRateAt(cosine, 0.1, 4, 10, 110), 0.05);
  EXPECT_DOUBLE_EQ(learningRateAt(cosine, 0.1, 10, 10, 110), 0.1);
  EXPECT_NEAR(learningRateAt(cosine, 0.1, 109, 10, 110), 0.01, 1e-12);
}

TEST(NamesTest, TaskAndActivation) {
  EXPECT_EQ(taskName(Task::kRegression), "regression");
  EXPECT_EQ(activationName(Activation::kLeakyRelu), "leaky_relu");
  EXPECT_EQ(activationName(Activation::kSigmoid), "sigmoid");
}

}  // namespace
}  // namespace deviceops::training
