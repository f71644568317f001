// The process's resident memory (VmRSS from /proc/self/statm), for the memory figures of
// generation reports and VAE comparisons. 0 when /proc is unreadable. Thread-safe.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <fstream>

namespace deviceops::generation {

inline std::uint64_t residentBytes() {
  std::ifstream statm("/proc/self/statm");
  std::uint64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
}

}  // namespace deviceops::generation
