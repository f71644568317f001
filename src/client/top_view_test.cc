#include "client/top_view.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "client/table.h"

namespace deviceops::client {
namespace {

using Json = nlohmann::json;

Json deviceList() {
  return Json::parse(R"([
    {"id": "gpu0", "name": "NVIDIA H100", "vendor": "nvidia", "health": {"status": "healthy"},
     "memory": {"totalBytes": 85899345920, "usedBytes": 8589934592},
     "readings": {"utilizationRatio": 0.5, "temperatureCelsius": 61.6, "powerWatts": 250,
                  "throttleReasons": []}},
    {"id": "cpu0", "name": "Xeon", "vendor": "intel", "health": {"status": "degraded"},
     "memory": {"totalBytes": 1073741824, "usedBytes": null},
     "readings": {"utilizationRatio": null, "temperatureCelsius": null, "powerWatts": null}}
  ])");
}

ServerSentEvent sse(std::string type, const Json& data, std::string id = "") {
  return {std::move(id), std::move(type), data.dump()};
}

TEST(TopModelTest, DeviceListWithSamplesMergedById) {
  TopModel model;
  const Json samples = Json::parse(R"([
    {"deviceId": "gpu0", "utilizationRatio": 0.25, "memoryUsedBytes": null,
     "memoryFreeBytes": 42949672960, "memoryTotalBytes": 85899345920, "throttled": true,
     "stale": false, "health": {"status": "critical"}, "heldBytes": 3221225472,
     "heldBytesByKind": {"raw": 1073741824, "model": 2147483648, "training": 0}},
    {"deviceId": "new0", "name": "Late", "memoryTotalBytes": 1024}
  ])");
  model.setDevices(deviceList(), samples);
  ASSERT_EQ(model.devices.size(), 3u);
  const TopDevice& gpu = model.devices[0];
  EXPECT_EQ(gpu.id, "gpu0");
  EXPECT_EQ(gpu.name, "NVIDIA H100") << "the list's name when the sample has none";
  EXPECT_EQ(gpu.health, "critical");
  EXPECT_EQ(gpu.utilizationRatio, 0.25);
  EXPECT_EQ(gpu.memoryUsedBytes, 42949672960u) << "total - free when used is null";
  EXPECT_TRUE(gpu.throttled);
  EXPECT_EQ(gpu.heldBytes, 3221225472u);
  ASSERT_EQ(gpu.heldBytesByKind.size(), 3u);
  EXPECT_EQ(model.devices[1].id, "cpu0");
  EXPECT_EQ(model.devices[1].memoryUsedBytes, std::nullopt);
  EXPECT_EQ(model.devices[2].name, "Late");
}

TEST(TopModelTest, StreamEventsUpdateTheModel) {
  TopModel model;
  model.setDevices(deviceList(), Json());
  model.setLedger("gpu0", Json::parse(R"({"heldBytes": 1024, "heldBytesByKind": {"raw": 1024}})"));
  EXPECT_EQ(model.apply(sse("hello", {{"node", "n1"}, {"telemetry", false}})), TopChange::kRedraw);
  EXPECT_EQ(model.node, "n1");
  EXPECT_FALSE(model.telemetry);

  const Json samples = {{"time", "2026-12-06T02:32:15Z"},
                        {"devices", {{{"deviceId", "gpu0"}, {"utilizationRatio", 1.0}}}}};
  EXPECT_EQ(model.apply(sse("samples", samples, "7")), TopChange::kRedraw);
  EXPECT_EQ(model.time, "2026-12-06T02:32:15Z");
  ASSERT_EQ(model.devices.size(), 2u) << "devices without a sample stay";
  EXPECT_EQ(model.devices[0].utilizationRatio, 1.0);
  EXPECT_EQ(model.devices[0].name, "NVIDIA H100");
  EXPECT_EQ(model.devices[0].heldBytes, 1024u) << "a sample without the ledger keeps the last";

  EXPECT_EQ(model.apply(sse("event", {{"type", "health.changed"}, {"message", "hot"}})),
            TopChange::kRedraw);
  EXPECT_EQ(model.apply(sse("event", {{"type", "training.completed"}})), TopChange::kReloadJobs);
  EXPECT_EQ(model.apply(sse("event", {{"type", "generation.succeeded"}})), TopChange::kReloadJobs);
  ASSERT_EQ(model.events.size(), 3u);
  EXPECT_EQ(model.events.front().value("type", ""), "generation.succeeded") << "newest first";
  EXPECT_EQ(model.apply(sse("reset", {{"oldest", 3}})), TopChange::kReloadAll);
  EXPECT_EQ(model.apply(sse("event", Json("not an object"))), TopChange::kNone);
  EXPECT_EQ(model.apply(sse("something.new", Json::object())), TopChange::kNone);
  EXPECT_EQ(model.apply({"", "samples", "{broken"}), TopChange::kRedraw);
  EXPECT_EQ(model.devices.size(), 2u) << "a broken samples event changes no device";
  for (int i = 0; i < 60; ++i) model.apply(sse("event", {{"type", "x"}}));
  EXPECT_EQ(model.events.size(), TopModel::kMaxEvents);
}

