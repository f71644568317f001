// SharedLibrary: a dlopen'd vendor library (libvulkan.so.1, libnvidia-ml.so.1, libcuda.so.1).
// An absent library is an ordinary outcome ("no such devices"), reported as an Error, never a
// crash.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/result.h"

namespace deviceops {

class SharedLibrary {
 public:
  // Opens `name` with dlopen(RTLD_NOW | RTLD_LOCAL). kUnavailable with dlerror() text if absent.
  static Result<std::shared_ptr<SharedLibrary>> open(const std::string& name);
  ~SharedLibrary();
  SharedLibrary(const SharedLibrary&) = delete;
  SharedLibrary& operator=(const SharedLibrary&) = delete;

  // Address of `symbol`, or nullptr when the library lacks it (older driver versions).
  void* symbol(const char* symbol) const;

  // Typed lookup: `auto fn = lib.function<decltype(&nvmlInit_v2)>("nvmlInit_v2");`
  template <class Fn>
  Fn function(const char* symbolName) const {
    return reinterpret_cast<Fn>(symbol(symbolName));
  }

  // Resolves `symbolName` into `slot`; appends the name to `missing` when the library lacks it,
  // so a caller can report every missing function at once.
  template <class Fn>
  void resolve(const char* symbolName, Fn& slot, std::vector<std::string>& missing) const {
    slot = function<Fn>(symbolName);
    if (slot == nullptr) missing.emplace_back(symbolName);
  }

  const std::string& name() const { return name_; }

 private:
  SharedLibrary(void* handle, std::string name) : handle_(handle), name_(std::move(name)) {}
  void* handle_;
  std::string name_;
};

}  // namespace deviceops
