// Feeds arbitrary bytes to every procfs/sysfs parser of the cpu backend. The parsers must return
// an error or a value, never crash, read out of bounds or overflow (run under ASan and UBSan).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "devices/cpu/procfs.h"
#include "devices/text_parsing.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace deviceops::devices;
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  const auto times = parseProcStat(text);
  if (times.ok()) {
    (void)times->total();
    (void)cpuUtilizationBetween(CpuTimes{}, *times);
    (void)cpuUtilizationBetween(*times, CpuTimes{});
  }
  (void)parseMeminfo(text);
  const auto info = parseCpuinfo(text);
  if (info.ok() && info->threads < 1) __builtin_trap();
  (void)parseSysfsUnsigned(text);
  (void)parseKilohertzAsMegahertz(text);
  (void)deviceops::devices::text::parseMillidegreesCelsius(text);
  const std::string line = parseSysfsLine(text);
  (void)cpuThermalZoneRank(line);
  (void)isCpuHwmonChip(line);
  const auto ids = parseCpuList(text);
  if (ids.ok() && ids->size() > kMaxCpuListEntries) __builtin_trap();

  // Lines as hwmon labels: the first byte picks the chip.
  std::vector<HwmonSensor> sensors;
  std::string_view rest = text;
  for (int index = 1; !rest.empty() && index < 64; ++index) {
    const auto newline = rest.find('\n');
    sensors.push_back({index, std::string(rest.substr(0, newline))});
    rest = newline == std::string_view::npos ? std::string_view{} : rest.substr(newline + 1);
  }
  constexpr std::string_view kChips[] = {"coretemp", "k10temp", "zenpower", "other"};
  const std::string_view chip = kChips[size == 0 ? 0 : data[0] % 4];
  const auto picked = pickPackageSensor(chip, sensors);
  if (picked.has_value() == sensors.empty()) __builtin_trap();
  return 0;
}
