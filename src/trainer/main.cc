// deviceops-trainer: one rank of a training job, or predictions from a trained model.
// The command line, progress events and exit statuses are docs/TRAINING.md's contract.
#include <signal.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "trainer/predict.h"
#include "trainer/progress.h"
#include "trainer/trainer.h"
#include "training_formats/spec.h"

namespace {

using deviceops::trainer::kExitCannotRun;

constexpr const char* kUsage =
    "usage:\n"
    "  deviceops-trainer train --job <workDir>/job.json --rank R --world-size W\n"
    "                          --device cpu|cuda:N --rendezvous <file> [--progress-fd FD]\n"
    "                          [--resume]\n"
    "  deviceops-trainer predict --job <job.json> --weights <model.safetensors>\n"
    "                            --input x.npy --output y.npy\n";

int usage(const std::string& problem) {
  std::fprintf(stderr, "deviceops-trainer: %s\n%s", problem.c_str(), kUsage);
  return kExitCannotRun;
}

// "--name value" pairs and bare flags ("--resume"); false on a malformed argument.
bool parseArguments(int argc, char** argv, std::map<std::string, std::string>& out,
                    std::string& problem) {
  for (int i = 2; i < argc; ++i) {
    std::string arg = argv[i];
    if (!arg.starts_with("--")) {
      problem = "unexpected argument \"" + arg + "\"";
      return false;
    }
    if (arg == "--resume") {
      out[arg] = "1";
    } else if (i + 1 < argc) {
      out[arg] = argv[++i];
    } else {
      problem = arg + " needs a value";
      return false;
    }
  }
  return true;
}

bool parseInt(const std::string& text, int& out) {
  if (text.empty() || text.size() > 9 ||
      text.find_first_not_of("0123456789") != std::string::npos) {
    return false;
  }
  out = std::stoi(text);
  return true;
}

extern "C" void onStopSignal(int) { deviceops::trainer::stopRequested().store(true); }

int train(const std::map<std::string, std::string>& args) {
  for (const char* key : {"--job", "--rank", "--world-size", "--device"}) {
    if (!args.count(key)) return usage(std::string("train needs ") + key);
  }
  for (const auto& [key, value] : args) {
    if (key != "--job" && key != "--rank" && key != "--world-size" && key != "--device" &&
        key != "--rendezvous" && key != "--progress-fd" && key != "--resume") {
      return usage("unknown option " + key);
    }
  }
  deviceops::trainer::RunOptions options;
  if (!parseInt(args.at("--rank"), options.rank)) return usage("--rank: expected an integer");
  if (!parseInt(args.at("--world-size"), options.worldSize) || options.worldSize < 1) {
    return usage("--world-size: expected a positive integer");
  }
  if (args.count("--progress-fd") && !parseInt(args.at("--progress-fd"), options.progressFd)) {
    return usage("--progress-fd: expected a file descriptor");
  }
  options.device = args.at("--device");
  options.rendezvous = args.count("--rendezvous") ? args.at("--rendezvous") : "";
  options.resume = args.count("--resume") > 0;

  struct sigaction action {};
  action.sa_handler = onStopSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
  signal(SIGPIPE, SIG_IGN);

  deviceops::trainer::ProgressWriter progress(options.rank == 0 ? options.progressFd : -1);
  auto cannotRun = [&](const std::string& message) {
    std::printf("[rank %d] error: %s\n", options.rank, message.c_str());
    progress.emit({{"type", "error"}, {"message", message}});
    return kExitCannotRun;
  };
  std::ifstream in(args.at("--job"));
  if (!in) return cannotRun("cannot open " + args.at("--job"));
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json json = nlohmann::json::parse(text.str(), nullptr, false);
  if (json.is_discarded()) return cannotRun(args.at("--job") + ": not valid JSON");
  auto spec = deviceops::training::parseJobFile(json);
  if (!spec.ok()) return cannotRun(args.at("--job") + ": " + spec.error().message);
  return deviceops::trainer::runTraining(*spec, options);
}

int predict(const std::map<std::string, std::string>& args) {
  deviceops::trainer::PredictRequest request;
  for (const char* key : {"--job", "--weights", "--input", "--output"}) {
    if (!args.count(key)) return usage(std::string("predict needs ") + key);
  }
  if (args.size() != 4) return usage("predict takes --job, --weights, --input and --output");
  request.job = args.at("--job");
  request.weights = args.at("--weights");
  request.input = args.at("--input");
  request.output = args.at("--output");
  deviceops::Status status = deviceops::trainer::runPredict(request);
  if (!status.ok()) {
    std::fprintf(stderr, "deviceops-trainer predict: %s\n", status.error().message.c_str());
    return status.error().code == deviceops::ErrorCode::kInternal ? 1 : kExitCannotRun;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage("missing subcommand");
  std::string command = argv[1];
  if (command != "train" && command != "predict")
    return usage("unknown subcommand \"" + command + "\"");
  std::map<std::string, std::string> args;
  std::string problem;
  if (!parseArguments(argc, argv, args, problem)) return usage(problem);
  return command == "train" ? train(args) : predict(args);
}
