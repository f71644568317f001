#include "devices/amd/amdgpu_sysfs.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <utility>

#include "devices/text_parsing.h"

namespace deviceops::devices::amdgpu {
namespace {

using text::kWhitespace;
using text::nextLine;
using text::toUnsigned;
using text::trim;

bool isHexDigits(std::string_view text, std::size_t count) {
  return text.size() == count && std::all_of(text.begin(), text.end(), [](char character) {
           return (character >= '0' && character <= '9') ||
                  (character >= 'a' && character <= 'f') || (character >= 'A' && character <= 'F');
         });
}

std::string toLower(std::string_view text) {
  std::string result(text);
  for (char& character : result) {
    if (character >= 'A' && character <= 'Z') character = static_cast<char>(character - 'A' + 'a');
  }
  return result;
}

bool equalsIgnoringCase(std::string_view a, std::string_view b) { return toLower(a) == toLower(b); }

Error invalid(std::string message) {
  return makeError(ErrorCode::kInvalidArgument, std::move(message));
}

}  // namespace

Result<ClockLevels> parseClockLevels(std::string_view text) {
  ClockLevels levels;
  while (!text.empty()) {
    std::string_view line = trim(nextLine(text));
    if (line.empty()) continue;
    const auto colon = line.find(':');
    const std::string_view index = line.substr(0, colon);
    if (colon == std::string_view::npos || (index != "S" && !toUnsigned<unsigned>(index))) {
      return invalid("DPM clock table: a line does not start with \"<level>:\"");
    }
    line = trim(line.substr(colon + 1));
    const bool current = !line.empty() && line.back() == '*';
    if (current) line = trim(line.substr(0, line.size() - 1));
    const auto digits = std::min(line.find_first_not_of("0123456789"), line.size());
    const auto megahertz = toUnsigned<std::uint32_t>(line.substr(0, digits));
    if (!megahertz || !equalsIgnoringCase(line.substr(digits), "Mhz")) {
      return invalid("DPM clock table: a level is not \"<number>Mhz\"");
    }
    levels.levelsMhz.push_back(*megahertz);
    levels.maxMhz = std::max(levels.maxMhz, static_cast<double>(*megahertz));
    if (current) levels.currentMhz = *megahertz;
  }
  if (levels.levelsMhz.empty()) return invalid("DPM clock table: no levels");
  return levels;
}

std::optional<int> parseLinkSpeedGeneration(std::string_view text) {
  text = trim(text);
  const auto space = text.find(' ');
  if (space == std::string_view::npos || !text.substr(space + 1).starts_with("GT/s")) {
    return std::nullopt;
  }
  // The rate in tenths of GT/s: "2.5" -> 25, "16.0" -> 160, "8" -> 80.
  const std::string_view rate = text.substr(0, space);
  const auto dot = rate.find('.');
  const auto whole = toUnsigned<std::uint32_t>(rate.substr(0, dot));
  std::optional<std::uint32_t> tenth = 0;
  if (dot != std::string_view::npos) {
    const std::string_view fraction = rate.substr(dot + 1);
    tenth = fraction.size() == 1 ? toUnsigned<std::uint32_t>(fraction) : std::nullopt;
  }
  if (!whole || !tenth || *whole > 1000) return std::nullopt;
  constexpr std::array<std::pair<std::uint32_t, int>, 6> kGenerations = {
      {{25, 1}, {50, 2}, {80, 3}, {160, 4}, {320, 5}, {640, 6}}};
  for (const auto& [tenths, generation] : kGenerations) {
    if (*whole * 10 + *tenth == tenths) return generation;
  }
  return std::nullopt;
}

std::optional<int> parseLinkWidth(std::string_view text) {
  const auto width = toUnsigned<int>(trim(text));
  if (!width || *width < 1 || *width > 32) return std::nullopt;
  return width;
}

std::optional<std::uint64_t> parseUnsigned(std::string_view text) {
  return toUnsigned<std::uint64_t>(trim(text));
}

std::optional<double> parsePercentAsRatio(std::string_view text) {
  const auto percent = parseUnsigned(text);
  if (!percent || *percent > 100) return std::nullopt;
  return static_cast<double>(*percent) / 100.0;
}

std::optional<double> parseMicrowattsAsWatts(std::string_view text) {
  const auto microwatts = parseUnsigned(text);
  if (!microwatts) return std::nullopt;
  return static_cast<double>(*microwatts) / 1e6;
}

std::optional<std::string> parseUniqueId(std::string_view text) {
  text = trim(text);
  if (!isHexDigits(text, 16)) return std::nullopt;
  return toLower(text);
}

std::optional<std::string> parseTextLine(std::string_view text) {
  std::string line(trim(nextLine(text)));
  if (line.empty()) return std::nullopt;
  for (char& character : line) {
    if (character < 0x20 || character > 0x7e) character = '?';
  }
  return line;
}

Result<PciUevent> parsePciUevent(std::string_view text) {
  PciUevent uevent;
  bool haveId = false;
  while (!text.empty()) {
    const std::string_view line = trim(nextLine(text));
    const auto equals = line.find('=');
    if (equals == std::string_view::npos) continue;
    const std::string_view key = line.substr(0, equals);
    const std::string_view value = line.substr(equals + 1);
    if (key == "DRIVER") {
      uevent.driver = toLower(value);
    } else if (key == "PCI_SLOT_NAME") {
      // dddd:bb:dd.f
      if (value.size() != 12 || value[4] != ':' || value[7] != ':' || value[10] != '.' ||
          !isHexDigits(value.substr(0, 4), 4) || !isHexDigits(value.substr(5, 2), 2) ||
          !isHexDigits(value.substr(8, 2), 2) || !isHexDigits(value.substr(11, 1), 1)) {
        return invalid("uevent: PCI_SLOT_NAME is not \"dddd:bb:dd.f\"");
      }
      uevent.slotName = toLower(value);
    } else if (key == "PCI_ID") {
      const auto vendor = value.size() == 9 && value[4] == ':'
                              ? toUnsigned<std::uint16_t>(value.substr(0, 4), 16)
                              : std::nullopt;
      const auto device = vendor ? toUnsigned<std::uint16_t>(value.substr(5), 16) : std::nullopt;
      if (!vendor || !device) return invalid("uevent: PCI_ID is not \"vvvv:dddd\"");
      uevent.vendorId = *vendor;
      uevent.deviceId = *device;
      haveId = true;
    }
  }
  if (uevent.slotName.empty()) return invalid("uevent: no PCI_SLOT_NAME line");
  if (!haveId) return invalid("uevent: no PCI_ID line");
  return uevent;
}

std::string formatPciId(std::uint16_t vendorId, std::uint16_t deviceId) {
  constexpr std::string_view kHex = "0123456789abcdef";
  std::string text;
  for (const std::uint16_t id : {vendorId, deviceId}) {
    if (!text.empty()) text += ':';
    for (int shift = 12; shift >= 0; shift -= 4) text += kHex[(id >> shift) & 0xF];
  }
  return text;
}

std::string marketingName(std::uint16_t deviceId) {
  struct Known {
    std::uint16_t deviceId;
    std::string_view name;
  };
  constexpr std::array<Known, 5> kKnown = {{
      {0x73BF, "AMD Radeon RX 6800/6800 XT / 6900 XT"},
      {0x73DF, "AMD Radeon RX 6700 XT"},
      {0x744C, "AMD Radeon RX 7900 XTX"},
      {0x740F, "AMD Instinct MI210"},
      {0x74A1, "AMD Instinct MI300X"},
  }};
  for (const Known& known : kKnown) {
    if (known.deviceId == deviceId) return std::string(known.name);
  }
  return "AMD GPU " + formatPciId(0x1002, deviceId);
}

}  // namespace deviceops::devices::amdgpu
