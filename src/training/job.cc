#include "training/job.h"

#include <array>
#include <utility>

#include "common/time_format.h"

namespace deviceops::training {
namespace {

constexpr std::array<std::pair<JobState, std::string_view>, 8> kStateNames{{
    {JobState::kQueued, "queued"},
    {JobState::kStarting, "starting"},
    {JobState::kRunning, "running"},
    {JobState::kStopping, "stopping"},
    {JobState::kCompleted, "completed"},
    {JobState::kStopped, "stopped"},
    {JobState::kFailed, "failed"},
    {JobState::kInterrupted, "interrupted"},
}};

std::int64_t toMillis(SystemTime time) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count();
}
SystemTime fromMillis(std::int64_t millis) { return SystemTime(std::chrono::milliseconds(millis)); }

template <class T>
nlohmann::json optionalJson(const std::optional<T>& value) {
  return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
}
template <class T>
std::optional<T> optionalFrom(const nlohmann::json& json, const char* key) {
  if (!json.contains(key) || json.at(key).is_null()) return std::nullopt;
  return json.at(key).get<T>();
}

nlohmann::json progressJson(const JobProgress& p) {
  return {{"epoch", p.epoch},
          {"epochs", p.epochs},
          {"step", p.step},
          {"totalSteps", p.totalSteps},
          {"stepsPerEpoch", p.stepsPerEpoch},
          {"loss", optionalJson(p.loss)},
          {"learningRate", optionalJson(p.learningRate)},
          {"samplesPerSecond", optionalJson(p.samplesPerSecond)},
          {"elapsedSeconds", p.elapsedSeconds + p.attemptElapsedSeconds},
          {"etaSeconds", optionalJson(p.etaSeconds)},
          {"percent", p.totalSteps > 0
                          ? 100.0 * static_cast<double>(p.step) / static_cast<double>(p.totalSteps)
                          : 0.0},
          {"metrics", p.lastEpoch},
          {"lastCheckpoint",
           p.lastCheckpoint.empty() ? nlohmann::json(nullptr) : nlohmann::json(p.lastCheckpoint)},
          {"lastCheckpointStep", optionalJson(p.lastCheckpointStep)}};
}

}  // namespace

std::string_view jobStateName(JobState state) {
  for (const auto& [value, name] : kStateNames) {
    if (value == state) return name;
  }
  return "unknown";
}

std::optional<JobState> parseJobState(std::string_view name) {
  for (const auto& [value, text] : kStateNames) {
    if (text == name) return value;
  }
  return std::nullopt;
}

bool isEnded(JobState state) {
  return state == JobState::kCompleted || state == JobState::kStopped ||
         state == JobState::kFailed || state == JobState::kInterrupted;
}

bool isActive(JobState state) {
  return state == JobState::kStarting || state == JobState::kRunning ||
         state == JobState::kStopping;
}

const Transition* JobRecord::lastTransition() const {
  return transitions.empty() ? nullptr : &transitions.back();
}

nlohmann::json toSummaryJson(const JobRecord& job) {
  nlohmann::json transitions = nlohmann::json::array();
  for (const Transition& t : job.transitions) {
    transitions.push_back({{"state", jobStateName(t.state)},
                           {"time", formatIso8601(t.time)},
                           {"timeMs", toMillis(t.time)},
                           {"reason", t.reason}});
  }
  nlohmann::json out = {
      {"jobId", job.id},
      {"name", job.spec.name},
      {"state", jobStateName(job.state)},
      {"reason", job.transitions.empty() ? "" : job.transitions.back().reason},
      {"dataset", job.spec.dataset},
      {"task", taskName(job.spec.task)},
      {"model", job.spec.model.type},
      {"owner", job.owner},
      {"attempt", job.attempt},
      {"devices", job.deviceIds},
      {"trainerDevices", job.trainerDevices},
      {"memoryBytesPerRank", job.memoryBytesPerRank},
      {"createdAt", formatIso8601(job.createdAt)},
      {"createdAtMs", toMillis(job.createdAt)},
      {"transitions", std::move(transitions)},
      {"progress", progressJson(job.progress)},
  };
  if (!job.waitingReason.empty()) out["waitingReason"] = job.waitingReason;
  if (!job.pids.empty()) out["pids"] = job.pids;
  if (job.exitCode) out["exitCode"] = *job.exitCode;
  if (job.signal) out["signal"] = *job.signal;
  if (!job.error.empty()) out["error"] = job.error;
  if (!job.lastLogLines.empty()) out["lastLogLines"] = job.lastLogLines;
  if (!job.weightsPath.empty()) out["weights"] = job.weightsPath;
  if (!job.exportedModelId.empty()) out["exportedModelId"] = job.exportedModelId;
  return out;
}

