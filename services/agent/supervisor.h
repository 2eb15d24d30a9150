// The job's supervisor: the code ProcessRunner::Launch runs in the child it
// forks, for the whole life of the job, and the job's own path to execvpe.
// Everything declared here is async-signal-safe (see supervisor.cc); the agent
// uses ProcessAlive and the launch-pipe wire format too.
#pragma once

#include <limits.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>

namespace greenlight::agent::supervisor {

// Records in state_dir/jobs/<job_id>/ (layout in process_runner.h), written
// to the ".tmp" name and renamed into place.
inline constexpr char kProcessFile[] = "process";
inline constexpr char kProcessTmp[] = "process.tmp";
inline constexpr char kExitFile[] = "exit";
inline constexpr char kExitTmp[] = "exit.tmp";

// What failed before the job's exec: sent as a fixed-size message on the
// launch pipe (one write, smaller than PIPE_BUF, so it arrives whole).
enum Stage : int32_t {
  kStageSetsid = 1,
  kStageSubreaper,
  kStagePipe,
  kStageClone,
  kStageProcStat,
  kStageRecord,
  kStageSetpgid,
  kStageDup,
  kStageSetgroups,
  kStageSetgid,
  kStageSetuid,
  kStageChdir,
  kStageExec,
};

struct StageError {
  int32_t stage;
  int32_t err;  // errno value
};
static_assert(sizeof(StageError) <= PIPE_BUF, "a StageError must arrive in one read");

// Everything the supervisor and the job need, prepared before fork. Every fd
// is >= 3 and close-on-exec.
struct ChildPlan {
  int launch_wr;  // launch pipe: StageError messages; EOF once the job exec'ed
  int dir_fd;     // state_dir/jobs/<job_id>
  int out_fd;     // stdout.log
  int err_fd;     // stderr.log
  int null_fd;    // /dev/null
  const char* file;
  char* const* argv;
  char* const* envp;
  const char* working_dir;
  bool drop_groups;
  bool set_gid;
  gid_t gid;
  bool set_uid;
  uid_t uid;
};

// The forked child's entry point: becomes the job's supervisor, starts the
// job, writes kProcessFile before the job execs and kExitFile once the job and
// everything it left behind is gone. A failure before the exec is reported as
// a StageError on plan.launch_wr. Exit status: 0 once the exit is recorded, 1
// when the launch failed, 2 when waiting failed, 3 when the exit record failed.
[[noreturn]] void RunSupervisor(const ChildPlan& plan);

// The fields of /proc/<pid>/stat the supervisor and the agent use.
struct ProcStat {
  char state = '?';
  pid_t ppid = 0;
  pid_t pgrp = 0;
  uint64_t start_ticks = 0;  // field 22
};

// Reads /proc/<pid>/stat; false when the process does not exist (or the file
// does not parse). `out` may be partly written on false.
bool ReadProcStat(pid_t pid, ProcStat* out);

// The process `pid` exists, is not a zombie, and started at `start_ticks`.
bool ProcessAlive(pid_t pid, uint64_t start_ticks);

// [begin, end) as a decimal number: digits only, at least one, no sign. Does
// not detect overflow (it parses pids and clock ticks).
bool ParseU64(const char* begin, const char* end, uint64_t* out);

// A fixed buffer that appends text and decimal numbers (truncates when full;
// always NUL-terminated).
struct SafeBuffer {
  char data[512];
  size_t len = 0;

  void Append(const char* s) {
    while (*s != '\0' && len + 1 < sizeof(data)) data[len++] = *s++;
    data[len] = '\0';
  }
  void AppendU64(uint64_t v) {
    char digits[24];
    int n = 0;
    do {
      digits[n++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v != 0);
    while (n > 0 && len + 1 < sizeof(data)) data[len++] = digits[--n];
    data[len] = '\0';
  }
  void AppendI64(int64_t v) {
    if (v < 0) {
      Append("-");
      AppendU64(static_cast<uint64_t>(-(v + 1)) + 1);
    } else {
      AppendU64(static_cast<uint64_t>(v));
    }
  }
  // A "key value\n" record line.
  void Line(const char* key, int64_t v) {
    Append(key);
    Append(" ");
    AppendI64(v);
    Append("\n");
  }
};

// Writes `tmp` in `dir_fd`, fsyncs it, renames it to `name` and fsyncs the
// directory. Returns 0 or an errno value (and then removes `tmp`).
int WriteRecordAt(int dir_fd, const char* tmp, const char* name, const SafeBuffer& text);

}  // namespace greenlight::agent::supervisor
