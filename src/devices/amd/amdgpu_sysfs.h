// Pure parsers for the text files the amdgpu driver publishes under
// /sys/class/drm/cardN/device/ and its hwmon/hwmonM/ folder. No file I/O here: each function takes
// a file's text. Every parser accepts arbitrary bytes (garbage, truncated files, numbers that
// overflow) without undefined behaviour; fuzz/amdgpu_sysfs_fuzzer.cc holds them to that.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace deviceops::devices::amdgpu {

// pp_dpm_sclk / pp_dpm_mclk: one line per DPM level, "1: 2250Mhz *", the current level marked
// with '*'. Newer kernels add a sleep level "S: 19Mhz".
struct ClockLevels {
  std::vector<double> levelsMhz;     // in file order
  std::optional<double> currentMhz;  // the level marked '*'; absent when none is marked
  double maxMhz = 0;                 // highest level
};

// Errors (kInvalidArgument) on an empty table or any line that is not "<index>: <n>Mhz [*]".
Result<ClockLevels> parseClockLevels(std::string_view text);

// current_link_speed / max_link_speed: "16.0 GT/s PCIe" (older kernels: "8 GT/s") -> PCIe
// generation 1..6. nullopt for "Unknown" and transfer rates that are no PCIe generation.
std::optional<int> parseLinkSpeedGeneration(std::string_view text);

// current_link_width / max_link_width: "16" -> 16. nullopt outside 1..32 or when malformed.
std::optional<int> parseLinkWidth(std::string_view text);

// A sysfs integer file (mem_info_vram_total in bytes, power1_average in microwatts ...):
// optional surrounding whitespace, then decimal digits that fit in 64 bits.
std::optional<std::uint64_t> parseUnsigned(std::string_view text);

// gpu_busy_percent / mem_busy_percent: "37" -> 0.37. nullopt above 100 or when malformed.
std::optional<double> parsePercentAsRatio(std::string_view text);

// hwmon temp*_input, temp*_crit, temp*_emergency: text::parseMillidegreesCelsius
// (devices/text_parsing.h), shared with the cpu backend.

// hwmon power1_average, power1_input, power1_cap (microwatts) -> watts.
std::optional<double> parseMicrowattsAsWatts(std::string_view text);

// unique_id: 16 hexadecimal digits -> lowercase. nullopt otherwise.
std::optional<std::string> parseUniqueId(std::string_view text);

// product_name, vbios_version: the first line, trimmed, bytes outside printable ASCII replaced by
// '?' (the board's FRU EEPROM may hold anything). nullopt when that leaves nothing.
std::optional<std::string> parseTextLine(std::string_view text);

// The lines of the PCI device's uevent file that identify it.
struct PciUevent {
  std::string driver;          // DRIVER=amdgpu; empty when no driver is bound
  std::string slotName;        // PCI_SLOT_NAME=0000:03:00.0, lowercased
  std::uint16_t vendorId = 0;  // PCI_ID=1002:73BF
  std::uint16_t deviceId = 0;
};

// Errors when PCI_SLOT_NAME is missing or not "dddd:bb:dd.f" (hex), or PCI_ID is missing or not
// "vvvv:dddd" (hex).
Result<PciUevent> parsePciUevent(std::string_view text);

// "vvvv:dddd" in lowercase hex, e.g. formatPciId(0x1002, 0x73BF) == "1002:73bf".
std::string formatPciId(std::uint16_t vendorId, std::uint16_t deviceId);

// Marketing name for a few well-known AMD PCI device ids (0x73BF -> "AMD Radeon RX 6800/6800 XT
// / 6900 XT" ...), else "AMD GPU 1002:<id in lowercase hex>".
std::string marketingName(std::uint16_t deviceId);

}  // namespace deviceops::devices::amdgpu
