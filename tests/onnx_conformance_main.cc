// Runs every ONNX backend node test Debian ships through a real deviceopsd and reports the pass
// rate, failures grouped by stage. `make conformance`; exit code 0 unless the daemon fails.
//   deviceops_onnx_conformance [--filter SUBSTRING] [--verbose]
#include <fmt/format.h>

#include <algorithm>
#include <iostream>
#include <map>

#include "onnx_conformance.h"

int main(int argc, char** argv) {
  using namespace deviceops::testing;
  std::string filter;
  bool verbose = false;
  for (int i = 1; i < argc; ++i) {
    const std::string argument = argv[i];
    if (argument == "--filter" && i + 1 < argc) filter = argv[++i];
    if (argument == "--verbose") verbose = true;
  }
  std::vector<std::filesystem::path> cases;
  for (const auto& entry : std::filesystem::directory_iterator(kOnnxNodeTests)) {
    if (entry.path().filename().string().find(filter) != std::string::npos) {
      cases.push_back(entry.path());
    }
  }
  std::sort(cases.begin(), cases.end());
  TestDaemon daemon("[inference]\nmodelRoots = [\"" + kOnnxNodeTests.string() +
                    "\"]\n[log]\nlevel = \"warn\"\n");
  if (!daemon.started()) {
    std::cerr << "deviceopsd did not start\n" << daemon.log();
    return 1;
  }
  std::size_t passed = 0;
  std::map<std::string, std::size_t> failedByStage;
  for (const auto& caseDir : cases) {
    const ConformanceResult result = runConformanceCase(daemon, caseDir);
    if (result.passed) {
      ++passed;
    } else {
      ++failedByStage[result.stage];
      if (verbose) {
        std::cout << fmt::format("FAIL {} [{}] {}\n", caseDir.filename().string(), result.stage,
                                 result.reason);
      }
    }
  }
  std::cout << fmt::format("ONNX backend node tests through HTTP: {}/{} passed ({:.1f}%)\n", passed,
                           cases.size(), cases.empty() ? 0.0 : 100.0 * passed / cases.size());
  for (const auto& [stage, count] : failedByStage) {
    std::cout << fmt::format("  failed at {}: {}\n", stage, count);
  }
  if (daemon.stop() != 0) {
    std::cerr << "deviceopsd did not exit cleanly\n";
    return 1;
  }
  return 0;
}
