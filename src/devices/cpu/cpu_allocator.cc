// The cpu allocator: anonymous private mappings whose pages are committed at allocation time
// (MAP_POPULATE, checked with mincore), optionally locked in RAM (mlock).
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "devices/allocator.h"
#include "devices/cpu/procfs.h"
#include "devices/pattern.h"

namespace deviceops::devices {
namespace {

// Requests at least this large are first compared with MemAvailable: committing more than the
// kernel can supply would wake the OOM killer, which may pick the daemon itself.
constexpr std::uint64_t kAvailabilityCheckBytes = 64ULL << 20;

std::string describeBytes(std::uint64_t bytes) {
  return fmt::format("{} bytes ({:.1f} MiB)", bytes, static_cast<double>(bytes) / (1 << 20));
}

std::optional<std::uint64_t> memAvailableBytes() {
  std::ifstream file("/proc/meminfo");
  if (!file) return std::nullopt;
  std::ostringstream text;
  text << file.rdbuf();
  auto totals = devices::parseMeminfo(text.str());
  if (!totals.ok()) return std::nullopt;
  return totals->availableBytes;
}

// Makes sure every page of [address, address + bytes) is backed by RAM: MAP_POPULATE is best
// effort and returns success even when it could not fault every page in. Pages that mincore
// reports as not resident get one byte written (a read would only map the shared zero page).
void commitPages(void* address, std::uint64_t bytes) {
  constexpr std::uint64_t kBatchPages = 4096;
  const auto pageBytes = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  const std::uint64_t pages = (bytes + pageBytes - 1) / pageBytes;
  auto* base = static_cast<unsigned char*>(address);
  unsigned char resident[kBatchPages];
  for (std::uint64_t first = 0; first < pages; first += kBatchPages) {
    const std::uint64_t count = std::min(kBatchPages, pages - first);
    unsigned char* batch = base + first * pageBytes;
    const bool known = ::mincore(batch, count * pageBytes, resident) == 0;
    for (std::uint64_t page = 0; page < count; ++page) {
      if (!known || (resident[page] & 1) == 0) {
        static_cast<volatile unsigned char*>(batch)[page * pageBytes] = 0;
      }
    }
  }
}

// mlock(2) through the system call: AddressSanitizer's mlock interceptor does nothing and
// reports success, which would make pinning untestable (and unreal) in sanitizer builds.
// Returns 0 or -1 with errno set, like mlock.
int lockPages(void* address, std::uint64_t bytes) {
  return static_cast<int>(::syscall(SYS_mlock, address, bytes));
}

Error memlockRefused(std::uint64_t bytes, int error) {
  rlimit limit{};
  ::getrlimit(RLIMIT_MEMLOCK, &limit);
  nlohmann::json details = nlohmann::json::object();
  std::string limitText;
  if (limit.rlim_cur == RLIM_INFINITY) {
    details["memlockLimitBytes"] = nullptr;
    limitText = "unlimited";
  } else {
    details["memlockLimitBytes"] = static_cast<std::uint64_t>(limit.rlim_cur);
    limitText = fmt::format("{} bytes", static_cast<std::uint64_t>(limit.rlim_cur));
  }
  return makeError(ErrorCode::kConflict,
                   fmt::format("cannot pin {} in RAM: mlock failed ({}); the soft RLIMIT_MEMLOCK "
                               "of the daemon is {} (raise it with `ulimit -l`, LimitMEMLOCK= "
                               "in the systemd unit, or grant CAP_IPC_LOCK)",
                               describeBytes(bytes), std::strerror(error), limitText),
                   std::move(details));
}

class CpuAllocator final : public DeviceAllocator {
 public:
  std::string_view kind() const override { return "cpu"; }

