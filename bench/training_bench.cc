// Training throughput, side by side in one run on one machine (issue 6, docs/BENCHMARKS.md §6):
//   bare     the honest minimal libtorch loop: this program as `training_bench bare ...`, in a
//            fresh process (the baseline);
//   trainer  deviceops-trainer train, with a job.json written here and progress read from fd 3;
//   python   the same loop in PyTorch (bench/training_bench.py, Debian's python3-torch: the same
//            libtorch 1.13).
// All three: Fashion-MNIST features [N, 784] (the .npy files of tests/models/make_datasets.py),
// MLP 784-256-128-10 ReLU initialised after manual_seed(seed), Adam lr 1e-3, batch 128, cross
// entropy, the same sample order (docs/TRAINING.md, "Training semantics", validation split 0) and
// the same intra-op thread count. Throughput counts the epochs only; CPU time and the wall time
// of the whole process (start-up and data loading included) are reported beside it.
//
//   training_bench [--data DIR] [--epochs 5] [--threads 1,2] [--repeats 3] [--work DIR]
//                  [--python /usr/bin/python3]
//   training_bench bare --dataset data.safetensors --epochs E --threads T   (one baseline run)
// Prints Markdown tables (median of the repeats) on stdout, progress on stderr.
#include <ATen/CPUGeneratorImpl.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "tensor/npy.h"
#include "training_formats/safetensors.h"
#include "training_formats/spec.h"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using SteadyClock = std::chrono::steady_clock;
constexpr std::int64_t kBatch = 128;
constexpr std::uint64_t kSeed = 0;
constexpr double kLearningRate = 1e-3;

std::vector<int> parseList(const std::string& text) {
  std::vector<int> out;
  std::stringstream stream(text);
  for (std::string part; std::getline(stream, part, ',');) out.push_back(std::stoi(part));
  return out;
}

// --- the baseline: the minimal loop, run in its own process ---------------------------------

// JSON lines on stdout: {"type":"started"} when the first epoch starts, then
// {"type":"done","epochs":[{"seconds","loss"}],"samples":N,"threads":T}.
int runBare(const fs::path& dataset, int epochs, int threads) {
  at::set_num_threads(threads);
  auto file = deviceops::training::readSafeTensorsFile(dataset);
  if (!file.ok()) throw std::runtime_error(file.error().message);
  const auto& f = file->tensors.at("features");
  const auto& l = file->tensors.at("labels");
  const std::int64_t n = f.shape[0];
  at::Tensor features = torch::empty({n, f.shape[1]}, at::kFloat);
  at::Tensor labels = torch::empty({n}, at::kLong);
  std::memcpy(features.data_ptr(), f.data.data(), f.data.size());
  std::memcpy(labels.data_ptr(), l.data.data(), l.data.size());
  // The trainer's validation-split permutation (split 0 keeps every sample, in this order).
  at::Tensor order = at::randperm(n, at::detail::createCPUGenerator(kSeed), at::kLong);
  features = features.index_select(0, order);
  labels = labels.index_select(0, order);

  // Layers built one statement at a time: they draw their initial values from the global RNG in
  // this order (the order of function arguments would be unspecified).
  torch::manual_seed(kSeed);
  torch::nn::Sequential model;
  model->push_back(torch::nn::Linear(784, 256));
  model->push_back(torch::nn::ReLU());
  model->push_back(torch::nn::Linear(256, 128));
  model->push_back(torch::nn::ReLU());
  model->push_back(torch::nn::Linear(128, 10));
  model->train();
  torch::optim::Adam optimizer(model->parameters(), torch::optim::AdamOptions(kLearningRate));
  std::cout << json{{"type", "started"}}.dump() << std::endl;

  json results = json::array();
  for (int epoch = 1; epoch <= epochs; ++epoch) {
    const auto start = SteadyClock::now();
    at::Tensor perm = at::randperm(n, at::detail::createCPUGenerator(kSeed + epoch), at::kLong);
    at::Tensor lossSum = torch::zeros({}, at::kDouble);
    for (std::int64_t begin = 0; begin < n; begin += kBatch) {
      const std::int64_t length = std::min(kBatch, n - begin);
      at::Tensor index = perm.narrow(0, begin, length);
      at::Tensor x = features.index_select(0, index);
      at::Tensor y = labels.index_select(0, index);
      optimizer.zero_grad();
      at::Tensor loss = torch::nn::functional::cross_entropy(model->forward(x), y);
      loss.backward();
      optimizer.step();
      lossSum.add_(loss.detach(), double(length));
    }
    const double seconds = std::chrono::duration<double>(SteadyClock::now() - start).count();
    results.push_back({{"seconds", seconds}, {"loss", lossSum.item<double>() / double(n)}});
  }
  std::cout << json{{"type", "done"},
                    {"epochs", results},
                    {"samples", n},
                    {"threads", at::get_num_threads()}}
                   .dump()
            << std::endl;
  return 0;
}

