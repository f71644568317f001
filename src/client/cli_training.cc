// deviceops train ...: datasets, jobs, following progress, stop/resume, logs, export.
//
// `--follow` reads the job's Server-Sent Events (GET /api/training/{id}/events) into one progress
// bar (cli_progress.h): plain lines at most once a second, and one per epoch, when stdout is not
// a terminal.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "client/cli.h"
#include "client/cli_commands.h"
#include "client/cli_progress.h"
#include "client/table.h"

namespace deviceops::client {
namespace {

using Json = nlohmann::json;
namespace fs = std::filesystem;

struct UploadOptions {
  std::string file, name, format = "csv", labelColumn, part, delimiter;
};

struct StartOptions {
  std::string specFile, dataset, name, model, task, optimizer, loss, activation;
  std::vector<std::int64_t> hidden;
  std::vector<std::string> devices;
  std::int64_t epochs = 0, batchSize = 0, seed = -1;
  double learningRate = 0, validationSplit = -1;
  bool follow = false;
};

std::string metricText(const Json& metrics) {
  std::string out;
  for (const char* key : {"val_loss", "val_accuracy", "val_mae", "val_rmse", "accuracy", "mae"}) {
    if (const auto value = numberAt(metrics, key)) out += fmt::format(" {} {:.4f}", key, *value);
  }
  return out;
}

// A job's progress (GET /api/training/{id}/progress, or the job's "progress") as one bar.
std::string progressLine(const Json& progress, std::size_t width) {
  ProgressState state;
  state.label = "step";
  state.done = bytesAt(progress, "step").value_or(0);
  if (const auto total = bytesAt(progress, "totalSteps"); total && *total > 0) state.total = total;
  state.etaSeconds = numberAt(progress, "etaSeconds");
  std::string detail = fmt::format("epoch {}/{}", scalarText(memberAt(progress, "epoch")),
                                   scalarText(memberAt(progress, "epochs")));
  if (const auto loss = numberAt(progress, "loss")) detail += fmt::format(" loss {:.4f}", *loss);
  detail += metricText(memberAt(progress, "metrics"));
  if (const auto rate = numberAt(progress, "samplesPerSecond")) {
    detail += fmt::format(" {:.0f} samples/s", *rate);
  }
  state.detail = std::move(detail);
  return renderProgressBar(state, width);
}

bool endedState(const std::string& state) {
  return state == "completed" || state == "stopped" || state == "failed" || state == "interrupted";
}

// A job's progress from its Server-Sent Events as one ProgressBar: steps of totalSteps, with the
// epoch, loss, the trainer's samples/s and the end-of-epoch metrics as the bar's detail.
class TrainingDisplay {
 public:
  TrainingDisplay(std::ostream& out, const std::string& jobId)
      : bar_(out, makeProgressState(jobId, std::nullopt), ProgressBar::optionsFor(out)) {}

  void onEvent(const ServerSentEvent& event) {
    const Json data = Json::parse(event.data, nullptr, /*allow_exceptions=*/false);
    eventSeen_ = true;
    if (event.type == "snapshot") {
      state_ = stringAt(data, "state");
      const Json& progress = memberAt(data, "progress");
      // Events replayed from before the snapshot are older than what it shows.
      replayedUpTo_ = static_cast<std::int64_t>(numberAt(progress, "step").value_or(0));
      read(progress);
      metrics_ = metricText(memberAt(progress, "metrics"));
    } else if (event.type == "state") {
      state_ = stringAt(data, "state");
    } else if (event.type == "started" || event.type == "progress") {
      if (numberAt(data, "step").value_or(0) < static_cast<double>(replayedUpTo_)) return;
      read(data);
    } else if (event.type == "epoch") {
      if (numberAt(data, "step").value_or(0) < static_cast<double>(replayedUpTo_)) return;
      read(data);
      metrics_ = metricText(data);
      show();
      bar_.printLine();  // one kept line per epoch
      return;
    } else {
      return;
    }
    show();
  }

