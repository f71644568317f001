// A representative set of ONNX backend node tests through the HTTP API, in every CI run. The
// whole set (~930 cases) runs with `make conformance` (tests/onnx_conformance_main.cc), which
// reports the pass rate; docs/BENCHMARKS.md records it.
#include <gtest/gtest.h>

#include "onnx_conformance.h"

namespace deviceops::testing {
namespace {

// Common operators across dtypes: arithmetic, matmul/gemm, convolution, pooling, normalization,
// activations, reductions, shape ops, casts, logic, strings. (StringNormalizer cases that change
// case need the en_US.UTF-8 locale, which minimal machines lack: ONNX Runtime refuses the model.)
const char* const kRepresentative[] = {
    "test_add",
    "test_add_bcast",
    "test_sub",
    "test_mul",
    "test_div",
    "test_pow",
    "test_matmul_2d",
    "test_matmul_4d",
    "test_gemm_default_matrix_bias",
    "test_gemm_transposeA",
    "test_conv_with_strides_padding",
    "test_basic_conv_with_padding",
    "test_convtranspose",
    "test_maxpool_2d_default",
    "test_averagepool_2d_pads",
    "test_globalaveragepool",
    "test_batchnorm_example",
    "test_instancenorm_example",
    "test_relu",
    "test_sigmoid",
    "test_tanh",
    "test_softmax_axis_1",
    "test_logsoftmax_axis_1",
    "test_leakyrelu",
    "test_elu",
    "test_reduce_sum_keepdims_example",
    "test_reduce_mean_default_axes_keepdims_example",
    "test_argmax_default_axis_example",
    "test_reshape_reordered_all_dims",
    "test_transpose_default",
    "test_concat_2d_axis_0",
    "test_slice",
    "test_gather_0",
    "test_squeeze",
    "test_unsqueeze_axis_0",
    "test_flatten_axis0",
    "test_cast_FLOAT_to_DOUBLE",
    "test_cast_FLOAT_to_FLOAT16",
    "test_equal",
    "test_greater",
    "test_and2d",
    "test_not_2d",
    "test_where_example",
    "test_clip",
    "test_erf",
    "test_sqrt",
    "test_exp",
    "test_abs",
    "test_strnormalizer_export_monday_casesensintive_nochangecase",
    "test_lstm_defaults",
    "test_gru_defaults",
    "test_dropout_default",
};

class OnnxBackendTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    daemon_ = new TestDaemon("[inference]\nmodelRoots = [\"" + kOnnxNodeTests.string() + "\"]\n");
  }
  static void TearDownTestSuite() {
    delete daemon_;
    daemon_ = nullptr;
  }
  static TestDaemon* daemon_;
};

TestDaemon* OnnxBackendTest::daemon_ = nullptr;

TEST_F(OnnxBackendTest, RepresentativeNodeTestsPassThroughTheHttpApi) {
  ASSERT_TRUE(daemon_->started());
  ASSERT_TRUE(std::filesystem::is_directory(kOnnxNodeTests)) << "libonnx-testdata missing";
  for (const char* name : kRepresentative) {
    SCOPED_TRACE(name);
    const auto caseDir = kOnnxNodeTests / name;
    ASSERT_TRUE(std::filesystem::exists(caseDir / "model.onnx")) << caseDir;
    const ConformanceResult result = runConformanceCase(*daemon_, caseDir);
    EXPECT_TRUE(result.passed) << result.stage << ": " << result.reason;
  }
}

}  // namespace
}  // namespace deviceops::testing
