#include "devices/simulated/simulated_fleet.h"

#include <fmt/format.h>

#include <charconv>
#include <thread>

namespace deviceops::devices {

SimulatedFleet::SimulatedFleet(SimulatedBackendOptions options)
    : specs_(std::move(options.devices)) {
  for (std::size_t i = 0; i < specs_.size(); ++i)
    states_.push_back(std::make_unique<DeviceState>());
}

bool SimulatedFleet::vanished(std::size_t index) const {
  return states_[index]->vanished.load(std::memory_order_acquire);
}

Status SimulatedFleet::checkPresent(std::size_t index) const {
  if (!vanished(index)) return Status::success();
  return makeError(ErrorCode::kUnavailable,
                   fmt::format("simulated device {} vanished (fault vanishAfterTransfers = {})",
                               index, specs_[index].faults.vanishAfterTransfers.value_or(0)));
}

void SimulatedFleet::countTransfer(std::size_t index) {
  const std::uint64_t count = states_[index]->transfers.fetch_add(1) + 1;
  const std::optional<std::uint64_t> limit = specs_[index].faults.vanishAfterTransfers;
  if (limit && count >= *limit) states_[index]->vanished.store(true, std::memory_order_release);
}

void SimulatedFleet::throttle(std::size_t index, std::uint64_t bytes,
                              std::chrono::steady_clock::time_point started) {
  const std::optional<double> cap = specs_[index].faults.bandwidthCapBytesPerSecond;
  if (!cap || bytes == 0) return;
  const auto duration = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(static_cast<double>(bytes) / *cap));
  DeviceState& state = *states_[index];
  std::chrono::steady_clock::time_point done;
  {
    std::lock_guard lock(state.linkMutex);
    done = std::max(started, state.busyUntil) + duration;
    state.busyUntil = done;
  }
  std::this_thread::sleep_until(done);
}

bool SimulatedFleet::enterPoll() {
  std::optional<std::uint64_t> hangAfter;
  for (const SimulatedDeviceSpec& spec : specs_) {
    if (spec.faults.hangAfterPolls && (!hangAfter || *spec.faults.hangAfterPolls < *hangAfter)) {
      hangAfter = spec.faults.hangAfterPolls;
    }
  }
  std::unique_lock lock(pollMutex_);
  const std::uint64_t number = ++polls_;
  if (hangAfter && number > *hangAfter) {
    pollChanged_.wait(lock, [this] { return interrupted_; });
  }
  return !interrupted_;
}

void SimulatedFleet::interruptPolls() {
  {
    std::lock_guard lock(pollMutex_);
    interrupted_ = true;
  }
  pollChanged_.notify_all();
}

std::uint64_t SimulatedFleet::polls() const {
  std::lock_guard lock(pollMutex_);
  return polls_;
}

std::optional<std::size_t> simulatedFleetIndex(const DeviceRecord& record) {
  if (!record.simulated || record.backend != "simulated") return std::nullopt;
  const std::string& key = record.localKey;
  std::size_t index = 0;
  const auto [end, error] = std::from_chars(key.data(), key.data() + key.size(), index);
  if (error != std::errc() || end != key.data() + key.size() || key.empty()) return std::nullopt;
  return index;
}

}  // namespace deviceops::devices
