#include "training/dataset_catalog.h"

#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include "common/sha256.h"
#include "common/testing/temp_dir.h"
#include "tensor/npy.h"
#include "training_formats/safetensors.h"

namespace deviceops::training {
namespace {

namespace fs = std::filesystem;

// True when `text` matches `pattern`, where '9' stands for a digit, 'h' for a lowercase hex digit
// and every other character for itself.
bool matchesShape(const std::string& text, const std::string& pattern) {
  if (text.size() != pattern.size()) return false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const bool digit = c >= '0' && c <= '9';
    if (pattern[i] == '9'   ? !digit
        : pattern[i] == 'h' ? !(digit || (c >= 'a' && c <= 'f'))
                            : c != pattern[i]) {
      return false;
    }
  }
  return true;
}

constexpr const char* kIrisLike = "a,b,label\n1,2,x\n3,4,y\n5,6,x\n";

class DatasetCatalogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<std::unique_ptr<DatasetCatalog>> opened = DatasetCatalog::open(dir_.path("data"));
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    catalog_ = std::move(opened).value();
  }
  // An "upload": a file in a separate spool directory, as the HTTP layer leaves it.
  fs::path upload(const std::string& bytes) {
    fs::create_directories(dir_.path("spool"));
    const fs::path path = dir_.path("spool") / ("upload-" + std::to_string(++uploads_));
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }
  static std::string npy(inference::DataType type, std::vector<std::int64_t> shape,
                         const void* data, std::size_t bytes) {
    inference::Tensor tensor;
    tensor.type = type;
    tensor.shape = std::move(shape);
    tensor.data.assign(static_cast<const char*>(data), bytes);
    return inference::writeNpy(tensor);
  }
  std::size_t filesUnder(const fs::path& root) {
    std::size_t count = 0;
    for ([[maybe_unused]] const auto& entry : fs::recursive_directory_iterator(root)) ++count;
    return count;
  }
  fs::path datasetsDir() { return dir_.path("data") / "training" / "datasets"; }

  deviceops::testing::TempDir dir_;
  std::unique_ptr<DatasetCatalog> catalog_;
  int uploads_ = 0;
};

