// CSV -> canonical dataset: one pass over a memory-mapped file, no string per cell.
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <unordered_set>

#include "training/dataset_internal.h"

namespace deviceops::training::internal {
namespace {

Error invalid(std::string message, nlohmann::json details = nlohmann::json::object()) {
  return makeError(ErrorCode::kInvalidArgument, std::move(message), std::move(details));
}

// A read-only mapping of a whole file; empty files map to an empty view.
class MappedFile {
 public:
  static Result<std::unique_ptr<MappedFile>> open(const std::filesystem::path& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      const int error = errno;
      if (error == ENOENT) return makeError(ErrorCode::kNotFound, "no such file: " + path.string());
      return makeError(ErrorCode::kInternal,
                       fmt::format("cannot open {}: {}", path.string(), std::strerror(error)));
    }
    struct stat info {};
    void* mapped = nullptr;
    int error = 0;
    if (::fstat(fd, &info) != 0) {
      error = errno;
    } else if (info.st_size > 0) {
      mapped =
          ::mmap(nullptr, static_cast<std::size_t>(info.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
      if (mapped == MAP_FAILED)
        error = errno;
      else
        ::madvise(mapped, static_cast<std::size_t>(info.st_size), MADV_SEQUENTIAL);
    }
    ::close(fd);
    if (error != 0) {
      return makeError(ErrorCode::kInternal,
                       fmt::format("cannot read {}: {}", path.string(), std::strerror(error)));
    }
    return std::unique_ptr<MappedFile>(
        new MappedFile(mapped, mapped ? static_cast<std::size_t>(info.st_size) : 0));
  }
  ~MappedFile() {
    if (data_ != nullptr) ::munmap(data_, size_);
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  std::string_view view() const { return {static_cast<const char*>(data_), size_}; }

 private:
  MappedFile(void* data, std::size_t size) : data_(data), size_(size) {}
  void* data_;
  std::size_t size_;
};

// One field of a record. Quoted fields hold the text between the quotes, "" not yet undone.
struct Field {
  std::string_view text;
  bool quoted = false;
};

std::string_view trimSpaces(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

// The value of a field: quotes undone ("" -> "), unquoted fields trimmed of spaces.
std::string fieldValue(const Field& field) {
  if (!field.quoted) return std::string(trimSpaces(field.text));
  std::string value;
  value.reserve(field.text.size());
  for (std::size_t i = 0; i < field.text.size(); ++i) {
    value += field.text[i];
    if (field.text[i] == '"') ++i;  // the second quote of a doubled pair
  }
  return value;
}

// Splits records. Rows are 1-based line numbers of the line where a record starts.
class CsvScanner {
 public:
  CsvScanner(std::string_view text, char delimiter) : text_(text), delimiter_(delimiter) {}

  // Reads the next record, skipping empty lines, into `fields`. False at the end of the input.
  Result<bool> next(std::vector<Field>& fields) {
    fields.clear();
    while (pos_ < text_.size()) {  // skip empty lines
      if (text_[pos_] == '\n') {
        ++pos_, ++line_;
      } else if (text_[pos_] == '\r' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '\n') {
        pos_ += 2, ++line_;
      } else {
        break;
      }
    }
    if (pos_ >= text_.size()) return false;
    row_ = line_;
    while (true) {
      if (text_[pos_] == '"') {
        Status status = readQuoted(fields);
        if (!status.ok()) return status.error();
      } else {
        const std::size_t begin = pos_;
        while (pos_ < text_.size() && text_[pos_] != delimiter_ && text_[pos_] != '\n') ++pos_;
        std::string_view field = text_.substr(begin, pos_ - begin);
        if (!field.empty() && field.back() == '\r' &&
            (pos_ == text_.size() || text_[pos_] == '\n')) {
          field.remove_suffix(1);
        }
        fields.push_back({field, false});
      }
      if (pos_ >= text_.size()) return true;
      if (text_[pos_] == '\n') {
        ++pos_, ++line_;
        return true;
      }
      ++pos_;                      // the delimiter
      if (pos_ >= text_.size()) {  // a delimiter right before the end: one more, empty field
        fields.push_back({{}, false});
        return true;
      }
    }
  }

  std::int64_t row() const { return row_; }

 private:
  Status readQuoted(std::vector<Field>& fields) {
    const std::size_t begin = ++pos_;
    while (true) {
      const std::size_t quote = text_.find('"', pos_);
      if (quote == std::string_view::npos) {
        return invalid(fmt::format("row {}: a quoted field is not closed", row_), {{"row", row_}});
      }
      if (quote + 1 < text_.size() && text_[quote + 1] == '"') {
        pos_ = quote + 2;
        continue;
      }
      const std::string_view inside = text_.substr(begin, quote - begin);
      line_ += std::count(inside.begin(), inside.end(), '\n');
      fields.push_back({inside, true});
      pos_ = quote + 1;
      break;
    }
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t')) ++pos_;
    if (pos_ < text_.size() && text_[pos_] == '\r' && pos_ + 1 < text_.size() &&
        text_[pos_ + 1] == '\n') {
      ++pos_;
    }
    if (pos_ < text_.size() && text_[pos_] != delimiter_ && text_[pos_] != '\n') {
      return invalid(fmt::format("row {}: unexpected text after the closing quote of field {}",
                                 row_, fields.size()),
                     {{"row", row_}});
    }
    return {};
  }

  std::string_view text_;
  char delimiter_;
  std::size_t pos_ = 0;
  std::int64_t line_ = 1;  // line number at pos_
  std::int64_t row_ = 0;   // line number where the last record started
};

enum class Parsed { kOk, kEmpty, kNotNumber, kNotFinite };

// A feature or label value: a finite number in float32 range; spaces around it and a leading '+'
// are accepted.
Parsed parseNumber(std::string_view text, double& value) {
  text = trimSpaces(text);
  if (text.empty()) return Parsed::kEmpty;
  // Fast path, exact: an integer of at most 9 digits (pixels, counts, class ids).
  {
    const bool negative = text.front() == '-';
    const std::string_view digits = text.substr(negative ? 1 : 0);
    if (!digits.empty() && digits.size() <= 9) {
      std::int32_t integer = 0;
      bool allDigits = true;
      for (char c : digits) {
        if (c < '0' || c > '9') {
          allDigits = false;
          break;
        }
        integer = integer * 10 + (c - '0');
      }
      if (allDigits) {
        value = negative ? -static_cast<double>(integer) : static_cast<double>(integer);
        return Parsed::kOk;
      }
    }
  }
  if (text.front() == '+') {
    text.remove_prefix(1);
    if (text.empty() || text.front() == '+' || text.front() == '-') return Parsed::kNotNumber;
  }
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error == std::errc::invalid_argument || end != text.data() + text.size()) {
    return Parsed::kNotNumber;
  }
  if (error == std::errc::result_out_of_range) {
    // Overflow or underflow; strtod tells which (underflow rounds to 0 or a subnormal).
    value = std::strtod(std::string(text).c_str(), nullptr);
  }
  if (!std::isfinite(value) || std::abs(value) > std::numeric_limits<float>::max()) {
    return Parsed::kNotFinite;
  }
  return Parsed::kOk;
}

std::string shortened(std::string_view text) {
  return text.size() <= 40 ? std::string(text) : std::string(text.substr(0, 37)) + "...";
}

Error cellError(std::int64_t row, const std::string& column, std::string_view value,
                Parsed parsed) {
  std::string what;
  switch (parsed) {
    case Parsed::kEmpty:
      what = "the value is empty";
      break;
    case Parsed::kNotNumber:
      what = fmt::format("\"{}\" is not a number", shortened(value));
      break;
    default:
      what = fmt::format("\"{}\" is NaN, infinite or outside the float32 range", shortened(value));
  }
  return invalid(fmt::format("row {}, column \"{}\": {}", row, column, what),
                 {{"row", row}, {"column", column}});
}

}  // namespace

Result<DatasetSchema> convertCsv(const std::filesystem::path& input, const DatasetOptions& options,
                                 const std::filesystem::path& output) {
  const char delimiter = options.delimiter;
  if (delimiter == '"' || delimiter == '\r' || delimiter == '\n' || delimiter == '\0') {
    return invalid("the delimiter cannot be a quote, a line break or NUL");
  }
  Result<std::unique_ptr<MappedFile>> mapped = MappedFile::open(input);
  if (!mapped.ok()) return mapped.error();
  std::string_view text = (*mapped)->view();
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);

