// /proc read independently of the code under test: which processes are alive
// and in which process group (the agent's process tests).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace greenlight::testing {

struct ProcEntry {
  pid_t pid = 0;
  char state = '?';
  pid_t pgrp = 0;
  uint64_t start_ticks = 0;
  std::string comm;
};

// /proc/<pid>/stat, or nullopt when the process is gone.
inline std::optional<ProcEntry> ReadProc(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string stat = ss.str();
  const size_t open = stat.find('(');
  const size_t close = stat.rfind(')');
  if (open == std::string::npos || close == std::string::npos) return std::nullopt;
  std::vector<std::string> f = absl::StrSplit(stat.substr(close + 2), ' ');
  if (f.size() < 20) return std::nullopt;
  ProcEntry e;
  e.pid = pid;
  e.state = f[0][0];
  int pgrp = 0;
  if (!absl::SimpleAtoi(f[2], &pgrp) || !absl::SimpleAtoi(f[19], &e.start_ticks)) {
    return std::nullopt;
  }
  e.pgrp = pgrp;
  e.comm = stat.substr(open + 1, close - open - 1);
  return e;
}

// Live (non-zombie) members of process group `pgid`.
inline std::vector<ProcEntry> GroupMembers(pid_t pgid) {
  std::vector<ProcEntry> out;
  std::error_code ec;
  for (std::filesystem::directory_iterator it("/proc", ec), end; !ec && it != end;
       it.increment(ec)) {
    int pid = 0;
    if (!absl::SimpleAtoi(it->path().filename().string(), &pid)) continue;
    std::optional<ProcEntry> e = ReadProc(pid);
    if (e && e->pgrp == pgid && e->state != 'Z') out.push_back(*e);
  }
  return out;
}

}  // namespace greenlight::testing
