// deviceops generate "prompt" --suite NAME ...: submits an image generation, follows its
// Server-Sent Events (GET /api/generation/{id}/events) with a progress line on stderr, then
// downloads the images. deviceops generation list|show|cancel (alias generations): the jobs.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>

#include "client/cli.h"
#include "client/cli_commands.h"
#include "client/cli_progress.h"
#include "client/event_stream.h"
#include "client/table.h"

namespace deviceops::client {
namespace {

using Json = nlohmann::json;
namespace fs = std::filesystem;

struct GenerateOptions {
  std::string prompt, suite, negative, scheduler, refiner, tiling, vae, output;
  std::int64_t steps = 0, width = 0, height = 0, batch = 0;
  std::uint64_t seed = 0;
  double guidance = 0;
  bool follow = true;
  // Set while parsing; read by the action, which runs while the App that owns them lives.
  CLI::Option *stepsOption = nullptr, *seedOption = nullptr, *widthOption = nullptr,
              *heightOption = nullptr, *guidanceOption = nullptr, *batchOption = nullptr;
};

bool given(const CLI::Option* option) { return option != nullptr && option->count() > 0; }

Json requestBody(const GenerateOptions& options) {
  Json body = {{"suite", options.suite}, {"prompt", options.prompt}};
  if (!options.negative.empty()) body["negativePrompt"] = options.negative;
  if (given(options.stepsOption)) body["steps"] = options.steps;
  if (given(options.seedOption)) body["seed"] = options.seed;
  if (given(options.widthOption)) body["width"] = options.width;
  if (given(options.heightOption)) body["height"] = options.height;
  if (given(options.guidanceOption)) body["guidance"] = options.guidance;
  if (given(options.batchOption)) body["batch"] = options.batch;
  if (!options.scheduler.empty()) body["scheduler"] = options.scheduler;
  if (!options.refiner.empty()) body["refiner"] = {{"mode", options.refiner}};
  if (!options.tiling.empty()) body["vae"]["tiling"] = options.tiling;
  if (!options.vae.empty()) body["vae"]["name"] = options.vae;
  return body;
}

std::string jobTarget(const std::string& jobId) {
  return "/api/generation/" + percentEncode(jobId);
}

// Shows a job's progress from its events as one ProgressBar per stage (cli_progress.h):
// "base 37% 3/8 2.1 step/s ETA 0:02 images 0/2", the rate from the server's step timings. On a
// terminal the bar is redrawn in place and each finished stage keeps its line; otherwise one line
// per stage as it ends (and one every 5 s in a long stage).
class ProgressDisplay {
 public:
  explicit ProgressDisplay(std::ostream& err)
      : bar_(err, makeProgressState("", std::nullopt), displayOptions(err)) {}

  void onEvent(const ServerSentEvent& event) {
    const Json data = Json::parse(event.data, nullptr, /*allow_exceptions=*/false);
    if (event.type == "snapshot") {
      // Only the step count: the snapshot is the job as it is now, while the events that follow
      // replay it from the start (or from Last-Event-ID) and carry the stages themselves.
      totalSteps_ = static_cast<int>(
          numberAt(memberAt(data, "progress"), "totalSteps").value_or(totalSteps_));
      images_ = static_cast<int>(numberAt(memberAt(data, "parameters"), "batch").value_or(images_));
      return;
    }
    if (event.type == "queued") {
      enterStage("queued");
    } else if (event.type == "stage") {
      enterStage(stringAt(data, "stage"));
    } else if (event.type == "step") {
      enterStage(stringAt(data, "stage"));
      step_ = static_cast<int>(numberAt(data, "step").value_or(step_));
      totalSteps_ = static_cast<int>(numberAt(data, "totalSteps").value_or(totalSteps_));
      stageSeconds_ += numberAt(data, "seconds").value_or(0);
      ++stageSteps_;
    } else if (event.type == "done" || event.type == "failed" || event.type == "cancelled") {
      if (event.type == "done") {
        step_ = totalSteps_;
        imagesDone_ = images_;  // the images of a batch are made together
      }
      finish();
      return;
    } else {
      return;  // previews and anything newer
    }
    setState();
    bar_.update(bar_.state().done);
  }

  // Ends the display: the last stage's line. Idempotent.
  void finish() {
    if (stage_.empty()) return;
    setState();
    bar_.finish();
  }

 private:
  static ProgressBar::Options displayOptions(const std::ostream& err) {
    ProgressBar::Options options = ProgressBar::optionsFor(err);
    options.ownRate = false;
    options.plainInterval = std::chrono::seconds(5);
    return options;
  }

  void enterStage(const std::string& stage) {
    if (stage.empty() || stage == stage_) return;
    if (!stage_.empty()) {
      setState();
      bar_.printLine();
    }
    stage_ = stage;
    stageSeconds_ = 0;
    stageSteps_ = 0;
  }