  CsvScanner scanner(text, delimiter);
  std::vector<Field> fields;
  Result<bool> header = scanner.next(fields);
  if (!header.ok()) return header.error();
  if (!*header) return invalid("the file is empty; expected a header row and data rows");
  const std::int64_t headerRow = scanner.row();

  std::vector<std::string> names;
  std::unordered_set<std::string> seen;
  for (const Field& field : fields) {
    names.push_back(fieldValue(field));
    if (!validUtf8(names.back())) {
      return invalid(fmt::format("row {} (header), column {}: the name is not valid UTF-8",
                                 headerRow, names.size()),
                     {{"row", headerRow}, {"columnIndex", names.size()}});
    }
    if (names.back().empty()) {
      return invalid(fmt::format("row {}: header column {} has no name", headerRow, names.size()),
                     {{"row", headerRow}});
    }
    if (!seen.insert(names.back()).second) {
      return invalid(
          fmt::format("row {}: the header names column \"{}\" twice", headerRow, names.back()),
          {{"row", headerRow}, {"column", names.back()}});
    }
  }
  const std::size_t columns = names.size();
  if (columns < 2) {
    return invalid(fmt::format("the header has {} column; expected at least one feature column "
                               "and a label column (is the delimiter '{}' right?)",
                               columns, delimiter),
                   {{"row", headerRow}});
  }
  std::size_t labelIndex = columns - 1;
  if (!options.labelColumn.empty()) {
    const auto it = std::find(names.begin(), names.end(), options.labelColumn);
    if (it == names.end()) {
      return invalid(
          fmt::format(
              "the header has no label column \"{}\"; its columns are {}", options.labelColumn,
              nlohmann::json(names).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)),
          {{"row", headerRow}, {"column", options.labelColumn}});
    }
    labelIndex = static_cast<std::size_t>(it - names.begin());
  }
  const auto featureCount = static_cast<std::int64_t>(columns - 1);
  if (featureCount > options.maxFeatures) {
    return invalid(fmt::format("the header has {} feature columns; the limit is {}", featureCount,
                               options.maxFeatures),
                   {{"row", headerRow}});
  }

