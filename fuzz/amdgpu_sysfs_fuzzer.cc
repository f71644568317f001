// Feeds arbitrary bytes to every amdgpu sysfs parser of the amd backend. The parsers must return
// an error or a value, never crash, read out of bounds or overflow (run under ASan and UBSan).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "devices/amd/amdgpu_sysfs.h"
#include "devices/text_parsing.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace deviceops::devices::amdgpu;
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  const auto levels = parseClockLevels(text);
  if (levels.ok()) {
    if (levels->levelsMhz.empty()) __builtin_trap();
    if (levels->currentMhz && *levels->currentMhz > levels->maxMhz) __builtin_trap();
  }
  const auto generation = parseLinkSpeedGeneration(text);
  if (generation && (*generation < 1 || *generation > 6)) __builtin_trap();
  const auto width = parseLinkWidth(text);
  if (width && (*width < 1 || *width > 32)) __builtin_trap();
  (void)parseUnsigned(text);
  const auto ratio = parsePercentAsRatio(text);
  if (ratio && (*ratio < 0 || *ratio > 1)) __builtin_trap();
  (void)deviceops::devices::text::parseMillidegreesCelsius(text);
  (void)parseMicrowattsAsWatts(text);
  const auto uniqueId = parseUniqueId(text);
  if (uniqueId && uniqueId->size() != 16) __builtin_trap();
  (void)parseTextLine(text);
  const auto uevent = parsePciUevent(text);
  if (uevent.ok() && uevent->slotName.size() != 12) __builtin_trap();
  if (size >= 2) (void)marketingName(static_cast<std::uint16_t>(data[0] << 8 | data[1]));
  return 0;
}
