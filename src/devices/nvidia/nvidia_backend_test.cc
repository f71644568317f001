#include "devices/nvidia/nvidia_backend.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <optional>
#include <string>

#include "common/shared_library.h"
#include "devices/nvidia/cuda_library.h"
#include "devices/nvidia/nvml_library.h"

namespace deviceops::devices {
namespace {

constexpr unsigned long long kGiB = 1ULL << 30;

// Sets an environment variable for the scope, restoring (or unsetting) it afterwards.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) previous_ = old;
    ::setenv(name, value, 1);
  }
  ~ScopedEnv() {
    if (previous_) {
      ::setenv(name_.c_str(), previous_->c_str(), 1);
    } else {
      ::unsetenv(name_.c_str());
    }
  }

 private:
  std::string name_;
  std::optional<std::string> previous_;
};

// The NVML and CUDA test doubles live in one library (see testing/CMakeLists.txt).
NvidiaBackendOptions testDoubleOptions() {
  return {.nvmlLibraryPath = NVML_TEST_DOUBLE_PATH, .cudaLibraryPath = NVML_TEST_DOUBLE_PATH};
}

std::vector<DeviceRecord> openAndPoll(NvidiaBackendOptions options) {
  auto backend = makeNvidiaBackend(std::move(options));
  const Status opened = backend->open();
  EXPECT_TRUE(opened.ok()) << opened.error().message;
  if (!opened.ok()) return {};
  auto records = backend->poll();
  EXPECT_TRUE(records.ok()) << records.error().message;
  return records.ok() ? std::move(records).value() : std::vector<DeviceRecord>{};
}

TEST(NvidiaBackendTest, DefaultPathsWithoutDriverNameTheMissingLibrary) {
  if (SharedLibrary::open("libnvidia-ml.so.1").ok()) {
    GTEST_SKIP() << "an NVIDIA driver is installed on this machine";
  }
  auto backend = makeNvidiaBackend();
  EXPECT_EQ(backend->name(), "nvidia");
  const Status opened = backend->open();
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(opened.error().message.rfind("cannot load libnvidia-ml.so.1: ", 0), 0u)
      << opened.error().message;
  EXPECT_FALSE(backend->poll().ok());
}

