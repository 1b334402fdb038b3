// SPDX-License-Identifier: Apache-2.0
// File: ui_test_util.h
//
// Test helpers for the UI: raw HTTP/1.1 over a loopback socket (so tests
// send exactly the bytes an attacker would, with no client-side escaping),
// a temporary directory, and a CPU-burning thread for real profiles.
// Test-only; thread-compatible; never from a signal handler.
//
// Example:
//
//   RawResponse r = RawHttp(port, "GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\n"
//                                 "Connection: close\r\n\r\n");
//   EXPECT_EQ(r.status, 200);

#ifndef FLAMEKIT_UI_UI_TEST_UTIL_H_
#define FLAMEKIT_UI_UI_TEST_UTIL_H_

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <stdio.h>

#include <atomic>
#include <cmath>
#include <string>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace flamekit {
namespace ui_testing {

struct RawResponse {
  int status = 0;          // 0: no response (connection failed or closed)
  std::string head;        // status line and headers
  std::string body;
  std::string Header(absl::string_view name) const;
};

// RawHttp()
//
// Sends `request` as is to 127.0.0.1:port and reads until the peer closes
// (requests should say "Connection: close") or 10 s pass. With
// `half_close`, the sending side is shut down after the request, so one
// cut short (a fuzzer's) ends at once instead of at the server's timeout.
// `from` is the client's address (any 127/8 one).
RawResponse RawHttp(int port, absl::string_view request, bool half_close = false,
                    const char* from = "127.0.0.1");

// Request()
//
// A well-formed request with Host 127.0.0.1:port and Connection: close;
// `extra_headers` are "Name: value\r\n" lines.
RawResponse Request(int port, absl::string_view method, absl::string_view target,
                    absl::string_view extra_headers = "", absl::string_view body = "");

// MakeTempDir()
//
// A new directory under $TEST_TMPDIR (or /tmp).
std::string MakeTempDir(absl::string_view prefix);

// ConnectLoopback()
//
// A TCP connection to `to`:port from `from` (both 127/8 addresses, so a
// test can be several clients), with 10 s send/receive timeouts; -1 on
// failure.
int ConnectLoopback(int port, const char* from = "127.0.0.1", const char* to = "127.0.0.1");

// VmRssKb()
//
// This process's resident set size in KiB (0 if unknown).
long VmRssKb();

// Burns CPU on its own thread until destroyed, in functions with
// recognisable names.
class CpuBurner {
 public:
  CpuBurner();
  ~CpuBurner();
  CpuBurner(const CpuBurner&) = delete;
  CpuBurner& operator=(const CpuBurner&) = delete;

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Implementation details follow.

inline std::string RawResponse::Header(absl::string_view name) const {
  for (absl::string_view line : absl::StrSplit(head, "\r\n")) {
    size_t colon = line.find(':');
    if (colon == absl::string_view::npos) continue;
    if (absl::EqualsIgnoreCase(line.substr(0, colon), name)) {
      return std::string(absl::StripAsciiWhitespace(line.substr(colon + 1)));
    }
  }
  return "";
}

inline RawResponse RawHttp(int port, absl::string_view request, bool half_close,
                           const char* from) {
  RawResponse response;
  // Every call retries EINTR: the profiler's SIGPROF lands in this thread
  // too, and socket calls with a timeout are not restarted (signal(7)).
  int fd = ConnectLoopback(port, from);
  if (fd < 0) return response;
  size_t sent = 0;
  while (sent < request.size()) {
    ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // the server may close early on an oversized request
    sent += static_cast<size_t>(n);
  }
  if (half_close) ::shutdown(fd, SHUT_WR);
  std::string data;
  char buffer[65536];
  while (true) {
    ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    data.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  if (::getenv("FK_UI_TEST_DEBUG") != nullptr) {
    fprintf(stderr, "RawHttp %.40s -> %zu bytes\n", std::string(request).c_str(), data.size());
  }
  size_t end = data.find("\r\n\r\n");
  if (end == std::string::npos) return response;
  response.head = data.substr(0, end);
  response.body = data.substr(end + 4);
  std::vector<std::string> first = absl::StrSplit(response.head.substr(0, response.head.find("\r\n")), ' ');
  if (first.size() >= 2) absl::SimpleAtoi(first[1], &response.status);
  return response;
}

inline RawResponse Request(int port, absl::string_view method, absl::string_view target,
                           absl::string_view extra_headers, absl::string_view body) {
  std::string request = absl::StrCat(method, " ", target, " HTTP/1.1\r\nHost: 127.0.0.1:", port,
                                     "\r\nConnection: close\r\n", extra_headers);
  if (!body.empty() || method == "POST" || method == "DELETE") {
    absl::StrAppend(&request, "Content-Length: ", body.size(), "\r\n");
  }
  absl::StrAppend(&request, "\r\n", body);
  return RawHttp(port, request);
}

inline std::string MakeTempDir(absl::string_view prefix) {
  const char* base = ::getenv("TEST_TMPDIR");
  std::string templ = absl::StrCat(base != nullptr ? base : "/tmp", "/", prefix, ".XXXXXX");
  if (::mkdtemp(&templ[0]) == nullptr) return "";
  return templ;
}

inline int ConnectLoopback(int port, const char* from, const char* to) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct timeval tv = {10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in source = {};
  source.sin_family = AF_INET;
  ::inet_pton(AF_INET, from, &source.sin_addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&source), sizeof(source)) != 0) {
    ::close(fd);
    return -1;
  }
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, to, &addr.sin_addr);
  int rc;
  do {
    rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

inline long VmRssKb() {
  FILE* f = ::fopen("/proc/self/status", "r");
  if (f == nullptr) return 0;
  char line[256];
  long kb = 0;
  while (::fgets(line, sizeof(line), f) != nullptr) {
    if (::sscanf(line, "VmRSS: %ld kB", &kb) == 1) break;
  }
  ::fclose(f);
  return kb;
}

__attribute__((noinline)) inline double UiTestBurnInner(double x) {
  for (int i = 0; i < 20000; ++i) x = std::sin(x) + 1.0001;
  return x;
}

__attribute__((noinline)) inline double UiTestBurnOuter(double x) {
  x = UiTestBurnInner(x);
  asm volatile("" ::: "memory");
  return x;
}

inline CpuBurner::CpuBurner()
    : thread_([this] {
        double x = 1;
        while (!stop_.load(std::memory_order_relaxed)) x = UiTestBurnOuter(x);
        asm volatile("" : : "g"(x) : "memory");
      }) {}

inline CpuBurner::~CpuBurner() {
  stop_.store(true);
  thread_.join();
}

}  // namespace ui_testing
}  // namespace flamekit

#endif  // FLAMEKIT_UI_UI_TEST_UTIL_H_
