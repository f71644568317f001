// Inference throughput and latency, side by side in one run on one machine (issue 4):
//   direct  ONNX Runtime called in-process (the baseline: one Ort::Session shared by N threads,
//           the same session options deviceopsd uses by default);
//   json    deviceopsd, KServe v2 infer with JSON tensors;
//   binary  deviceopsd, KServe v2 infer with the binary tensor data extension;
//   batched the binary protocol against the same model loaded with dynamic batching.
// Each client thread keeps one keep-alive connection and sends requests back to back.
//
//   inference_bench --model FILE [--seconds 5] [--concurrency 1,8,32] [--modes direct,json,binary]
//                   [--max-batch 32] [--batch-delay-us 500]
// Prints one Markdown row per (mode, concurrency): requests/s, p50 and p99 latency in ms.
#include <fmt/format.h>
#include <onnxruntime_cxx_api.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>

#include "test_daemon.h"

namespace {

using deviceops::testing::Connection;
using deviceops::testing::TestDaemon;
using nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

struct Options {
  std::filesystem::path model;
  double seconds = 5;
  std::vector<int> concurrency{1, 8, 32};
  std::vector<std::string> modes{"direct", "json", "binary", "batched"};
  int maxBatch = 32;
  int batchDelayMicros = 500;
  int workerThreads = 0;  // deviceopsd's server.workerThreads; 0: its default
};

struct Stats {
  double requestsPerSecond = 0;
  double p50Ms = 0;
  double p99Ms = 0;
  std::size_t errors = 0;
};

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> parts;
  std::stringstream stream(text);
  for (std::string part; std::getline(stream, part, ',');) parts.push_back(part);
  return parts;
}