TEST(NvidiaBackendTest, TestDoubleReportsTwoDevicesWithNormalizedFields) {
  const std::vector<DeviceRecord> records = openAndPoll(testDoubleOptions());
  ASSERT_EQ(records.size(), 2u);

  const DeviceRecord& h100 = records[0];
  EXPECT_EQ(h100.backend, "nvidia");
  EXPECT_EQ(h100.type, DeviceType::kGpu);
  EXPECT_EQ(h100.vendor, "NVIDIA");
  EXPECT_EQ(h100.name, "NVIDIA H100 80GB HBM3");
  EXPECT_EQ(h100.uuid, "5f2a6c1e-8b3d-4a7f-9c21-0d4e6b8a1f3c");
  EXPECT_EQ(h100.localKey, h100.uuid);
  EXPECT_EQ(h100.pciBusId, "0000:1b:00.0");
  EXPECT_FALSE(h100.queryError.has_value());
  EXPECT_EQ(h100.memory.totalBytes, 80 * kGiB);
  EXPECT_EQ(h100.memory.usedBytes, 3 * kGiB);
  EXPECT_EQ(h100.memory.freeBytes, 77 * kGiB);
  const Readings& r = h100.readings;
  EXPECT_EQ(r.temperatureCelsius, 41.0);
  EXPECT_EQ(r.slowdownTemperatureCelsius, 87.0);
  EXPECT_EQ(r.shutdownTemperatureCelsius, 92.0);
  EXPECT_DOUBLE_EQ(r.utilizationRatio.value_or(-1), 0.37);
  EXPECT_DOUBLE_EQ(r.memoryUtilizationRatio.value_or(-1), 0.12);
  EXPECT_DOUBLE_EQ(r.powerWatts.value_or(-1), 123.456);
  EXPECT_DOUBLE_EQ(r.powerLimitWatts.value_or(-1), 700.0);
  EXPECT_EQ(r.clockMhz, 1755.0);
  EXPECT_EQ(r.clockMaxMhz, 1980.0);
  EXPECT_EQ(r.memoryClockMhz, 2619.0);
  EXPECT_EQ(r.memoryClockMaxMhz, 2619.0);
  EXPECT_EQ(r.throttleReasons, std::vector<std::string>{"gpuIdle"});
  EXPECT_FALSE(r.thermalThrottling);
  EXPECT_FALSE(r.powerThrottling);
  EXPECT_EQ(r.eccVolatileSingleBit, 3u);
  EXPECT_EQ(r.eccVolatileDoubleBit, 0u);
  EXPECT_EQ(r.eccAggregateSingleBit, 17u);
  EXPECT_EQ(r.eccAggregateDoubleBit, 1u);
  EXPECT_EQ(r.pcieLinkGeneration, 5);
  EXPECT_EQ(r.pcieLinkWidth, 16);
  EXPECT_EQ(r.pcieLinkGenerationMax, 5);
  EXPECT_EQ(r.pcieLinkWidthMax, 16);

  const nlohmann::json& p = h100.properties;
  EXPECT_EQ(p["driverVersion"], "550.54.15");
  EXPECT_EQ(p["cudaDriverVersion"], "12.4");
  EXPECT_EQ(p["cudaDriver"]["available"], true);
  EXPECT_EQ(p["computeCapability"], "9.0");
  // CUDA numbers the GPUs in reverse: matched by UUID, the H100 is CUDA ordinal 1.
  EXPECT_EQ(p["multiprocessorCount"], 132);
  EXPECT_EQ(p["cudaOrdinal"], 1);
  EXPECT_EQ(p["throttleReasonsMask"], 1);
  EXPECT_EQ(p["clocks"]["smMhz"], 1755);
  EXPECT_EQ(p["clocks"]["smMaxMhz"], 1980);
  EXPECT_EQ(p["pcie"]["generation"], 5);
  EXPECT_EQ(p["ecc"]["aggregateCorrected"], 17);
  EXPECT_EQ(p["reservedMemoryBytes"], kGiB / 2);
  // 5120 bits x 2619 MHz x 2 (double data rate) / 8.
  EXPECT_EQ(p["memoryBusWidthBits"], 5120);
  EXPECT_EQ(h100.memory.peakBandwidthBytesPerSecond, 3352320000000.0);
  // Two processes, returned after an NVML_ERROR_INSUFFICIENT_SIZE round trip; one of them with
  // memory NVML cannot see (NVML_VALUE_NOT_AVAILABLE -> absent).
  const nlohmann::json expectedProcesses =
      nlohmann::json::parse(R"([{"pid": 4242, "usedMemoryBytes": 1073741824}, {"pid": 4343}])");
  EXPECT_EQ(p["processes"], expectedProcesses);

  const DeviceRecord& a100 = records[1];
  EXPECT_EQ(a100.name, "NVIDIA A100-SXM4-40GB");
  EXPECT_EQ(a100.uuid, "0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9");
  EXPECT_EQ(a100.pciBusId, "0000:af:00.0");
  EXPECT_EQ(a100.memory.totalBytes, 40 * kGiB);
  EXPECT_EQ(a100.properties["computeCapability"], "8.0");
  EXPECT_EQ(a100.properties["multiprocessorCount"], 108);
  EXPECT_EQ(a100.properties["cudaOrdinal"], 0);
  EXPECT_EQ(a100.readings.throttleReasons,
            (std::vector<std::string>{"swPowerCap", "swThermalSlowdown", "hwPowerBrakeSlowdown"}));
  EXPECT_TRUE(a100.readings.thermalThrottling);
  EXPECT_TRUE(a100.readings.powerThrottling);
  EXPECT_EQ(a100.readings.pcieLinkGeneration, 3);
  EXPECT_EQ(a100.readings.pcieLinkGenerationMax, 4);
  EXPECT_EQ(a100.properties["processes"], nlohmann::json::array());
  EXPECT_EQ(a100.memory.peakBandwidthBytesPerSecond, 1555200000000.0);  // 5120 bits, 1215 MHz
}

TEST(NvidiaBackendTest, PeakBandwidthIsUnsetWithoutTheBusWidth) {
  ScopedEnv noBusWidth("NVML_TEST_DOUBLE_NO_BUS_WIDTH", "1");
  const std::vector<DeviceRecord> records = openAndPoll(testDoubleOptions());
  ASSERT_EQ(records.size(), 2u);
  for (const DeviceRecord& record : records) {
    SCOPED_TRACE(record.name);
    EXPECT_FALSE(record.queryError.has_value());
    EXPECT_EQ(record.memory.peakBandwidthBytesPerSecond, std::nullopt);
    EXPECT_FALSE(record.properties.contains("memoryBusWidthBits"));
    EXPECT_TRUE(record.readings.memoryClockMaxMhz.has_value());
  }
}

TEST(NvidiaBackendTest, FailedInitIsUnavailableWithTheNvmlErrorString) {
  ScopedEnv failInit("NVML_TEST_DOUBLE_FAIL_INIT", "1");
  auto backend = makeNvidiaBackend(testDoubleOptions());
  const Status opened = backend->open();
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(opened.error().message, "nvmlInit_v2 failed: Driver Not Loaded");
}