  Result<Block> allocate(std::uint64_t bytes, const AllocationOptions& options) override {
    if (Status valid = checkAllocationRequest(bytes, options, ""); !valid.ok()) {
      return valid.error();
    }
    if (bytes >= kAvailabilityCheckBytes) {
      const std::optional<std::uint64_t> available = memAvailableBytes();
      if (available && bytes > *available) {
        return makeError(ErrorCode::kResourceExhausted,
                         fmt::format("cannot commit {} of host memory: the kernel reports only {} "
                                     "available (MemAvailable)",
                                     describeBytes(bytes), describeBytes(*available)),
                         {{"requestedBytes", bytes}, {"availableBytes", *available}});
      }
    }
    void* address = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (address == MAP_FAILED) {
      const int error = errno;
      const ErrorCode code = error == ENOMEM ? ErrorCode::kResourceExhausted : ErrorCode::kInternal;
      return makeError(
          code, fmt::format("mmap of {} failed: {}", describeBytes(bytes), std::strerror(error)));
    }
    if (options.pinned) {
      if (lockPages(address, bytes) != 0) {
        const int error = errno;
        ::munmap(address, bytes);
        if (error == EPERM || error == ENOMEM) return memlockRefused(bytes, error);
        return makeError(ErrorCode::kResourceExhausted,
                         fmt::format("cannot pin {} in RAM: mlock failed ({})",
                                     describeBytes(bytes), std::strerror(error)));
      }
    } else {
      commitPages(address, bytes);  // mlock has already faulted every page in
    }
    liveBytes_.fetch_add(bytes, std::memory_order_relaxed);
    Block block;
    block.bytes = bytes;
    block.handle = reinterpret_cast<std::uintptr_t>(address);
    block.hostAddress = address;
    block.pinned = options.pinned;
    return block;
  }

  void release(const Block& block) override {
    if (block.pinned) ::syscall(SYS_munlock, block.hostAddress, block.bytes);  // see lockPages
    ::munmap(block.hostAddress, block.bytes);
    liveBytes_.fetch_sub(block.bytes, std::memory_order_relaxed);
  }

  Result<VerifyReport> verify(const Block& block) override {
    if (block.hostAddress == nullptr) {
      return makeError(ErrorCode::kInvalidArgument, "the block has no host address to verify");
    }
    return verifyHostMemory(block.hostAddress, block.bytes, nextVerifySeed());
  }

  std::optional<std::uint64_t> driverFreeBytes() override { return memAvailableBytes(); }

  Status write(const Block& block, std::uint64_t offset, const void* source,
               std::uint64_t bytes) override {
    RETURN_IF_ERROR(checkTransferRange(block.bytes, offset, bytes));
    if (bytes > 0)
      std::memcpy(static_cast<unsigned char*>(block.hostAddress) + offset, source, bytes);
    return Status::success();
  }

  Status read(const Block& block, std::uint64_t offset, void* destination,
              std::uint64_t bytes) override {
    RETURN_IF_ERROR(checkTransferRange(block.bytes, offset, bytes));
    if (bytes > 0) {
      std::memcpy(destination, static_cast<const unsigned char*>(block.hostAddress) + offset,
                  bytes);
    }
    return Status::success();
  }

  // memmove: the caller may copy within one block, ranges overlapping.
  Status copy(const Block& destination, std::uint64_t destinationOffset, const Block& source,
              std::uint64_t sourceOffset, std::uint64_t bytes) override {
    RETURN_IF_ERROR(checkTransferRange(destination.bytes, destinationOffset, bytes));
    RETURN_IF_ERROR(checkTransferRange(source.bytes, sourceOffset, bytes));
    if (bytes > 0) {
      std::memmove(static_cast<unsigned char*>(destination.hostAddress) + destinationOffset,
                   static_cast<const unsigned char*>(source.hostAddress) + sourceOffset, bytes);
    }
    return Status::success();
  }

  std::uint64_t liveBytes() const override { return liveBytes_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> liveBytes_{0};
};

}  // namespace

Result<std::unique_ptr<DeviceAllocator>> makeCpuAllocator() {
  return std::unique_ptr<DeviceAllocator>(std::make_unique<CpuAllocator>());
}

}  // namespace deviceops::devices