TEST_F(DatasetCatalogTest, AddGetListRemove) {
  const fs::path file = upload(kIrisLike);
  Result<DatasetInfo> added = catalog_->add("iris", {}, "", file);
  ASSERT_TRUE(added.ok()) << added.error().message;
  EXPECT_FALSE(fs::exists(file));  // taken over
  EXPECT_TRUE(matchesShape(added->id, "ds-hhhhhhhhhhhh")) << added->id;
  EXPECT_EQ(added->name, "iris");
  EXPECT_EQ(added->format, "csv");
  EXPECT_EQ(added->state, "ready");
  EXPECT_EQ(added->schema.rows, 3);
  EXPECT_EQ(added->schema.classes, (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(added->sizeBytes, std::string(kIrisLike).size());
  EXPECT_EQ(added->sha256, sha256Hex(kIrisLike));
  EXPECT_TRUE(matchesShape(added->createdAt, "9999-99-99T99:99:99.999Z")) << added->createdAt;
  EXPECT_EQ(fs::path(added->path), datasetsDir() / added->id / "data.safetensors");
  // Only the canonical file is kept.
  EXPECT_EQ(filesUnder(datasetsDir() / added->id), 1u);
  Result<SafeTensorFile> canonical = readSafeTensorsFile(added->path);
  ASSERT_TRUE(canonical.ok());
  EXPECT_EQ(canonical->find("labels")->toInt64(), (std::vector<std::int64_t>{0, 1, 0}));

  const nlohmann::json json = added->toJson();
  EXPECT_EQ(json["schema"]["rows"], 3);
  EXPECT_FALSE(json.contains("missingPart"));

  EXPECT_EQ(catalog_->get("iris")->id, added->id);
  EXPECT_EQ(catalog_->get(added->id)->name, "iris");
  EXPECT_EQ(catalog_->get("nope").error().code, ErrorCode::kNotFound);

  ASSERT_TRUE(catalog_->add("second", {}, "", upload(kIrisLike)).ok());
  const std::vector<DatasetInfo> all = catalog_->list();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].name, "iris");
  EXPECT_EQ(all[1].name, "second");

  ASSERT_TRUE(catalog_->remove("iris").ok());
  EXPECT_FALSE(fs::exists(datasetsDir() / added->id));
  EXPECT_EQ(catalog_->get("iris").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(catalog_->remove("iris").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(catalog_->list().size(), 1u);
}

TEST_F(DatasetCatalogTest, SurvivesReopenAndCleansOrphans) {
  Result<DatasetInfo> added = catalog_->add("iris", {}, "", upload(kIrisLike));
  ASSERT_TRUE(added.ok());
  // A folder left by a crash in the middle of add().
  fs::create_directories(datasetsDir() / "ds-000000000000");
  std::ofstream(datasetsDir() / "ds-000000000000" / "upload.csv") << "x";
  catalog_.reset();

  Result<std::unique_ptr<DatasetCatalog>> reopened = DatasetCatalog::open(dir_.path("data"));
  ASSERT_TRUE(reopened.ok()) << reopened.error().message;
  Result<DatasetInfo> again = (*reopened)->get("iris");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->toJson(), added->toJson());
  EXPECT_FALSE(fs::exists(datasetsDir() / "ds-000000000000"));
  EXPECT_TRUE(fs::exists(again->path));
}

TEST_F(DatasetCatalogTest, RefusesBadRequestsAndLeavesNothingBehind) {
  struct Case {
    std::string name;
    std::string datasetName;
    std::string format;
    std::string part;
    std::string body;
    ErrorCode code;
    std::string messagePart;
  };
  const std::vector<Case> cases = {
      {"bad name", "no spaces", "csv", "", kIrisLike, ErrorCode::kInvalidArgument, "name"},
      {"empty name", "", "csv", "", kIrisLike, ErrorCode::kInvalidArgument, "name"},
      {"long name", std::string(65, 'a'), "csv", "", kIrisLike, ErrorCode::kInvalidArgument,
       "1-64"},
      {"bad format", "x", "parquet", "", kIrisLike, ErrorCode::kInvalidArgument, "parquet"},
      {"bad part", "x", "npy", "weights", "", ErrorCode::kInvalidArgument, "part"},
      {"bad csv", "x", "csv", "", "a,b\n1,2\nzz,4\n", ErrorCode::kInvalidArgument,
       "row 3, column \"a\""},
      {"bad npy", "x", "npy", "features", "nonsense", ErrorCode::kInvalidArgument, "features"},
      {"bad safetensors", "x", "safetensors", "", "nonsense", ErrorCode::kInvalidArgument,
       "safetensors"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const fs::path file = upload(c.body);
    DatasetOptions options;
    options.format = c.format;
    Result<DatasetInfo> added = catalog_->add(c.datasetName, options, c.part, file);
    ASSERT_FALSE(added.ok());
    EXPECT_EQ(added.error().code, c.code);
    EXPECT_NE(added.error().message.find(c.messagePart), std::string::npos)
        << added.error().message;
    EXPECT_FALSE(fs::exists(file));
    EXPECT_TRUE(catalog_->list().empty());
    EXPECT_EQ(filesUnder(datasetsDir()), 0u);
  }
  // Details naming the row survive the catalog.
  Result<DatasetInfo> bad = catalog_->add("x", {}, "", upload("a,b\n1,2\nzz,4\n"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().details["row"], 3);
  EXPECT_EQ(bad.error().details["column"], "a");
  // A missing upload is not a crash.
  EXPECT_EQ(catalog_->add("x", {}, "", dir_.path("gone")).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(filesUnder(datasetsDir()), 0u);
}

TEST_F(DatasetCatalogTest, NameConflict) {
  ASSERT_TRUE(catalog_->add("iris", {}, "", upload(kIrisLike)).ok());
  const fs::path file = upload(kIrisLike);
  Result<DatasetInfo> again = catalog_->add("iris", {}, "", file);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, ErrorCode::kConflict);
  EXPECT_FALSE(fs::exists(file));
  EXPECT_EQ(catalog_->list().size(), 1u);
  EXPECT_EQ(filesUnder(datasetsDir()), 2u);  // one folder, one canonical file
}

TEST_F(DatasetCatalogTest, InUseDatasetIsNotRemoved) {
  Result<DatasetInfo> added = catalog_->add("iris", {}, "", upload(kIrisLike));
  ASSERT_TRUE(added.ok());
  std::string askedFor;
  catalog_->setInUseCheck([&](const std::string& id) {
    askedFor = id;
    return std::vector<std::string>{"job-1", "job-2"};
  });
  Status removed = catalog_->remove("iris");
  ASSERT_FALSE(removed.ok());
  EXPECT_EQ(removed.error().code, ErrorCode::kConflict);
  EXPECT_NE(removed.error().message.find("job-1, job-2"), std::string::npos);
  EXPECT_EQ(removed.error().details["jobs"], nlohmann::json({"job-1", "job-2"}));
  EXPECT_EQ(askedFor, added->id);
  EXPECT_TRUE(fs::exists(added->path));

  catalog_->setInUseCheck([](const std::string&) { return std::vector<std::string>{}; });
  EXPECT_TRUE(catalog_->remove(added->id).ok());
}

TEST_F(DatasetCatalogTest, NpyDatasetIsIncompleteUntilBothParts) {
  const float features[6] = {1, 2, 3, 4, 5, 6};
  const std::int64_t labels[3] = {1, 0, 1};
  const std::string featuresNpy = npy(inference::DataType::kFp32, {3, 2}, features, 24);
  const std::string labelsNpy = npy(inference::DataType::kInt64, {3}, labels, 24);
  DatasetOptions options;
  options.format = "npy";

  Result<DatasetInfo> first = catalog_->add("pair", options, "labels", upload(labelsNpy));
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_EQ(first->state, "incomplete");
  EXPECT_EQ(first->missingPart, "features");
  EXPECT_EQ(first->path, "");
  EXPECT_EQ(first->schema.rows, 3);
  EXPECT_EQ(first->toJson()["missingPart"], "features");
  EXPECT_EQ(catalog_->get("pair")->state, "incomplete");

  // The same part again, or another format under the name: conflict; the dataset is unchanged.
  EXPECT_EQ(catalog_->add("pair", options, "labels", upload(labelsNpy)).error().code,
            ErrorCode::kConflict);
  EXPECT_EQ(catalog_->add("pair", {}, "", upload(kIrisLike)).error().code, ErrorCode::kConflict);
  // A bad second part (row mismatch) fails and leaves the incomplete dataset as it was.
  const fs::path mismatched = upload(npy(inference::DataType::kFp32, {4, 1}, features, 16));
  Result<DatasetInfo> bad = catalog_->add("pair", options, "features", mismatched);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(bad.error().message.find("4 samples"), std::string::npos) << bad.error().message;
  EXPECT_EQ(catalog_->get("pair")->state, "incomplete");
  EXPECT_EQ(filesUnder(datasetsDir() / first->id), 1u);  // labels.npy only

  Result<DatasetInfo> done = catalog_->add("pair", options, "features", upload(featuresNpy));
  ASSERT_TRUE(done.ok()) << done.error().message;
  EXPECT_EQ(done->id, first->id);
  EXPECT_EQ(done->state, "ready");
  EXPECT_EQ(done->schema.rows, 3);
  EXPECT_EQ(done->schema.features, 2);
  EXPECT_EQ(done->schema.classes, (std::vector<std::string>{"0", "1"}));
  EXPECT_EQ(done->sizeBytes, featuresNpy.size() + labelsNpy.size());
  EXPECT_EQ(done->sha256, sha256Hex(featuresNpy + labelsNpy));
  EXPECT_EQ(filesUnder(datasetsDir() / done->id), 1u);  // data.safetensors only
  Result<SafeTensorFile> canonical = readSafeTensorsFile(done->path);
  ASSERT_TRUE(canonical.ok());
  EXPECT_EQ(canonical->find("features")->toFloat(), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(catalog_->get("pair")->toJson(), done->toJson());
  // Complete now: a further part is a conflict.
  EXPECT_EQ(catalog_->add("pair", options, "labels", upload(labelsNpy)).error().code,
            ErrorCode::kConflict);
}

TEST_F(DatasetCatalogTest, ConcurrentUploadsOfOneNameGiveOneDataset) {
  std::vector<std::thread> threads;
  std::vector<Result<DatasetInfo>> results(4, makeError(ErrorCode::kInternal, "not run"));
  std::vector<fs::path> files;
  for (int i = 0; i < 4; ++i) files.push_back(upload(kIrisLike));
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] { results[i] = catalog_->add("same", {}, "", files[i]); });
  }
  for (std::thread& thread : threads) thread.join();
  int succeeded = 0;
  for (const auto& result : results) {
    if (result.ok()) {
      ++succeeded;
    } else {
      EXPECT_EQ(result.error().code, ErrorCode::kConflict);
    }
  }
  EXPECT_EQ(succeeded, 1);
  EXPECT_EQ(catalog_->list().size(), 1u);
  EXPECT_EQ(filesUnder(datasetsDir()), 2u);
}

}  // namespace
}  // namespace deviceops::training
