#include "diffusion/scheduler.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

namespace deviceops::diffusion {
namespace {

using nlohmann::json;

Schedule scheduleOf(SamplerKind kind, const SchedulerConfig& config, int steps) {
  Result<Schedule> schedule = makeSchedule(kind, config, steps);
  EXPECT_TRUE(schedule.ok()) << (schedule.ok() ? "" : schedule.error().message);
  return schedule.ok() ? *schedule : Schedule{};
}

SchedulerConfig withSpacing(TimestepSpacing spacing) {
  SchedulerConfig config;
  config.spacing = spacing;
  return config;
}

// ---- names ----

TEST(SamplerNames, RoundTripAndAliases) {
  for (SamplerKind kind :
       {SamplerKind::kEuler, SamplerKind::kEulerAncestral, SamplerKind::kDpmpp2mKarras})
    EXPECT_EQ(parseSampler(samplerName(kind)), kind);
  EXPECT_EQ(samplerName(SamplerKind::kEuler), "euler");
  EXPECT_EQ(samplerName(SamplerKind::kEulerAncestral), "euler_ancestral");
  EXPECT_EQ(samplerName(SamplerKind::kDpmpp2mKarras), "dpmpp_2m_karras");
  EXPECT_EQ(parseSampler("euler_a"), SamplerKind::kEulerAncestral);
  EXPECT_EQ(parseSampler("Euler"), std::nullopt);
  EXPECT_EQ(parseSampler("ddim"), std::nullopt);
  EXPECT_EQ(parseSampler(""), std::nullopt);

  for (TimestepSpacing spacing :
       {TimestepSpacing::kLeading, TimestepSpacing::kTrailing, TimestepSpacing::kLinspace})
    EXPECT_EQ(parseSpacing(spacingName(spacing)), spacing);
  EXPECT_EQ(spacingName(TimestepSpacing::kTrailing), "trailing");
  EXPECT_EQ(parseSpacing("middle"), std::nullopt);
}

// ---- config ----

TEST(SchedulerConfigParse, ReadsTheSdxlFile) {
  const json object = json::parse(R"({
    "_class_name": "EulerDiscreteScheduler", "beta_end": 0.012, "beta_schedule": "scaled_linear",
    "beta_start": 0.00085, "clip_sample": false, "interpolation_type": "linear",
    "num_train_timesteps": 1000, "prediction_type": "epsilon", "sample_max_value": 1.0,
    "set_alpha_to_one": false, "skip_prk_steps": true, "steps_offset": 1,
    "timestep_spacing": "leading", "trained_betas": null, "use_karras_sigmas": false})");
  Result<SchedulerConfig> config = parseSchedulerConfig(object);
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->betaStart, 0.00085);
  EXPECT_EQ(config->betaEnd, 0.012);
  EXPECT_EQ(config->betaSchedule, "scaled_linear");
  EXPECT_EQ(config->trainTimesteps, 1000);
  EXPECT_EQ(config->spacing, TimestepSpacing::kLeading);
  EXPECT_EQ(config->stepsOffset, 1);
  EXPECT_EQ(config->predictionType, "epsilon");
}

TEST(SchedulerConfigParse, OtherValuesAndDefaults) {
  Result<SchedulerConfig> config = parseSchedulerConfig(json::parse(
      R"({"beta_schedule": "linear", "beta_start": 0.0001, "beta_end": 0.02,
          "timestep_spacing": "trailing", "steps_offset": 0, "num_train_timesteps": 500})"));
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->betaSchedule, "linear");
  EXPECT_EQ(config->betaStart, 0.0001);
  EXPECT_EQ(config->spacing, TimestepSpacing::kTrailing);
  EXPECT_EQ(config->stepsOffset, 0);
  EXPECT_EQ(config->trainTimesteps, 500);

  Result<SchedulerConfig> empty = parseSchedulerConfig(json::object());
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->spacing, TimestepSpacing::kLeading);
  EXPECT_EQ(empty->stepsOffset, 1);
  EXPECT_EQ(empty->trainTimesteps, 1000);
}