  // The bar's state from the stage's counters; the rate is the server's (steps / their seconds).
  void setState() {
    ProgressState& state = bar_.state();
    state.label = stage_;
    state.total = totalSteps_ > 0 ? std::optional<std::uint64_t>(totalSteps_) : std::nullopt;
    state.done = static_cast<std::uint64_t>(std::max(0, step_));
    state.detail = images_ > 0 ? fmt::format("images {}/{}", imagesDone_, images_) : "";
    state.ratePerSecond.reset();
    state.etaSeconds.reset();
    if (stageSteps_ > 0 && stageSeconds_ > 0) {
      state.ratePerSecond = stageSteps_ / stageSeconds_;
      if (totalSteps_ > step_) state.etaSeconds = (totalSteps_ - step_) / *state.ratePerSecond;
    }
  }

  ProgressBar bar_;
  std::string stage_;
  int step_ = 0, totalSteps_ = 0;
  int images_ = 0, imagesDone_ = 0;  // the batch size (0: unknown) and the images finished
  double stageSeconds_ = 0;
  int stageSteps_ = 0;
};

// Follows the job's events until the stream ends (followEventStream).
Status followEvents(CliSession& session, const std::string& jobId, ProgressDisplay& display) {
  Result<bool> followed =
      followEventStream(session, jobTarget(jobId) + "/events",
                        fmt::format("the event stream of {} ended before the job did", jobId),
                        [&display](const ServerSentEvent& event) { display.onEvent(event); });
  if (!followed) return followed.error();
  return Status::success();
}

// Where image `index` of `count` goes: -o as given for one image, with "-<index>" before its
// extension for several; <jobId>-<index><extension of the server's file name> without -o.
fs::path imagePath(const std::string& output, const std::string& jobId, const Json& image,
                   std::size_t count) {
  const std::string index = scalarText(memberAt(image, "index"));
  if (output.empty()) {
    const std::string extension = fs::path(stringAt(image, "fileName")).extension().string();
    return fmt::format("{}-{}{}", jobId, index, extension.empty() ? ".png" : extension);
  }
  if (count == 1) return output;
  const fs::path path(output);
  return path.parent_path() /
         fmt::format("{}-{}{}", path.stem().string(), index, path.extension().string());
}

Status writeFile(const fs::path& path, const std::string& bytes) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  if (file) file.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (file) file.close();
  if (!file) {
    return makeError(ErrorCode::kUnavailable,
                     fmt::format("cannot write {}: {}", path.string(), std::strerror(errno)));
  }
  return Status::success();
}

// Downloads every image of a finished job; returns the paths written, in image order.
Result<std::vector<fs::path>> downloadImages(CliSession& session, const Json& job,
                                             const std::string& output) {
  const std::string jobId = stringAt(job, "id");
  const Json& images = memberAt(job, "images");
  std::vector<fs::path> paths;
  for (const Json& image : images) {
    auto response =
        session.client().get(jobTarget(jobId) + "/images/" + scalarText(memberAt(image, "index")));
    if (!response) return response.error();
    if (response->status < 200 || response->status >= 300) return answerError(*response);
    const fs::path path = imagePath(output, jobId, image, images.size());
    RETURN_IF_ERROR(writeFile(path, response->body));
    paths.push_back(path);
  }
  return paths;
}

// "used (sharpness 12.1 < 20.0)" / "not used (refiner mode never)"; "" without a decision.
std::string refinerText(const Json& report) {
  const Json& decision = memberAt(report, "refiner");
  if (!decision.is_object()) return "";
  const std::string reason = stringAt(decision, "reason");
  const std::string used = memberAt(decision, "refine") == true ? "used" : "not used";
  return reason.empty() ? used : fmt::format("{} ({})", used, reason);
}

std::string secondsText(std::optional<double> seconds) {
  return seconds ? fmt::format("{:.2f} s", *seconds) : std::string();
}

// The exit status of a job that did not succeed, after saying why on err.
int reportUnsuccessful(CliSession& session, const Json& job) {
  const std::string jobId = stringAt(job, "id");
  const std::string state = stringAt(job, "state");
  const Json& error = memberAt(job, "error");
  if (state == "cancelled") {
    session.err() << fmt::format("error: generation {} was cancelled\n", jobId);
  } else if (!stringAt(error, "code").empty()) {
    session.err() << fmt::format("error: generation {} {}: {} ({})\n", jobId, state,
                                 stringAt(error, "message"), stringAt(error, "code"));
  } else {
    session.err() << fmt::format("error: generation {} {}: {}\n", jobId, state,
                                 stringAt(error, "message"));
  }
  return kExitServerError;
}

int generate(CliSession& session, const GenerateOptions& options) {
  auto submitted = session.sendJson("POST", "/api/generation", requestBody(options));
  if (!submitted) return session.report(submitted.error());
  const std::string jobId = stringAt(*submitted, "id");
  if (!options.follow) {
    if (session.jsonOutput()) return session.printJson(*submitted);
    session.out() << fmt::format("{} {}\n", jobId, stringAt(*submitted, "state"));
    return kExitOk;
  }
  ProgressDisplay display(session.err());
  const Status followed = followEvents(session, jobId, display);
  display.finish();
  if (!followed.ok()) return session.report(followed.error());

  auto job = session.getJson(jobTarget(jobId));
  if (!job) return session.report(job.error());
  if (stringAt(*job, "state") != "succeeded") {
    if (session.jsonOutput()) session.printJson(*job);
    return reportUnsuccessful(session, *job);
  }
  auto paths = downloadImages(session, *job, options.output);
  if (!paths) return session.report(paths.error());
  if (session.jsonOutput()) return session.printJson(*job);

  const Json& report = memberAt(*job, "report");
  const Json& images = memberAt(*job, "images");
  session.out() << fmt::format("{} succeeded: {} image(s) in {}\n", jobId, paths->size(),
                               secondsText(numberAt(report, "totalSeconds")));
  for (std::size_t i = 0; i < paths->size(); ++i) {
    session.out() << fmt::format("  {}  seed {}\n", (*paths)[i].string(),
                                 scalarText(memberAt(images[i], "seed")));
  }
  if (const std::string refiner = refinerText(report); !refiner.empty()) {
    session.out() << "refiner: " << refiner << "\n";
  }
  return kExitOk;
}

// "base 3/8", the stage left out when there is none.
std::string progressText(const Json& job) {
  const Json& progress = memberAt(job, "progress");
  const std::string steps = fmt::format("{}/{}", scalarText(memberAt(progress, "step")),
                                        scalarText(memberAt(progress, "totalSteps")));
  const std::string stage = stringAt(progress, "stage");
  return stage.empty() ? steps : stage + " " + steps;
}

std::string sizeText(const Json& parameters) {
  if (!numberAt(parameters, "width") || !numberAt(parameters, "height")) return "";
  return fmt::format("{}x{}", scalarText(memberAt(parameters, "width")),
                     scalarText(memberAt(parameters, "height")));
}

int listJobs(CliSession& session) {
  auto result = session.getJson("/api/generation");
  if (!result) return session.report(result.error());
  if (session.jsonOutput()) return session.printJson(*result);
  const Json& jobs = memberAt(*result, "jobs");
  if (!jobs.is_array() || jobs.empty()) {
    session.out() << "no generations\n";
    return kExitOk;
  }
  Table table({{"ID"},
               {"SUITE"},
               {"STATE"},
               {"PROGRESS"},
               {"SIZE"},
               {"SEED", Align::kRight},
               {"IMAGES", Align::kRight},
               {"CREATED"},
               {"PROMPT", Align::kLeft, 40}});
  for (const Json& job : jobs) {
    const Json& parameters = memberAt(job, "parameters");
    table.addRow({stringAt(job, "id"), stringAt(job, "suite"), stringAt(job, "state"),
                  progressText(job), sizeText(parameters), scalarText(memberAt(parameters, "seed")),
                  std::to_string(memberAt(job, "images").size()), stringAt(job, "createdAt"),
                  stringAt(parameters, "prompt")});
  }
  session.out() << table.render();
  return kExitOk;
}

int showJob(CliSession& session, const std::string& jobId) {
  auto job = session.getJson(jobTarget(jobId));
  if (!job) return session.report(job.error());
  if (session.jsonOutput()) return session.printJson(*job);
  const Json& parameters = memberAt(*job, "parameters");
  const Json& report = memberAt(*job, "report");
  const Json& error = memberAt(*job, "error");
  std::vector<std::pair<std::string, std::string>> entries = {
      {"id", stringAt(*job, "id")},
      {"suite", stringAt(*job, "suite")},
      {"state", stringAt(*job, "state")},
      {"progress", progressText(*job)},
      {"prompt", stringAt(parameters, "prompt")},
      {"negative prompt", stringAt(parameters, "negativePrompt")},
      {"size", sizeText(parameters)},
      {"steps", scalarText(memberAt(parameters, "steps"))},
      {"guidance", scalarText(memberAt(parameters, "guidance"))},
      {"scheduler", stringAt(parameters, "scheduler")},
      {"seed", scalarText(memberAt(parameters, "seed"))},
      {"batch", scalarText(memberAt(parameters, "batch"))},
      {"refiner mode", stringAt(memberAt(parameters, "refiner"), "mode")},
      {"vae", stringAt(memberAt(parameters, "vae"), "name")},
      {"vae tiling", stringAt(memberAt(parameters, "vae"), "tiling")},
      {"created", stringAt(*job, "createdAt")},
      {"started", stringAt(*job, "startedAt")},
      {"finished", stringAt(*job, "finishedAt")},
  };
  if (error.is_object()) {
    entries.emplace_back(
        "error", fmt::format("{} ({})", stringAt(error, "message"), stringAt(error, "code")));
  }
  if (report.is_object() && !report.empty()) {
    entries.emplace_back("refiner", refinerText(report));
    entries.emplace_back("total", secondsText(numberAt(report, "totalSeconds")));
    const Json& modelSeconds = memberAt(report, "modelSeconds");
    if (modelSeconds.is_object()) {
      for (const auto& [role, seconds] : modelSeconds.items()) {
        entries.emplace_back("seconds in " + role, secondsText(numberAt(modelSeconds, role)));
      }
    }
  }
  session.out() << renderKeyValues(entries);
  const Json& images = memberAt(*job, "images");
  if (images.is_array() && !images.empty()) {
    Table table({{"INDEX", Align::kRight},
                 {"SEED", Align::kRight},
                 {"FILE"},
                 {"SIZE", Align::kRight},
                 {"URL"}});
    for (const Json& image : images) {
      table.addRow({scalarText(memberAt(image, "index")), scalarText(memberAt(image, "seed")),
                    stringAt(image, "fileName"), formatBytes(bytesAt(image, "sizeBytes")),
                    stringAt(image, "url")});
    }
    session.out() << "\n" << table.render();
  }
  return kExitOk;
}

int cancelJob(CliSession& session, const std::string& jobId) {
  auto job = session.sendJson("POST", jobTarget(jobId) + "/cancel", nullptr);
  if (!job) return session.report(job.error());
  if (session.jsonOutput()) return session.printJson(*job);
  session.out() << fmt::format("{} {}\n", stringAt(*job, "id"), stringAt(*job, "state"));
  return kExitOk;
}

}  // namespace

