// ONNX backend node tests (Debian's libonnx-testdata: <case>/model.onnx +
// test_data_set_N/{input,output}_K.pb TensorProtos) run through the daemon's HTTP API: load the
// model by path, send every data set as a KServe v2 binary infer request, compare each output
// with the expected TensorProto (ONNX's backend-test tolerance: rtol 1e-3, atol 1e-7 for floats,
// exact otherwise), unload.
#pragma once

#include <filesystem>
#include <string>

#include "test_daemon.h"

namespace deviceops::testing {

inline const std::filesystem::path kOnnxNodeTests = "/usr/share/libonnx-testdata/data/node";

struct ConformanceResult {
  bool passed = false;
  std::string stage;   // "load" | "input" | "infer" | "compare" | "" when passed
  std::string reason;  // why it failed
};

ConformanceResult runConformanceCase(TestDaemon& daemon, const std::filesystem::path& caseDir);

}  // namespace deviceops::testing
