// Events derived from successive samples of the same device: health transitions, throttling
// start/stop, ECC and XID counter increases. Pure logic: feed samples in time order.
// Thread-compatibility: one detector per sampler thread.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/events.h"
#include "telemetry/sample.h"

namespace deviceops::telemetry {

// Types: "health.changed", "throttling.started", "throttling.stopped", "ecc.errors",
// "xid.errors", "device.appeared" (first sample of a device after start-up is not an event; a
// device that was not in the previous tick's set is), "device.disappeared".
class EventDetector {
 public:
  // Compares each sample with the previous one of its device and returns the events.
  // `samples` is one tick: every device seen now. A device missing from a tick that was present
  // in the previous one yields device.disappeared.
  std::vector<Event> observe(const std::vector<DeviceSample>& samples);

 private:
  std::map<std::string, DeviceSample> previous_;  // by device id
  bool first_ = true;
};

}  // namespace deviceops::telemetry
