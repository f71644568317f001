#include "inference/model_repository.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>

#include "common/testing/temp_dir.h"

namespace deviceops::inference {
namespace {

namespace fs = std::filesystem;

void touch(const fs::path& file) {
  fs::create_directories(file.parent_path());
  std::ofstream(file) << "onnx";
}

TEST(ModelRepositoryTest, FindsBothLayoutsAndTheNewestVersion) {
  testing::TempDir first, second;
  touch(first.root() / "resnet" / "1" / "model.onnx");
  touch(first.root() / "resnet" / "12" / "model.onnx");
  touch(first.root() / "resnet" / "3" / "model.onnx");
  touch(first.root() / "resnet" / "latest" / "model.onnx");  // not a numeric version
  touch(first.root() / "resnet" / "4" / "other.onnx");       // no model.onnx
  touch(first.root() / ".hidden" / "1" / "model.onnx");
  touch(second.root() / "mlp.onnx");
  touch(second.root() / "notes.txt");

  const std::vector<fs::path> roots = {first.root(), second.root(), "/nonexistent/root"};
  std::vector<std::string> found;
  for (const RepositoryEntry& entry : scanRepository(roots)) {
    found.push_back(entry.name + "@" + entry.version);
  }
  std::sort(found.begin(), found.end());
  EXPECT_EQ(found, (std::vector<std::string>{"mlp@1", "resnet@1", "resnet@12", "resnet@3"}));

  const auto newest = findInRepository(roots, "resnet");
  ASSERT_TRUE(newest.has_value());
  EXPECT_EQ(newest->version, "12");  // numerically, not as text ("3" > "12")
  EXPECT_EQ(newest->file, first.root() / "resnet" / "12" / "model.onnx");
  EXPECT_EQ(findInRepository(roots, "mlp")->file, second.root() / "mlp.onnx");
  EXPECT_FALSE(findInRepository(roots, "missing").has_value());
  EXPECT_FALSE(findInRepository(roots, ".hidden").has_value());
}

TEST(ModelRepositoryTest, ModelNamesCannotLeaveTheRoot) {
  EXPECT_TRUE(isValidModelName("resnet-18_v2"));
  for (const std::string& name :
       std::vector<std::string>{"", ".", "..", ".hidden", "a/b", "a\\b", std::string(129, 'x')}) {
    SCOPED_TRACE(name);
    EXPECT_FALSE(isValidModelName(name));
  }
}

}  // namespace
}  // namespace deviceops::inference
