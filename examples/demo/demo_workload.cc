// SPDX-License-Identifier: Apache-2.0
// File: demo_workload.cc
//
// A small stand-in for a real service, for the README's demo and for trying
// flamekit by hand: worker threads "handle requests" (parse, route, compute a
// checksum with zlib, sort, format a response), one thread does matrix work
// in bursts and one mostly sleeps. Every step is its own non-inlined
// function so the flame graph has recognisable, nested frames. It prints its
// PID and runs for --seconds (default: until SIGINT/SIGTERM).
//
//   demo_workload --seconds 30 --threads 2

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

namespace demo {
namespace {

std::atomic<bool> g_stop{false};
std::atomic<uint64_t> g_requests{0};
// Keeps results alive so the compiler cannot drop the work.
std::atomic<uint64_t> g_sink{0};

#define DEMO_NOINLINE __attribute__((noinline))

struct Request {
  std::string path;
  std::vector<int> values;
};

DEMO_NOINLINE Request ParseRequest(uint64_t seed) {
  Request request;
  request.path = "/api/items/" + std::to_string(seed % 1000) + "?sort=asc&limit=200";
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  request.values.reserve(2000);
  for (int i = 0; i < 2000; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    request.values.push_back(static_cast<int>(x % 100000));
  }
  return request;
}

DEMO_NOINLINE uint32_t ComputeChecksum(const Request& request) {
  uLong crc = crc32(0L, Z_NULL, 0);
  for (int round = 0; round < 8; ++round) {
    crc = crc32(crc, reinterpret_cast<const Bytef*>(request.values.data()),
                static_cast<uInt>(request.values.size() * sizeof(int)));
  }
  return static_cast<uint32_t>(crc);
}

DEMO_NOINLINE void SortResults(Request* request) {
  std::sort(request->values.begin(), request->values.end());
}

DEMO_NOINLINE std::string FormatResponse(const Request& request, uint32_t checksum) {
  std::string body = "{\"path\":\"" + request.path + "\",\"items\":[";
  for (size_t i = 0; i < request.values.size(); i += 4) {
    body += std::to_string(request.values[i]);
    body += ',';
  }
  body += "],\"checksum\":" + std::to_string(checksum) + "}";
  return body;
}

DEMO_NOINLINE std::string RouteRequest(Request* request) {
  uint32_t checksum = ComputeChecksum(*request);
  SortResults(request);
  return FormatResponse(*request, checksum);
}

DEMO_NOINLINE void HandleRequest(uint64_t seed) {
  Request request = ParseRequest(seed);
  std::string response = RouteRequest(&request);
  g_sink.fetch_add(response.size(), std::memory_order_relaxed);
  g_requests.fetch_add(1, std::memory_order_relaxed);
}

DEMO_NOINLINE void RequestWorker(int worker) {
  uint64_t seed = static_cast<uint64_t>(worker) * 1000003;
  while (!g_stop.load(std::memory_order_relaxed)) HandleRequest(++seed);
}

DEMO_NOINLINE double MultiplyMatrices(int n) {
  std::vector<double> a(n * n, 1.0001), b(n * n, 0.9999), c(n * n, 0.0);
  for (int i = 0; i < n; ++i)
    for (int k = 0; k < n; ++k)
      for (int j = 0; j < n; ++j) c[i * n + j] += a[i * n + k] * b[k * n + j];
  return c[n + 1];
}

DEMO_NOINLINE void ReportBuilder() {
  while (!g_stop.load(std::memory_order_relaxed)) {
    double v = MultiplyMatrices(96);
    g_sink.fetch_add(static_cast<uint64_t>(v), std::memory_order_relaxed);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

DEMO_NOINLINE void Housekeeping() {
  while (!g_stop.load(std::memory_order_relaxed)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

void OnStopSignal(int) { g_stop.store(true); }

int Usage(const char* argv0) {
  fprintf(stderr, "usage: %s [--seconds N] [--threads N]\n", argv0);
  return 2;
}

}  // namespace
}  // namespace demo

int main(int argc, char** argv) {
  using namespace demo;
  double seconds = 0;  // 0: until a signal
  int threads = 2;
  for (int i = 1; i < argc; ++i) {
    char* end = nullptr;
    if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
      seconds = strtod(argv[++i], &end);
      if (*end != '\0' || seconds < 0) return Usage(argv[0]);
    } else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
      threads = static_cast<int>(strtol(argv[++i], &end, 10));
      if (*end != '\0' || threads < 1 || threads > 64) return Usage(argv[0]);
    } else {
      return Usage(argv[0]);
    }
  }
  struct sigaction action = {};
  action.sa_handler = OnStopSignal;
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);

  printf("demo_workload pid %d\n", static_cast<int>(getpid()));
  fflush(stdout);
  std::vector<std::thread> pool;
  for (int w = 0; w < threads; ++w) pool.emplace_back(RequestWorker, w);
  pool.emplace_back(ReportBuilder);
  pool.emplace_back(Housekeeping);

  auto start = std::chrono::steady_clock::now();
  while (!g_stop.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (seconds > 0 && std::chrono::steady_clock::now() - start >=
                           std::chrono::duration<double>(seconds)) {
      g_stop.store(true);
    }
  }
  for (auto& t : pool) t.join();
  printf("demo_workload handled %llu requests\n",
         static_cast<unsigned long long>(g_requests.load()));
  return 0;
}
