// The trainer run in-process: learning, progress events, checkpoints, stop/resume, data
// parallelism, bad jobs, predict. Datasets are made here with the safetensors writer; every run is
// seeded and uses one thread, so results are reproducible.
#include "trainer/trainer.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "common/testing/temp_dir.h"
#include "tensor/npy.h"
#include "trainer/checkpoint_files.h"
#include "trainer/predict.h"
#include "training_formats/safetensors.h"

namespace deviceops::trainer {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using training::JobSpec;
using training::SafeTensorFile;

struct Dataset {
  std::int64_t rows = 0, features = 0;
  std::vector<float> x;
  std::vector<std::int64_t> labels;
  std::vector<float> targets;
};

void writeDataset(const fs::path& file, const Dataset& d) {
  SafeTensorFile contents;
  contents.tensors["features"] = training::makeF32Tensor({d.rows, d.features}, d.x);
  if (!d.labels.empty()) contents.tensors["labels"] = training::makeI64Tensor({d.rows}, d.labels);
  if (!d.targets.empty())
    contents.tensors["targets"] = training::makeF32Tensor({d.rows}, d.targets);
  ASSERT_TRUE(training::writeSafeTensorsFile(file, contents).ok());
}

// Gaussian blobs around `classes` centres in `features` dimensions.
Dataset blobs(std::int64_t rows, std::int64_t features, std::int64_t classes, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> noise(0.0f, 0.5f);
  Dataset d;
  d.rows = rows;
  d.features = features;
  for (std::int64_t i = 0; i < rows; ++i) {
    std::int64_t c = i % classes;
    for (std::int64_t f = 0; f < features; ++f) {
      d.x.push_back(3.0f * std::cos(float(c * 2 + f)) + noise(rng));
    }
    d.labels.push_back(c);
  }
  return d;
}

// y = 3 x1 - 2 x2 + 1 + small noise.
Dataset plane(std::int64_t rows) {
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::normal_distribution<float> noise(0.0f, 0.01f);
  Dataset d;
  d.rows = rows;
  d.features = 2;
  for (std::int64_t i = 0; i < rows; ++i) {
    float a = uniform(rng), b = uniform(rng);
    d.x.insert(d.x.end(), {a, b});
    d.targets.push_back(3 * a - 2 * b + 1 + noise(rng));
  }
  return d;
}

// 1x8x8 images: class 0 bright top half, class 1 bright bottom half.
Dataset images(std::int64_t rows) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> uniform(0.0f, 0.3f);
  Dataset d;
  d.rows = rows;
  d.features = 64;
  for (std::int64_t i = 0; i < rows; ++i) {
    std::int64_t c = i % 2;
    for (int p = 0; p < 64; ++p) d.x.push_back(uniform(rng) + ((p < 32) == (c == 0) ? 1.0f : 0.0f));
    d.labels.push_back(c);
  }
  return d;
}

JobSpec baseJob(const fs::path& dataset, const fs::path& workDir, std::int64_t inputs,
                std::int64_t outputs) {
  JobSpec spec;
  spec.datasetPath = dataset.string();
  spec.workDir = workDir.string();
  spec.model.inputs = inputs;
  spec.model.outputs = outputs;
  spec.model.mlp.hidden = {16};
  spec.loss = "cross_entropy";
  spec.threads = 1;
  spec.epochs = 3;
  spec.batchSize = 32;
  spec.validationSplit = 0.1;
  spec.seed = 7;
  spec.progressIntervalMs = 50;
  spec.optimizer.learningRate = 0.01;
  fs::create_directories(workDir);
  return spec;
}

struct Outcome {
  int exitCode = -1;
  std::vector<json> events;
  std::vector<json> ofType(const std::string& type) const {
    std::vector<json> out;
    for (const json& e : events) {
      if (e.value("type", "") == type) out.push_back(e);
    }
    return out;
  }
};

