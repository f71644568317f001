#include "training/dataset.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <unordered_map>

#include "tensor/npy.h"
#include "training/dataset_internal.h"

namespace deviceops::training {
namespace {

using inference::DataType;

Error invalid(std::string message, nlohmann::json details = nlohmann::json::object()) {
  return makeError(ErrorCode::kInvalidArgument, std::move(message), std::move(details));
}

// Shortest round-trip text of a class value: "3", "0.5", "1e+20".
std::string formatNumber(double value) {
  char buffer[32];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  return std::string(buffer, result.ptr);
}

// An .npy tensor as a SafeTensor with the same values (the data is moved, not copied, where the
// dtype exists in safetensors; unsigned 16/32/64-bit integers are widened to F64).
Result<SafeTensor> fromNpy(inference::Tensor tensor, const std::string& what) {
  SafeTensor out;
  out.shape = tensor.shape;
  auto widenUnsigned = [&](auto sample) {
    using T = decltype(sample);
    const std::size_t count = tensor.data.size() / sizeof(T);
    out.dtype = SafeDtype::kF64;
    out.data.resize(count * sizeof(double));
    for (std::size_t i = 0; i < count; ++i) {
      T value;
      std::memcpy(&value, tensor.data.data() + i * sizeof(T), sizeof(T));
      const auto widened = static_cast<double>(value);
      std::memcpy(out.data.data() + i * sizeof(double), &widened, sizeof(double));
    }
    return out;
  };
  switch (tensor.type) {
    case DataType::kFp32:
      out.dtype = SafeDtype::kF32;
      break;
    case DataType::kFp64:
      out.dtype = SafeDtype::kF64;
      break;
    case DataType::kFp16:
      out.dtype = SafeDtype::kF16;
      break;
    case DataType::kBf16:
      out.dtype = SafeDtype::kBF16;
      break;
    case DataType::kInt64:
      out.dtype = SafeDtype::kI64;
      break;
    case DataType::kInt32:
      out.dtype = SafeDtype::kI32;
      break;
    case DataType::kInt16:
      out.dtype = SafeDtype::kI16;
      break;
    case DataType::kInt8:
      out.dtype = SafeDtype::kI8;
      break;
    case DataType::kUint8:
      out.dtype = SafeDtype::kU8;
      break;
    case DataType::kBool:
      out.dtype = SafeDtype::kBool;
      break;
    case DataType::kUint16:
      return widenUnsigned(std::uint16_t{});
    case DataType::kUint32:
      return widenUnsigned(std::uint32_t{});
    case DataType::kUint64:
      return widenUnsigned(std::uint64_t{});
    case DataType::kBytes:
      return invalid(what + ": text arrays are not supported; expected a numeric dtype",
                     {{"tensor", what}});
  }
  out.data = std::move(tensor.data);
  return out;
}

// Validates a features tensor and turns it into F32 [N, F] with finite values.
Result<SafeTensor> canonicalFeatures(SafeTensor tensor, const std::string& name,
                                     const DatasetOptions& options) {
  if (tensor.shape.empty()) {
    return invalid(fmt::format("tensor \"{}\" is a scalar; expected [N, ...] with one row per "
                               "sample",
                               name),
                   {{"tensor", name}});
  }
  const std::int64_t rows = tensor.shape[0];
  std::int64_t features = 1;
  for (std::size_t i = 1; i < tensor.shape.size(); ++i) features *= tensor.shape[i];
  if (rows < 2) {
    return invalid(fmt::format("tensor \"{}\" has {} samples; at least 2 are needed", name, rows),
                   {{"tensor", name}});
  }
  if (features < 1) {
    return invalid(fmt::format("tensor \"{}\" has no features per sample", name),
                   {{"tensor", name}});
  }
  if (features > options.maxFeatures) {
    return invalid(fmt::format("tensor \"{}\" has {} features per sample; the limit is {}", name,
                               features, options.maxFeatures),
                   {{"tensor", name}});
  }
  if (tensor.dtype != SafeDtype::kF32) tensor = makeF32Tensor({}, tensor.toFloat());
  tensor.shape = {rows, features};
  const std::size_t count = tensor.data.size() / sizeof(float);
  for (std::size_t i = 0; i < count; ++i) {
    float value;
    std::memcpy(&value, tensor.data.data() + i * sizeof(float), sizeof value);
    if (!std::isfinite(value)) {
      const auto row = static_cast<std::int64_t>(i) / features;
      const auto column = static_cast<std::int64_t>(i) % features;
      return invalid(fmt::format("tensor \"{}\": sample {}, feature {} (counted from 0) is NaN "
                                 "or infinite",
                                 name, row, column),
                     {{"tensor", name}, {"row", row}, {"column", column}});
    }
  }
  return tensor;
}

// Validates a labels tensor ([N] or [N, 1], finite) and returns its values.
Result<std::vector<double>> labelValues(const SafeTensor& tensor, const std::string& name) {
  const bool shapeOk =
      tensor.shape.size() == 1 || (tensor.shape.size() == 2 && tensor.shape[1] == 1);
  if (!shapeOk) {
    return invalid(fmt::format("tensor \"{}\" has shape {}; expected [N] or [N, 1]", name,
                               nlohmann::json(tensor.shape).dump()),
                   {{"tensor", name}});
  }
  std::vector<double> values;
  switch (tensor.dtype) {
    case SafeDtype::kF64:
      values.resize(tensor.data.size() / sizeof(double));
      if (!values.empty()) std::memcpy(values.data(), tensor.data.data(), tensor.data.size());
      break;
    case SafeDtype::kF32:
    case SafeDtype::kF16:
    case SafeDtype::kBF16: {
      const std::vector<float> floats = tensor.toFloat();
      values.assign(floats.begin(), floats.end());
      break;
    }
    default: {
      const std::vector<std::int64_t> ints = tensor.toInt64();
      values.reserve(ints.size());
      for (std::int64_t v : ints) values.push_back(static_cast<double>(v));
    }
  }
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i]) || std::abs(values[i]) > std::numeric_limits<float>::max()) {
      return invalid(fmt::format("tensor \"{}\": label {} (counted from 0) is NaN, infinite or "
                                 "outside the float32 range",
                                 name, i),
                     {{"tensor", name}, {"row", i}});
    }
  }
  return values;
}