nlohmann::json toJson(const JobRecord& job) {
  nlohmann::json out = toSummaryJson(job);
  out["spec"] = toJson(job.spec);
  out["history"] = job.progress.history;
  out["resumeNext"] = job.resumeNext;
  out["allocationIds"] = job.allocationIds;
  out["elapsedBeforeSeconds"] = job.progress.elapsedSeconds;
  return out;
}

nlohmann::json toProgressJson(const JobRecord& job) {
  nlohmann::json out = progressJson(job.progress);
  out["jobId"] = job.id;
  out["state"] = jobStateName(job.state);
  out["history"] = job.progress.history;
  return out;
}

Result<JobRecord> jobFromJson(const nlohmann::json& json) {
  try {
    JobRecord job;
    Result<JobSpec> spec = parseJobFile(json.at("spec"));
    if (!spec.ok()) return spec.error();
    job.spec = std::move(spec.value());
    job.id = json.at("jobId").get<std::string>();
    job.owner = json.value("owner", "anonymous");
    const auto state = parseJobState(json.at("state").get<std::string>());
    if (!state) return makeError(ErrorCode::kInternal, "stored job has an unknown state");
    job.state = *state;
    for (const auto& t : json.at("transitions")) {
      const auto tState = parseJobState(t.at("state").get<std::string>());
      if (!tState) return makeError(ErrorCode::kInternal, "stored transition has an unknown state");
      job.transitions.push_back(
          {*tState, fromMillis(t.at("timeMs").get<std::int64_t>()), t.value("reason", "")});
    }
    job.attempt = json.value("attempt", 0);
    job.resumeNext = json.value("resumeNext", false);
    job.deviceIds = json.value("devices", std::vector<std::string>{});
    job.trainerDevices = json.value("trainerDevices", std::vector<std::string>{});
    job.memoryBytesPerRank = json.value("memoryBytesPerRank", std::uint64_t{0});
    job.allocationIds = json.value("allocationIds", std::vector<std::string>{});
    job.waitingReason = json.value("waitingReason", "");
    job.exitCode = optionalFrom<int>(json, "exitCode");
    job.signal = optionalFrom<int>(json, "signal");
    job.error = json.value("error", "");
    job.lastLogLines = json.value("lastLogLines", std::vector<std::string>{});
    job.weightsPath = json.value("weights", "");
    job.exportedModelId = json.value("exportedModelId", "");
    job.createdAt = fromMillis(json.value("createdAtMs", std::int64_t{0}));
    const nlohmann::json& p = json.at("progress");
    job.progress.epoch = p.value("epoch", std::int64_t{0});
    job.progress.epochs = p.value("epochs", std::int64_t{0});
    job.progress.step = p.value("step", std::int64_t{0});
    job.progress.totalSteps = p.value("totalSteps", std::int64_t{0});
    job.progress.stepsPerEpoch = p.value("stepsPerEpoch", std::int64_t{0});
    job.progress.loss = optionalFrom<double>(p, "loss");
    job.progress.learningRate = optionalFrom<double>(p, "learningRate");
    job.progress.samplesPerSecond = optionalFrom<double>(p, "samplesPerSecond");
    job.progress.elapsedSeconds = json.value("elapsedBeforeSeconds", 0.0);
    job.progress.lastEpoch = p.value("metrics", nlohmann::json(nullptr));
    job.progress.history = json.value("history", nlohmann::json::array());
    job.progress.lastCheckpointStep = optionalFrom<std::int64_t>(p, "lastCheckpointStep");
    if (p.contains("lastCheckpoint") && p.at("lastCheckpoint").is_string()) {
      job.progress.lastCheckpoint = p.at("lastCheckpoint").get<std::string>();
    }
    return job;
  } catch (const nlohmann::json::exception& error) {
    return makeError(ErrorCode::kInternal, std::string("stored job is malformed: ") + error.what());
  }
}

}  // namespace deviceops::training
