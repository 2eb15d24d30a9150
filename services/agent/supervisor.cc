// The supervisor of one job (declared in supervisor.h; the design is in
// process_runner.h): it runs in the child ProcessRunner::Launch forks, for the
// whole life of the job, and starts the job with clone.
//
// The code between fork() and exec (the supervisor for the whole life of the
// job, and the job before execvpe) may only use async-signal-safe calls: the
// agent forks from a multithreaded process, so a lock held by another thread
// (malloc's, stdio's, absl's) stays locked forever in the child. So this file
// holds only such code: raw system calls, stack buffers, no allocation, no
// errno text (the agent formats errors from numbers), no absl.
#include "services/agent/supervisor.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>  // renameat
#include <cstring>
#include <utility>

namespace greenlight::agent::supervisor {
namespace {

// How long the supervisor keeps killing and reaping what the job left behind.
constexpr int64_t kCleanupNanos = 5'000'000'000;

bool WriteAll(int fd, const void* data, size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

void ReportStage(int fd, Stage stage, int err) {
  StageError e{stage, err};
  WriteAll(fd, &e, sizeof(e));
}

int64_t NowNanos(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

void SleepMillis(long ms) {
  struct timespec ts {
    0, ms * 1'000'000L
  };
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
  }
}

// Closes [first, last]: close_range, or a loop where the kernel lacks it.
void CloseRange(unsigned first, unsigned last) {
  if (first > last) return;
  if (close_range(first, last, 0) == 0) return;
  struct rlimit rl;
  unsigned limit = 65536;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
      rl.rlim_cur < (1u << 20)) {
    limit = static_cast<unsigned>(rl.rlim_cur);
  }
  for (unsigned fd = first; fd <= last && fd < limit; ++fd) close(static_cast<int>(fd));
}

// Closes every fd >= 3 except the `n` in `keep`.
void CloseFdsExcept(int* keep, int n) {
  for (int i = 1; i < n; ++i) {
    for (int j = i; j > 0 && keep[j - 1] > keep[j]; --j) std::swap(keep[j - 1], keep[j]);
  }
  unsigned next = 3;
  for (int i = 0; i < n; ++i) {
    if (keep[i] < static_cast<int>(next)) continue;
    CloseRange(next, static_cast<unsigned>(keep[i]) - 1);
    next = static_cast<unsigned>(keep[i]) + 1;
  }
  CloseRange(next, ~0u);
}

// All handlers back to default and nothing blocked (inherited from the
// agent); SIGPIPE ignored where `ignore_pipe`.
void ResetSignals(bool ignore_pipe) {
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = SIG_DFL;
  sigemptyset(&sa.sa_mask);
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    sigaction(sig, &sa, nullptr);  // EINVAL for libc-reserved signals: fine
  }
  if (ignore_pipe) {
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, nullptr);
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
}

void SetPipeSignal(bool ignore) {
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = ignore ? SIG_IGN : SIG_DFL;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGPIPE, &sa, nullptr);
}

}  // namespace

bool ParseU64(const char* begin, const char* end, uint64_t* out) {
  if (begin == end) return false;
  uint64_t v = 0;
  for (const char* p = begin; p < end; ++p) {
    if (*p < '0' || *p > '9') return false;
    v = v * 10 + static_cast<uint64_t>(*p - '0');
  }
  *out = v;
  return true;
}