void addGenerateCommands(CLI::App& app, CommandAction& action) {
  auto options = std::make_shared<GenerateOptions>();
  CLI::App* command = app.add_subcommand("generate", "generate images with a model suite");
  command->add_option("prompt", options->prompt, "what to draw")->required();
  command->add_option("--suite", options->suite, "suite name or id")->required();
  command->add_option("--negative", options->negative, "negative prompt");
  options->stepsOption = command->add_option("--steps", options->steps, "denoising steps");
  options->seedOption = command->add_option("--seed", options->seed, "random seed (0 .. 2^53)")
                            ->check(CLI::Range(std::uint64_t{0}, std::uint64_t{1} << 53));
  options->widthOption = command->add_option("--width", options->width, "pixels");
  options->heightOption = command->add_option("--height", options->height, "pixels");
  options->guidanceOption =
      command->add_option("--guidance", options->guidance, "classifier-free guidance scale");
  command->add_option("--scheduler", options->scheduler,
                      "euler | euler_ancestral | dpmpp_2m_karras");
  command->add_option("--refiner", options->refiner, "never | always | auto")
      ->check(CLI::IsMember({"never", "always", "auto"}));
  options->batchOption = command->add_option("--batch", options->batch, "images from one prompt");
  command->add_option("--tiling", options->tiling, "VAE tiling: on | off | auto")
      ->check(CLI::IsMember({"on", "off", "auto"}));
  command->add_option("--vae", options->vae, "the suite's VAE to decode with (see: deviceops vae)");
  command->add_option("-o,--output", options->output,
                      "output file (batch: NAME-0.png, NAME-1.png...; default <job>-<i>.png)");
  command->add_flag("--follow,!--no-wait", options->follow,
                    "follow progress and download the images (default), or only submit");
  command->callback([&action, options] {
    action = [options](CliSession& session) { return generate(session, *options); };
  });

  CLI::App* jobs = app.add_subcommand("generation", "image generation jobs: list, show, cancel");
  jobs->alias("generations");
  jobs->require_subcommand(1);
  jobs->add_subcommand("list", "generation jobs")->callback([&action] {
    action = [](CliSession& session) { return listJobs(session); };
  });
  auto jobId = std::make_shared<std::string>();
  const auto withJob = [&](const char* name, const char* help) {
    CLI::App* sub = jobs->add_subcommand(name, help);
    sub->add_option("job", *jobId, "job id")->required();
    return sub;
  };
  withJob("show", "one job: parameters, timings, images")->callback([&action, jobId] {
    action = [jobId](CliSession& session) { return showJob(session, *jobId); };
  });
  withJob("cancel", "cancel a queued or running job")->callback([&action, jobId] {
    action = [jobId](CliSession& session) { return cancelJob(session, *jobId); };
  });
}

}  // namespace deviceops::client