TEST(NvidiaBackendTest, LostDeviceIsReportedWithQueryErrorAndOthersStayFine) {
  ScopedEnv lost("NVML_TEST_DOUBLE_LOST_DEVICE", "1");
  const std::vector<DeviceRecord> records = openAndPoll(testDoubleOptions());
  ASSERT_EQ(records.size(), 2u);
  EXPECT_FALSE(records[0].queryError.has_value());
  EXPECT_EQ(records[0].memory.totalBytes, 80 * kGiB);
  ASSERT_TRUE(records[1].queryError.has_value());
  EXPECT_EQ(*records[1].queryError, "nvmlDeviceGetMemoryInfo_v2: GPU is lost");
  // Identity read at open() stays, so the Inventory can still tell which device was lost.
  EXPECT_EQ(records[1].localKey, "0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9");
  EXPECT_EQ(records[1].name, "NVIDIA A100-SXM4-40GB");
  // Nothing is queried after the loss: no stale or invented readings.
  EXPECT_FALSE(records[1].readings.temperatureCelsius.has_value());
  EXPECT_FALSE(records[1].memory.usedBytes.has_value());
}

TEST(NvidiaBackendTest, UnsupportedEccLeavesEccFieldsAbsent) {
  ScopedEnv noEcc("NVML_TEST_DOUBLE_NO_ECC", "1");
  const std::vector<DeviceRecord> records = openAndPoll(testDoubleOptions());
  ASSERT_EQ(records.size(), 2u);
  for (const DeviceRecord& record : records) {
    SCOPED_TRACE(record.name);
    EXPECT_FALSE(record.readings.eccVolatileSingleBit.has_value());
    EXPECT_FALSE(record.readings.eccVolatileDoubleBit.has_value());
    EXPECT_FALSE(record.readings.eccAggregateSingleBit.has_value());
    EXPECT_FALSE(record.readings.eccAggregateDoubleBit.has_value());
    EXPECT_FALSE(record.properties.contains("ecc"));
    EXPECT_FALSE(record.queryError.has_value());
    EXPECT_TRUE(record.readings.temperatureCelsius.has_value());
  }
}

TEST(NvidiaBackendTest, FallsBackToMemoryInfoV1) {
  ScopedEnv noV2("NVML_TEST_DOUBLE_NO_MEMORY_V2", "1");
  const std::vector<DeviceRecord> records = openAndPoll(testDoubleOptions());
  ASSERT_EQ(records.size(), 2u);
  EXPECT_FALSE(records[0].queryError.has_value());
  EXPECT_EQ(records[0].memory.totalBytes, 80 * kGiB);
  EXPECT_EQ(records[0].memory.usedBytes, 3 * kGiB - kGiB / 2);
  EXPECT_EQ(records[0].memory.freeBytes, 77 * kGiB);
  EXPECT_FALSE(records[0].properties.contains("reservedMemoryBytes"));
}

TEST(NvidiaBackendTest, WorksFromNvmlAloneWhenCudaIsMissing) {
  const std::string missing = "/nonexistent/libcuda.so.1";
  const std::vector<DeviceRecord> records =
      openAndPoll({.nvmlLibraryPath = NVML_TEST_DOUBLE_PATH, .cudaLibraryPath = missing});
  ASSERT_EQ(records.size(), 2u);
  for (const DeviceRecord& record : records) {
    SCOPED_TRACE(record.name);
    EXPECT_FALSE(record.properties.contains("multiprocessorCount"));
    EXPECT_FALSE(record.properties.contains("cudaOrdinal"));
    EXPECT_EQ(record.properties["cudaDriver"]["available"], false);
    const std::string reason = record.properties["cudaDriver"]["reason"];
    EXPECT_NE(reason.find("cannot load " + missing), std::string::npos) << reason;
    EXPECT_EQ(record.properties["computeCapability"].is_string(), true);
    EXPECT_GT(record.memory.totalBytes, 0u);
  }
}

TEST(NvidiaBackendTest, PollsAgreeOnStaticFacts) {
  auto backend = makeNvidiaBackend(testDoubleOptions());
  ASSERT_TRUE(backend->open().ok());
  auto first = backend->poll();
  auto second = backend->poll();
  ASSERT_TRUE(first.ok() && second.ok());
  ASSERT_EQ(first->size(), second->size());
  for (std::size_t i = 0; i < first->size(); ++i) {
    EXPECT_EQ((*first)[i].localKey, (*second)[i].localKey);
    EXPECT_EQ((*first)[i].properties, (*second)[i].properties);
  }
}

