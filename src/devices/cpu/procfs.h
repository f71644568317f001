// Pure parsers for the procfs and sysfs text the cpu backend reads. No file I/O here: every
// function takes the file's text and returns a value, an Error or std::nullopt. Every parser
// accepts arbitrary bytes (garbage, truncated files, numbers that overflow) without undefined
// behaviour; fuzz/procfs_fuzzer.cc holds them to that.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace deviceops::devices {

// The aggregate "cpu" line of /proc/stat, in USER_HZ ticks ("jiffies") since boot. Fields the
// kernel does not print (kernels before 2.6.11 print only the first four) are 0. guest and
// guest_nice are not kept: the kernel already counts them inside user and nice.
struct CpuTimes {
  std::uint64_t user = 0;
  std::uint64_t nice = 0;
  std::uint64_t system = 0;
  std::uint64_t idle = 0;
  std::uint64_t iowait = 0;
  std::uint64_t irq = 0;
  std::uint64_t softirq = 0;
  std::uint64_t steal = 0;

  // Sum of every field. parseProcStat guarantees that this sum does not overflow.
  std::uint64_t total() const;
  // Ticks spent doing nothing: idle + iowait.
  std::uint64_t idleTotal() const;
};

// Parses /proc/stat. Errors (kInvalidArgument) when the aggregate "cpu " line is missing, has
// fewer than four numeric fields, holds a non-numeric or overflowing field, or its fields sum
// past 2^64.
Result<CpuTimes> parseProcStat(std::string_view text);

// Busy fraction (0..1) of all CPUs between two /proc/stat snapshots, `earlier` taken first.
// nullopt when no tick elapsed or the total went backwards (a counter reset).
std::optional<double> cpuUtilizationBetween(const CpuTimes& earlier, const CpuTimes& later);

// The two /proc/meminfo lines the cpu backend uses, converted from kB to bytes.
struct MemoryTotals {
  std::uint64_t totalBytes = 0;                 // MemTotal
  std::optional<std::uint64_t> availableBytes;  // MemAvailable; absent before Linux 3.14
};

// Parses /proc/meminfo. Errors when MemTotal is missing, or when MemTotal or MemAvailable is
// malformed or overflows 64 bits once converted to bytes. Other lines are not examined.
Result<MemoryTotals> parseMeminfo(std::string_view text);

// What /proc/cpuinfo says about the package(s). Strings hold printable ASCII only (other bytes
// become '?') so they are always valid JSON strings.
struct CpuInfo {
  std::string modelName;       // first "model name" line; empty when the architecture has none
  std::string vendorId;        // first "vendor_id" line, e.g. "GenuineIntel"; may be empty
  int threads = 0;             // number of "processor" entries, at least 1
  std::optional<int> sockets;  // distinct "physical id" values; absent when none is printed
  std::optional<int> cores;    // distinct (physical id, core id) pairs; absent when none printed
  std::optional<double> averageMhz;  // mean of the "cpu MHz" lines; absent when none is printed
};

// Parses /proc/cpuinfo. Errors when there is no "processor" entry or when a "processor",
// "physical id", "core id" or "cpu MHz" value is not a number.
Result<CpuInfo> parseCpuinfo(std::string_view text);

// Short sysfs values ---------------------------------------------------------------------------

// A sysfs integer file such as scaling_cur_freq: optional surrounding whitespace, then digits.
std::optional<std::uint64_t> parseSysfsUnsigned(std::string_view text);

// scaling_cur_freq, cpuinfo_max_freq (kHz) -> MHz. nullopt for 0 or malformed text.
std::optional<double> parseKilohertzAsMegahertz(std::string_view text);

// thermal_zone*/temp, hwmon temp*_input and temp*_crit: text::parseMillidegreesCelsius
// (devices/text_parsing.h), shared with the amd backend.

// The first line of a sysfs text file (thermal_zone type, hwmon name, temp*_label) without
// surrounding whitespace, non-printable bytes replaced by '?'.
std::string parseSysfsLine(std::string_view text);

// A cpulist such as "0-1,3" or "0-3,8-11\n" (NUMA node online, cpu online) -> ascending ids.
// Empty text means the empty list. Errors on malformed text, a descending range, or more than
// kMaxCpuListEntries ids in all (so a hostile file cannot make us allocate gigabytes).
inline constexpr std::size_t kMaxCpuListEntries = 65536;
Result<std::vector<std::uint32_t>> parseCpuList(std::string_view text);

// Temperature sensors ---------------------------------------------------------------------------

// Whether a thermal zone of this `type` measures the CPU package, and how well: 0 is best
// (x86_pkg_temp), 1 is a generic CPU zone (cpu-thermal, cpu_thermal, cpu0-thermal ...).
// nullopt for zones that are not the CPU (acpitz, pch_*, iwlwifi ...).
std::optional<int> cpuThermalZoneRank(std::string_view type);

// Whether a hwmon chip with this `name` is a CPU temperature driver we know:
// coretemp (Intel), k10temp and zenpower (AMD).
bool isCpuHwmonChip(std::string_view chipName);

// One temp*_input of a hwmon chip, with its temp*_label (empty when the chip has none).
struct HwmonSensor {
  int index = 0;  // N in tempN_input
  std::string label;
};

// Which sensor of a CPU hwmon chip reports the package temperature: coretemp's "Package id N",
// else k10temp/zenpower's "Tdie", else "Tctl", else temp1. nullopt when `sensors` is empty.
std::optional<int> pickPackageSensor(std::string_view chipName,
                                     const std::vector<HwmonSensor>& sensors);

}  // namespace deviceops::devices
