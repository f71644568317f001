// Test helpers for the generated ONNX models (tests/models/make_models.py): paths, tensor
// factories and a deterministic input generator. Header-only; tests only.
#pragma once

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "tensor/tensor.h"

#ifndef DEVICEOPS_TEST_MODELS_DIR
#error "DEVICEOPS_TEST_MODELS_DIR must point at the generated test models (tests/models)"
#endif

namespace deviceops::inference::testing {

inline std::filesystem::path testModel(const std::string& name) {
  return std::filesystem::path(DEVICEOPS_TEST_MODELS_DIR) / name;
}

inline Tensor floatTensor(std::string name, std::vector<std::int64_t> shape,
                          const std::vector<float>& values) {
  Tensor tensor;
  tensor.name = std::move(name);
  tensor.type = DataType::kFp32;
  tensor.shape = std::move(shape);
  tensor.data.assign(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
  return tensor;
}

inline std::vector<float> floatsOf(const Tensor& tensor) {
  std::vector<float> values(tensor.data.size() / sizeof(float));
  if (!values.empty()) std::memcpy(values.data(), tensor.data.data(), tensor.data.size());
  return values;
}

// Standard-normal float32 values from a fixed seed.
inline std::vector<float> randomFloats(std::size_t count, std::uint32_t seed) {
  std::mt19937 generator(seed);
  std::normal_distribution<float> normal;
  std::vector<float> values(count);
  for (float& value : values) value = normal(generator);
  return values;
}

inline nlohmann::json readJson(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  return nlohmann::json::parse(text.str());
}

// {"name", "shape", "data"} of a <model>.reference.json entry as a float32 tensor.
inline Tensor referenceTensor(const nlohmann::json& entry) {
  std::vector<float> values;
  for (const nlohmann::json& value : entry.at("data")) {
    values.push_back(static_cast<float>(value.get<double>()));
  }
  return floatTensor(entry.at("name").get<std::string>(),
                     entry.at("shape").get<std::vector<std::int64_t>>(), values);
}

}  // namespace deviceops::inference::testing