  // Ends the display with the last state; nothing when no event came (an unknown job).
  void finish() { bar_.finish(/*onlyIfShown=*/!eventSeen_); }

 private:
  void read(const Json& data) {
    if (const auto total = numberAt(data, "totalSteps"); total && *total > 0) {
      bar_.state().total = static_cast<std::uint64_t>(*total);
    }
    if (const auto step = numberAt(data, "step"); step && *step >= 0) {
      step_ = static_cast<std::uint64_t>(*step);
    }
    if (const auto epoch = numberAt(data, "epoch")) epoch_ = static_cast<std::int64_t>(*epoch);
    if (const auto epochs = numberAt(data, "epochs")) epochs_ = static_cast<std::int64_t>(*epochs);
    if (const auto loss = numberAt(data, "loss")) loss_ = *loss;
    if (const auto rate = numberAt(data, "samplesPerSecond")) samplesPerSecond_ = *rate;
  }

  void show() {
    std::string detail = state_;
    if (epochs_ > 0) detail += fmt::format(" epoch {}/{}", epoch_, epochs_);
    if (loss_) detail += fmt::format(" loss {:.4f}", *loss_);
    if (samplesPerSecond_) detail += fmt::format(" {:.0f} samples/s", *samplesPerSecond_);
    detail += metrics_;
    bar_.state().detail = std::move(detail);
    bar_.update(step_);
  }

