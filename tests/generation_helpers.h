// Helpers of the daemon-level generation tests (generation_test.cc, vae_test.cc). Header-only.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "test_daemon.h"

namespace deviceops::testing {

// Polls GET /api/generation/{id} until the job is neither queued nor running (at most 120 s).
inline nlohmann::json waitForJob(TestDaemon& daemon, const std::string& id) {
  using namespace std::chrono_literals;
  const auto giveUp = std::chrono::steady_clock::now() + 120s;
  nlohmann::json job;
  while (std::chrono::steady_clock::now() < giveUp) {
    job = daemon.get("/api/generation/" + id).json();
    const std::string state = job.value("state", "");
    if (state != "queued" && state != "running") return job;
    std::this_thread::sleep_for(20ms);
  }
  ADD_FAILURE() << "job " << id << " did not finish: " << job.dump();
  return job;
}

}  // namespace deviceops::testing