TEST(CudaLibraryTest, TestDoubleListsDevicesAndAllocates) {
  auto cuda = nvidia::CudaLibrary::open(NVML_TEST_DOUBLE_PATH);
  ASSERT_TRUE(cuda.ok()) << cuda.error().message;
  EXPECT_TRUE((*cuda)->missingSymbols().empty());
  EXPECT_EQ((*cuda)->driverVersion().value(), "12.4");
  auto devices = (*cuda)->devices();
  ASSERT_TRUE(devices.ok());
  ASSERT_EQ(devices->size(), 2u);
  EXPECT_EQ((*devices)[0].uuid, "0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9");
  EXPECT_EQ((*devices)[0].multiprocessorCount, 108);
  EXPECT_EQ((*cuda)->errorString(nvidia::CUDA_ERROR_OUT_OF_MEMORY),
            "CUDA_ERROR_OUT_OF_MEMORY (out of memory)");
  EXPECT_EQ((*cuda)->errorString(static_cast<nvidia::CUresult>(12345)), "CUresult 12345");

  const nvidia::CudaFunctions& api = (*cuda)->api();
  nvidia::CUcontext context = nullptr;
  ASSERT_EQ(api.cuDevicePrimaryCtxRetain(&context, 0), nvidia::CUDA_SUCCESS);
  ASSERT_EQ(api.cuCtxSetCurrent(context), nvidia::CUDA_SUCCESS);
  nvidia::CUdeviceptr pointer = 0;
  ASSERT_EQ(api.cuMemAlloc_v2(&pointer, 64), nvidia::CUDA_SUCCESS);
  ASSERT_EQ(api.cuMemsetD8_v2(pointer, 0xAB, 64), nvidia::CUDA_SUCCESS);
  unsigned char host[64] = {};
  ASSERT_EQ(api.cuMemcpyDtoH_v2(host, pointer, sizeof host), nvidia::CUDA_SUCCESS);
  EXPECT_EQ(host[63], 0xAB);
  EXPECT_EQ(api.cuMemFree_v2(pointer), nvidia::CUDA_SUCCESS);
  EXPECT_EQ(api.cuDevicePrimaryCtxRelease_v2(0), nvidia::CUDA_SUCCESS);
}

TEST(CudaLibraryTest, MissingLibraryNamesThePath) {
  auto cuda = nvidia::CudaLibrary::open("/nonexistent/libcuda.so.1");
  ASSERT_FALSE(cuda.ok());
  EXPECT_NE(cuda.error().message.find("/nonexistent/libcuda.so.1"), std::string::npos);
}

TEST(NvmlHelpersTest, NormalizesPciBusIds) {
  struct Case {
    const char* input;
    std::optional<std::string> expected;
  };
  const Case cases[] = {
      {"00000000:01:00.0", "0000:01:00.0"},
      {"00000000:1B:00.0", "0000:1b:00.0"},
      {"0000:AF:1F.7", "0000:af:1f.7"},  // legacy 4-digit domain
      {"00000001:C1:00.0", "0001:c1:00.0"},
      {"00010000:01:00.0", "10000:01:00.0"},  // a domain that needs more than 4 digits keeps them
      {"", std::nullopt},
      {"01:00.0", std::nullopt},
      {"0000:01:00", std::nullopt},
      {"0000:0g:00.0", std::nullopt},
      {"0000:100:00.0", std::nullopt},
      {"000000000:01:00.0", std::nullopt},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.input);
    EXPECT_EQ(nvidia::normalizePciBusId(c.input), c.expected);
  }
}

TEST(NvmlHelpersTest, NormalizesGpuUuids) {
  struct Case {
    const char* input;
    std::optional<std::string> expected;
  };
  const Case cases[] = {
      {"GPU-5F2A6C1E-8B3D-4A7F-9C21-0D4E6B8A1F3C", "5f2a6c1e-8b3d-4a7f-9c21-0d4e6b8a1f3c"},
      {"GPU-0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9", "0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9"},
      {"MIG-5f2a6c1e-8b3d-4a7f-9c21-0d4e6b8a1f3c", std::nullopt},
      {"5f2a6c1e-8b3d-4a7f-9c21-0d4e6b8a1f3c", std::nullopt},
      {"GPU-5f2a6c1e-8b3d-4a7f-9c21-0d4e6b8a1f3", std::nullopt},
      {"GPU-5f2a6c1e_8b3d-4a7f-9c21-0d4e6b8a1f3c", std::nullopt},
      {"GPU-zf2a6c1e-8b3d-4a7f-9c21-0d4e6b8a1f3c", std::nullopt},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.input);
    EXPECT_EQ(nvidia::normalizeGpuUuid(c.input), c.expected);
  }
}