  ProgressBar bar_;
  std::string state_;
  std::int64_t replayedUpTo_ = 0;
  std::uint64_t step_ = 0;
  std::int64_t epoch_ = 0, epochs_ = 0;
  std::optional<double> loss_, samplesPerSecond_;
  std::string metrics_;
  bool eventSeen_ = false;
};

// Follows a job until its attempt ends, from GET /api/training/{id}/events. Exit status:
// 0 completed, 1 anything else.
int follow(CliSession& session, const std::string& jobId) {
  const std::string target = "/api/training/" + percentEncode(jobId);
  TrainingDisplay display(session.out(), jobId);
  // A stream can end while the job has not (an attempt ended and the next one waits): follow
  // again, a bounded number of times without progress in between.
  for (int quietEnds = 0;; ++quietEnds) {
    Result<bool> followed =
        followEventStream(session, target + "/events",
                          fmt::format("the event stream of {} ended before the job did", jobId),
                          [&display](const ServerSentEvent& event) { display.onEvent(event); });
    if (!followed) {
      display.finish();
      return session.report(followed.error());
    }
    auto job = session.getJson(target);
    if (!job) {
      display.finish();
      return session.report(job.error());
    }
    const std::string state = stringAt(*job, "state");
    if (endedState(state)) {
      display.finish();
      session.out() << fmt::format("{} {}: {}\n", jobId, state, stringAt(*job, "reason"));
      for (const Json& logLine : memberAt(*job, "lastLogLines")) {
        session.out() << "  | " << scalarText(logLine) << "\n";
      }
      return state == "completed" ? kExitOk : kExitServerError;
    }
    if (quietEnds >= 600) {  // about 5 minutes of attempts that end without the job ending
      display.finish();
      session.err() << fmt::format("error: {} is still {}; stopped following\n", jobId, state);
      return kExitServerError;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

int upload(CliSession& session, const UploadOptions& options) {
  std::ifstream input(options.file, std::ios::binary);
  if (!input) {
    session.err() << "error: cannot read " << options.file << "\n";
    return kExitUsage;
  }
  std::ostringstream content;
  content << input.rdbuf();
  std::string target =
      "/api/training/data/upload?name=" +
      percentEncode(options.name.empty() ? fs::path(options.file).stem().string() : options.name) +
      "&format=" + percentEncode(options.format);
  if (!options.labelColumn.empty()) target += "&labelColumn=" + percentEncode(options.labelColumn);
  if (!options.part.empty()) target += "&part=" + percentEncode(options.part);
  if (!options.delimiter.empty()) target += "&delimiter=" + percentEncode(options.delimiter);
  auto response = postWithProgress(session, target, content.str(),
                                   "upload " + fs::path(options.file).filename().string());
  if (!response) return session.report(response.error());
  if (response->status < 200 || response->status >= 300) {
    return session.report(answerError(*response));
  }
  const Json dataset = Json::parse(response->body, nullptr, false);
  if (session.jsonOutput()) return session.printJson(dataset);
  const Json& schema = memberAt(dataset, "schema");
  session.out() << fmt::format("{} {} ({}): {} rows, {} features, {} classes, {}\n",
                               stringAt(dataset, "id"), stringAt(dataset, "name"),
                               stringAt(dataset, "state"), scalarText(memberAt(schema, "rows")),
                               scalarText(memberAt(schema, "features")),
                               memberAt(schema, "classes").size(), stringAt(dataset, "sha256"));
  return kExitOk;
}

int listDatasets(CliSession& session) {
  auto result = session.getJson("/api/training/data");
  if (!result) return session.report(result.error());
  if (session.jsonOutput()) return session.printJson(*result);
  Table table({{"ID"},
               {"NAME"},
               {"FORMAT"},
               {"STATE"},
               {"ROWS", Align::kRight},
               {"FEATURES", Align::kRight},
               {"CLASSES", Align::kRight},
               {"SIZE", Align::kRight}});
  for (const Json& d : memberAt(*result, "datasets")) {
    const Json& schema = memberAt(d, "schema");
    table.addRow({stringAt(d, "id"), stringAt(d, "name"), stringAt(d, "format"),
                  stringAt(d, "state"), scalarText(memberAt(schema, "rows")),
                  scalarText(memberAt(schema, "features")),
                  std::to_string(memberAt(schema, "classes").size()),
                  formatByKey("sizeBytes", memberAt(d, "sizeBytes"))});
  }
  session.out() << table.render();
  return kExitOk;
}

Result<Json> startBody(const StartOptions& options) {
  Json body = Json::object();
  if (!options.specFile.empty()) {
    std::ifstream input(options.specFile);
    if (!input) return makeError(ErrorCode::kInvalidArgument, "cannot read " + options.specFile);
    body = Json::parse(input, nullptr, false);
    if (body.is_discarded() || !body.is_object()) {
      return makeError(ErrorCode::kInvalidArgument, options.specFile + " is not a JSON object");
    }
  }
  if (!options.dataset.empty()) body["dataset"] = options.dataset;
  if (!options.name.empty()) body["name"] = options.name;
  if (!options.task.empty()) body["task"] = options.task;
  if (!options.loss.empty()) body["loss"] = options.loss;
  if (!options.model.empty() || !options.hidden.empty() || !options.activation.empty()) {
    Json& model = body["model"];
    if (!model.is_object()) model = Json::object();
    if (!options.model.empty()) model["type"] = options.model;
    if (!options.hidden.empty()) model["hidden"] = options.hidden;
    if (!options.activation.empty()) model["activation"] = options.activation;
  }
  if (!options.optimizer.empty() || options.learningRate > 0) {
    Json& optimizer = body["optimizer"];
    if (!optimizer.is_object()) optimizer = Json::object();
    if (!options.optimizer.empty()) optimizer["type"] = options.optimizer;
    if (options.learningRate > 0) optimizer["learningRate"] = options.learningRate;
  }
  if (options.epochs > 0) body["epochs"] = options.epochs;
  if (options.batchSize > 0) body["batchSize"] = options.batchSize;
  if (options.seed >= 0) body["seed"] = options.seed;
  if (options.validationSplit >= 0) body["validationSplit"] = options.validationSplit;
  if (!options.devices.empty()) body["devices"] = options.devices;
  if (!body.contains("dataset")) {
    return makeError(ErrorCode::kInvalidArgument,
                     "--dataset (or a spec file with \"dataset\") is required");
  }
  return body;
}

int printJob(CliSession& session, const Json& job) {
  if (session.jsonOutput()) return session.printJson(job);
  session.out() << fmt::format("{} {}: {}\n", stringAt(job, "jobId"), stringAt(job, "state"),
                               stringAt(job, "reason"));
  return kExitOk;
}

int start(CliSession& session, const StartOptions& options) {
  Result<Json> body = startBody(options);
  if (!body) {
    session.err() << "error: " << body.error().message << "\n";
    return kExitUsage;
  }
  auto job = session.sendJson("POST", "/api/training/start", *body);
  if (!job) return session.report(job.error());
  const int status = printJob(session, *job);
  return options.follow ? follow(session, stringAt(*job, "jobId")) : status;
}

int listJobs(CliSession& session) {
  auto result = session.getJson("/api/training/sessions");
  if (!result) return session.report(result.error());
  if (session.jsonOutput()) return session.printJson(*result);
  Table table({{"JOB"},
               {"NAME"},
               {"STATE"},
               {"MODEL"},
               {"DATASET"},
               {"EPOCH", Align::kRight},
               {"STEP", Align::kRight},
               {"LOSS", Align::kRight},
               {"REASON", Align::kLeft, 60}});
  for (const Json& job : memberAt(*result, "sessions")) {
    const Json& p = memberAt(job, "progress");
    const auto loss = numberAt(p, "loss");
    table.addRow(
        {stringAt(job, "jobId"), stringAt(job, "name"), stringAt(job, "state"),
         stringAt(job, "model"), stringAt(job, "dataset"),
         fmt::format("{}/{}", scalarText(memberAt(p, "epoch")), scalarText(memberAt(p, "epochs"))),
         fmt::format("{}/{}", scalarText(memberAt(p, "step")),
                     scalarText(memberAt(p, "totalSteps"))),
         loss ? fmt::format("{:.4f}", *loss) : std::string(), stringAt(job, "reason")});
  }
  session.out() << table.render();
  return kExitOk;
}

int show(CliSession& session, const std::string& jobId) {
  auto job = session.getJson("/api/training/" + percentEncode(jobId));
  if (!job) return session.report(job.error());
  if (session.jsonOutput()) return session.printJson(*job);
  session.out() << fmt::format("{} ({}) {}: {}\n", stringAt(*job, "jobId"), stringAt(*job, "name"),
                               stringAt(*job, "state"), stringAt(*job, "reason"));
  session.out() << progressLine(memberAt(*job, "progress"), terminalColumns(session.out())) << "\n";
  Table history({{"EPOCH", Align::kRight}, {"LOSS", Align::kRight}, {"METRICS"}});
  for (const Json& epoch : memberAt(*job, "history")) {
    const auto loss = numberAt(epoch, "loss");
    history.addRow({scalarText(memberAt(epoch, "epoch")),
                    loss ? fmt::format("{:.4f}", *loss) : std::string(), metricText(epoch)});
  }
  if (history.rowCount() > 0) session.out() << history.render();
  for (const Json& t : memberAt(*job, "transitions")) {
    session.out() << fmt::format("  {} {:<11} {}\n", stringAt(t, "time"), stringAt(t, "state"),
                                 stringAt(t, "reason"));
  }
  for (const Json& line : memberAt(*job, "lastLogLines")) {
    session.out() << "  | " << scalarText(line) << "\n";
  }
  return kExitOk;
}

int post(CliSession& session, const std::string& target, const Json& body, bool followAfter,
         const std::string& jobId) {
  auto result = session.sendJson("POST", target, body);
  if (!result) return session.report(result.error());
  const int status = printJob(session, *result);
  return followAfter ? follow(session, jobId) : status;
}

int logs(CliSession& session, const std::string& jobId, int tail, int rank) {
  auto result = session.getJson(
      fmt::format("/api/training/{}/logs?tail={}&rank={}", percentEncode(jobId), tail, rank));
  if (!result) return session.report(result.error());
  if (session.jsonOutput()) return session.printJson(*result);
  for (const Json& line : memberAt(*result, "lines")) session.out() << scalarText(line) << "\n";
  return kExitOk;
}

int exportJob(CliSession& session, const std::string& jobId, const std::string& name, bool load) {
  Json body = {{"load", load}};
  if (!name.empty()) body["name"] = name;
  auto result = session.sendJson("POST", "/api/training/" + percentEncode(jobId) + "/export", body);
  if (!result) return session.report(result.error());
  if (session.jsonOutput()) return session.printJson(*result);
  session.out() << fmt::format("exported {} to {}\n", jobId, stringAt(*result, "onnx"));
  if (const Json& model = memberAt(*result, "model"); model.is_object()) {
    session.out() << fmt::format(
        "loaded as model {} ({} version {}); try: deviceops infer {} ...\n", stringAt(model, "id"),
        stringAt(model, "name"), stringAt(model, "version"), stringAt(model, "name"));
  }
  return kExitOk;
}

void addDataCommands(CLI::App& train, CommandAction& action) {
  CLI::App* data = train.add_subcommand("data", "datasets: upload, list, delete");
  data->require_subcommand(1);
  auto upload_ = std::make_shared<UploadOptions>();
  CLI::App* uploadCommand =
      data->add_subcommand("upload", "upload a CSV, .npy or safetensors file");
  uploadCommand->add_option("file", upload_->file, "the file")->required();
  uploadCommand->add_option("--name", upload_->name, "dataset name (default: the file stem)");
  uploadCommand->add_option("--format", upload_->format, "csv | npy | safetensors")
      ->check(CLI::IsMember({"csv", "npy", "safetensors"}));
  uploadCommand->add_option("--label-column", upload_->labelColumn,
                            "CSV label column (default: last)");
  uploadCommand->add_option("--part", upload_->part, "npy: features | labels")
      ->check(CLI::IsMember({"features", "labels"}));
  uploadCommand->add_option("--delimiter", upload_->delimiter,
                            "CSV delimiter (one character, or tab)");
  uploadCommand->callback([&action, upload_] {
    action = [upload_](CliSession& session) { return upload(session, *upload_); };
  });
  CLI::App* listCommand = data->add_subcommand("list", "datasets");
  listCommand->callback([&action] { action = [](CliSession& s) { return listDatasets(s); }; });
  auto deleteId = std::make_shared<std::string>();
  CLI::App* deleteCommand = data->add_subcommand("delete", "delete a dataset no job needs");
  deleteCommand->add_option("dataset", *deleteId, "dataset id or name")->required();
  deleteCommand->callback([&action, deleteId] {
    action = [deleteId](CliSession& session) {
      auto result =
          session.sendJson("DELETE", "/api/training/data/" + percentEncode(*deleteId), nullptr);
      if (!result) return session.report(result.error());
      session.out() << "deleted " << *deleteId << "\n";
      return kExitOk;
    };
  });
}

}  // namespace

void addTrainingCommands(CLI::App& app, CommandAction& action) {
  CLI::App* train = app.add_subcommand("train", "training jobs and datasets");
  train->require_subcommand(1);
  addDataCommands(*train, action);

  auto start_ = std::make_shared<StartOptions>();
  CLI::App* startCommand = train->add_subcommand("start", "start a training job");
  startCommand->add_option("--spec", start_->specFile, "job spec JSON file (flags override it)");
  startCommand->add_option("--dataset", start_->dataset, "dataset id or name");
  startCommand->add_option("--name", start_->name, "job name");
  startCommand->add_option("--task", start_->task, "classification | regression");
  startCommand->add_option("--model", start_->model, "mlp | cnn | linear");
  startCommand->add_option("--hidden", start_->hidden, "mlp hidden sizes, e.g. --hidden 128,64")
      ->delimiter(',');
  startCommand->add_option("--activation", start_->activation,
                           "relu | tanh | sigmoid | gelu | leaky_relu");
  startCommand->add_option("--optimizer", start_->optimizer, "sgd | adam | adamw");
  startCommand->add_option("--lr", start_->learningRate, "learning rate");
  startCommand->add_option("--loss", start_->loss, "cross_entropy | mse | mae | huber");
  startCommand->add_option("--epochs", start_->epochs, "epochs")->check(CLI::Range(1, 100000));
  startCommand->add_option("--batch-size", start_->batchSize, "global batch size")
      ->check(CLI::Range(1, 1000000));
  startCommand->add_option("--validation-split", start_->validationSplit, "0 .. 0.9");
  startCommand->add_option("--seed", start_->seed, "random seed");
  startCommand->add_option("--device", start_->devices, "one rank per --device (repeatable)")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  startCommand->add_flag("--follow", start_->follow, "show progress until the job ends");
  startCommand->callback([&action, start_] {
    action = [start_](CliSession& session) { return start(session, *start_); };
  });

  CLI::App* listCommand = train->add_subcommand("list", "training jobs");
  listCommand->callback([&action] { action = [](CliSession& s) { return listJobs(s); }; });

  auto jobId = std::make_shared<std::string>();
  auto grace = std::make_shared<int>(-1);
  auto followFlag = std::make_shared<bool>(false);
  auto tail = std::make_shared<int>(100);
  auto rank = std::make_shared<int>(0);
  auto exportName = std::make_shared<std::string>();
  auto noLoad = std::make_shared<bool>(false);
  auto withJob = [&](const char* name, const char* help) {
    CLI::App* command = train->add_subcommand(name, help);
    command->add_option("job", *jobId, "job id")->required();
    return command;
  };
  withJob("show", "one job in detail")->callback([&action, jobId] {
    action = [jobId](CliSession& s) { return show(s, *jobId); };
  });
  withJob("follow", "show progress until the job ends")->callback([&action, jobId] {
    action = [jobId](CliSession& s) { return follow(s, *jobId); };
  });
  CLI::App* stopCommand = withJob("stop", "checkpoint and stop a job");
  stopCommand->add_option("--grace", *grace, "seconds before it is killed")
      ->check(CLI::Range(0, 3600));
  stopCommand->add_flag("--follow", *followFlag, "wait until it has stopped");
  stopCommand->callback([&action, jobId, grace, followFlag] {
    action = [jobId, grace, followFlag](CliSession& s) {
      const std::string target = "/api/training/" + percentEncode(*jobId) + "/stop" +
                                 (*grace >= 0 ? fmt::format("?graceSeconds={}", *grace) : "");
      return post(s, target, nullptr, *followFlag, *jobId);
    };
  });
  CLI::App* resumeCommand = withJob("resume", "continue from the newest checkpoint");
  resumeCommand->add_flag("--follow", *followFlag, "show progress until the job ends");
  resumeCommand->callback([&action, jobId, followFlag] {
    action = [jobId, followFlag](CliSession& s) {
      return post(s, "/api/training/" + percentEncode(*jobId) + "/resume", nullptr, *followFlag,
                  *jobId);
    };
  });
  CLI::App* logsCommand = withJob("logs", "the trainer's log");
  logsCommand->add_option("--tail", *tail, "lines")->check(CLI::Range(1, 100000));
  logsCommand->add_option("--rank", *rank, "rank")->check(CLI::Range(0, 1023));
  logsCommand->callback([&action, jobId, tail, rank] {
    action = [jobId, tail, rank](CliSession& s) { return logs(s, *jobId, *tail, *rank); };
  });
  CLI::App* exportCommand = withJob("export", "export to ONNX and load it for inference");
  exportCommand->add_option("--name", *exportName, "model name (default: the job name or id)");
  exportCommand->add_flag("--no-load", *noLoad, "only write the ONNX file");
  exportCommand->callback([&action, jobId, exportName, noLoad] {
    action = [jobId, exportName, noLoad](CliSession& s) {
      return exportJob(s, *jobId, *exportName, !*noLoad);
    };
  });
  withJob("delete", "delete an ended job and its files")->callback([&action, jobId] {
    action = [jobId](CliSession& s) {
      auto result = s.sendJson("DELETE", "/api/training/" + percentEncode(*jobId), nullptr);
      if (!result) return s.report(result.error());
      s.out() << "deleted " << *jobId << "\n";
      return kExitOk;
    };
  });
}

}  // namespace deviceops::client