TEST(RenderTopFrameTest, DevicesLedgerJobsAndEvents) {
  TopModel model;
  model.node = "n1";
  model.status = "live";
  model.time = "2026-12-06T02:32:15Z";
  model.setDevices(deviceList(), Json());
  model.setLedger("gpu0", Json::parse(R"({"heldBytes": 3221225472,
      "heldBytesByKind": {"model": 2147483648, "raw": 1073741824, "training": 0}})"));
  model.trainingJobs = Json::parse(R"([
    {"jobId": "job-1", "state": "completed", "progress": {"step": 10, "totalSteps": 10,
     "epoch": 2, "epochs": 2, "loss": 0.5}},
    {"jobId": "job-2", "state": "running", "progress": {"step": 3, "totalSteps": 10,
     "epoch": 1, "epochs": 2, "loss": 0.12345, "samplesPerSecond": 512.4}}])");
  model.generationJobs = Json::parse(R"([{"id": "gen-1", "state": "running", "suite": "sdxl",
     "progress": {"stage": "base", "step": 2, "totalSteps": 8}, "images": []}])");
  model.events.push_back({{"time", "2026-12-06T02:30:00.5Z"},
                          {"severity", "warning"},
                          {"type", "health.changed"},
                          {"deviceId", "cpu0"},
                          {"message", "cpu0 degraded"}});
  EXPECT_EQ(renderTopFrame(model, 80),
            "deviceops top  node n1  02:32:15  live  (q quits)\n"
            "DEVICES (2)\n"
            "gpu0  NVIDIA H100 (nvidia)  healthy  62 °C  250.0 W\n"
            "  util [#############.............]  50%  mem [#.........]  10% 8.0 GiB/80.0 GiB\n"
            "  ledger 3.0 GiB held: model 2.0 GiB, raw 1.0 GiB\n"
            "cpu0  Xeon (intel)  degraded  -  -\n"
            "  util -  mem -/1.0 GiB\n"
            "JOBS\n"
            "  train job-2 running step 3/10 epoch 1/2 loss 0.1235 512 samples/s\n"
            "  gen   gen-1 running sdxl base 2/8 images 0\n"
            "  train job-1 completed step 10/10 epoch 2/2 loss 0.5000\n"
            "EVENTS\n"
            "  02:30:00 warning health.changed cpu0: cpu0 degraded\n");
}

TEST(RenderTopFrameTest, HeightAndWidthBoundTheFrame) {
  TopModel model;
  model.setDevices(deviceList(), Json());
  for (int i = 0; i < 30; ++i) model.events.push_back({{"type", "x"}, {"message", "m"}});
  const std::string frame = renderTopFrame(model, 30, 12);
  EXPECT_EQ(std::count(frame.begin(), frame.end(), '\n'), 12);
  std::size_t start = 0;
  while (start < frame.size()) {
    const std::size_t end = frame.find('\n', start);
    EXPECT_LE(displayWidth(frame.substr(start, end - start)), 30u) << frame;
    start = end + 1;
  }
  TopModel empty;
  EXPECT_EQ(renderTopFrame(empty, 80),
            "deviceops top  snapshot  (q quits)\n"
            "DEVICES (0)\n"
            "  no devices\n"
            "JOBS\n"
            "  no training or generation jobs\n"
            "EVENTS\n"
            "  none yet\n");
}

}  // namespace
}  // namespace deviceops::client