TEST(SchedulerConfigParse, RejectsBadInput) {
  struct Case {
    const char* text;
    const char* messagePart;
  };
  const Case cases[] = {
      {R"({"beta_start": "0.00085"})", "beta_start"},
      {R"({"beta_end": null})", "beta_end"},
      {R"({"beta_schedule": 1})", "beta_schedule"},
      {R"({"num_train_timesteps": 1000.5})", "num_train_timesteps"},
      {R"({"num_train_timesteps": "1000"})", "num_train_timesteps"},
      {R"({"steps_offset": true})", "steps_offset"},
      {R"({"timestep_spacing": 3})", "timestep_spacing"},
      {R"({"prediction_type": ["epsilon"]})", "prediction_type"},
      {R"({"prediction_type": "v_prediction"})", "v_prediction"},
      {R"({"prediction_type": "sample"})", "prediction_type"},
      {R"({"timestep_spacing": "middle"})", "timestep_spacing"},
      {R"({"beta_schedule": "squaredcos_cap_v2"})", "beta_schedule"},
      {R"({"beta_start": 0.02, "beta_end": 0.01})", "beta_start"},
      {R"({"beta_start": 0})", "beta_start"},
      {R"({"num_train_timesteps": 1})", "num_train_timesteps"},
      {R"({"num_train_timesteps": 99999999999})", "num_train_timesteps"},
      {R"({"steps_offset": -1})", "steps_offset"},
      {R"([1, 2])", "object"},
      {R"("leading")", "object"},
  };
  for (const Case& item : cases) {
    SCOPED_TRACE(item.text);
    Result<SchedulerConfig> config = parseSchedulerConfig(json::parse(item.text));
    ASSERT_FALSE(config.ok());
    EXPECT_EQ(config.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(config.error().message.find(item.messagePart), std::string::npos)
        << config.error().message;
  }
}

// ---- schedules: the numbers of SDXL.md section 3 (N = 30, denoising start 0.8) ----

TEST(Schedule, LeadingMatchesDiffusersSdxl) {
  const SchedulerConfig config;  // SDXL: scaled_linear, leading, offset 1
  const Schedule schedule = scheduleOf(SamplerKind::kEuler, config, 30);
  ASSERT_EQ(schedule.timesteps.size(), 30U);
  ASSERT_EQ(schedule.sigmas.size(), 31U);
  EXPECT_EQ(schedule.timesteps[0], 958);
  EXPECT_EQ(schedule.timesteps[1], 925);
  EXPECT_EQ(schedule.timesteps[2], 892);
  EXPECT_EQ(schedule.timesteps[28], 34);
  EXPECT_EQ(schedule.timesteps[29], 1);
  EXPECT_NEAR(schedule.sigmas[0], 11.4768, 1e-4);
  EXPECT_NEAR(schedule.sigmas[1], 9.5436, 1e-4);
  EXPECT_EQ(schedule.sigmas[30], 0.0);
  EXPECT_NEAR(schedule.initNoiseSigma, 11.5203, 1e-4);
  Result<int> base = baseStepCount(schedule, config, 0.8);
  ASSERT_TRUE(base.ok());
  EXPECT_EQ(*base, 23);  // refiner: 7
}

TEST(Schedule, TrailingMatchesDiffusers) {
  const SchedulerConfig config = withSpacing(TimestepSpacing::kTrailing);
  const Schedule schedule = scheduleOf(SamplerKind::kEuler, config, 30);
  ASSERT_EQ(schedule.timesteps.size(), 30U);
  EXPECT_EQ(schedule.timesteps[0], 999);
  EXPECT_EQ(schedule.timesteps[1], 966);
  EXPECT_EQ(schedule.timesteps[2], 932);
  EXPECT_EQ(schedule.timesteps[28], 66);
  EXPECT_EQ(schedule.timesteps[29], 32);
  EXPECT_NEAR(schedule.sigmas[0], 14.6146, 1e-4);
  EXPECT_NEAR(schedule.initNoiseSigma, 14.6146, 1e-4);
  EXPECT_EQ(*baseStepCount(schedule, config, 0.8), 24);  // refiner: 6
}

TEST(Schedule, KarrasMatchesDiffusers) {
  const SchedulerConfig config;
  const Schedule schedule = scheduleOf(SamplerKind::kDpmpp2mKarras, config, 30);
  ASSERT_EQ(schedule.timesteps.size(), 30U);
  ASSERT_EQ(schedule.sigmas.size(), 31U);
  EXPECT_EQ(schedule.timesteps[0], 999);
  EXPECT_EQ(schedule.timesteps[1], 975);
  EXPECT_EQ(schedule.timesteps[2], 949);
  EXPECT_EQ(schedule.timesteps[27], 3);
  EXPECT_EQ(schedule.timesteps[28], 1);
  EXPECT_EQ(schedule.timesteps[29], 0);
  EXPECT_NEAR(schedule.sigmas[0], 14.6146, 1e-4);
  EXPECT_NEAR(schedule.sigmas[29], 0.0292, 1e-4);
  EXPECT_EQ(schedule.sigmas[30], 0.0);
  EXPECT_EQ(schedule.initNoiseSigma, 1.0);
  EXPECT_EQ(*baseStepCount(schedule, config, 0.8), 19);  // refiner: 11
}

TEST(Schedule, LinspaceSpacing) {
  const SchedulerConfig config = withSpacing(TimestepSpacing::kLinspace);
  const Schedule schedule = scheduleOf(SamplerKind::kEulerAncestral, config, 30);
  ASSERT_EQ(schedule.timesteps.size(), 30U);
  EXPECT_EQ(schedule.kind, SamplerKind::kEulerAncestral);
  EXPECT_EQ(schedule.timesteps[0], 999);
  EXPECT_EQ(schedule.timesteps[1], static_cast<double>(static_cast<float>(999.0 * 28 / 29)));
  EXPECT_NEAR(schedule.timesteps[1], 964.5517, 1e-4);
  EXPECT_EQ(schedule.timesteps[29], 0);
  EXPECT_NEAR(schedule.sigmas[0], 14.6146, 1e-4);
  EXPECT_NEAR(schedule.sigmas[29], 0.0292, 1e-4);  // t = 0: the smallest training sigma
  EXPECT_NEAR(schedule.initNoiseSigma, 14.6146, 1e-4);
  // 999*k/29 >= 200 for k = 6..29: 24 steps.
  EXPECT_EQ(*baseStepCount(schedule, config, 0.8), 24);
}

TEST(Schedule, EulerKindsShareTheSchedule) {
  const Schedule euler = scheduleOf(SamplerKind::kEuler, {}, 25);
  const Schedule ancestral = scheduleOf(SamplerKind::kEulerAncestral, {}, 25);
  EXPECT_EQ(euler.timesteps, ancestral.timesteps);
  EXPECT_EQ(euler.sigmas, ancestral.sigmas);
  EXPECT_EQ(euler.initNoiseSigma, ancestral.initNoiseSigma);
}

TEST(Schedule, ExtremeStepCounts) {
  const Schedule one = scheduleOf(SamplerKind::kEuler, {}, 1);
  ASSERT_EQ(one.timesteps.size(), 1U);
  EXPECT_EQ(one.timesteps[0], 1);  // leading: 0*1000 + offset
  const Schedule oneKarras = scheduleOf(SamplerKind::kDpmpp2mKarras, {}, 1);
  ASSERT_EQ(oneKarras.timesteps.size(), 1U);
  EXPECT_EQ(oneKarras.timesteps[0], 999);
  const Schedule all =
      scheduleOf(SamplerKind::kEuler, withSpacing(TimestepSpacing::kTrailing), 1000);
  ASSERT_EQ(all.timesteps.size(), 1000U);
  EXPECT_EQ(all.timesteps.front(), 999);
  EXPECT_EQ(all.timesteps.back(), 0);
}

TEST(Schedule, RejectsBadInput) {
  for (int steps : {0, -1, 1001, 10000}) {
    SCOPED_TRACE(steps);
    Result<Schedule> schedule = makeSchedule(SamplerKind::kEuler, {}, steps);
    ASSERT_FALSE(schedule.ok());
    EXPECT_EQ(schedule.error().code, ErrorCode::kInvalidArgument);
  }
  SchedulerConfig vPrediction;
  vPrediction.predictionType = "v_prediction";
  Result<Schedule> rejected = makeSchedule(SamplerKind::kDpmpp2mKarras, vPrediction, 30);
  ASSERT_FALSE(rejected.ok());
  EXPECT_EQ(rejected.error().code, ErrorCode::kInvalidArgument);

  const Schedule schedule = scheduleOf(SamplerKind::kEuler, {}, 30);
  for (double start : {0.0, 1.0, -0.5, 1.5, std::numeric_limits<double>::quiet_NaN(),
                       std::numeric_limits<double>::infinity()}) {
    SCOPED_TRACE(start);
    Result<int> count = baseStepCount(schedule, {}, start);
    ASSERT_FALSE(count.ok());
    EXPECT_EQ(count.error().code, ErrorCode::kInvalidArgument);
  }
  EXPECT_EQ(*baseStepCount(schedule, {}, 0.0001), 0);   // cutoff 1000: above every timestep
  EXPECT_EQ(*baseStepCount(schedule, {}, 0.9999), 30);  // cutoff 0: the base runs everything
}

// ---- sampler ----

TEST(Sampler, InputScale) {
  Sampler euler(scheduleOf(SamplerKind::kEuler, {}, 30));
  const double sigma = euler.schedule().sigmas[3];
  EXPECT_DOUBLE_EQ(euler.inputScale(3), 1 / std::sqrt(sigma * sigma + 1));
  Sampler dpm(scheduleOf(SamplerKind::kDpmpp2mKarras, {}, 30));
  EXPECT_EQ(dpm.inputScale(0), 1.0);
  EXPECT_EQ(dpm.inputScale(29), 1.0);
}

TEST(Sampler, EulerStepByHand) {
  Schedule schedule;
  schedule.kind = SamplerKind::kEuler;
  schedule.timesteps = {900, 500};
  schedule.sigmas = {4.0, 1.0, 0.0};
  Sampler sampler(schedule);
  std::vector<float> x = {8.0F, -2.0F};
  const std::vector<float> eps = {1.0F, 0.5F};
  int noiseCalls = 0;
  auto noise = [&noiseCalls](std::span<float>) { ++noiseCalls; };
  sampler.step(0, x, eps, noise);  // x + eps*(1 - 4)
  EXPECT_EQ(x, (std::vector<float>{5.0F, -3.5F}));
  sampler.step(1, x, eps, noise);  // x + eps*(0 - 1)
  EXPECT_EQ(x, (std::vector<float>{4.0F, -4.0F}));
  EXPECT_EQ(noiseCalls, 0);
}

TEST(Sampler, EulerAncestralStepByHand) {
  Schedule schedule;
  schedule.kind = SamplerKind::kEulerAncestral;
  schedule.timesteps = {900, 500};
  schedule.sigmas = {5.0, 3.0, 0.0};
  Sampler sampler(schedule);
  // up = sqrt(9*(25-9)/25) = 2.4, down = sqrt(9 - 5.76) = 1.8.
  std::vector<float> x = {10.0F};
  const std::vector<float> eps = {1.0F};
  int noiseCalls = 0;
  auto noise = [&noiseCalls](std::span<float> out) {
    ++noiseCalls;
    ASSERT_EQ(out.size(), 1U);
    out[0] = 0.5F;
  };
  sampler.step(0, x, eps, noise);  // 10 + (1.8 - 5) + 2.4*0.5
  EXPECT_FLOAT_EQ(x[0], 8.0F);
  sampler.step(1, x, eps, noise);  // last: up = down = 0: 8 - 3
  EXPECT_FLOAT_EQ(x[0], 5.0F);
  EXPECT_EQ(noiseCalls, 2);
}

TEST(Sampler, DpmLastStepReturnsTheDataPrediction) {
  Schedule schedule;
  schedule.kind = SamplerKind::kDpmpp2mKarras;
  schedule.timesteps = {1};
  schedule.sigmas = {0.75, 0.0};
  Sampler sampler(schedule);
  // alpha = 1/sqrt(0.5625+1) = 0.8, s = 0.6: D = (x - 0.6 eps)/0.8.
  std::vector<float> x = {2.0F, -1.0F};
  const std::vector<float> eps = {1.0F, 0.5F};
  sampler.step(0, x, eps, nullptr);
  EXPECT_FLOAT_EQ(x[0], 1.75F);
  EXPECT_FLOAT_EQ(x[1], -1.625F);
}

TEST(SamplerDeathTest, RejectsStepsOutOfOrder) {
  Sampler sampler(scheduleOf(SamplerKind::kDpmpp2mKarras, {}, 10));
  std::vector<float> x(4, 1.0F), eps(4, 0.1F), shortEps(3, 0.1F);
  sampler.step(2, x, eps, nullptr);
  EXPECT_DEATH(sampler.step(4, x, eps, nullptr), "advance by one");
  EXPECT_DEATH(sampler.step(3, x, shortEps, nullptr), "differ in size");
  EXPECT_DEATH(sampler.step(10, x, eps, nullptr), "out of range");
  sampler.resetHistory();
  sampler.step(7, x, eps, nullptr);  // a new stage may begin anywhere
  Sampler ancestral(scheduleOf(SamplerKind::kEulerAncestral, {}, 10));
  EXPECT_DEATH(ancestral.step(0, x, eps, nullptr), "noise source");
}

// ---- guidance ----

TEST(Guidance, ScaleOneReturnsTheConditionalPrediction) {
  const std::vector<float> prediction = {1.0F, -2.0F, 3.5F, 0.25F, 7.0F, 8.0F, -9.0F, 0.125F};
  std::vector<float> out(4);
  applyGuidance(prediction, 2, 1.0, 0.0, out);
  EXPECT_EQ(out, (std::vector<float>{7.0F, 8.0F, -9.0F, 0.125F}));
  applyGuidance(prediction, 1, 0.0, 0.0, out);
  EXPECT_EQ(out, (std::vector<float>{1.0F, -2.0F, 3.5F, 0.25F}));
  applyGuidance(prediction, 2, 7.5, 0.0, out);  // u + 7.5 (c - u)
  EXPECT_EQ(out, (std::vector<float>{46.0F, 73.0F, -90.25F, -0.6875F}));
}

TEST(Guidance, RescaleByHand) {
  // Row 0: u = (0, 0), c = (1, 3); g = 2: guided (2, 6); std c = 1, std guided = 2.
  // Row 1: u = c = (1, 1): guided (1, 1) has std 0 and is left as is.
  const std::vector<float> prediction = {0.0F, 0.0F, 1.0F, 1.0F, 1.0F, 3.0F, 1.0F, 1.0F};
  std::vector<float> out(4);
  applyGuidance(prediction, 2, 2.0, 0.0, out);
  EXPECT_EQ(out, (std::vector<float>{2.0F, 6.0F, 1.0F, 1.0F}));
  applyGuidance(prediction, 2, 2.0, 0.5, out);  // factor 0.5*1/2 + 0.5 = 0.75
  EXPECT_EQ(out, (std::vector<float>{1.5F, 4.5F, 1.0F, 1.0F}));
  applyGuidance(prediction, 2, 2.0, 1.0, out);  // factor 1/2: the std of the conditional
  EXPECT_EQ(out, (std::vector<float>{1.0F, 3.0F, 1.0F, 1.0F}));
  // One row of four: the std is over the whole row, so the rows are not mixed.
  applyGuidance(prediction, 1, 2.0, 1.0, out);
  // guided (2, 6, 1, 1) has mean 2.5, the conditional (1, 3, 1, 1) mean 1.5.
  const double guidedStd = std::sqrt((0.25 + 12.25 + 2.25 + 2.25) / 4);
  const double conditionalStd = std::sqrt((0.25 + 2.25 + 0.25 + 0.25) / 4);
  const double factor = conditionalStd / guidedStd;
  EXPECT_FLOAT_EQ(out[0], static_cast<float>(2 * factor));
  EXPECT_FLOAT_EQ(out[1], static_cast<float>(6 * factor));
  EXPECT_FLOAT_EQ(out[3], static_cast<float>(factor));
}

// ---- against the numpy reference (tests/models/scheduler_reference.py) ----

json runReference() {
  char path[] = "/tmp/deviceops_scheduler_reference_XXXXXX";
  const int fd = mkstemp(path);
  if (fd < 0) return nullptr;
  close(fd);
  const std::string command = std::string("/usr/bin/python3 ") + DEVICEOPS_SOURCE_DIR +
                              "/tests/models/scheduler_reference.py --steps 30 "
                              "--denoising-start 0.8 --output " +
                              path + " 2>&1";
  std::string output;
  int status = -1;
  if (FILE* pipe = popen(command.c_str(), "r")) {
    char buffer[512];
    while (std::fgets(buffer, sizeof buffer, pipe)) output += buffer;
    status = pclose(pipe);
  }
  std::ifstream file(path);
  std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  std::remove(path);
  EXPECT_EQ(status, 0) << output;
  if (status != 0) return nullptr;
  return json::parse(text, nullptr, false);
}

const json& reference() {
  static const json document = runReference();
  return document;
}

// Every element within 1e-5 relative to the state's largest magnitude: the float32 state carries
// rounding of that size, so an element near zero cannot be compared relative to itself.
void expectClose(const std::vector<float>& actual, const json& expected, const char* what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  double scale = 0;
  for (const json& value : expected) scale = std::max(scale, std::abs(value.get<double>()));
  for (std::size_t i = 0; i < actual.size(); ++i) {
    const double want = expected[i].get<double>();
    ASSERT_LE(std::abs(actual[i] - want), 1e-5 * scale)
        << what << " element " << i << ": " << actual[i] << " vs " << want;
  }
}

TEST(SchedulerReference, SchedulesAndTrajectoriesMatchNumpy) {
  const json& document = reference();
  ASSERT_TRUE(document.is_object()) << "scheduler_reference.py gave no JSON";
  const int steps = document.at("steps").get<int>();
  const double denoisingStart = document.at("denoising_start").get<double>();
  const std::vector<double> start = document.at("start").get<std::vector<double>>();
  ASSERT_EQ(document.at("cases").size(), 7U);
  for (const json& item : document.at("cases")) {
    const std::string name = item.at("sampler").get<std::string>();
    const std::string spacing = item.at("spacing").get<std::string>();
    SCOPED_TRACE(name + " " + spacing);
    SchedulerConfig config;
    config.spacing = *parseSpacing(spacing);
    const SamplerKind kind = *parseSampler(name);
    const Schedule schedule = scheduleOf(kind, config, steps);

    EXPECT_EQ(schedule.timesteps, item.at("timesteps").get<std::vector<double>>());
    const auto sigmas = item.at("sigmas").get<std::vector<double>>();
    ASSERT_EQ(schedule.sigmas.size(), sigmas.size());
    for (std::size_t k = 0; k < sigmas.size(); ++k)
      EXPECT_NEAR(schedule.sigmas[k], sigmas[k], 1e-6 * sigmas[k]) << "sigma " << k;
    const double init = item.at("init_noise_sigma").get<double>();
    EXPECT_NEAR(schedule.initNoiseSigma, init, 1e-6 * init);
    const int base = *baseStepCount(schedule, config, denoisingStart);
    EXPECT_EQ(base, item.at("base_steps").get<int>());

    const json& trajectory = item.at("trajectory");
    ASSERT_EQ(trajectory.size(), static_cast<std::size_t>(steps) + 1);
    const json noiseRows = item.value("noise", json::array());
    auto run = [&](int split, bool record) {
      Sampler sampler(schedule);
      std::vector<float> x(start.size()), eps(start.size());
      for (std::size_t i = 0; i < x.size(); ++i)
        x[i] = static_cast<float>(start[i] * schedule.initNoiseSigma);
      if (record) expectClose(x, trajectory[0], "start");
      for (int k = 0; k < steps; ++k) {
        if (k == split) sampler.resetHistory();
        const double scale = sampler.inputScale(k);
        for (std::size_t i = 0; i < x.size(); ++i)
          eps[i] = static_cast<float>(0.1 * (x[i] * scale) +
                                      0.001 * schedule.timesteps[static_cast<std::size_t>(k)]);
        auto noise = [&](std::span<float> out) {
          const auto row = noiseRows.at(static_cast<std::size_t>(k)).get<std::vector<float>>();
          ASSERT_EQ(row.size(), out.size());
          std::copy(row.begin(), row.end(), out.begin());
        };
        sampler.step(k, x, eps, noise);
        if (record) {
          const std::string what = "after step " + std::to_string(k);
          expectClose(x, trajectory[static_cast<std::size_t>(k) + 1], what.c_str());
        }
      }
      return x;
    };
    run(-1, true);
    expectClose(run(base, false), item.at("split_final"), "split final");
  }
}

TEST(SchedulerReference, RefinerHistoryResetChangesOnlyDpm) {
  const json& document = reference();
  ASSERT_TRUE(document.is_object());
  for (const json& item : document.at("cases")) {
    const bool dpm = item.at("sampler") == "dpmpp_2m_karras";
    const auto full = item.at("trajectory").back().get<std::vector<double>>();
    const auto split = item.at("split_final").get<std::vector<double>>();
    if (dpm)
      EXPECT_NE(full, split);  // the refiner's first step is first order
    else
      EXPECT_EQ(full, split);
  }
}

}  // namespace
}  // namespace deviceops::diffusion