Result<DatasetSchema> convertTensors(SafeTensor features, const std::string& featuresName,
                                     const SafeTensor& labels, const std::string& labelsName,
                                     const DatasetOptions& options,
                                     const std::filesystem::path& output) {
  Result<SafeTensor> canonical = canonicalFeatures(std::move(features), featuresName, options);
  if (!canonical.ok()) return canonical.error();
  Result<std::vector<double>> values = labelValues(labels, labelsName);
  if (!values.ok()) return values.error();
  const std::int64_t rows = canonical->shape[0];
  if (static_cast<std::int64_t>(values->size()) != rows) {
    return invalid(fmt::format("\"{}\" has {} samples but \"{}\" has {}", featuresName, rows,
                               labelsName, values->size()),
                   {{"tensor", labelsName}});
  }
  internal::RawLabels raw;
  raw.numbers = std::move(values).value();
  return internal::finishDataset(std::move(canonical).value(), {}, labelsName, std::move(raw),
                                 options, output);
}

Result<SafeTensor> readNpyPart(const std::filesystem::path& file, const std::string& part) {
  Result<inference::Tensor> tensor = inference::readNpyFile(file, part);
  if (!tensor.ok()) {
    Error error = tensor.error();
    error.message = part + ": " + error.message;
    error.details["tensor"] = part;
    return error;
  }
  return fromNpy(std::move(tensor).value(), part);
}

}  // namespace

nlohmann::json DatasetSchema::toJson() const {
  return {
      {"rows", rows},           {"features", features},           {"featureNames", featureNames},
      {"labelName", labelName}, {"numericLabels", numericLabels}, {"classes", classes}};
}