TEST(NvmlHelpersTest, DecodesThrottleReasons) {
  struct Case {
    unsigned long long mask;
    std::vector<std::string> names;
    bool thermal;
    bool power;
  };
  const Case cases[] = {
      {0x0, {}, false, false},
      {0x1, {"gpuIdle"}, false, false},
      {0x2, {"applicationsClocksSetting"}, false, false},
      {0x4, {"swPowerCap"}, false, true},
      {0x8, {"hwSlowdown"}, false, false},
      {0x10, {"syncBoost"}, false, false},
      {0x20, {"swThermalSlowdown"}, true, false},
      {0x40, {"hwThermalSlowdown"}, true, false},
      {0x80, {"hwPowerBrakeSlowdown"}, false, true},
      {0x100, {"displayClockSetting"}, false, false},
      {0x44, {"swPowerCap", "hwThermalSlowdown"}, true, true},
      {0x1000, {}, false, false},  // bits NVML may add later are ignored
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.mask);
    const nvidia::ThrottleReasons decoded = nvidia::decodeThrottleReasons(c.mask);
    EXPECT_EQ(decoded.names, c.names);
    EXPECT_EQ(decoded.thermal, c.thermal);
    EXPECT_EQ(decoded.power, c.power);
  }
}

TEST(NvmlHelpersTest, PeakMemoryBandwidthIsBusWidthTimesDoubleDataRateClock) {
  // H100 SXM: 5120-bit HBM3 at 2619 MHz -> 3.35 TB/s, NVIDIA's spec sheet figure.
  EXPECT_EQ(nvidia::peakMemoryBandwidthBytesPerSecond(5120, 2619), 3352320000000.0);
  EXPECT_NEAR(*nvidia::peakMemoryBandwidthBytesPerSecond(5120, 2619) / 1e12, 3.35, 0.01);
  // RTX 4090: 384-bit GDDR6X, NVML's memory clock 10501 MHz -> 1.008 TB/s.
  EXPECT_EQ(nvidia::peakMemoryBandwidthBytesPerSecond(384, 10501), 1008096000000.0);
  EXPECT_EQ(nvidia::peakMemoryBandwidthBytesPerSecond(0, 2619), std::nullopt);
  EXPECT_EQ(nvidia::peakMemoryBandwidthBytesPerSecond(5120, 0), std::nullopt);
}

TEST(NvmlHelpersTest, FormatsCudaVersionsAndUuids) {
  const std::pair<int, const char*> versions[] = {
      {12040, "12.4"}, {11080, "11.8"}, {12000, "12.0"}, {13010, "13.1"}, {10020, "10.2"}};
  for (const auto& [version, expected] : versions) {
    SCOPED_TRACE(version);
    EXPECT_EQ(nvidia::cudaVersionString(version), expected);
  }
  nvidia::CUuuid uuid{};
  for (int i = 0; i < 16; ++i) uuid.bytes[i] = static_cast<char>(0xF0 + i);
  EXPECT_EQ(nvidia::uuidString(uuid), "f0f1f2f3-f4f5-f6f7-f8f9-fafbfcfdfeff");
  EXPECT_TRUE(nvidia::isDeviceGone(nvidia::NVML_ERROR_GPU_IS_LOST));
  EXPECT_FALSE(nvidia::isDeviceGone(nvidia::NVML_ERROR_NOT_SUPPORTED));
}

TEST(NvmlApiTest, StructLayoutsMatchTheNvmlAbi) {
  // Sizes and offsets from NVIDIA's nvml.h on LP64 Linux; a mismatch would corrupt every call.
  EXPECT_EQ(sizeof(nvidia::nvmlMemory_v2_t), 40u);
  EXPECT_EQ(nvidia::nvmlMemory_v2, 40u | (2u << 24));
  EXPECT_EQ(sizeof(nvidia::nvmlMemory_t), 24u);
  EXPECT_EQ(sizeof(nvidia::nvmlPciInfo_t), 68u);
  EXPECT_EQ(offsetof(nvidia::nvmlPciInfo_t, busId), 36u);
  EXPECT_EQ(sizeof(nvidia::nvmlProcessInfo_t), 24u);
  EXPECT_EQ(sizeof(nvidia::nvmlUtilization_t), 8u);
  EXPECT_EQ(sizeof(nvidia::CUuuid), 16u);
  EXPECT_EQ(sizeof(nvidia::CUdeviceptr), 8u);
}

}  // namespace
}  // namespace deviceops::devices