// --- child processes ------------------------------------------------------------------------

struct Line {
  json value;
  double at = 0;   // seconds since the child was spawned
  double cpu = 0;  // the child's CPU seconds (user + system, all threads) at that moment
};

struct ChildRun {
  std::vector<Line> lines;
  int status = 0;
  double wallSeconds = 0;  // spawn to exit
};

double cpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), {});
  std::size_t paren = text.rfind(')');
  if (paren == std::string::npos) return -1;
  std::istringstream fields(text.substr(paren + 2));
  std::string field;
  double ticks = 0;
  for (int i = 0; i < 13 && fields >> field; ++i) {
    if (i == 11 || i == 12) ticks += std::stod(field);  // utime, stime
  }
  return ticks / double(sysconf(_SC_CLK_TCK));
}

// Runs argv with `lineFd` (1 or 3) a pipe whose JSON lines are read, timed and returned; the
// child's other output goes to `log`. Throws on a spawn failure.
ChildRun runChild(const std::vector<std::string>& argv, int lineFd, const fs::path& log) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 2, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 2, 1);
  posix_spawn_file_actions_adddup2(&actions, fds[1], lineFd);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const auto start = SteadyClock::now();
  pid_t pid = 0;
  int rc = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  if (rc != 0) {
    close(fds[0]);
    throw std::runtime_error("cannot start " + argv[0] + ": " + std::strerror(rc));
  }
  ChildRun run;
  std::string buffer;
  char chunk[4096];
  for (ssize_t got; (got = read(fds[0], chunk, sizeof chunk)) != 0;) {
    if (got < 0) {
      if (errno == EINTR) continue;
      break;
    }
    buffer.append(chunk, std::size_t(got));
    for (std::size_t end; (end = buffer.find('\n')) != std::string::npos;) {
      const double at = std::chrono::duration<double>(SteadyClock::now() - start).count();
      json value = json::parse(buffer.substr(0, end), nullptr, false);
      buffer.erase(0, end + 1);
      if (!value.is_discarded()) run.lines.push_back({std::move(value), at, cpuSeconds(pid)});
    }
  }
  close(fds[0]);
  waitpid(pid, &run.status, 0);
  run.wallSeconds = std::chrono::duration<double>(SteadyClock::now() - start).count();
  return run;
}

// --- one measured run of one variant --------------------------------------------------------

struct Measurement {
  double samplesPerSecond = 0;  // samples of all epochs / their summed seconds
  double trainCpuSeconds = 0;   // CPU seconds from "started" to the end of training
  double trainWallSeconds = 0;  // wall seconds over the same span
  double wallSeconds = 0;       // the whole process
  double lastLoss = 0;          // mean training loss of the last epoch
};

struct Options {
  fs::path data, work, python = "/usr/bin/python3";
  int epochs = 5, repeats = 3;
  std::vector<int> threads{1, 2};
};

const Line* findLine(const ChildRun& run, const std::string& type) {
  for (const auto& line : run.lines) {
    if (line.value.value("type", "") == type) return &line;
  }
  return nullptr;
}

std::string failure(const ChildRun& run, const fs::path& log) {
  std::ifstream in(log);
  std::string text((std::istreambuf_iterator<char>(in)), {}), tail;
  tail = text.size() > 2000 ? text.substr(text.size() - 2000) : text;
  return fmt::format("exit status {:#x}; log {}:\n{}", run.status, log.string(), tail);
}

// Bare loop and Python: "started", then "done" with the epochs.
Measurement measureLoop(const std::vector<std::string>& argv, const fs::path& log) {
  ChildRun run = runChild(argv, 1, log);
  const Line* started = findLine(run, "started");
  const Line* done = findLine(run, "done");
  if (run.status != 0 || !started || !done) throw std::runtime_error(failure(run, log));
  Measurement m;
  double seconds = 0;
  for (const auto& epoch : done->value["epochs"]) seconds += epoch["seconds"].get<double>();
  const double samples =
      done->value["samples"].get<double>() * double(done->value["epochs"].size());
  m.samplesPerSecond = samples / seconds;
  m.trainCpuSeconds = done->cpu - started->cpu;
  m.trainWallSeconds = done->at - started->at;
  m.wallSeconds = run.wallSeconds;
  m.lastLoss = done->value["epochs"].back()["loss"];
  return m;
}

