// SPDX-License-Identifier: Apache-2.0
// Fuzz target: requests to the embedded UI, over real HTTP on 127.0.0.1.
//
// One UiServer (token set, a stored profile, a secret file beside the
// profile directory) serves the whole run. Each input becomes one request:
//   byte 0 % 3 == 0: the rest is sent as is (request line, headers, body:
//                    anything at all, so the server's own checks run);
//   otherwise:       byte 1 picks GET, POST or DELETE; the rest up to the
//                    first '\n' is the request target (path and query),
//                    what follows is the body, sent with the right token,
//                    Host and Content-Length, as a form (byte 0 % 3 == 1) or
//                    as JSON (== 2), so the routes, file-name resolution and
//                    parameter parsing are reached.
//   byte 0 >= 0xF0, even: a stalled request: the rest is sent as is and the
//                    connection is left open (the last 8 are kept open at
//                    once), as a slowloris client does;
//   byte 0 >= 0xF0, odd: a header flood: a request line, then the rest (up
//                    to the first '\n', at most 64 bytes) as one header line
//                    repeated 1,000 x (byte 1 + 1) times, without the token.
// Planted in the profile directory for every input: a FIFO as the .json of
// the stored profile and as the .txt of a second one, and a symlink with a
// valid name to the secret. Before the first input, a squatted directory
// (another uid's, mode 0777; when run as root) must be refused.
// It traps when a response carries the secret, /etc/passwd or the token,
// when a GET changed the stored profiles, when a flood of headers was
// accepted, or when the server stops answering within 5 s (a FIFO or a
// slow client holding it). Crashes and leaks are ASan's to report.
//
// Run (one line):
//   bazel run --config=fuzz //include/flamekit/ui:ui_request_fuzz -- $PWD/testdata/ui/fuzz

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "flamekit/profile/profile.h"
#include "flamekit/ui/ui_server.h"
#include "flamekit/ui/ui_test_hooks.h"
#include "flamekit/ui/ui_test_util.h"
#include "nlohmann/json.hpp"