// Reads /proc/<pid>/stat. The command name (field 2) may hold spaces and
// parentheses, so fields are counted from the last ')'.
bool ReadProcStat(pid_t pid, ProcStat* out) {
  if (pid <= 0) return false;
  SafeBuffer path;
  path.Append("/proc/");
  path.AppendU64(static_cast<uint64_t>(pid));
  path.Append("/stat");
  int fd = open(path.data, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[2048];
  size_t len = 0;
  while (len < sizeof(buf) - 1) {
    ssize_t r = read(fd, buf + len, sizeof(buf) - 1 - len);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    len += static_cast<size_t>(r);
  }
  close(fd);
  const char* end = buf + len;
  const char* p = nullptr;
  for (const char* q = buf; q < end; ++q) {
    if (*q == ')') p = q;
  }
  if (p == nullptr) return false;
  ++p;
  // Fields after ')' start at 3 (state).
  int field = 2;
  bool have_start = false;
  while (p < end && !have_start) {
    while (p < end && *p == ' ') ++p;
    const char* tok = p;
    while (p < end && *p != ' ' && *p != '\n') ++p;
    if (tok == p) break;
    ++field;
    uint64_t v = 0;
    switch (field) {
      case 3:
        out->state = *tok;
        break;
      case 4:
        if (!ParseU64(tok, p, &v)) return false;
        out->ppid = static_cast<pid_t>(v);
        break;
      case 5:
        if (!ParseU64(tok, p, &v)) return false;
        out->pgrp = static_cast<pid_t>(v);
        break;
      case 22:
        if (!ParseU64(tok, p, &out->start_ticks)) return false;
        have_start = true;
        break;
      default:
        break;
    }
  }
  return have_start;
}

// The process `pid` exists, is not a zombie, and started at `start_ticks`.
bool ProcessAlive(pid_t pid, uint64_t start_ticks) {
  ProcStat st;
  if (!ReadProcStat(pid, &st)) return false;
  return st.start_ticks == start_ticks && st.state != 'Z' && st.state != 'X';
}

// Writes `tmp` in `dir_fd`, fsyncs it, renames it to `name` and fsyncs the
// directory. Returns 0 or an errno value.
int WriteRecordAt(int dir_fd, const char* tmp, const char* name, const SafeBuffer& text) {
  int fd = openat(dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return errno;
  int err = 0;
  if (!WriteAll(fd, text.data, text.len)) err = errno != 0 ? errno : EIO;
  if (err == 0 && fsync(fd) != 0) err = errno;
  if (close(fd) != 0 && err == 0 && errno != EINTR) err = errno;
  if (err == 0 && renameat(dir_fd, tmp, dir_fd, name) != 0) err = errno;
  if (err == 0 && fsync(dir_fd) != 0) err = errno;
  if (err != 0) unlinkat(dir_fd, tmp, 0);
  return err;
}

namespace {

// SIGKILLs every child of this process (the supervisor is a subreaper, so
// every orphaned descendant of the job is its child). Children cannot be pid
// reuse victims: their pids stay ours until we reap them.
void KillChildrenOf(pid_t self) {
  int fd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  alignas(8) char buf[8192];
  for (;;) {
    long n = syscall(SYS_getdents64, fd, buf, sizeof(buf));
    if (n <= 0) break;
    for (long off = 0; off < n;) {
      unsigned short reclen;
      memcpy(&reclen, buf + off + offsetof(struct dirent64, d_reclen), sizeof(reclen));
      const char* name = buf + off + offsetof(struct dirent64, d_name);
      off += reclen;
      uint64_t pid = 0;
      if (!ParseU64(name, name + strlen(name), &pid)) continue;
      ProcStat st;
      if (ReadProcStat(static_cast<pid_t>(pid), &st) && st.ppid == self) {
        kill(static_cast<pid_t>(pid), SIGKILL);
      }
    }
  }
  close(fd);
}

[[noreturn]] void RunJob(const ChildPlan& p, int go_rd) {
  if (setpgid(0, 0) != 0) {
    ReportStage(p.launch_wr, kStageSetpgid, errno);
    _exit(127);
  }
  if (dup2(p.out_fd, STDOUT_FILENO) < 0 || dup2(p.err_fd, STDERR_FILENO) < 0) {
    ReportStage(p.launch_wr, kStageDup, errno);
    _exit(127);
  }
  // Raw system calls: glibc's wrappers broadcast to every thread of the
  // process, which is bookkeeping a forked child must not rely on.
  if (p.drop_groups && syscall(SYS_setgroups, 0, nullptr) != 0) {
    ReportStage(p.launch_wr, kStageSetgroups, errno);
    _exit(127);
  }
  if (p.set_gid && syscall(SYS_setgid, p.gid) != 0) {
    ReportStage(p.launch_wr, kStageSetgid, errno);
    _exit(127);
  }
  if (p.set_uid && syscall(SYS_setuid, p.uid) != 0) {
    ReportStage(p.launch_wr, kStageSetuid, errno);
    _exit(127);
  }
  if (chdir(p.working_dir) != 0) {
    ReportStage(p.launch_wr, kStageChdir, errno);
    _exit(127);
  }
  // Wait until the supervisor has recorded us: a job never runs unrecorded.
  char go = 0;
  ssize_t r;
  do {
    r = read(go_rd, &go, 1);
  } while (r < 0 && errno == EINTR);
  if (r != 1) _exit(127);  // the supervisor failed and reported why
  int keep[] = {p.launch_wr};
  CloseFdsExcept(keep, 1);
  SetPipeSignal(false);
  environ = const_cast<char**>(p.envp);  // execvpe searches the job's PATH
  execvpe(p.file, p.argv, p.envp);
  int err = errno;
  SetPipeSignal(true);
  ReportStage(p.launch_wr, kStageExec, err);
  _exit(127);
}

}  // namespace

[[noreturn]] void RunSupervisor(const ChildPlan& p) {
  if (setsid() < 0) {
    ReportStage(p.launch_wr, kStageSetsid, errno);
    _exit(1);
  }
  ResetSignals(/*ignore_pipe=*/true);
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) {
    ReportStage(p.launch_wr, kStageSubreaper, errno);
    _exit(1);
  }
  // Hold nothing of the agent's: not its terminal or output pipe, not its
  // listening sockets (a restarted agent must be able to bind again).
  dup2(p.null_fd, STDIN_FILENO);
  dup2(p.null_fd, STDOUT_FILENO);
  dup2(p.null_fd, STDERR_FILENO);
  int keep[] = {p.launch_wr, p.dir_fd, p.out_fd, p.err_fd, p.null_fd};
  CloseFdsExcept(keep, 5);
  // Keep no mount busy; the job chdirs to its own working dir. A name for ps.
  if (chdir("/") != 0) {
    // Not fatal: the supervisor touches no relative path.
  }
  prctl(PR_SET_NAME, "gl-supervisor", 0, 0, 0);

  int go[2];
  if (pipe2(go, O_CLOEXEC) != 0) {
    ReportStage(p.launch_wr, kStagePipe, errno);
    _exit(1);
  }
  // clone(SIGCHLD) rather than fork(): no pthread_atfork handlers run here.
  long rc = syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
  if (rc == 0) {
    close(go[1]);
    RunJob(p, go[0]);
  }
  if (rc < 0) {
    ReportStage(p.launch_wr, kStageClone, errno);
    _exit(1);
  }
  const pid_t job = static_cast<pid_t>(rc);
  const pid_t self = getpid();
  close(go[0]);
  close(p.out_fd);
  close(p.err_fd);
  close(p.null_fd);
  setpgid(job, job);  // also done by the job: whoever runs first wins

  ProcStat job_stat, self_stat;
  int err = 0;
  Stage failed = kStageProcStat;
  if (!ReadProcStat(job, &job_stat) || !ReadProcStat(self, &self_stat)) {
    err = errno != 0 ? errno : EIO;
  } else {
    SafeBuffer rec;
    rec.Line("pid", job);
    rec.Line("pgid", job);
    rec.Line("start_ticks", static_cast<int64_t>(job_stat.start_ticks));
    rec.Line("supervisor_pid", self);
    rec.Line("supervisor_start_ticks", static_cast<int64_t>(self_stat.start_ticks));
    rec.Line("started_unix_ns", NowNanos(CLOCK_REALTIME));
    failed = kStageRecord;
    err = WriteRecordAt(p.dir_fd, kProcessTmp, kProcessFile, rec);
  }
  if (err != 0) {
    kill(job, SIGKILL);
    int st;
    while (waitpid(job, &st, 0) < 0 && errno == EINTR) {
    }
    ReportStage(p.launch_wr, failed, err);
    _exit(1);
  }
  WriteAll(go[1], "g", 1);
  close(go[1]);
  close(p.launch_wr);

  // Wait for the job's main process, reaping re-parented orphans meanwhile.
  int status = 0;
  for (;;) {
    int st = 0;
    pid_t r = waitpid(-1, &st, 0);
    if (r == job) {
      status = st;
      break;
    }
    if (r < 0 && errno != EINTR) _exit(2);  // cannot happen: the job is our child
  }

  // Nothing of the job may outlive it unbilled: kill its group and every
  // descendant re-parented to us, reap them, then record the exit.
  const int64_t deadline = NowNanos(CLOCK_MONOTONIC) + kCleanupNanos;
  bool group_gone = false;
  for (;;) {
    // Once the group is empty its id may be reused: never signal it again.
    if (!group_gone && kill(-job, SIGKILL) < 0 && errno == ESRCH) group_gone = true;
    KillChildrenOf(self);
    int st;
    pid_t r = waitpid(-1, &st, WNOHANG);
    if (r > 0) continue;
    if (r < 0 && errno == ECHILD) break;
    if (NowNanos(CLOCK_MONOTONIC) > deadline) break;
    SleepMillis(10);
  }

  SafeBuffer exit_rec;
  if (WIFSIGNALED(status)) {
    exit_rec.Line("signal", WTERMSIG(status));
  } else {
    exit_rec.Line("exit_code", WEXITSTATUS(status));
  }
  exit_rec.Line("finished_unix_ns", NowNanos(CLOCK_REALTIME));
  _exit(WriteRecordAt(p.dir_fd, kExitTmp, kExitFile, exit_rec) == 0 ? 0 : 3);
}

}  // namespace greenlight::agent::supervisor
