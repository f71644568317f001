// Internal to telemetry: JSON form of what the writer buffers, one object per line of the spill
// file: {"k": "node"|"device"|"sample"|"event", ...fields}. Every field round-trips exactly
// (times in epoch milliseconds).
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <variant>

#include "telemetry/sample.h"

namespace deviceops::telemetry {

using BufferedItem = std::variant<NodeInfo, DeviceInfo, DeviceSample, StoredEvent>;

nlohmann::json encodeItem(const BufferedItem& item);
// nullopt for a line that is not a valid item (a torn last line after a crash).
std::optional<BufferedItem> decodeItem(const nlohmann::json& json);

}  // namespace deviceops::telemetry
