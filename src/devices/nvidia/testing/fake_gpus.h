// The two GPUs that the NVML and CUDA test doubles describe. Test code compares against these
// values, so they live in one place. Not part of any production target.
#pragma once

namespace deviceops::devices::nvidia::testing {

struct FakeGpu {
  const char* name;
  const char* nvmlUuid;  // as NVML prints it: "GPU-" + upper-case hex
  unsigned char uuidBytes[16];
  const char* busId;  // as NVML prints it: 8-digit domain, upper-case hex
  unsigned int pciDeviceId;
  unsigned long long totalBytes;
  unsigned long long reservedBytes;
  unsigned long long usedBytes;  // includes reservedBytes, as nvmlMemory_v2_t.used does
  int computeMajor;
  int computeMinor;
  int multiprocessorCount;
  unsigned long long throttleMask;
  unsigned int memoryBusWidthBits;  // nvmlDeviceGetMemoryBusWidth
};

inline constexpr unsigned long long kGiB = 1ULL << 30;

inline constexpr FakeGpu kFakeGpus[2] = {
    {"NVIDIA H100 80GB HBM3",
     "GPU-5F2A6C1E-8B3D-4A7F-9C21-0D4E6B8A1F3C",
     {0x5f, 0x2a, 0x6c, 0x1e, 0x8b, 0x3d, 0x4a, 0x7f, 0x9c, 0x21, 0x0d, 0x4e, 0x6b, 0x8a, 0x1f,
      0x3c},
     "00000000:1B:00.0",
     0x233010DE,
     80 * kGiB,
     kGiB / 2,
     3 * kGiB,
     9,
     0,
     132,
     0x1,  // gpuIdle
     5120},
    {"NVIDIA A100-SXM4-40GB",
     "GPU-0A1B2C3D-4E5F-6071-8293-A4B5C6D7E8F9",
     {0x0a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f, 0x60, 0x71, 0x82, 0x93, 0xa4, 0xb5, 0xc6, 0xd7, 0xe8,
      0xf9},
     "00000000:AF:00.0",
     0x20B010DE,
     40 * kGiB,
     kGiB / 4,
     10 * kGiB,
     8,
     0,
     108,
     0x4 | 0x20 | 0x80,  // swPowerCap | swThermalSlowdown | hwPowerBrakeSlowdown
     5120},
};

}  // namespace deviceops::devices::nvidia::testing
