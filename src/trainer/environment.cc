#include "trainer/environment.h"

#include <fcntl.h>
#include <sys/file.h>
#include <torch/cuda.h>
#include <unistd.h>

#include <algorithm>
#include <thread>

namespace deviceops::trainer {

namespace {
Error cannotRun(std::string message) {
  return makeError(ErrorCode::kInvalidArgument, std::move(message));
}
}  // namespace

Result<c10::Device> parseDevice(const std::string& name) {
  if (name == "cpu") return c10::Device(c10::kCPU);
  if (name.starts_with("cuda:") && name.size() > 5 && name.size() < 9 &&
      name.find_first_not_of("0123456789", 5) == std::string::npos) {
    const int index = std::stoi(name.substr(5));
    if (!torch::cuda::is_available()) {
      return cannotRun("device " + name +
                       " requested but CUDA is not available to this trainer "
                       "(libtorch without CUDA, or no GPU visible)");
    }
    if (index >= static_cast<int>(torch::cuda::device_count())) {
      return cannotRun("device " + name + " does not exist (" +
                       std::to_string(torch::cuda::device_count()) + " CUDA devices)");
    }
    return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  return cannotRun("unknown device \"" + name + "\" (expected cpu or cuda:N)");
}

int threadsPerRank(int requested, int worldSize) {
  if (requested > 0) return requested;
  const int hardware = static_cast<int>(std::thread::hardware_concurrency());
  return std::max(1, hardware / std::max(worldSize, 1));
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);
}

Status FileLock::acquire(const std::filesystem::path& file) {
  fd_ = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) return cannotRun("cannot open " + file.string());
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    return cannotRun("another trainer holds " + file.string());
  }
  return Status::success();
}

}  // namespace deviceops::trainer
