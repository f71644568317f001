// Model construction and weights files, TorchScript jobs, the metric bookkeeping and the
// checkpoint files — the pieces under trainer_test.cc's end-to-end runs.
#include "trainer/model.h"

#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <fstream>
#include <random>

#include "common/testing/temp_dir.h"
#include "trainer/checkpoint_files.h"
#include "trainer/objective.h"
#include "trainer/trainer.h"

namespace deviceops::trainer {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::vector<std::string> names(const NamedTensors& tensors) {
  std::vector<std::string> out;
  for (const auto& entry : tensors) out.push_back(entry.first);
  return out;
}

training::ModelSpec mlp() {
  training::ModelSpec spec;
  spec.inputs = 3;
  spec.outputs = 2;
  spec.mlp.hidden = {4};
  spec.mlp.batchNorm = true;
  return spec;
}

TEST(ModelTest, BuiltInParametersAreNamedAfterTheLayers) {
  auto model = buildModel(mlp());
  ASSERT_TRUE(model.ok());
  EXPECT_EQ(names((*model)->parameters()),
            (std::vector<std::string>{"l0.weight", "l0.bias", "l1.weight", "l1.bias", "l3.weight",
                                      "l3.bias"}));
  EXPECT_EQ(names(floatTensors(**model)),
            (std::vector<std::string>{"l0.weight", "l0.bias", "l1.weight", "l1.bias", "l3.weight",
                                      "l3.bias", "l1.running_mean", "l1.running_var"}));
  at::Tensor out = (*model)->forward(torch::randn({5, 3}));
  EXPECT_EQ(out.sizes().vec(), (std::vector<std::int64_t>{5, 2}));
}

TEST(ModelTest, SameSeedSameInitialWeights) {
  torch::manual_seed(11);
  auto a = buildModel(mlp());
  torch::manual_seed(11);
  auto b = buildModel(mlp());
  torch::manual_seed(12);
  auto c = buildModel(mlp());
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_TRUE(torch::equal((*a)->parameters()[0].second, (*b)->parameters()[0].second));
  EXPECT_FALSE(torch::equal((*a)->parameters()[0].second, (*c)->parameters()[0].second));
}

TEST(ModelTest, WeightsFileRoundTripsAndRefusesMismatches) {
  auto a = buildModel(mlp());
  auto b = buildModel(mlp());
  ASSERT_TRUE(a.ok() && b.ok());
  training::SafeTensorFile file = weightsFile(**a);
  ASSERT_EQ(file.tensors.size(), 8u);
  EXPECT_EQ(file.tensors["l0.weight"].shape, (std::vector<std::int64_t>{4, 3}));
  ASSERT_TRUE(loadWeights(**b, file).ok());
  for (std::size_t i = 0; i < 6; ++i) {
    EXPECT_TRUE(torch::equal((*a)->parameters()[i].second, (*b)->parameters()[i].second));
  }
  training::SafeTensorFile wrong = file;
  wrong.tensors["l3.weight"] = training::makeF32Tensor({3, 4}, std::vector<float>(12, 0.0f));
  Status status = loadWeights(**b, wrong);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.error().message.find("l3.weight"), std::string::npos);
  wrong = file;
  wrong.tensors.erase("l1.running_var");
  EXPECT_FALSE(loadWeights(**b, wrong).ok());
}

TEST(ModelTest, TorchScriptModelTrainsAndIsSaved) {
  testing::TempDir temp("trainer-model-test");
  // y = 3 x1 - 2 x2 + 1
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> uniform(-1, 1);
  std::vector<float> x, y;
  for (int i = 0; i < 256; ++i) {
    float a = uniform(rng), b = uniform(rng);
    x.insert(x.end(), {a, b});
    y.push_back(3 * a - 2 * b + 1);
  }
  training::SafeTensorFile data;
  data.tensors["features"] = training::makeF32Tensor({256, 2}, x);
  data.tensors["targets"] = training::makeF32Tensor({256}, y);
  ASSERT_TRUE(training::writeSafeTensorsFile(temp.path("data.safetensors"), data).ok());

  torch::jit::Module module("Plane");
  module.register_parameter("weight", torch::zeros({1, 2}, torch::requires_grad()), false);
  module.register_parameter("bias", torch::zeros({1}, torch::requires_grad()), false);
  module.define(R"(
def forward(self, x):
    return torch.matmul(x, self.weight.t()) + self.bias
)");
  module.save(temp.path("plane.pt").string());

  training::JobSpec spec;
  spec.task = training::Task::kRegression;
  spec.loss = "mse";
  spec.model.type = "torchscript";
  spec.model.torchscriptPath = temp.path("plane.pt").string();
  spec.model.inputs = 2;
  spec.model.outputs = 1;
  spec.optimizer.learningRate = 0.05;
  spec.epochs = 30;
  spec.batchSize = 32;
  spec.threads = 1;
  spec.datasetPath = temp.path("data.safetensors").string();
  spec.workDir = temp.path("job").string();
  fs::create_directories(spec.workDir);
  ASSERT_EQ(runTraining(spec, RunOptions{}), kExitCompleted);
  EXPECT_TRUE(fs::exists(temp.path("job/model.pt")));
  auto weights = training::readSafeTensorsFile(temp.path("job/model.safetensors"));
  ASSERT_TRUE(weights.ok());
  ASSERT_NE(weights->find("weight"), nullptr);
  std::vector<float> w = weights->find("weight")->toFloat();
  EXPECT_NEAR(w[0], 3.0, 0.05);
  EXPECT_NEAR(w[1], -2.0, 0.05);
  EXPECT_NEAR(weights->find("bias")->toFloat()[0], 1.0, 0.05);

  // A file that is not TorchScript: the job cannot run.
  std::ofstream(temp.path("junk.pt")) << "junk";
  spec.model.torchscriptPath = temp.path("junk.pt").string();
  EXPECT_EQ(runTraining(spec, RunOptions{}), kExitCannotRun);
}