Result<DatasetSchema> DatasetSchema::fromJson(const nlohmann::json& json) {
  if (!json.is_object()) return invalid("dataset schema: not a JSON object");
  DatasetSchema schema;
  auto field = [&](const char* name, auto& target) -> Status {
    const auto it = json.find(name);
    if (it == json.end()) return invalid(fmt::format("dataset schema: \"{}\" is missing", name));
    try {
      it->get_to(target);
    } catch (const nlohmann::json::exception&) {
      return invalid(fmt::format("dataset schema: \"{}\" has the wrong type", name));
    }
    return {};
  };
  for (Status status :
       {field("rows", schema.rows), field("features", schema.features),
        field("featureNames", schema.featureNames), field("labelName", schema.labelName),
        field("numericLabels", schema.numericLabels), field("classes", schema.classes)}) {
    if (!status.ok()) return status.error();
  }
  return schema;
}

Result<DatasetSchema> convertDataset(const std::filesystem::path& input,
                                     const DatasetOptions& options,
                                     const std::filesystem::path& output) {
  if (options.format == "csv") return internal::convertCsv(input, options, output);
  if (options.format != "safetensors") {
    return invalid("format \"" + options.format +
                   "\" is not converted from one file; expected csv or safetensors");
  }
  Result<SafeTensorFile> file = readSafeTensorsFile(input);
  if (!file.ok()) return file.error();
  for (const std::string* name : {&options.featuresTensor, &options.labelsTensor}) {
    if (file->find(*name) == nullptr) {
      std::vector<std::string> present;
      for (const auto& [tensorName, tensor] : file->tensors) present.push_back(tensorName);
      return invalid(fmt::format("the file has no tensor \"{}\" (it has: {})", *name,
                                 nlohmann::json(present).dump()),
                     {{"tensor", *name}});
    }
  }
  SafeTensor features = std::move(file->tensors.at(options.featuresTensor));
  return convertTensors(std::move(features), options.featuresTensor,
                        file->tensors.at(options.labelsTensor), options.labelsTensor, options,
                        output);
}

Result<DatasetSchema> convertNpyDataset(const std::filesystem::path& features,
                                        const std::filesystem::path& labels,
                                        const DatasetOptions& options,
                                        const std::filesystem::path& output) {
  Result<SafeTensor> featureTensor = readNpyPart(features, "features");
  if (!featureTensor.ok()) return featureTensor.error();
  Result<SafeTensor> labelTensor = readNpyPart(labels, "labels");
  if (!labelTensor.ok()) return labelTensor.error();
  return convertTensors(std::move(featureTensor).value(), "features", *labelTensor, "labels",
                        options, output);
}

Result<std::int64_t> checkNpyPart(const std::filesystem::path& file, std::string_view part,
                                  const DatasetOptions& options) {
  if (part != "features" && part != "labels") {
    return invalid("part \"" + std::string(part) + "\" is not one of: features, labels");
  }
  Result<SafeTensor> tensor = readNpyPart(file, std::string(part));
  if (!tensor.ok()) return tensor.error();
  if (part == "labels") {
    Result<std::vector<double>> values = labelValues(*tensor, "labels");
    if (!values.ok()) return values.error();
    return static_cast<std::int64_t>(values->size());
  }
  Result<SafeTensor> canonical = canonicalFeatures(std::move(tensor).value(), "features", options);
  if (!canonical.ok()) return canonical.error();
  return canonical->shape[0];
}