// deviceops-trainer: "epoch" events carry seconds and samplesPerSecond; "completed" ends it
// (after the final checkpoint and model.safetensors, which the training span includes).
Measurement measureTrainer(const Options& o, const fs::path& dataset, int threads,
                           const fs::path& workDir) {
  namespace training = deviceops::training;
  fs::remove_all(workDir);
  fs::create_directories(workDir / "logs");
  training::JobSpec spec;
  spec.name = "training_bench";
  spec.dataset = "fashion-mnist";
  spec.loss = "cross_entropy";
  spec.model.type = "mlp";
  spec.model.inputs = 784;
  spec.model.outputs = 10;
  spec.model.mlp.hidden = {256, 128};
  spec.optimizer.learningRate = kLearningRate;
  spec.epochs = o.epochs;
  spec.batchSize = kBatch;
  spec.validationSplit = 0;
  spec.seed = kSeed;
  spec.threads = threads;
  spec.datasetPath = fs::absolute(dataset).string();
  spec.workDir = fs::absolute(workDir).string();
  std::ofstream(workDir / "job.json") << training::toJson(spec).dump(2) << "\n";
  const fs::path log = workDir / "logs" / "rank-0.log";
  ChildRun run =
      runChild({DEVICEOPS_TRAINER_PATH, "train", "--job", (workDir / "job.json").string(), "--rank",
                "0", "--world-size", "1", "--device", "cpu", "--rendezvous",
                (workDir / "rendezvous").string(), "--progress-fd", "3"},
               3, log);
  const Line* started = findLine(run, "started");
  const Line* completed = findLine(run, "completed");
  if (run.status != 0 || !started || !completed) throw std::runtime_error(failure(run, log));
  Measurement m;
  double seconds = 0, samples = 0;
  for (const auto& line : run.lines) {
    if (line.value["type"] != "epoch") continue;
    seconds += line.value["seconds"].get<double>();
    samples += line.value["samplesPerSecond"].get<double>() * line.value["seconds"].get<double>();
    m.lastLoss = line.value["loss"];
  }
  m.samplesPerSecond = samples / seconds;
  m.trainCpuSeconds = completed->cpu - started->cpu;
  m.trainWallSeconds = completed->at - started->at;
  m.wallSeconds = run.wallSeconds;
  return m;
}

// --- orchestration --------------------------------------------------------------------------

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

std::string loadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

// The canonical dataset file (docs/TRAINING.md) from the .npy files; `samples` = N.
fs::path writeDataset(const Options& o, std::int64_t& samples) {
  auto features = deviceops::inference::readNpyFile(o.data / "fashion_train_features.npy");
  auto labels = deviceops::inference::readNpyFile(o.data / "fashion_train_labels.npy");
  if (!features.ok()) throw std::runtime_error(features.error().message);
  if (!labels.ok()) throw std::runtime_error(labels.error().message);
  using deviceops::inference::DataType;
  if (features->type != DataType::kFp32 || features->shape.size() != 2 ||
      features->shape[1] != 784 || labels->type != DataType::kInt64 ||
      labels->shape != std::vector<std::int64_t>{features->shape[0]}) {
    throw std::runtime_error("expected float32 [N, 784] features and int64 [N] labels in " +
                             o.data.string());
  }
  samples = features->shape[0];
  deviceops::training::SafeTensorFile file;
  file.tensors["features"] = {deviceops::training::SafeDtype::kF32, features->shape,
                              std::move(features->data)};
  file.tensors["labels"] = {deviceops::training::SafeDtype::kI64, labels->shape,
                            std::move(labels->data)};
  const fs::path path = o.work / "data.safetensors";
  if (auto s = deviceops::training::writeSafeTensorsFile(path, file); !s.ok()) {
    throw std::runtime_error(s.error().message);
  }
  return path;
}