// Runs `clients` threads calling `once` (returns false on error) for `seconds`.
template <class MakeClient>
Stats measure(int clients, double seconds, MakeClient makeClient) {
  std::vector<std::vector<double>> latencies(static_cast<std::size_t>(clients));
  std::atomic<std::size_t> errors{0};
  std::atomic<bool> go{false};
  const auto duration = std::chrono::duration<double>(seconds);
  std::vector<std::thread> threads;
  SteadyClock::time_point start;
  for (int i = 0; i < clients; ++i) {
    threads.emplace_back([&, i] {
      auto once = makeClient();
      once();  // warm-up, not counted
      while (!go.load()) std::this_thread::yield();
      const auto until = start + duration;
      while (SteadyClock::now() < until) {
        const auto begin = SteadyClock::now();
        if (!once()) ++errors;
        latencies[static_cast<std::size_t>(i)].push_back(
            std::chrono::duration<double, std::milli>(SteadyClock::now() - begin).count());
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  start = SteadyClock::now();
  go = true;
  for (auto& thread : threads) thread.join();
  const double elapsed = std::chrono::duration<double>(SteadyClock::now() - start).count();
  std::vector<double> all;
  for (const auto& list : latencies) all.insert(all.end(), list.begin(), list.end());
  std::sort(all.begin(), all.end());
  Stats stats;
  stats.errors = errors;
  if (all.empty()) return stats;
  stats.requestsPerSecond = static_cast<double>(all.size()) / elapsed;
  stats.p50Ms = all[all.size() / 2];
  stats.p99Ms = all[std::min(all.size() - 1, all.size() * 99 / 100)];
  return stats;
}

struct ModelInput {
  std::string name;
  std::vector<std::int64_t> shape;  // dynamic dimensions set to 1
  std::vector<float> values;
  std::vector<std::string> outputNames;
};

ModelInput describe(Ort::Session& session) {
  Ort::AllocatorWithDefaultOptions allocator;
  ModelInput input;
  input.name = session.GetInputNameAllocated(0, allocator).get();
  input.shape = session.GetInputTypeInfo(0).GetTensorTypeAndShapeInfo().GetShape();
  std::size_t count = 1;
  for (auto& dimension : input.shape) {
    if (dimension < 0) dimension = 1;
    count *= static_cast<std::size_t>(dimension);
  }
  std::mt19937 random(7);
  std::uniform_real_distribution<float> uniform(-1, 1);
  input.values.resize(count);
  for (float& value : input.values) value = uniform(random);
  for (std::size_t i = 0; i < session.GetOutputCount(); ++i) {
    input.outputNames.push_back(session.GetOutputNameAllocated(i, allocator).get());
  }
  return input;
}

std::string httpRequest(int port, const std::string& target, const std::string& body,
                        const std::string& extraHeaders) {
  return fmt::format("POST {} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n{}Content-Length: {}\r\n\r\n{}",
                     target, port, extraHeaders, body.size(), body);
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i];
    const std::string value = argv[i + 1];
    if (key == "--model")
      options.model = value;
    else if (key == "--seconds")
      options.seconds = std::stod(value);
    else if (key == "--concurrency") {
      options.concurrency.clear();
      for (const auto& part : split(value)) options.concurrency.push_back(std::stoi(part));
    } else if (key == "--modes")
      options.modes = split(value);
    else if (key == "--max-batch")
      options.maxBatch = std::stoi(value);
    else if (key == "--batch-delay-us")
      options.batchDelayMicros = std::stoi(value);
    else if (key == "--worker-threads")
      options.workerThreads = std::stoi(value);
  }
  if (options.model.empty() || !std::filesystem::exists(options.model)) {
    std::cerr << "usage: inference_bench --model FILE.onnx [--seconds S] [--concurrency 1,8,32] "
                 "[--modes direct,json,binary,batched]\n";
    return 2;
  }
  const std::filesystem::path model = std::filesystem::canonical(options.model);
  Ort::Env environment(ORT_LOGGING_LEVEL_WARNING, "inference_bench");
  Ort::SessionOptions sessionOptions;
  sessionOptions.SetGraphOptimizationLevel(GraphOptimizationLevel::ORT_ENABLE_ALL);
  Ort::Session session(environment, model.c_str(), sessionOptions);
  const ModelInput input = describe(session);
  const std::string name = model.stem().string();

  const std::string server =
      options.workerThreads > 0
          ? fmt::format("[server]\nworkerThreads = {}\n", options.workerThreads)
          : std::string();
  TestDaemon daemon(server + "[log]\nlevel = \"warn\"\n[inference]\nmodelRoots = [\"" +
                    model.parent_path().string() + "\"]\n");
  if (!daemon.started()) {
    std::cerr << "deviceopsd did not start\n" << daemon.log();
    return 1;
  }
  auto load = [&](const std::string& as, bool batching) {
    json request = {{"path", model.string()}, {"name", as}};
    if (batching) {
      request["batching"] = {{"maxBatchSize", options.maxBatch},
                             {"maxQueueDelayMicros", options.batchDelayMicros}};
    }
    const auto reply = daemon.post("/api/inference/model/load", request);
    if (reply.status != 200 && reply.status != 201) {
      std::cerr << "load " << as << ": HTTP " << reply.status << " " << reply.body << "\n";
      std::exit(1);
    }
  };
  load(name, false);
  load(name + "_batched", true);

  const std::string raw(reinterpret_cast<const char*>(input.values.data()),
                        input.values.size() * sizeof(float));
  const json jsonBody = {{"inputs",
                          {{{"name", input.name},
                            {"datatype", "FP32"},
                            {"shape", input.shape},
                            {"data", input.values}}}}};
  const std::string jsonText = jsonBody.dump();
  json binaryHeader = {{"parameters", {{"binary_data_output", true}}},
                       {"inputs",
                        {{{"name", input.name},
                          {"datatype", "FP32"},
                          {"shape", input.shape},
                          {"parameters", {{"binary_data_size", raw.size()}}}}}}};
  const std::string headerText = binaryHeader.dump();
  const std::string binaryHeaders = fmt::format(
      "Content-Type: application/octet-stream\r\nInference-Header-Content-Length: {}\r\n",
      headerText.size());

  std::cout << fmt::format("model {} input {} [{}], {} s per row, {} hardware threads\n\n",
                           model.filename().string(), input.name, fmt::join(input.shape, ","),
                           options.seconds, std::thread::hardware_concurrency());
  std::cout << "| mode | concurrency | requests/s | p50 ms | p99 ms | vs direct | errors |\n"
               "|---|---:|---:|---:|---:|---:|---:|\n";
  for (const int clients : options.concurrency) {
    double direct = 0;
    for (const std::string& mode : options.modes) {
      Stats stats;
      if (mode == "direct") {
        stats = measure(clients, options.seconds, [&] {
          return [&] {
            Ort::MemoryInfo memory =
                Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
            Ort::Value tensor = Ort::Value::CreateTensor<float>(
                memory, const_cast<float*>(input.values.data()), input.values.size(),
                input.shape.data(), input.shape.size());
            const char* inputName = input.name.c_str();
            std::vector<const char*> outputNames;
            for (const auto& output : input.outputNames) outputNames.push_back(output.c_str());
            auto outputs = session.Run(Ort::RunOptions{nullptr}, &inputName, &tensor, 1,
                                       outputNames.data(), outputNames.size());
            return !outputs.empty();
          };
        });
        direct = stats.requestsPerSecond;
      } else {
        const bool binary = mode != "json";
        const std::string target =
            "/v2/models/" + (mode == "batched" ? name + "_batched" : name) + "/infer";
        const std::string request =
            binary ? httpRequest(daemon.port(), target, headerText + raw, binaryHeaders)
                   : httpRequest(daemon.port(), target, jsonText,
                                 "Content-Type: application/json\r\n");
        stats = measure(clients, options.seconds, [&] {
          auto connection = std::make_shared<Connection>(daemon.port());
          return [connection, &request] {
            if (!connection->send(request)) return false;
            const auto response = connection->read(std::chrono::seconds(30));
            return response && response->status == 200;
          };
        });
      }
      std::cout << fmt::format("| {} | {} | {:.0f} | {:.2f} | {:.2f} | {} | {} |\n", mode, clients,
                               stats.requestsPerSecond, stats.p50Ms, stats.p99Ms,
                               direct > 0
                                   ? fmt::format("{:.0f}%", 100 * stats.requestsPerSecond / direct)
                                   : std::string("-"),
                               stats.errors);
      std::cout.flush();
    }
  }
  return daemon.stop() == 0 ? 0 : 1;
}
