// Fuzzes the CSV dataset converter (uploads are parsed from memory-mapped files): whatever the
// bytes, conversion returns a schema or an error naming a row, never crashes or reads past the
// end. The first byte chooses the delimiter and the label column (first or last). What it accepts
// must be a canonical file whose features match the schema.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "training/dataset.h"
#include "training_formats/safetensors.h"

namespace {

const std::filesystem::path& directory() {
  static const std::filesystem::path path = [] {
    auto p = std::filesystem::temp_directory_path() /
             ("deviceops-csv-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(p);
    return p;
  }();
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  deviceops::training::DatasetOptions options;
  options.format = "csv";
  options.delimiter = (data[0] & 1) ? ';' : ',';
  const bool labelFirst = (data[0] & 2) != 0;
  const std::filesystem::path input = directory() / "input.csv";
  const std::filesystem::path output = directory() / "data.safetensors";
  {
    std::ofstream out(input, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data + 1), static_cast<std::streamsize>(size - 1));
  }
  if (labelFirst) {
    // The first header cell, when there is one, is the label column.
    std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
    options.labelColumn =
        text.substr(0, text.find_first_of(std::string(1, options.delimiter) + "\r\n"));
  }
  std::error_code ignored;
  std::filesystem::remove(output, ignored);
  auto schema = deviceops::training::convertDataset(input, options, output);
  if (!schema.ok()) {
    if (std::filesystem::exists(output)) __builtin_trap();  // nothing is written on error
    return 0;
  }
  auto file = deviceops::training::readSafeTensorsFile(output);
  if (!file.ok()) __builtin_trap();
  const auto* features = file->find("features");
  if (features == nullptr || features->shape.size() != 2 || features->shape[0] != schema->rows ||
      features->shape[1] != schema->features) {
    __builtin_trap();
  }
  return 0;
}