int runAll(const Options& o, const std::string& self) {
  fs::create_directories(o.work);
  std::int64_t samples = 0;
  const fs::path dataset = writeDataset(o, samples);
  const std::vector<std::string> variants{"bare", "trainer", "python"};
  std::map<std::pair<int, std::string>, std::vector<Measurement>> results;
  const std::string loadBefore = loadAverage();
  for (int repeat = 0; repeat < o.repeats; ++repeat) {
    for (int threads : o.threads) {
      for (std::size_t k = 0; k < variants.size(); ++k) {
        // Rotate the order every repeat so that no variant always runs first.
        const std::string& variant = variants[(k + std::size_t(repeat)) % variants.size()];
        const std::string tag = fmt::format("{}-t{}-r{}", variant, threads, repeat + 1);
        std::cerr << "training_bench: " << tag << " (load " << loadAverage() << ")" << std::endl;
        Measurement m;
        if (variant == "bare") {
          m = measureLoop({self, "bare", "--dataset", dataset.string(), "--epochs",
                           std::to_string(o.epochs), "--threads", std::to_string(threads)},
                          o.work / (tag + ".log"));
        } else if (variant == "trainer") {
          m = measureTrainer(o, dataset, threads, o.work / tag);
        } else {
          m = measureLoop({o.python.string(), TRAINING_BENCH_PY, "--features",
                           (o.data / "fashion_train_features.npy").string(), "--labels",
                           (o.data / "fashion_train_labels.npy").string(), "--epochs",
                           std::to_string(o.epochs), "--threads", std::to_string(threads)},
                          o.work / (tag + ".log"));
        }
        std::cerr << fmt::format("training_bench:   {:.0f} samples/s, last loss {:.5f}\n",
                                 m.samplesPerSecond, m.lastLoss);
        results[{threads, variant}].push_back(m);
      }
    }
  }
  auto med = [&](int t, const std::string& v, double Measurement::*field) {
    std::vector<double> values;
    for (const auto& m : results[{t, v}]) values.push_back(m.*field);
    return median(values);
  };
  std::cout << fmt::format(
      "Epochs: {} x {} samples, batch {}; median of {} runs; load before "
      "{}, after {} (1, 5, 15 min); nproc {}.\n\n",
      o.epochs, samples, kBatch, o.repeats, loadBefore, loadAverage(),
      std::thread::hardware_concurrency());
  std::cout << "| threads | bare libtorch samples/s | deviceops-trainer samples/s (% of bare) | "
               "PyTorch Python samples/s (% of bare) |\n|---:|---:|---:|---:|\n";
  for (int t : o.threads) {
    const double bare = med(t, "bare", &Measurement::samplesPerSecond);
    const double trainer = med(t, "trainer", &Measurement::samplesPerSecond);
    const double python = med(t, "python", &Measurement::samplesPerSecond);
    std::cout << fmt::format("| {} | {:.0f} | {:.0f} ({:.0f}%) | {:.0f} ({:.0f}%) |\n", t, bare,
                             trainer, 100 * trainer / bare, python, 100 * python / bare);
  }
  // `paired`: the median over repeats of (this run / the bare run of the same repeat), which
  // cancels load that changes between repeats.
  std::cout << "\n| threads | variant | samples/s per run | paired % of bare | training CPU s | "
               "training wall s | process wall s | last-epoch loss |\n"
               "|---:|---|---|---:|---:|---:|---:|---:|\n";
  for (int t : o.threads) {
    for (const auto& v : variants) {
      std::string perRun;
      std::vector<double> ratios;
      for (std::size_t r = 0; r < results[{t, v}].size(); ++r) {
        const double rate = results[{t, v}][r].samplesPerSecond;
        perRun += (perRun.empty() ? "" : ", ") + fmt::format("{:.0f}", rate);
        ratios.push_back(rate / results[{t, "bare"}][r].samplesPerSecond);
      }
      std::cout << fmt::format(
          "| {} | {} | {} | {:.0f}% | {:.2f} | {:.2f} | {:.2f} | {:.5f} |\n", t, v, perRun,
          100 * median(ratios), med(t, v, &Measurement::trainCpuSeconds),
          med(t, v, &Measurement::trainWallSeconds), med(t, v, &Measurement::wallSeconds),
          med(t, v, &Measurement::lastLoss));
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> args;
  const bool bare = argc > 1 && std::string(argv[1]) == "bare";
  for (int i = bare ? 2 : 1; i + 1 < argc; i += 2) args[argv[i]] = argv[i + 1];
  auto get = [&](const std::string& key, const std::string& fallback) {
    return args.count(key) ? args[key] : fallback;
  };
  try {
    if (bare) {
      return runBare(get("--dataset", ""), std::stoi(get("--epochs", "5")),
                     std::stoi(get("--threads", "1")));
    }
    Options o;
    o.data = get("--data", "test-models");
    o.work = get("--work", (fs::temp_directory_path() / "training_bench").string());
    o.python = get("--python", o.python.string());
    o.epochs = std::stoi(get("--epochs", "5"));
    o.repeats = std::stoi(get("--repeats", "3"));
    o.threads = parseList(get("--threads", "1,2"));
    return runAll(o, fs::read_symlink("/proc/self/exe").string());
  } catch (const std::exception& e) {
    std::cerr << "training_bench: " << e.what() << std::endl;
    return 1;
  }
}