namespace internal {

// No overlong forms, surrogates or code points above U+10FFFF.
bool validUtf8(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    const auto byte = static_cast<unsigned char>(text[i]);
    std::size_t length = 0;
    std::uint32_t codePoint = 0;
    if (byte < 0x80) {
      ++i;
      continue;
    } else if ((byte & 0xE0) == 0xC0) {
      length = 2, codePoint = byte & 0x1F;
    } else if ((byte & 0xF0) == 0xE0) {
      length = 3, codePoint = byte & 0x0F;
    } else if ((byte & 0xF8) == 0xF0) {
      length = 4, codePoint = byte & 0x07;
    } else {
      return false;
    }
    if (i + length > text.size()) return false;
    for (std::size_t k = 1; k < length; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xC0) != 0x80) return false;
      codePoint = codePoint << 6 | (next & 0x3F);
    }
    static constexpr std::uint32_t kSmallest[] = {0, 0, 0x80, 0x800, 0x10000};
    if (codePoint < kSmallest[length] || codePoint > 0x10FFFF ||
        (codePoint >= 0xD800 && codePoint <= 0xDFFF)) {
      return false;
    }
    i += length;
  }
  return true;
}

Result<DatasetSchema> finishDataset(SafeTensor features, std::vector<std::string> featureNames,
                                    std::string labelName, RawLabels labels,
                                    const DatasetOptions& options,
                                    const std::filesystem::path& output) {
  // (Header names are checked where the header is read.)
  for (std::size_t i = 0; i < labels.texts.size(); ++i) {
    if (!validUtf8(labels.texts[i])) {
      return invalid(fmt::format("label {} of column \"{}\" is not valid UTF-8", i + 1, labelName),
                     {{"column", labelName}, {"label", i + 1}});
    }
  }
  DatasetSchema schema;
  schema.rows = features.shape.at(0);
  schema.features = features.shape.at(1);
  schema.featureNames = std::move(featureNames);
  schema.labelName = std::move(labelName);
  schema.numericLabels = labels.allNumeric;
  const auto rows = static_cast<std::size_t>(schema.rows);
  const auto maxClasses = static_cast<std::size_t>(std::max<std::int64_t>(options.maxClasses, 0));

  SafeTensorFile file;
  std::vector<std::int64_t> classIndex;
  if (labels.allNumeric) {
    std::vector<double> distinct = labels.numbers;
    std::sort(distinct.begin(), distinct.end());
    distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
    if (distinct.size() <= maxClasses) {
      for (double value : distinct) schema.classes.push_back(formatNumber(value));
      classIndex.reserve(rows);
      for (double value : labels.numbers) {
        classIndex.push_back(std::lower_bound(distinct.begin(), distinct.end(), value) -
                             distinct.begin());
      }
    }
    std::vector<float> targets(labels.numbers.begin(), labels.numbers.end());
    file.tensors[std::string(kTargetsTensor)] = makeF32Tensor({schema.rows}, targets);
  } else {
    std::unordered_map<std::string_view, std::int64_t> indexOf;
    for (const std::string& text : labels.texts) {
      if (indexOf.emplace(text, 0).second && indexOf.size() > maxClasses) {
        return invalid(fmt::format("label column \"{}\" has more than {} distinct values and "
                                   "not all of them are numbers",
                                   schema.labelName, options.maxClasses),
                       {{"column", schema.labelName}});
      }
    }
    for (const auto& [text, index] : indexOf) schema.classes.emplace_back(text);
    std::sort(schema.classes.begin(), schema.classes.end());
    for (std::size_t i = 0; i < schema.classes.size(); ++i) {
      indexOf[schema.classes[i]] = static_cast<std::int64_t>(i);
    }
    classIndex.reserve(rows);
    for (const std::string& text : labels.texts) classIndex.push_back(indexOf.at(text));
  }
  if (!schema.classes.empty()) {
    file.tensors[std::string(kLabelsTensor)] = makeI64Tensor({schema.rows}, classIndex);
  }
  file.tensors[std::string(kFeaturesTensor)] = std::move(features);
  file.metadata[std::string(kSchemaMetadataKey)] = schema.toJson().dump();
  Status written = writeSafeTensorsFile(output, file);
  if (!written.ok()) return written.error();
  return schema;
}

}  // namespace internal
}  // namespace deviceops::training
