#include "training/dataset.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>

#include "common/testing/temp_dir.h"
#include "tensor/npy.h"
#include "training_formats/safetensors.h"

namespace deviceops::training {
namespace {

class DatasetTest : public ::testing::Test {
 protected:
  std::filesystem::path write(const std::string& name, const std::string& bytes) {
    const auto path = dir_.path(name);
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }
  Result<DatasetSchema> convertCsvText(const std::string& text, DatasetOptions options = {}) {
    return convertDataset(write("in.csv", text), options, out());
  }
  std::filesystem::path out() const { return dir_.path("data.safetensors"); }
  SafeTensorFile readOut() {
    Result<SafeTensorFile> file = readSafeTensorsFile(out());
    EXPECT_TRUE(file.ok()) << file.error().message;
    return file.ok() ? std::move(file).value() : SafeTensorFile{};
  }

  deviceops::testing::TempDir dir_;
};

TEST_F(DatasetTest, CsvWithTextLabelsBecomesClasses) {
  Result<DatasetSchema> schema =
      convertCsvText("a,b,species\n1,2,setosa\n3.5,-4,virginica\n5,6e1,setosa\n");
  ASSERT_TRUE(schema.ok()) << schema.error().message;
  EXPECT_EQ(schema->rows, 3);
  EXPECT_EQ(schema->features, 2);
  EXPECT_EQ(schema->featureNames, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(schema->labelName, "species");
  EXPECT_FALSE(schema->numericLabels);
  EXPECT_EQ(schema->classes, (std::vector<std::string>{"setosa", "virginica"}));

  const SafeTensorFile file = readOut();
  ASSERT_NE(file.find("features"), nullptr);
  EXPECT_EQ(file.find("features")->dtype, SafeDtype::kF32);
  EXPECT_EQ(file.find("features")->shape, (std::vector<std::int64_t>{3, 2}));
  EXPECT_EQ(file.find("features")->toFloat(), (std::vector<float>{1, 2, 3.5f, -4, 5, 60}));
  ASSERT_NE(file.find("labels"), nullptr);
  EXPECT_EQ(file.find("labels")->dtype, SafeDtype::kI64);
  EXPECT_EQ(file.find("labels")->toInt64(), (std::vector<std::int64_t>{0, 1, 0}));
  EXPECT_EQ(file.find("targets"), nullptr);
  // The schema travels in the metadata.
  Result<DatasetSchema> stored =
      DatasetSchema::fromJson(nlohmann::json::parse(file.metadata.at("deviceops.schema")));
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->toJson(), schema->toJson());
}

TEST_F(DatasetTest, NumericLabelsGiveTargetsAndNumericallySortedClasses) {
  DatasetOptions options;
  options.labelColumn = "y";
  Result<DatasetSchema> schema = convertCsvText("y,x\n10,1\n2,2\n2.0,3\n-1,4\n", options);
  ASSERT_TRUE(schema.ok()) << schema.error().message;
  EXPECT_TRUE(schema->numericLabels);
  EXPECT_EQ(schema->featureNames, (std::vector<std::string>{"x"}));
  EXPECT_EQ(schema->classes, (std::vector<std::string>{"-1", "2", "10"}));  // numeric order
  const SafeTensorFile file = readOut();
  EXPECT_EQ(file.find("labels")->toInt64(), (std::vector<std::int64_t>{2, 1, 1, 0}));
  EXPECT_EQ(file.find("targets")->toFloat(), (std::vector<float>{10, 2, 2, -1}));
  EXPECT_EQ(file.find("features")->toFloat(), (std::vector<float>{1, 2, 3, 4}));
}

TEST_F(DatasetTest, ManyDistinctLabels) {
  std::string numeric = "x,y\n", text = "x,y\n";
  for (int i = 0; i < 20; ++i) {
    numeric += std::to_string(i) + "," + std::to_string(i * 0.5) + "\n";
    text += std::to_string(i) + ",c" + std::to_string(i) + "\n";
  }
  DatasetOptions options;
  options.maxClasses = 10;
  // Numeric: regression only (no classes, no labels tensor).
  Result<DatasetSchema> schema = convertCsvText(numeric, options);
  ASSERT_TRUE(schema.ok()) << schema.error().message;
  EXPECT_TRUE(schema->numericLabels);
  EXPECT_TRUE(schema->classes.empty());
  EXPECT_EQ(readOut().find("labels"), nullptr);
  EXPECT_EQ(readOut().find("targets")->toFloat().at(3), 1.5f);
  // Text: refused.
  schema = convertCsvText(text, options);
  ASSERT_FALSE(schema.ok());
  EXPECT_NE(schema.error().message.find("more than 10 distinct"), std::string::npos);
  // Mixed text and numbers sort as text (byte order).
  schema = convertCsvText("x,y\n1,10\n2,9\n3,b\n", options);
  ASSERT_TRUE(schema.ok());
  EXPECT_FALSE(schema->numericLabels);
  EXPECT_EQ(schema->classes, (std::vector<std::string>{"10", "9", "b"}));
}

TEST_F(DatasetTest, CsvDialects) {
  struct Case {
    std::string name;
    std::string text;
    char delimiter;
  };
  const std::vector<Case> cases = {
      {"crlf", "a,b,label\r\n1,2,x\r\n3,4,y\r\n", ','},
      {"bom",
       "\xEF\xBB\xBF"
       "a,b,label\n1,2,x\n3,4,y\n",
       ','},
      {"no trailing newline", "a,b,label\n1,2,x\n3,4,y", ','},
      {"blank lines", "\na,b,label\n\n1,2,x\r\n\n3,4,y\n\n\r\n", ','},
      {"quoted", "\"a\",\"b\",\"label\"\n\"1\",2,\"x\"\n3,\" 4 \",\"y\"\n", ','},
      {"semicolon", "a;b;label\n1;2;x\n3;4;y\n", ';'},
      {"tab and spaces", "a\tb\tlabel\n 1 \t+2\tx\n3\t4\ty\n", '\t'},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    DatasetOptions options;
    options.delimiter = c.delimiter;
    Result<DatasetSchema> schema = convertCsvText(c.text, options);
    ASSERT_TRUE(schema.ok()) << schema.error().message;
    EXPECT_EQ(schema->featureNames, (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(schema->classes, (std::vector<std::string>{"x", "y"}));
    EXPECT_EQ(readOut().find("features")->toFloat(), (std::vector<float>{1, 2, 3, 4}));
  }
}

TEST_F(DatasetTest, NumberForms) {
  // Integers (fast path) and general numbers (from_chars) give the same floats.
  Result<DatasetSchema> schema = convertCsvText(
      "a,b,c,d,label\n007,-12,123456789,1234567890,x\n1.5e3, -0.25 ,+3,-0,y\n"
      "16777217,0.1,1e-400,-999999999,x\n");
  ASSERT_TRUE(schema.ok()) << schema.error().message;
  const std::vector<float> values = readOut().find("features")->toFloat();
  EXPECT_EQ(values, (std::vector<float>{7, -12, 123456789.0f, 1234567890.0f, 1500, -0.25f, 3, 0,
                                        16777217.0f, 0.1f, 0, -999999999.0f}));
  EXPECT_TRUE(std::signbit(values[7]));  // "-0"
  for (const std::string bad : {"-", "1-2", "--1", "+-1", "++1", "0x10", "1,5", "12a"}) {
    SCOPED_TRACE(bad);
    Result<DatasetSchema> refused = convertCsvText("a,label\n1,x\n\"" + bad + "\",y\n");
    ASSERT_FALSE(refused.ok());
    EXPECT_NE(refused.error().message.find("is not a number"), std::string::npos)
        << refused.error().message;
  }
}

TEST_F(DatasetTest, QuotedLabelsKeepDelimitersQuotesAndNewlines) {
  Result<DatasetSchema> schema =
      convertCsvText("f,label\n1,\"a,b\"\n2,\"say \"\"hi\"\"\"\n3,\"two\nlines\"\n4,\"a,b\"\n");
  ASSERT_TRUE(schema.ok()) << schema.error().message;
  EXPECT_EQ(schema->rows, 4);
  EXPECT_EQ(schema->classes, (std::vector<std::string>{"a,b", "say \"hi\"", "two\nlines"}));
  EXPECT_EQ(readOut().find("labels")->toInt64(), (std::vector<std::int64_t>{0, 1, 2, 0}));
}

TEST_F(DatasetTest, BadCsvIsRefusedNamingRowAndColumn) {
  struct Case {
    std::string name;
    std::string text;
    std::string messagePart;
    nlohmann::json details;  // expected subset of the error details
    std::string labelColumn = "";
  };
  const std::vector<Case> cases = {
      {"empty", "", "empty", {}},
      {"only blank lines", "\n\r\n\n", "empty", {}},
      {"header only", "a,b,label\n", "0 data rows", {}},
      {"one row", "a,b,label\n1,2,x\n", "1 data row;", {}},
      {"one column", "label\n1\n2\n", "at least one feature", {{"row", 1}}},
      {"missing label column",
       "a,b,c\n1,2,3\n4,5,6\n",
       "[\"a\",\"b\",\"c\"]",
       {{"column", "species"}},
       "species"},
      {"duplicate header", "a,b,a\n1,2,3\n4,5,6\n", "\"a\" twice", {{"row", 1}, {"column", "a"}}},
      {"empty header name", "a,,label\n1,2,3\n4,5,6\n", "column 2 has no name", {{"row", 1}}},
      {"ragged short", "a,b,label\n1,2,x\n3,y\n", "row 3 has 2 fields; expected 3", {{"row", 3}}},
      {"ragged long", "a,b,label\n1,2,x,9\n3,4,y\n", "row 2 has 4 fields", {{"row", 2}}},
      {"non numeric",
       "a,petal_width,label\n1,2,x\n3,abc,y\n",
       "row 3, column \"petal_width\": \"abc\" is not a number",
       {{"row", 3}, {"column", "petal_width"}}},
      {"trailing garbage",
       "a,b,label\n1,2x,x\n3,4,y\n",
       "\"2x\" is not a number",
       {{"row", 2}, {"column", "b"}}},
      {"empty cell",
       "a,b,label\n1,,x\n3,4,y\n",
       "row 2, column \"b\": the value is empty",
       {{"row", 2}, {"column", "b"}}},
      {"nan", "a,b,label\n1,2,x\n3,nan,y\n", "NaN", {{"row", 3}, {"column", "b"}}},
      {"inf", "a,b,label\n1,-inf,x\n3,4,y\n", "infinite", {{"row", 2}, {"column", "b"}}},
      {"float overflow", "a,b,label\n1,1e39,x\n3,4,y\n", "float32", {{"row", 2}, {"column", "b"}}},
      {"double overflow", "a,b,label\n1,1e999,x\n3,4,y\n", "float32", {{"row", 2}}},
      {"nan label", "a,b,label\n1,2,1\n3,4,NaN\n", "NaN", {{"row", 3}, {"column", "label"}}},
      {"empty label", "a,b,label\n1,2,\n3,4,y\n", "empty", {{"row", 2}, {"column", "label"}}},
      {"row after blank lines", "a,b,label\n\n\n1,2,x\n3,q,y\n", "row 5", {{"row", 5}}},
      {"row after multiline quote", "a,b,label\n1,2,\"x\ny\"\n3,q,y\n", "row 4", {{"row", 4}}},
      {"unclosed quote", "a,b,label\n1,2,\"x\n3,4,y\n", "not closed", {{"row", 2}}},
      {"text after quote",
       "a,b,label\n1,\"2\"3,x\n3,4,y\n",
       "after the closing quote",
       {{"row", 2}}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    std::filesystem::remove(out());
    DatasetOptions options;
    options.labelColumn = c.labelColumn;
    Result<DatasetSchema> schema = convertCsvText(c.text, options);
    ASSERT_FALSE(schema.ok());
    EXPECT_EQ(schema.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(schema.error().message.find(c.messagePart), std::string::npos)
        << schema.error().message;
    for (const auto& [key, value] : c.details.items()) {
      EXPECT_EQ(schema.error().details.value(key, nlohmann::json()), value) << key;
    }
    EXPECT_FALSE(std::filesystem::exists(out()));  // nothing written on error
  }
}

// Found by fuzz/csv_dataset_fuzzer: names and labels go into JSON answers, which must be UTF-8.
TEST_F(DatasetTest, NamesAndLabelsMustBeUtf8) {
  Result<DatasetSchema> badHeader = convertCsvText("a,b\xff,label\n1,2,x\n3,4,y\n");
  ASSERT_FALSE(badHeader.ok());
  EXPECT_EQ(badHeader.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(badHeader.error().details.value("row", 0), 1);
  EXPECT_EQ(badHeader.error().details.value("columnIndex", 0), 2);
  Result<DatasetSchema> badLabel = convertCsvText("a,b,label\n1,2,x\n3,4,\xc3\x28\n");
  ASSERT_FALSE(badLabel.ok());
  EXPECT_EQ(badLabel.error().details.value("label", 0), 2);
  Result<DatasetSchema> fine = convertCsvText("a,b,label\n1,2,caf\xc3\xa9\n3,4,\xf0\x9f\x91\x95\n");
  ASSERT_TRUE(fine.ok()) << fine.error().message;
  EXPECT_EQ(fine->classes.size(), 2u);
}

TEST_F(DatasetTest, CsvLimitsAndOptions) {
  DatasetOptions options;
  options.maxFeatures = 2;
  Result<DatasetSchema> schema = convertCsvText("a,b,c,label\n1,2,3,x\n4,5,6,y\n", options);
  ASSERT_FALSE(schema.ok());
  EXPECT_NE(schema.error().message.find("limit is 2"), std::string::npos);

  options = {};
  options.delimiter = '"';
  EXPECT_FALSE(convertCsvText("a,b\n1,2\n3,4\n", options).ok());

  Result<DatasetSchema> missing = convertDataset(dir_.path("nope.csv"), {}, out());
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);

  options = {};
  options.format = "parquet";
  EXPECT_FALSE(convertCsvText("a,b\n1,2\n3,4\n", options).ok());
}

// --- npy --------------------------------------------------------------------------------------

inference::Tensor npyTensor(inference::DataType type, std::vector<std::int64_t> shape,
                            const void* data, std::size_t bytes) {
  inference::Tensor tensor;
  tensor.type = type;
  tensor.shape = std::move(shape);
  tensor.data.assign(static_cast<const char*>(data), bytes);
  return tensor;
}

TEST_F(DatasetTest, NpyPairFlattensAndConverts) {
  const std::uint8_t pixels[3 * 2 * 2] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 255};
  const std::int32_t classes[3] = {7, 3, 7};
  const auto features = write(
      "x.npy", inference::writeNpy(npyTensor(inference::DataType::kUint8, {3, 2, 2}, pixels, 12)));
  const auto labels = write(
      "y.npy", inference::writeNpy(npyTensor(inference::DataType::kInt32, {3, 1}, classes, 12)));
  EXPECT_EQ(checkNpyPart(features, "features").value(), 3);
  EXPECT_EQ(checkNpyPart(labels, "labels").value(), 3);

  Result<DatasetSchema> schema = convertNpyDataset(features, labels, {}, out());
  ASSERT_TRUE(schema.ok()) << schema.error().message;
  EXPECT_EQ(schema->rows, 3);
  EXPECT_EQ(schema->features, 4);
  EXPECT_TRUE(schema->featureNames.empty());
  EXPECT_EQ(schema->labelName, "labels");
  EXPECT_TRUE(schema->numericLabels);
  EXPECT_EQ(schema->classes, (std::vector<std::string>{"3", "7"}));
  const SafeTensorFile file = readOut();
  EXPECT_EQ(file.find("features")->shape, (std::vector<std::int64_t>{3, 4}));
  EXPECT_EQ(file.find("features")->toFloat().back(), 255.0f);
  EXPECT_EQ(file.find("labels")->toInt64(), (std::vector<std::int64_t>{1, 0, 1}));
  EXPECT_EQ(file.find("targets")->toFloat(), (std::vector<float>{7, 3, 7}));
}

TEST_F(DatasetTest, BadNpyPairs) {
  const float good[4] = {1, 2, 3, 4};
  const float withNan[4] = {1, 2, std::nanf(""), 4};
  const std::int64_t twoLabels[2] = {0, 1};
  const std::int64_t threeLabels[3] = {0, 1, 2};
  const double nanLabel[2] = {0, std::numeric_limits<double>::quiet_NaN()};
  using inference::DataType;
  const auto x = write("x.npy", inference::writeNpy(npyTensor(DataType::kFp32, {2, 2}, good, 16)));
  const auto xNan =
      write("xnan.npy", inference::writeNpy(npyTensor(DataType::kFp32, {2, 2}, withNan, 16)));
  const auto xScalar =
      write("xs.npy", inference::writeNpy(npyTensor(DataType::kFp32, {}, good, 4)));
  const auto y =
      write("y.npy", inference::writeNpy(npyTensor(DataType::kInt64, {2}, twoLabels, 16)));
  const auto y3 =
      write("y3.npy", inference::writeNpy(npyTensor(DataType::kInt64, {3}, threeLabels, 24)));
  const auto y2d =
      write("y2d.npy", inference::writeNpy(npyTensor(DataType::kInt64, {1, 2}, twoLabels, 16)));
  const auto yNan =
      write("ynan.npy", inference::writeNpy(npyTensor(DataType::kFp64, {2}, nanLabel, 16)));
  const auto garbage = write("garbage.npy", "not an npy file");
  struct Case {
    std::string name;
    std::filesystem::path features, labels;
    std::string messagePart;
    nlohmann::json details;
  };
  const std::vector<Case> cases = {
      {"row mismatch", x, y3, "has 2 samples but \"labels\" has 3", {{"tensor", "labels"}}},
      {"nan feature", xNan, y, "sample 1, feature 0", {{"row", 1}, {"column", 0}}},
      {"scalar features", xScalar, y, "scalar", {{"tensor", "features"}}},
      {"2-d labels", x, y2d, "expected [N] or [N, 1]", {{"tensor", "labels"}}},
      {"nan label", x, yNan, "label 1", {{"row", 1}, {"tensor", "labels"}}},
      {"not npy", garbage, y, "features", {{"tensor", "features"}}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Result<DatasetSchema> schema = convertNpyDataset(c.features, c.labels, {}, out());
    ASSERT_FALSE(schema.ok());
    EXPECT_EQ(schema.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(schema.error().message.find(c.messagePart), std::string::npos)
        << schema.error().message;
    for (const auto& [key, value] : c.details.items()) {
      EXPECT_EQ(schema.error().details.value(key, nlohmann::json()), value) << key;
    }
    EXPECT_FALSE(std::filesystem::exists(out()));
  }
  EXPECT_FALSE(checkNpyPart(xNan, "features").ok());
  EXPECT_FALSE(checkNpyPart(yNan, "labels").ok());
  EXPECT_FALSE(checkNpyPart(x, "weights").ok());
  DatasetOptions narrow;
  narrow.maxFeatures = 1;
  EXPECT_NE(checkNpyPart(x, "features", narrow).error().message.find("limit is 1"),
            std::string::npos);
  EXPECT_EQ(checkNpyPart(dir_.path("none.npy"), "labels").error().code, ErrorCode::kNotFound);
}

// --- safetensors input ------------------------------------------------------------------------

TEST_F(DatasetTest, SafetensorsInput) {
  SafeTensorFile input;
  SafeTensor x;  // F64 [2, 3] -> F32 [2, 3]
  x.dtype = SafeDtype::kF64;
  x.shape = {2, 3};
  const double values[6] = {1, 2, 3, 4, 5, 6};
  x.data.assign(reinterpret_cast<const char*>(values), sizeof values);
  input.tensors["x"] = x;
  input.tensors["y"] = makeF32Tensor({2}, {0.25f, 0.75f});
  const auto path = dir_.path("in.safetensors");
  ASSERT_TRUE(writeSafeTensorsFile(path, input).ok());

  DatasetOptions options;
  options.format = "safetensors";
  options.featuresTensor = "x";
  options.labelsTensor = "y";
  Result<DatasetSchema> schema = convertDataset(path, options, out());
  ASSERT_TRUE(schema.ok()) << schema.error().message;
  EXPECT_EQ(schema->labelName, "y");
  EXPECT_EQ(schema->classes, (std::vector<std::string>{"0.25", "0.75"}));
  const SafeTensorFile file = readOut();
  EXPECT_EQ(file.find("features")->dtype, SafeDtype::kF32);
  EXPECT_EQ(file.find("features")->toFloat(), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(file.find("targets")->toFloat(), (std::vector<float>{0.25f, 0.75f}));

  // Default names are absent from this file: refused naming the missing tensor.
  options.featuresTensor = "features";
  Result<DatasetSchema> missing = convertDataset(path, options, out());
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(missing.error().message.find("no tensor \"features\""), std::string::npos);
  EXPECT_NE(missing.error().message.find("[\"x\",\"y\"]"), std::string::npos);

  // Not a safetensors file at all.
  options.featuresTensor = "x";
  EXPECT_FALSE(convertDataset(write("bad.safetensors", "garbage!"), options, out()).ok());
}

// --- the real Fashion-MNIST test set, as CSV --------------------------------------------------

// The whole gunzipped file (empty if it cannot be read).
std::string gunzip(const std::filesystem::path& file) {
  std::string bytes;
  FILE* pipe = ::popen(("gzip -dc '" + file.string() + "'").c_str(), "r");
  if (pipe == nullptr) return bytes;
  char buffer[1 << 16];
  std::size_t got;
  while ((got = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) bytes.append(buffer, got);
  ::pclose(pipe);
  return bytes;
}

TEST_F(DatasetTest, FashionMnistTestSetAsCsv) {
  const std::filesystem::path root = "/usr/share/datasets/fashion-mnist";
  if (!std::filesystem::exists(root / "t10k-images-idx3-ubyte.gz")) {
    GTEST_SKIP() << "Fashion-MNIST not installed under " << root;
  }
  const std::string images = gunzip(root / "t10k-images-idx3-ubyte.gz");
  const std::string labels = gunzip(root / "t10k-labels-idx1-ubyte.gz");
  // idx: images have a 16-byte header, labels an 8-byte one.
  ASSERT_EQ(images.size(), 16u + 10000u * 784u);
  ASSERT_EQ(labels.size(), 8u + 10000u);
  std::string csv;
  csv.reserve(images.size() * 3);
  for (int j = 0; j < 784; ++j) csv += "p" + std::to_string(j) + ",";
  csv += "label\n";
  for (int i = 0; i < 10000; ++i) {
    for (int j = 0; j < 784; ++j) {
      csv += std::to_string(static_cast<unsigned char>(images[16 + i * 784 + j]));
      csv += ',';
    }
    csv += std::to_string(static_cast<unsigned char>(labels[8 + i])) + "\n";
  }
  const auto input = write("fashion.csv", csv);

  const auto start = std::chrono::steady_clock::now();
  Result<DatasetSchema> schema = convertDataset(input, {}, out());
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(schema.ok()) << schema.error().message;
  std::printf("converted %.1f MB of CSV in %.3f s (%.0f MB/s)\n", csv.size() / 1e6, seconds,
              csv.size() / 1e6 / seconds);
  EXPECT_EQ(schema->rows, 10000);
  EXPECT_EQ(schema->features, 784);
  EXPECT_EQ(schema->classes.size(), 10u);
  EXPECT_EQ(schema->classes.front(), "0");
  EXPECT_EQ(schema->classes.back(), "9");
  const SafeTensorFile file = readOut();
  const std::vector<float> features = file.find("features")->toFloat();
  const std::vector<std::int64_t> classes = file.find("labels")->toInt64();
  ASSERT_EQ(features.size(), 10000u * 784u);
  for (int i : {0, 1, 4999, 9999}) {
    EXPECT_EQ(classes[i], static_cast<unsigned char>(labels[8 + i])) << i;
    for (int j : {0, 300, 783}) {
      EXPECT_EQ(features[i * 784 + j], static_cast<unsigned char>(images[16 + i * 784 + j]));
    }
  }
}

TEST(DatasetSchemaTest, JsonRoundTripAndBadJson) {
  DatasetSchema schema;
  schema.rows = 5;
  schema.features = 2;
  schema.featureNames = {"a", "b"};
  schema.labelName = "y";
  schema.numericLabels = true;
  schema.classes = {"0", "1"};
  Result<DatasetSchema> back = DatasetSchema::fromJson(schema.toJson());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->toJson(), schema.toJson());
  nlohmann::json broken = schema.toJson();
  broken["rows"] = "five";
  EXPECT_FALSE(DatasetSchema::fromJson(broken).ok());
  broken.erase("rows");
  EXPECT_NE(DatasetSchema::fromJson(broken).error().message.find("rows"), std::string::npos);
}

}  // namespace
}  // namespace deviceops::training
