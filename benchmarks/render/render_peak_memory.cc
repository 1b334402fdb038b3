// SPDX-License-Identifier: Apache-2.0
// Peak memory of turning the benchmark's collapsed file into HTML, measured
// in a process that does only that (getrusage ru_maxrss):
//
//   render_peak_memory gen FILE.collapsed      writes the 1M-sample input
//   render_peak_memory html FILE.collapsed OUT.html [RESULT.json]
//
// The second prints "peak_rss_MiB=... seconds=... html_MB=..." and, given
// RESULT.json, writes the same figures as one Google Benchmark-shaped row
// so tools/run_benchmarks.sh puts them in its table. Target: under 200 MiB.
// run_peak_memory.sh runs both; it is not a Google Benchmark program, so
// it is tagged "benchmark_tool", not "benchmark".

#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <string>

#include "flamekit/profile/collapsed_io.h"
#include "flamekit/render/render_test_util.h"
#include "flamekit/render/write_profile.h"

namespace {

double Now() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

double CpuSeconds() {
  rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && strcmp(argv[1], "gen") == 0) {
    flamekit::Profile profile = flamekit::render_testing::LargeProfile(1000000, 50000);
    absl::Status status = flamekit::WriteProfile(profile, argv[2]);
    if (!status.ok()) {
      fprintf(stderr, "%s\n", status.ToString().c_str());
      return 1;
    }
    return 0;
  }
  if ((argc == 4 || argc == 5) && strcmp(argv[1], "html") == 0) {
    double start = Now();
    double cpu_start = CpuSeconds();
    absl::StatusOr<flamekit::Profile> profile = flamekit::ReadCollapsedFile(argv[2]);
    if (!profile.ok()) {
      fprintf(stderr, "%s\n", profile.status().ToString().c_str());
      return 1;
    }
    double parsed = Now();
    absl::Status status = flamekit::WriteProfile(*profile, argv[3]);
    if (!status.ok()) {
      fprintf(stderr, "%s\n", status.ToString().c_str());
      return 1;
    }
    double done = Now();
    rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    FILE* out = fopen(argv[3], "rb");
    fseek(out, 0, SEEK_END);
    long size = ftell(out);
    fclose(out);
    const double peak_mib = static_cast<double>(usage.ru_maxrss) / 1024.0;
    const double cpu_seconds = CpuSeconds() - cpu_start;
    const double html_mb = static_cast<double>(size) / 1e6;
    printf("samples=%llu stacks=%zu peak_rss_MiB=%.1f seconds=%.3f (read %.3f, render+write %.3f) "
           "cpu_seconds=%.3f html_MB=%.2f\n",
           static_cast<unsigned long long>(profile->total_samples()), profile->stack_count(),
           peak_mib, done - start, parsed - start, done - parsed, cpu_seconds, html_mb);
    if (argc == 5) {
      FILE* json = fopen(argv[4], "w");
      if (json == nullptr) {
        perror(argv[4]);
        return 1;
      }
      fprintf(json,
              "{\"benchmarks\": [{\"name\": \"CollapsedFileToHtml/fresh_process\", "
              "\"run_type\": \"iteration\", \"iterations\": 1, \"real_time\": %.3f, "
              "\"cpu_time\": %.3f, \"time_unit\": \"s\", \"samples\": %llu, "
              "\"stacks\": %zu, \"peak_rss_MiB\": %.1f, \"html_MB\": %.2f}]}\n",
              done - start, cpu_seconds,
              static_cast<unsigned long long>(profile->total_samples()), profile->stack_count(),
              peak_mib, html_mb);
      if (fclose(json) != 0) {
        perror(argv[4]);
        return 1;
      }
    }
    return 0;
  }
  fprintf(stderr, "usage: render_peak_memory gen FILE | html FILE OUT.html [RESULT.json]\n");
  return 2;
}