// Runs one rank with its progress fd on a file and parses the events.
Outcome run(const JobSpec& spec, RunOptions options = {}) {
  fs::path events = fs::path(spec.workDir) / ("events-" + std::to_string(::getpid()) + ".jsonl");
  int fd = ::open(events.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  EXPECT_GE(fd, 0);
  options.progressFd = fd;
  Outcome outcome;
  outcome.exitCode = runTraining(spec, options);
  ::close(fd);
  std::ifstream in(events);
  for (std::string line; std::getline(in, line);) {
    json event = json::parse(line, nullptr, false);
    EXPECT_FALSE(event.is_discarded()) << line;
    outcome.events.push_back(event);
  }
  fs::remove(events);
  return outcome;
}

std::map<std::string, std::vector<float>> weights(const fs::path& workDir) {
  auto file = training::readSafeTensorsFile(workDir / "model.safetensors");
  EXPECT_TRUE(file.ok()) << (file.ok() ? "" : file.error().message);
  std::map<std::string, std::vector<float>> out;
  if (!file.ok()) return out;
  for (const auto& [name, tensor] : file->tensors) out[name] = tensor.toFloat();
  return out;
}

std::string readBytes(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class TrainerTest : public ::testing::Test {
 protected:
  testing::TempDir temp_{"trainer-test"};
};

TEST_F(TrainerTest, LinearRegressionFindsThePlane) {
  writeDataset(temp_.path("plane.safetensors"), plane(512));
  JobSpec spec = baseJob(temp_.path("plane.safetensors"), temp_.path("job"), 2, 1);
  spec.task = training::Task::kRegression;
  spec.loss = "mse";
  spec.model.type = "linear";
  spec.epochs = 40;
  spec.optimizer.learningRate = 0.05;
  Outcome outcome = run(spec);
  ASSERT_EQ(outcome.exitCode, kExitCompleted);
  auto w = weights(temp_.path("job"));
  ASSERT_EQ(w["l0.weight"].size(), 2u);
  EXPECT_NEAR(w["l0.weight"][0], 3.0, 0.05);
  EXPECT_NEAR(w["l0.weight"][1], -2.0, 0.05);
  EXPECT_NEAR(w["l0.bias"][0], 1.0, 0.05);
  json last = outcome.ofType("epoch").back();
  for (const char* key :
       {"loss", "mae", "val_loss", "val_mae", "val_rmse", "seconds", "samplesPerSecond"}) {
    EXPECT_TRUE(last.contains(key)) << key;
  }
  EXPECT_LT(last["val_rmse"].get<double>(), 0.05);
  EXPECT_FALSE(last.contains("accuracy"));
}

TEST_F(TrainerTest, ClassifiesBlobsAndPredicts) {
  writeDataset(temp_.path("blobs.safetensors"), blobs(600, 2, 3, 2));
  JobSpec spec = baseJob(temp_.path("blobs.safetensors"), temp_.path("job"), 2, 3);
  spec.epochs = 10;
  Outcome outcome = run(spec);
  ASSERT_EQ(outcome.exitCode, kExitCompleted);
  json last = outcome.ofType("epoch").back();
  EXPECT_GT(last["val_accuracy"].get<double>(), 0.9);
  EXPECT_GT(last["accuracy"].get<double>(), 0.9);
  EXPECT_FALSE(last.contains("val_mae"));

  // predict: [5, 2] in, [5, 3] out, equal to a forward pass computed here from the weights.
  std::ofstream(temp_.path("job/job.json")) << training::toJson(spec).dump();
  std::vector<float> input = {0, 0, 1, -1, 3, 2, -2, 0.5f, 0.25f, 4};
  inference::Tensor x;
  x.shape = {5, 2};
  x.data.assign(reinterpret_cast<const char*>(input.data()), input.size() * sizeof(float));
  ASSERT_TRUE(inference::writeNpyFile(temp_.path("x.npy"), x).ok());
  PredictRequest request{temp_.path("job/job.json"), temp_.path("job/model.safetensors"),
                         temp_.path("x.npy"), temp_.path("y.npy")};
  Status status = runPredict(request);
  ASSERT_TRUE(status.ok()) << status.error().message;
  auto y = inference::readNpyFile(temp_.path("y.npy"));
  ASSERT_TRUE(y.ok());
  ASSERT_EQ(y->shape, (std::vector<std::int64_t>{5, 3}));
  ASSERT_EQ(y->type, inference::DataType::kFp32);
  std::vector<float> out(15);
  std::memcpy(out.data(), y->data.data(), y->data.size());
  auto w = weights(temp_.path("job"));
  for (int n = 0; n < 5; ++n) {
    std::vector<float> hidden(16);
    for (int h = 0; h < 16; ++h) {
      float v = w["l0.bias"][h];
      for (int i = 0; i < 2; ++i) v += w["l0.weight"][h * 2 + i] * input[n * 2 + i];
      hidden[h] = std::max(v, 0.0f);
    }
    for (int c = 0; c < 3; ++c) {
      float v = w["l2.bias"][c];
      for (int h = 0; h < 16; ++h) v += w["l2.weight"][c * 16 + h] * hidden[h];
      EXPECT_NEAR(out[n * 3 + c], v, 1e-4) << n << "," << c;
    }
  }
  // An input of the wrong width is refused.
  inference::Tensor bad;
  bad.shape = {2, 3};
  bad.data.assign(6 * sizeof(float), '\0');
  ASSERT_TRUE(inference::writeNpyFile(temp_.path("bad.npy"), bad).ok());
  request.input = temp_.path("bad.npy");
  status = runPredict(request);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().code, ErrorCode::kInvalidArgument);
}

TEST_F(TrainerTest, MlpWithBatchNormAndDropoutAndCnnRun) {
  writeDataset(temp_.path("blobs.safetensors"), blobs(203, 2, 3, 3));
  JobSpec spec = baseJob(temp_.path("blobs.safetensors"), temp_.path("mlp"), 2, 3);
  spec.model.mlp.batchNorm = true;
  spec.model.mlp.dropout = 0.2;
  spec.batchSize = 26;  // 183 train samples: the last batch of 1 is dropped for batch norm
  Outcome outcome = run(spec);
  ASSERT_EQ(outcome.exitCode, kExitCompleted);
  EXPECT_EQ(outcome.ofType("started").at(0)["stepsPerEpoch"], 7);
  auto w = weights(temp_.path("mlp"));
  EXPECT_EQ(w["l1.running_mean"].size(), 16u);
  EXPECT_EQ(w.count("l1.num_batches_tracked"), 0u);

  writeDataset(temp_.path("images.safetensors"), images(96));
  JobSpec cnn = baseJob(temp_.path("images.safetensors"), temp_.path("cnn"), 64, 2);
  cnn.model.type = "cnn";
  cnn.model.cnn.height = cnn.model.cnn.width = 8;
  cnn.model.cnn.blocks = {training::ConvBlockSpec{4, 3, 1, 1, true, 2}};
  cnn.model.cnn.head = {8};
  cnn.epochs = 8;
  cnn.batchSize = 16;
  cnn.optimizer.learningRate = 0.02;
  outcome = run(cnn);
  ASSERT_EQ(outcome.exitCode, kExitCompleted);
  EXPECT_GT(outcome.ofType("epoch").back()["val_accuracy"].get<double>(), 0.8);
  w = weights(temp_.path("cnn"));
  EXPECT_EQ(w["l1.weight"].size(), 4u * 1 * 3 * 3);
  EXPECT_EQ(w["l2.running_var"].size(), 4u);
  EXPECT_EQ(w["l6.weight"].size(), 8u * 64);
}

TEST_F(TrainerTest, StoppedAndResumedEndsWithTheSameWeights) {
  writeDataset(temp_.path("blobs.safetensors"), blobs(300, 4, 3, 4));
  JobSpec a = baseJob(temp_.path("blobs.safetensors"), temp_.path("a"), 4, 3);
  a.model.mlp.dropout = 0.1;  // the RNG state must survive the checkpoint too
  a.optimizer.type = "adamw";
  a.optimizer.weightDecay = 0.01;
  a.schedule.type = "cosine";
  a.schedule.warmupSteps = 3;
  ASSERT_EQ(run(a).exitCode, kExitCompleted);

  JobSpec b = a;
  b.workDir = temp_.path("b").string();
  fs::create_directories(b.workDir);
  RunOptions stopping;
  stopping.stopAfter = [](std::int64_t step) { return step == 13; };  // mid epoch 2 of 9 steps
  Outcome stopped = run(b, stopping);
  ASSERT_EQ(stopped.exitCode, kExitStopped);
  ASSERT_EQ(stopped.ofType("stopped").size(), 1u);
  json event = stopped.ofType("stopped")[0];
  EXPECT_EQ(event["step"], 13);
  EXPECT_TRUE(fs::exists(event["checkpoint"].get<std::string>()));
  EXPECT_TRUE(stopped.ofType("completed").empty());
  EXPECT_FALSE(fs::exists(temp_.path("b/model.safetensors")));

  RunOptions resuming;
  resuming.resume = true;
  Outcome resumed = run(b, resuming);
  ASSERT_EQ(resumed.exitCode, kExitCompleted);
  json started = resumed.ofType("started").at(0);
  EXPECT_EQ(started["step"], 13);
  EXPECT_EQ(started["resumedFrom"], event["checkpoint"]);
  EXPECT_EQ(readBytes(temp_.path("a/model.safetensors")),
            readBytes(temp_.path("b/model.safetensors")));
  EXPECT_EQ(resumed.ofType("epoch").size(), 2u);  // epochs 2 and 3
}

TEST_F(TrainerTest, ResumeSkipsCorruptCheckpointsAndKeepsTheNewest) {
  writeDataset(temp_.path("blobs.safetensors"), blobs(300, 4, 3, 4));
  JobSpec spec = baseJob(temp_.path("blobs.safetensors"), temp_.path("orig"), 4, 3);
  spec.checkpoint.everySteps = 4;
  spec.checkpoint.keepLast = 3;
  RunOptions stopping;
  stopping.stopAfter = [](std::int64_t step) { return step == 14; };
  Outcome first = run(spec, stopping);
  ASSERT_EQ(first.exitCode, kExitStopped);
  // Checkpoints at 4, 8, 9 (end of epoch 1, best), 12 and 14 (stop): the newest 3 remain.
  fs::path dir = temp_.path("orig/checkpoints");
  std::vector<fs::path> files = listCheckpoints(dir);
  ASSERT_EQ(files.size(), 3u);
  EXPECT_EQ(files[0].filename(), "ckpt-0000000014.pt");
  EXPECT_EQ(files[2].filename(), "ckpt-0000000009.pt");
  EXPECT_TRUE(fs::exists(dir / "best.pt"));
  EXPECT_TRUE(fs::exists(dir / "best.pt.sha256"));
  EXPECT_FALSE(fs::exists(dir / "ckpt-0000000008.pt.sha256"));
  auto checkpoints = first.ofType("checkpoint");
  ASSERT_EQ(checkpoints.size(), 5u);
  EXPECT_EQ(checkpoints[2]["step"], 9);
  EXPECT_EQ(checkpoints[2]["best"], true);
  EXPECT_EQ(checkpoints[1]["best"], false);

  struct Corruption {
    std::string name;
    std::function<void(const fs::path&)> apply;
  };
  const std::vector<Corruption> corruptions = {
      {"truncated", [](const fs::path& f) { fs::resize_file(f, fs::file_size(f) / 2); }},
      {"flipped byte",
       [](const fs::path& f) {
         std::string bytes = readBytes(f);
         bytes[bytes.size() / 2] ^= 0x40;
         std::ofstream(f, std::ios::binary) << bytes;
       }},
      {"wrong sidecar",
       [](const fs::path& f) { std::ofstream(sidecarPath(f)) << std::string(64, 'a'); }},
      {"no sidecar", [](const fs::path& f) { fs::remove(sidecarPath(f)); }},
      {"valid sidecar, not an archive",
       [](const fs::path& f) { ASSERT_TRUE(writeCheckpointFile(f, "not a torch archive").ok()); }},
  };
  for (const Corruption& corruption : corruptions) {
    SCOPED_TRACE(corruption.name);
    fs::path work = temp_.path("copy");
    fs::remove_all(work);
    fs::copy(temp_.path("orig"), work, fs::copy_options::recursive);
    corruption.apply(work / "checkpoints/ckpt-0000000014.pt");
    JobSpec copy = spec;
    copy.workDir = work.string();
    RunOptions resuming;
    resuming.resume = true;
    resuming.stopAfter = [](std::int64_t) { return true; };  // one step is enough
    Outcome resumed = run(copy, resuming);
    EXPECT_EQ(resumed.exitCode, kExitStopped);
    ASSERT_FALSE(resumed.ofType("started").empty());
    json started = resumed.ofType("started")[0];
    EXPECT_EQ(started["step"], 12);
    EXPECT_EQ(started["resumedFrom"], (work / "checkpoints/ckpt-0000000012.pt").string());
  }

  // No valid checkpoint at all: the job cannot run.
  fs::path empty = temp_.path("empty");
  JobSpec none = spec;
  none.workDir = empty.string();
  fs::create_directories(empty / "checkpoints");
  std::ofstream(empty / "checkpoints/ckpt-0000000003.pt") << "junk";
  RunOptions resuming;
  resuming.resume = true;
  Outcome failed = run(none, resuming);
  EXPECT_EQ(failed.exitCode, kExitCannotRun);
  ASSERT_EQ(failed.ofType("error").size(), 1u);
  EXPECT_NE(failed.ofType("error")[0]["message"].get<std::string>().find("no valid checkpoint"),
            std::string::npos);
}

TEST_F(TrainerTest, EarlyStoppingEndsTheJob) {
  writeDataset(temp_.path("blobs.safetensors"), blobs(200, 2, 3, 6));
  JobSpec spec = baseJob(temp_.path("blobs.safetensors"), temp_.path("job"), 2, 3);
  spec.epochs = 20;
  spec.earlyStopping.enabled = true;
  spec.earlyStopping.patience = 2;
  spec.earlyStopping.minDelta = 1e9;  // nothing counts as an improvement
  Outcome outcome = run(spec);
  ASSERT_EQ(outcome.exitCode, kExitCompleted);
  EXPECT_EQ(outcome.ofType("epoch").size(), 3u);
  EXPECT_EQ(outcome.ofType("completed").at(0)["reason"],
            "early stopping: val_loss did not improve for 2 epochs");
}

TEST_F(TrainerTest, TwoRanksComputeTheSingleRankResult) {
  writeDataset(temp_.path("blobs.safetensors"), blobs(256, 4, 3, 8));
  JobSpec single = baseJob(temp_.path("blobs.safetensors"), temp_.path("one"), 4, 3);
  single.optimizer.type = "sgd";
  single.optimizer.learningRate = 0.1;
  single.optimizer.momentum = 0.9;
  single.batchSize = 30;  // the last global batch (230 % 30 = 20) is uneven too
  single.epochs = 2;
  ASSERT_EQ(run(single).exitCode, kExitCompleted);

  JobSpec parallel = single;
  parallel.workDir = temp_.path("two").string();
  fs::create_directories(parallel.workDir);
  RunOptions rank1;
  rank1.rank = 1;
  rank1.worldSize = 2;
  rank1.rendezvous = temp_.path("rendezvous").string();
  int rank1Exit = -1;
  std::thread other([&] { rank1Exit = runTraining(parallel, rank1); });
  RunOptions rank0 = rank1;
  rank0.rank = 0;
  Outcome outcome = run(parallel, rank0);
  other.join();
  ASSERT_EQ(outcome.exitCode, kExitCompleted);
  ASSERT_EQ(rank1Exit, kExitCompleted);
  EXPECT_EQ(outcome.ofType("started").at(0)["worldSize"], 2);
  // Float sums in another order: equal within 1e-5 (observed differences are ~1e-7).
  auto one = weights(temp_.path("one")), two = weights(temp_.path("two"));
  ASSERT_EQ(one.size(), two.size());
  for (const auto& [name, values] : one) {
    ASSERT_EQ(values.size(), two[name].size()) << name;
    for (std::size_t i = 0; i < values.size(); ++i)
      EXPECT_NEAR(values[i], two[name][i], 1e-5) << name;
  }
}

TEST_F(TrainerTest, BadJobsCannotRun) {
  writeDataset(temp_.path("blobs.safetensors"), blobs(100, 2, 3, 9));
  struct Case {
    std::string name;
    std::function<void(JobSpec&, RunOptions&)> change;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"dataset missing",
       [&](JobSpec& s, RunOptions&) { s.datasetPath = temp_.path("no").string(); }, "dataset"},
      {"inputs mismatch", [](JobSpec& s, RunOptions&) { s.model.inputs = 3; },
       "dataset has 2 features per sample but the model has 3 inputs"},
      {"cnn shape",
       [](JobSpec& s, RunOptions&) {
         s.model.type = "cnn";
         s.model.cnn.height = 2;
         s.model.cnn.width = 2;
       },
       "channels*height*width = 4"},
      {"label outside classes", [](JobSpec& s, RunOptions&) { s.model.outputs = 2; },
       "outside the model's 2 classes"},
      {"regression without targets",
       [](JobSpec& s, RunOptions&) {
         s.task = training::Task::kRegression;
         s.loss = "mse";
         s.model.outputs = 1;
       },
       "no numeric targets"},
      {"no cuda", [](JobSpec&, RunOptions& o) { o.device = "cuda:0"; }, "cuda:0"},
      {"bad device", [](JobSpec&, RunOptions& o) { o.device = "tpu"; }, "unknown device"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    JobSpec spec = baseJob(temp_.path("blobs.safetensors"), temp_.path("job"), 2, 3);
    RunOptions options;
    c.change(spec, options);
    Outcome outcome = run(spec, options);
    EXPECT_EQ(outcome.exitCode, kExitCannotRun);
    ASSERT_EQ(outcome.events.size(), 1u);
    EXPECT_EQ(outcome.events[0]["type"], "error");
    EXPECT_NE(outcome.events[0]["message"].get<std::string>().find(c.message), std::string::npos)
        << outcome.events[0].dump();
  }
}

TEST_F(TrainerTest, ProgressEventsOnAPipeCarryTheDocumentedFields) {
  writeDataset(temp_.path("blobs.safetensors"), blobs(400, 2, 3, 10));
  JobSpec spec = baseJob(temp_.path("blobs.safetensors"), temp_.path("job"), 2, 3);
  spec.epochs = 2;
  spec.batchSize = 16;
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  std::string text;
  std::thread reader([&] {
    char buffer[4096];
    for (ssize_t n; (n = ::read(fds[0], buffer, sizeof buffer)) > 0;) text.append(buffer, n);
  });
  RunOptions options;
  options.progressFd = fds[1];
  options.stopAfter = [](std::int64_t step) {
    if (step % 10 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(30));
    return false;
  };
  int exitCode = runTraining(spec, options);
  ::close(fds[1]);
  reader.join();
  ::close(fds[0]);
  ASSERT_EQ(exitCode, kExitCompleted);
  std::map<std::string, std::vector<json>> byType;
  std::istringstream lines(text);
  std::vector<std::string> order;
  for (std::string line; std::getline(lines, line);) {
    json event = json::parse(line, nullptr, false);
    ASSERT_TRUE(event.is_object()) << line;
    order.push_back(event["type"]);
    byType[event["type"]].push_back(event);
  }
  ASSERT_FALSE(order.empty());
  EXPECT_EQ(order.front(), "started");
  EXPECT_EQ(order.back(), "completed");
  const std::map<std::string, std::vector<std::string>> fields = {
      {"started",
       {"step", "totalSteps", "stepsPerEpoch", "epochs", "device", "threads", "worldSize",
        "parameters", "trainSamples", "validationSamples", "resumedFrom"}},
      {"progress",
       {"epoch", "step", "totalSteps", "loss", "learningRate", "samplesPerSecond",
        "elapsedSeconds"}},
      {"epoch",
       {"epoch", "step", "loss", "accuracy", "val_loss", "val_accuracy", "seconds",
        "samplesPerSecond", "learningRate", "elapsedSeconds"}},
      {"checkpoint", {"step", "epoch", "file", "best"}},
      {"completed", {"step", "weights", "reason"}},
  };
  for (const auto& [type, keys] : fields) {
    ASSERT_FALSE(byType[type].empty()) << type;
    for (const json& event : byType[type]) {
      for (const std::string& key : keys) EXPECT_TRUE(event.contains(key)) << type << "." << key;
    }
  }
  json started = byType["started"][0];
  EXPECT_EQ(started["step"], 0);
  EXPECT_TRUE(started["resumedFrom"].is_null());
  EXPECT_EQ(started["trainSamples"], 360);
  EXPECT_EQ(started["validationSamples"], 40);
  EXPECT_EQ(started["stepsPerEpoch"], 23);
  EXPECT_EQ(started["totalSteps"], 46);
  EXPECT_EQ(started["parameters"], (2 * 16 + 16) + (16 * 3 + 3));
  EXPECT_EQ(byType["epoch"].size(), 2u);
  EXPECT_EQ(byType["completed"][0]["step"], 46);
  EXPECT_EQ(byType["completed"][0]["reason"], "finished all epochs");
  for (const json& p : byType["progress"]) {
    EXPECT_GT(p["loss"].get<double>(), 0.0);
    EXPECT_DOUBLE_EQ(p["learningRate"].get<double>(), 0.01);
    EXPECT_GT(p["samplesPerSecond"].get<double>(), 0.0);
  }
  EXPECT_TRUE(fs::exists(byType["completed"][0]["weights"].get<std::string>()));
  // Epoch events carry the running totals too (a job shorter than one progress interval has
  // only these): elapsed time grows epoch by epoch.
  EXPECT_DOUBLE_EQ(byType["epoch"][0]["learningRate"].get<double>(), 0.01);
  EXPECT_GT(byType["epoch"][1]["elapsedSeconds"].get<double>(),
            byType["epoch"][0]["elapsedSeconds"].get<double>());
}

}  // namespace
}  // namespace deviceops::trainer