TEST(ObjectiveTest, EpochsWithoutImprovement) {
  MetricChoice loss{"val_loss", false};
  MetricChoice accuracy{"val_accuracy", true};
  json history = json::array({{{"val_loss", 1.0}, {"val_accuracy", 0.5}},
                              {{"val_loss", 0.8}, {"val_accuracy", 0.6}},
                              {{"val_loss", 0.85}, {"val_accuracy", 0.6}},
                              {{"val_loss", 0.79}, {"val_accuracy", 0.55}}});
  EXPECT_EQ(epochsWithoutImprovement(history, loss, 0.0), 0);
  EXPECT_EQ(epochsWithoutImprovement(history, loss, 0.05), 2);
  EXPECT_EQ(epochsWithoutImprovement(history, accuracy, 0.0), 2);
  EXPECT_EQ(epochsWithoutImprovement(json::array(), loss, 0.0), 0);
  EXPECT_TRUE(better(0.7, 0.8, loss, 0.0));
  EXPECT_FALSE(better(0.7, 0.8, accuracy, 0.0));

  training::JobSpec spec;
  EXPECT_EQ(chooseMetric(spec, true).name, "val_loss");
  EXPECT_EQ(chooseMetric(spec, false).name, "loss");
  spec.earlyStopping.metric = "val_accuracy";
  EXPECT_TRUE(chooseMetric(spec, true).higherIsBetter);
}

TEST(CheckpointFilesTest, ListsPrunesAndWritesSidecars) {
  testing::TempDir temp("trainer-ckpt-test");
  for (std::int64_t step : {5, 40, 12, 300}) {
    ASSERT_TRUE(
        writeCheckpointFile(checkpointPath(temp.root(), step), "step" + std::to_string(step)).ok());
  }
  ASSERT_TRUE(writeCheckpointFile(temp.path("best.pt"), "best").ok());
  std::ofstream(temp.path("ckpt-abc.pt")) << "x";
  std::ofstream(temp.path(".ckpt-0000000999.pt.tmp-1-2")) << "x";
  std::vector<fs::path> files = listCheckpoints(temp.root());
  ASSERT_EQ(files.size(), 4u);
  EXPECT_EQ(files[0].filename(), "ckpt-0000000300.pt");
  EXPECT_EQ(files[3].filename(), "ckpt-0000000005.pt");
  std::ifstream sidecar(sidecarPath(files[0]));
  std::string digest;
  sidecar >> digest;
  EXPECT_EQ(digest.size(), 64u);

  pruneCheckpoints(temp.root(), 2);
  files = listCheckpoints(temp.root());
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(files[1].filename(), "ckpt-0000000040.pt");
  EXPECT_FALSE(fs::exists(temp.path("ckpt-0000000012.pt.sha256")));
  EXPECT_TRUE(fs::exists(temp.path("best.pt")));

  std::vector<std::string> skipped;
  auto chosen = chooseCheckpoint(
      temp.root(),
      [](std::string_view bytes) -> Status {
        if (bytes == "step300") return makeError(ErrorCode::kInvalidArgument, "refused");
        return Status::success();
      },
      [&](const std::string& line) { skipped.push_back(line); });
  ASSERT_TRUE(chosen.ok());
  EXPECT_EQ(chosen->file.filename(), "ckpt-0000000040.pt");
  EXPECT_EQ(chosen->bytes, "step40");
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_NE(skipped[0].find("refused"), std::string::npos);
}

}  // namespace
}  // namespace deviceops::trainer
