// HTTP round trip of allocate + free (POST /api/memory/allocate, DELETE /api/memory/{id}) on
// one keep-alive connection to a real daemon, as a client sees it. Prints p50/p99/max in ms.
//   memory_roundtrip <port> <deviceId> <sizeBytes> <iterations>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "test_daemon.h"

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s <port> <deviceId> <sizeBytes> <iterations>\n", argv[0]);
    return 2;
  }
  const int port = std::atoi(argv[1]);
  const std::string device = argv[2];
  const std::uint64_t size = std::strtoull(argv[3], nullptr, 10);
  const int iterations = std::atoi(argv[4]);
  deviceops::testing::Connection connection(port);
  if (!connection.connected()) return 1;
  const std::string body = nlohmann::json{{"deviceId", device}, {"sizeBytes", size}}.dump();
  std::vector<double> allocate, release, total;
  for (int i = 0; i < iterations; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    connection.send(
        "POST /api/memory/allocate HTTP/1.1\r\nHost: x\r\nContent-Type: "
        "application/json\r\nContent-Length: " +
        std::to_string(body.size()) + "\r\n\r\n" + body);
    auto created = connection.read();
    const auto t1 = std::chrono::steady_clock::now();
    if (!created || created->status != 201) {
      std::fprintf(stderr, "allocate failed: %s\n", created ? created->body.c_str() : "no answer");
      return 1;
    }
    const std::string id = created->json()["id"];
    connection.send("DELETE /api/memory/" + id + " HTTP/1.1\r\nHost: x\r\n\r\n");
    auto freed = connection.read();
    const auto t2 = std::chrono::steady_clock::now();
    if (!freed || freed->status != 200) return 1;
    allocate.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    release.push_back(std::chrono::duration<double, std::milli>(t2 - t1).count());
    total.push_back(std::chrono::duration<double, std::milli>(t2 - t0).count());
  }
  const auto report = [](const char* name, std::vector<double> values) {
    std::sort(values.begin(), values.end());
    const auto at = [&](double q) {
      return values[static_cast<std::size_t>(q * (values.size() - 1))];
    };
    std::printf("%-16s p50 %.3f ms  p99 %.3f ms  max %.3f ms\n", name, at(0.5), at(0.99),
                values.back());
  };
  std::printf("%d iterations, %s, %llu bytes\n", iterations, device.c_str(),
              static_cast<unsigned long long>(size));
  report("allocate", allocate);
  report("free", release);
  report("allocate+free", total);
  return 0;
}
