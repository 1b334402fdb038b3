// SPDX-License-Identifier: Apache-2.0
// File: attach_samples.h
//
// Part of AttachSession (attach.h), which includes it after its class
// definition: the record sinks its rings are drained into, and the path of
// each sample (leaf-repair questions, stack building with the rules grown
// to the files walks reach, on-CPU and context-switch samples, exec).
// Include attach.h, not this file. Same thread-safety as attach.h: the
// session's own thread only. Not for signal handlers.

// First, outside the guard: attach.h includes this file where the session
// class is complete, whichever of the two is included first.
#include "flamekit/attach/attach.h"

#ifndef FLAMEKIT_ATTACH_ATTACH_SAMPLES_H_
#define FLAMEKIT_ATTACH_ATTACH_SAMPLES_H_

namespace flamekit {

class AttachSession::Sink : public PerfRecordSink {
 public:
  explicit Sink(AttachSession* session) : session_(session) {}
  void OnSample(const PerfSample& sample) override { session_->AddSample(sample); }
  void OnMmap(const PerfMmapRecord& m) override {
    if (m.pid != static_cast<uint32_t>(session_->options_.pid)) return;
    if ((m.prot & 4 /*PROT_EXEC*/) == 0 && m.is_mmap2) return;
    ++session_->progress_.mmaps;
    // Addresses in the new range may have been named "[unknown]" before the
    // mapping was known (rings are read one after another): forget them.
    if (session_->worker_) session_->worker_->Mmap(m);
    // The rules' walk needs the new file's rules too (this thread's side).
    if (session_->symbols_ && session_->options_.unwind != AttachUnwind::kFramePointers) {
      session_->symbols_->NoteFrameMmap(m);
    }
  }
  void OnComm(const PerfCommRecord& c) override {
    if (c.pid != static_cast<uint32_t>(session_->options_.pid)) return;
    session_->thread_names_[c.tid] = std::string(c.comm);
    if (c.exec && !session_->exec_seen_) session_->NoteExec();
  }
  void OnTask(const PerfTaskRecord& t) override {
    if (t.pid != static_cast<uint32_t>(session_->options_.pid)) return;
    if (t.is_exit) {
      session_->threads_.NoteExit(static_cast<pid_t>(t.tid));
    } else {
      session_->threads_.NoteFork(static_cast<pid_t>(t.tid));
    }
  }

 private:
  AttachSession* session_;
};

class AttachSession::SwitchSink : public PerfRecordSink {
 public:
  explicit SwitchSink(AttachSession* session) : session_(session) {}
  void OnSample(const PerfSample& sample) override { session_->AddSwitchSample(sample); }
  void OnSwitch(const PerfSwitchRecord& r) override {
    if (r.pid != static_cast<uint32_t>(session_->options_.pid)) return;
    session_->offcpu_->OnSwitch(r, session_->folder_);
    session_->NameNewAddresses();
  }

 private:
  AttachSession* session_;
};

inline CodeFacts::LeafFrame AttachSession::SymbolsCodeFacts::LeafFrameAt(uint64_t pc) {
  LeafFrame frame;
  if (session_->symbols_ == nullptr) return frame;
  if (std::optional<uint32_t> slot = session_->symbols_->FramelessReturnSlot(pc)) {
    frame.kind = LeafFrame::Kind::kFrameless;
    frame.slot = *slot;
  }
  return frame;
}

inline bool AttachSession::SymbolsCodeFacts::IsReturnAddress(uint64_t word) {
  return session_->symbols_ != nullptr && session_->symbols_->IsCode(word);
}

inline void AttachSession::NameNewAddresses() {
  std::vector<uint64_t> fresh = folder_.TakeUnnamed();
  if (symbols_ == nullptr || fresh.empty()) return;
  if (!worker_) worker_ = std::make_unique<attach_internal::SymbolWorker>(symbols_.get());
  for (uint64_t address : fresh) worker_->Lookup(address);
}

inline void AttachSession::AddSample(const PerfSample& sample) {
  if (sample.pid != static_cast<uint32_t>(options_.pid)) return;
  if (options_.launch_mode && !exec_seen_) {
    // Samples start at exec (enable_on_exec): the pre-exec mappings the
    // symbols were read from are gone.
    NoteExec();
  }
  ++progress_.samples;
  // Kernel frames, then user frames by the chosen walk (sample_stacks.h).
  RawSample raw;
  if (!BuildStacks(sample, &raw, &progress_)) return;
  if (offcpu_) raw.state = kRunningState;
  folder_.Add(raw);
  NameNewAddresses();
}

inline bool AttachSession::BuildStacks(const PerfSample& sample, RawSample* raw,
                                       AttachProgress* progress) {
  const CfiTable* rules = nullptr;
  if (options_.unwind != AttachUnwind::kFramePointers && symbols_ != nullptr) {
    rules = symbols_->FrameRules();
  }
  AttachProgress walks;
  if (!stacks_.Build(sample, rules, raw, &walks)) return false;
  // The walk passed through files the rules do not cover yet (such a
  // frame is stepped by frame pointer, which may end the walk early or
  // skip a caller): cover them and walk again. Each round covers at least
  // one more file, so this ends; once the files a program runs in are
  // covered (the first few samples), no sample walks twice.
  auto want_rules = [this, raw] {
    bool wanted = false;
    for (size_t k = raw->user_leaf; k < raw->pcs.size(); ++k) {
      wanted |= symbols_->WantFrameRulesAt(raw->pcs[k]);
    }
    return wanted;
  };
  while (rules != nullptr && want_rules()) {
    rules = symbols_->FrameRules();
    walks = AttachProgress();
    if (!stacks_.Build(sample, rules, raw, &walks)) return false;
  }
  progress->rule_walks += walks.rule_walks;
  progress->rule_walks_complete += walks.rule_walks_complete;
  progress->chain_walks += walks.chain_walks;
  return true;
}

inline void AttachSession::AddSwitchSample(const PerfSample& sample) {
  if (sample.pid != static_cast<uint32_t>(options_.pid)) return;
  RawSample raw;
  // Not counted as samples: they are the off-CPU intervals' stacks.
  AttachProgress scratch;
  if (!BuildStacks(sample, &raw, &scratch)) return;
  // Blocked in which system call: the code at the user pc (the
  // registers' ip; else the first user frame).
  ThreadStateKey blocked = kSleepingState;
  const uint64_t user_pc = sample.regs_user.size() == 3 ? sample.regs_user[2]
                           : raw.user_leaf < raw.pcs.size() ? raw.pcs[raw.user_leaf]
                                                            : 0;
  if (user_pc != 0) blocked = syscall_sites_->StateAt(user_pc);
  offcpu_->OnSwitchOutSample(raw, sample.time, folder_, blocked);
}

inline void AttachSession::NoteExec() {
  exec_seen_ = true;
  if (symbols_) {
    if (!worker_) worker_ = std::make_unique<attach_internal::SymbolWorker>(symbols_.get());
    worker_->Exec();
    symbols_->ForgetFrameRules();
  }
  leaf_repair_.Forget();
  if (syscall_sites_) syscall_sites_->Forget();
}

}  // namespace flamekit

#endif  // FLAMEKIT_ATTACH_ATTACH_SAMPLES_H_