  std::string featureBytes;
  RawLabels labels;
  std::int64_t rows = 0;
  const std::size_t rowBytes = static_cast<std::size_t>(featureCount) * sizeof(float);
  while (true) {
    Result<bool> record = scanner.next(fields);
    if (!record.ok()) return record.error();
    if (!*record) break;
    const std::int64_t row = scanner.row();
    if (fields.size() != columns) {
      return invalid(fmt::format("row {} has {} fields; expected {} like the header", row,
                                 fields.size(), columns),
                     {{"row", row}});
    }
    const std::size_t offset = featureBytes.size();
    featureBytes.resize(offset + rowBytes);
    char* out = featureBytes.data() + offset;
    for (std::size_t j = 0; j < columns; ++j) {
      if (j == labelIndex) continue;
      double value = 0;
      const Parsed parsed = parseNumber(fields[j].text, value);
      if (parsed != Parsed::kOk) return cellError(row, names[j], fields[j].text, parsed);
      const auto single = static_cast<float>(value);
      std::memcpy(out, &single, sizeof single);
      out += sizeof single;
    }
    std::string label = fieldValue(fields[labelIndex]);
    if (label.empty()) return cellError(row, names[labelIndex], label, Parsed::kEmpty);
    double number = 0;
    const Parsed parsed = parseNumber(label, number);
    if (parsed == Parsed::kNotFinite) return cellError(row, names[labelIndex], label, parsed);
    if (parsed != Parsed::kOk && labels.allNumeric) {
      labels.allNumeric = false;
      labels.numbers.clear();
      labels.numbers.shrink_to_fit();
    }
    if (labels.allNumeric) labels.numbers.push_back(number);
    labels.texts.push_back(std::move(label));
    ++rows;
  }
  if (rows < 2) {
    return invalid(fmt::format("the file has {} data row{}; at least 2 are needed", rows,
                               rows == 1 ? "" : "s"));
  }
  if (labels.allNumeric) labels.texts = {};

  SafeTensor features;
  features.dtype = SafeDtype::kF32;
  features.shape = {rows, featureCount};
  features.data = std::move(featureBytes);
  std::vector<std::string> featureNames;
  featureNames.reserve(columns - 1);
  for (std::size_t j = 0; j < columns; ++j) {
    if (j != labelIndex) featureNames.push_back(names[j]);
  }
  return finishDataset(std::move(features), std::move(featureNames), names[labelIndex],
                       std::move(labels), options, output);
}

}  // namespace deviceops::training::internal