namespace {

constexpr absl::string_view kSecret = "FUZZ-SECRET-5d1e0b";
constexpr absl::string_view kToken = "fuzz-token-9a8b7c6d5e4f";

struct Harness {
  std::string root;
  std::unique_ptr<flamekit::UiServer> ui;
  std::vector<int> stalled;  // connections left open by stalled inputs
};

// Another user's directory, open to all (only root can make one): ServeUi
// must refuse it.
void CheckSquattedDirectoryRefused(const std::string& root) {
  if (::geteuid() != 0) return;
  std::string dir = root + "/squatted";
  if (::mkdir(dir.c_str(), 0777) != 0 || ::chmod(dir.c_str(), 0777) != 0) __builtin_trap();
  // In a user namespace that maps only uid 0 (Bazel's sandbox) there is no
  // other uid to give it to: nothing to check then.
  if (::chown(dir.c_str(), 65534, 65534) != 0) return;
  flamekit::UiOptions options;
  options.dir = dir;
  options.profiler = flamekit::ProfilerForTest();
  if (flamekit::ServeUi("127.0.0.1", 0, options).ok()) __builtin_trap();
}

// Keeps one profile stored, so file routes have something real to serve.
void EnsureOneProfile(flamekit::UiServer& ui) {
  if (!ui.store().List().empty()) return;
  flamekit::Profile profile;
  flamekit::FrameId frames[] = {profile.InternFrame("main"), profile.InternFrame("Work")};
  profile.AddStack(frames, 7);
  if (!ui.store().Save(profile).ok()) __builtin_trap();
}

Harness& GetHarness() {
  // Created once and never destroyed: libFuzzer may exit from any thread.
  static Harness* harness = [] {
    auto* h = new Harness;
    h->root = flamekit::ui_testing::MakeTempDir("flamekit-ui-fuzz");
    if (h->root.empty()) __builtin_trap();
    std::ofstream(h->root + "/secret.txt") << kSecret << "\n";
    CheckSquattedDirectoryRefused(h->root);
    flamekit::UiOptions options;
    options.dir = h->root + "/profiles";
    options.token = std::string(kToken);
    options.profiler = flamekit::ProfilerForTest();
    options.max_request_bytes = 16 * 1024;
    options.worker_threads = 2;
    absl::StatusOr<std::unique_ptr<flamekit::UiServer>> ui =
        flamekit::ServeUi("127.0.0.1", 0, std::move(options));
    if (!ui.ok()) __builtin_trap();
    h->ui = std::move(*ui);
    EnsureOneProfile(*h->ui);
    // A symlink with a valid profile name pointing at the secret: serving
    // it would be a leak.
    std::string trap = h->ui->store().directory() + "/0090-cpu-flamegraph-20260101-000000.html";
    if (::symlink((h->root + "/secret.txt").c_str(), trap.c_str()) != 0) __builtin_trap();
    // FIFOs with valid names: opening or reading one would block a worker
    // (and Stop()) forever. One is the .json of a listed profile.
    std::string dir = h->ui->store().directory();
    std::string fifo_stem = dir + "/0080-cpu-flamegraph-20260101-000000";
    std::ofstream(fifo_stem + ".html") << "<html>planted</html>\n";
    if (::mkfifo((fifo_stem + ".json").c_str(), 0600) != 0) __builtin_trap();
    if (::mkfifo((fifo_stem + ".txt").c_str(), 0600) != 0) __builtin_trap();
    return h;
  }();
  return *harness;
}

bool Leaks(absl::string_view text) {
  return absl::StrContains(text, kSecret) || absl::StrContains(text, "root:x:0:0") ||
         absl::StrContains(text, kToken);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  Harness& h = GetHarness();
  const int port = h.ui->port();
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  const int mode = data[0] % 3;
  std::string method = "RAW";
  std::string request;
  bool flood = false;
  if (data[0] >= 0xF0 && data[0] % 2 == 0) {
    // Stalled: sent, never finished, left open (8 at most at once).
    int fd = flamekit::ui_testing::ConnectLoopback(port);
    if (fd >= 0) {
      (void)::send(fd, data + 1, size - 1, MSG_NOSIGNAL);
      h.stalled.push_back(fd);
      if (h.stalled.size() > 8) {
        ::close(h.stalled.front());
        h.stalled.erase(h.stalled.begin());
      }
    }
    method = "STALL";
  } else if (data[0] >= 0xF0) {
    absl::string_view line = input.substr(2, 64);
    line = line.substr(0, line.find('\n'));
    std::string header = absl::StrCat(line, "\r\n");
    request = absl::StrCat("GET /api/status HTTP/1.1\r\nHost: 127.0.0.1:", port, "\r\n");
    for (int i = 0; i < 1000 * (data[1] + 1); ++i) request += header;
    request += "Connection: close\r\n\r\n";
    flood = true;
  } else if (mode == 0) {
    request = std::string(input.substr(1));
  } else {
    static const char* const kMethods[] = {"GET", "POST", "DELETE"};
    method = kMethods[data[1] % 3];
    absl::string_view rest = input.substr(2);
    size_t newline = rest.find('\n');
    absl::string_view target = rest.substr(0, newline);
    absl::string_view body =
        newline == absl::string_view::npos ? absl::string_view() : rest.substr(newline + 1);
    request = absl::StrCat(method, " ", target, " HTTP/1.1\r\nHost: 127.0.0.1:", port,
                           "\r\nConnection: close\r\nAuthorization: Bearer ", kToken,
                           "\r\nContent-Type: ",
                           mode == 1 ? "application/x-www-form-urlencoded" : "application/json",
                           "\r\nContent-Length: ", body.size(), "\r\n\r\n", body);
  }
  const size_t stored_before = h.ui->store().List().size();
  if (method != "STALL") {
    flamekit::ui_testing::RawResponse response =
        flamekit::ui_testing::RawHttp(port, request, /*half_close=*/true);
    if (Leaks(response.head) || Leaks(response.body)) __builtin_trap();
    if (method == "GET" && h.ui->store().List().size() != stored_before) __builtin_trap();
    // More than max_header_count (100) headers: 431 or dropped, never read.
    if (flood && response.status != 0 && response.status != 431) __builtin_trap();
  }

  // Still serving, promptly, and back to the starting state for the next
  // input.
  absl::Time asked = absl::Now();
  flamekit::ui_testing::RawResponse status = flamekit::ui_testing::Request(
      port, "GET", "/api/status", absl::StrCat("Authorization: Bearer ", kToken, "\r\n"));
  if (status.status != 200 || absl::Now() - asked > absl::Seconds(5)) __builtin_trap();
  nlohmann::json state = nlohmann::json::parse(status.body, nullptr, /*allow_exceptions=*/false);
  if (!state.is_object()) __builtin_trap();
  if (state.value("running", false)) (void)h.ui->StopProfiling();
  EnsureOneProfile(*h.ui);
  return 0;
}
