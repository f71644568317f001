#include "common/shared_library.h"

#include <dlfcn.h>

namespace deviceops {

Result<std::shared_ptr<SharedLibrary>> SharedLibrary::open(const std::string& name) {
  dlerror();
  void* handle = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* reason = dlerror();
    return makeError(ErrorCode::kUnavailable,
                     "cannot load " + name + ": " + (reason ? reason : "unknown dlopen error"));
  }
  return std::shared_ptr<SharedLibrary>(new SharedLibrary(handle, name));
}

SharedLibrary::~SharedLibrary() {
  if (handle_ != nullptr) dlclose(handle_);
}

void* SharedLibrary::symbol(const char* symbolName) const { return dlsym(handle_, symbolName); }

}  // namespace deviceops
