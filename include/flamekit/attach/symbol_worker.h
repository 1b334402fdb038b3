// SPDX-License-Identifier: Apache-2.0
// File: symbol_worker.h
//
// attach_internal::SymbolWorker makes every AttachSymbols call of an
// AttachSession on its own thread, in the order the session asks: names
// for address keys, new mappings, exec. So the session's sample-reading
// thread never waits for an ELF file to be parsed, and names are found
// while the target is alive (a target that exits mid-capture still
// resolves).
//
// Thread-safety: Lookup(), Mmap(), Exec() and Finish() are called by one
// owning thread; they queue under a mutex and never wait for the work.
// names() belongs to the owner after Finish(). Not for signal handlers.
//
// Example:
//
//   attach_internal::SymbolWorker worker(symbols.get());
//   worker.Lookup(0x401000);
//   worker.Finish();
//   FrameName name = worker.names().at(0x401000);

#ifndef FLAMEKIT_ATTACH_SYMBOL_WORKER_H_
#define FLAMEKIT_ATTACH_SYMBOL_WORKER_H_

#include <stdint.h>

#include <condition_variable>
#include <iterator>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "flamekit/attach/attach_symbols.h"
#include "flamekit/perf/perf_record.h"

namespace flamekit {
namespace attach_internal {

// Makes every AttachSymbols call on its own thread, in the order the
// session asks: names for address keys, new mappings, exec. Names already
// given are looked up again after a mapping over them or an exec.
class SymbolWorker {
 public:
  explicit SymbolWorker(AttachSymbols* symbols) : symbols_(symbols), thread_([this] { Loop(); }) {}
  ~SymbolWorker() { Finish(); }

  void Lookup(uint64_t key) { Push(Command{Command::kLookup, key, {}, {}}); }
  void Mmap(const PerfMmapRecord& m) {
    PerfMmapRecord copy = m;
    Command c{Command::kMmap, 0, copy, std::string(m.filename)};
    Push(std::move(c));
  }
  void Exec() { Push(Command{Command::kExec, 0, {}, {}}); }
  // AttachSymbols::Warm() on the worker: files load while sampling runs
  // (and while the target lives), not before it.
  void Warm(bool kernel_frames) { Push(Command{Command::kWarm, kernel_frames ? 1u : 0u, {}, {}}); }

  // Finish()
  //
  // Works through what is queued and stops the thread; names() is then
  // complete and owned by the caller's thread.
  void Finish() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      stopping_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }
  const absl::flat_hash_map<uint64_t, AttachSymbols::Name>& names() const { return names_; }

 private:
  struct Command {
    enum Type { kLookup, kMmap, kExec, kWarm } type;
    uint64_t key;
    PerfMmapRecord mmap;
    std::string filename;  // mmap.filename points here once queued
  };

  void Push(Command c) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back(std::move(c));
    }
    cv_.notify_one();
  }

  void Loop() {
    std::vector<Command> batch;
    while (true) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (queue_.empty() && stopping_) return;
        batch.assign(std::make_move_iterator(queue_.begin()),
                     std::make_move_iterator(queue_.end()));
        queue_.clear();
      }
      for (Command& c : batch) Run(c);
      batch.clear();
    }
  }

  void Run(Command& c) {
    switch (c.type) {
      case Command::kLookup: {
        bool kernel = (c.key >> 63) != 0;
        names_[c.key] = symbols_->Lookup(c.key, kernel);
        return;
      }
      case Command::kMmap: {
        c.mmap.filename = c.filename;
        symbols_->OnMmap(c.mmap);
        std::vector<uint64_t> again;
        for (const auto& [key, name] : names_) {
          if (key >= c.mmap.addr && key < c.mmap.addr + c.mmap.len) again.push_back(key);
        }
        for (uint64_t key : again) names_[key] = symbols_->Lookup(key, false);
        return;
      }
      case Command::kWarm:
        symbols_->Warm(c.key != 0);
        return;
      case Command::kExec: {
        symbols_->OnExec();
        for (auto& [key, name] : names_) {
          name = symbols_->Lookup(key, (key >> 63) != 0);
        }
        return;
      }
    }
  }

  AttachSymbols* symbols_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Command> queue_;
  bool stopping_ = false;
  absl::flat_hash_map<uint64_t, AttachSymbols::Name> names_;  // worker thread only until Finish()
  std::thread thread_;  // last: starts after the members above exist
};

}  // namespace attach_internal
}  // namespace flamekit

#endif  // FLAMEKIT_ATTACH_SYMBOL_WORKER_H_
