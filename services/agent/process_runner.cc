// Job processes under a supervisor; see process_runner.h for the design and
// the on-disk layout.
//
// The code between fork() and exec (the supervisor for the whole life of the
// job, and the job before execvpe) may only use async-signal-safe calls: the
// agent forks from a multithreaded process, so a lock held by another thread
// (malloc's, stdio's, absl's) stays locked forever in the child. That code is
// in the "async-signal-safe" section below: raw system calls, stack buffers,
// no allocation, no errno text (the agent formats errors from numbers).
#include "services/agent/process_runner.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"

namespace greenlight::agent {
namespace {

constexpr char kProcessFile[] = "process";
constexpr char kProcessTmp[] = "process.tmp";
constexpr char kExitFile[] = "exit";
constexpr char kExitTmp[] = "exit.tmp";
constexpr size_t kMaxJobIdLength = 128;
// How long the supervisor keeps killing and reaping what the job left behind.
constexpr int64_t kCleanupNanos = 5'000'000'000;
// How long a failed Launch waits for its supervisor to finish.
constexpr absl::Duration kAbortWait = absl::Seconds(5);

// ---------------------------------------------------------------------------
// Async-signal-safe section: used after fork() (and by the agent, too).
// ---------------------------------------------------------------------------

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
  int32_t err;
};

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

// A fixed buffer that appends text and decimal numbers (truncates when full).
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
  void Line(const char* key, int64_t v) {
    Append(key);
    Append(" ");
    AppendI64(v);
    Append("\n");
  }
};

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

struct ProcStat {
  char state = '?';
  pid_t ppid = 0;
  pid_t pgrp = 0;
  uint64_t start_ticks = 0;  // field 22
};

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

// ---------------------------------------------------------------------------
// Agent side (ordinary code).
// ---------------------------------------------------------------------------

std::string ErrnoText(int err) {
  char buf[256];
  return strerror_r(err, buf, sizeof(buf));  // GNU strerror_r
}

absl::Status ErrnoStatus(int err, absl::string_view what) {
  return absl::Status(absl::ErrnoToStatusCode(err), absl::StrCat(what, ": ", ErrnoText(err)));
}

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { Reset(); }
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) {
      Reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  int get() const { return fd_; }
  void Reset() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

// Makes sure `fd` is >= 3, so dup2 onto 0..2 in the child cannot clobber it.
absl::Status MoveAboveStdio(UniqueFd& fd, absl::string_view job_id) {
  if (fd.get() >= 3) return absl::OkStatus();
  int moved = fcntl(fd.get(), F_DUPFD_CLOEXEC, 3);
  if (moved < 0)
    return ErrnoStatus(errno, absl::StrCat("job ", job_id, ": fcntl(F_DUPFD_CLOEXEC)"));
  fd = UniqueFd(moved);
  return absl::OkStatus();
}

absl::StatusOr<UniqueFd> Open(const std::string& path, int flags, absl::string_view job_id) {
  int fd;
  do {
    fd = open(path.c_str(), flags | O_CLOEXEC, 0640);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return ErrnoStatus(errno, absl::StrCat("job ", job_id, ": open(\"", path, "\")"));
  UniqueFd out(fd);
  RETURN_IF_ERROR(MoveAboveStdio(out, job_id));
  return out;
}

absl::Status FsyncDir(const std::string& dir, absl::string_view job_id) {
  ASSIGN_OR_RETURN(UniqueFd fd, Open(dir, O_RDONLY | O_DIRECTORY, job_id));
  if (fsync(fd.get()) != 0) {
    return ErrnoStatus(errno, absl::StrCat("job ", job_id, ": fsync(\"", dir, "\")"));
  }
  return absl::OkStatus();
}

// Reads a small file; NotFound when it does not exist.
absl::StatusOr<std::string> ReadSmallFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, absl::StrCat("open(\"", path, "\")"));
  UniqueFd holder(fd);
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t r = read(fd, buf, sizeof(buf));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return ErrnoStatus(errno, absl::StrCat("read(\"", path, "\")"));
    if (r == 0) break;
    out.append(buf, static_cast<size_t>(r));
    if (out.size() > (1 << 16)) return absl::DataLossError(absl::StrCat(path, ": too large"));
  }
  return out;
}

bool FileExists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

void UnlinkQuietly(const std::string& path) { unlink(path.c_str()); }

// "key value" lines -> map; DataLoss naming the file on a malformed line.
absl::StatusOr<std::map<std::string, int64_t>> ParseRecord(const std::string& path,
                                                           const std::string& text) {
  std::map<std::string, int64_t> out;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    ++line_no;
    std::vector<absl::string_view> kv = absl::StrSplit(line, ' ');
    int64_t v = 0;
    if (kv.size() != 2 || !absl::SimpleAtoi(kv[1], &v)) {
      return absl::DataLossError(
          absl::StrCat(path, ":", line_no, ": malformed record line \"", line, "\""));
    }
    out[std::string(kv[0])] = v;
  }
  return out;
}

absl::StatusOr<int64_t> Field(const std::map<std::string, int64_t>& rec, const std::string& path,
                              const char* key) {
  auto it = rec.find(key);
  if (it == rec.end()) return absl::DataLossError(absl::StrCat(path, ": no \"", key, "\""));
  return it->second;
}

absl::StatusOr<ProcessInfo> ReadProcessRecord(const std::string& job_id, const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadSmallFile(path));
  ASSIGN_OR_RETURN(auto rec, ParseRecord(path, text));
  ProcessInfo info;
  info.job_id = job_id;
  ASSIGN_OR_RETURN(int64_t pid, Field(rec, path, "pid"));
  ASSIGN_OR_RETURN(int64_t pgid, Field(rec, path, "pgid"));
  ASSIGN_OR_RETURN(int64_t ticks, Field(rec, path, "start_ticks"));
  ASSIGN_OR_RETURN(int64_t sup, Field(rec, path, "supervisor_pid"));
  ASSIGN_OR_RETURN(int64_t sup_ticks, Field(rec, path, "supervisor_start_ticks"));
  ASSIGN_OR_RETURN(int64_t started, Field(rec, path, "started_unix_ns"));
  if (pid <= 0 || pgid <= 0 || sup <= 0 || ticks < 0 || sup_ticks < 0) {
    return absl::DataLossError(absl::StrCat(path, ": impossible pid or start ticks"));
  }
  info.pid = static_cast<pid_t>(pid);
  info.pgid = static_cast<pid_t>(pgid);
  info.start_ticks = static_cast<uint64_t>(ticks);
  info.supervisor_pid = static_cast<pid_t>(sup);
  info.supervisor_start_ticks = static_cast<uint64_t>(sup_ticks);
  info.started = absl::FromUnixNanos(started);
  return info;
}

absl::StatusOr<ExitReport> ParseExitRecord(const std::string& job_id, const std::string& path,
                                           const std::string& text) {
  ASSIGN_OR_RETURN(auto rec, ParseRecord(path, text));
  ExitReport report;
  report.job_id = job_id;
  if (auto it = rec.find("signal"); it != rec.end()) {
    report.signaled = true;
    report.signal = static_cast<int>(it->second);
  } else {
    ASSIGN_OR_RETURN(int64_t code, Field(rec, path, "exit_code"));
    report.exit_code = static_cast<int>(code);
  }
  ASSIGN_OR_RETURN(int64_t finished, Field(rec, path, "finished_unix_ns"));
  report.finished = absl::FromUnixNanos(finished);
  return report;
}

ExitReport Lost(const std::string& job_id, std::string detail) {
  ExitReport r;
  r.job_id = job_id;
  r.lost = true;
  r.detail = std::move(detail);
  return r;
}

bool IsJobIdChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

absl::Status ValidateJobId(const std::string& id) {
  if (id.empty()) return absl::InvalidArgumentError("job id is empty");
  if (id.size() > kMaxJobIdLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("job id \"", id.substr(0, 32), "...\" is longer than ", kMaxJobIdLength));
  }
  if (id == "." || id == ".." || !std::all_of(id.begin(), id.end(), IsJobIdChar)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid job id \"", id, "\": only [A-Za-z0-9._-] allowed, and not \".\" or \"..\""));
  }
  return absl::OkStatus();
}

bool HasNul(const std::string& s) { return s.find('\0') != std::string::npos; }

std::string StageText(const StageError& e, const LaunchSpec& spec, const std::string& dir) {
  switch (e.stage) {
    case kStageSetsid:
      return "supervisor setsid()";
    case kStageSubreaper:
      return "supervisor prctl(PR_SET_CHILD_SUBREAPER)";
    case kStagePipe:
      return "supervisor pipe2()";
    case kStageClone:
      return "supervisor clone() of the job";
    case kStageProcStat:
      return "supervisor reading /proc/<pid>/stat";
    case kStageRecord:
      return absl::StrCat("supervisor writing ", dir, "/", kProcessFile);
    case kStageSetpgid:
      return "setpgid(0, 0)";
    case kStageDup:
      return "dup2() of the log files";
    case kStageSetgroups:
      return "setgroups(0, NULL)";
    case kStageSetgid:
      return absl::StrCat("setgid(", spec.gid.value_or(0), ")");
    case kStageSetuid:
      return absl::StrCat("setuid(", spec.uid.value_or(0), ")");
    case kStageChdir:
      return absl::StrCat("chdir(\"", spec.working_dir, "\")");
    case kStageExec:
      return absl::StrCat("execvpe(\"", spec.argv[0], "\")");
    default:
      return absl::StrCat("launch stage ", e.stage);
  }
}

}  // namespace

ProcessRunner::ProcessRunner(std::string state_dir, ExitRetention retention)
    : state_dir_(std::move(state_dir)), retention_(retention) {}

std::string ProcessRunner::JobDir(const std::string& job_id) const {
  return absl::StrCat(state_dir_, "/jobs/", job_id);
}

absl::StatusOr<ProcessInfo> ProcessRunner::Launch(const LaunchSpec& spec) {
  RETURN_IF_ERROR(ValidateJobId(spec.job_id));
  const std::string& id = spec.job_id;
  auto invalid = [&id](auto&&... parts) {
    return absl::InvalidArgumentError(absl::StrCat("job ", id, ": ", parts...));
  };
  if (spec.argv.empty()) return invalid("argv is empty");
  for (const std::string& a : spec.argv) {
    if (HasNul(a)) return invalid("argv holds a NUL byte");
  }
  for (const auto& [k, v] : spec.env) {
    if (k.empty() || k.find('=') != std::string::npos || HasNul(k) || HasNul(v)) {
      return invalid("bad environment variable name \"", k, "\"");
    }
  }
  if (spec.uid.has_value() && !spec.gid.has_value()) {
    return invalid("uid ", *spec.uid, " given without a gid");
  }
  if (spec.working_dir.empty()) return invalid("working dir is empty");
  struct stat wd;
  if (stat(spec.working_dir.c_str(), &wd) != 0) {
    return invalid("working dir \"", spec.working_dir, "\": ", ErrnoText(errno));
  }
  if (!S_ISDIR(wd.st_mode))
    return invalid("working dir \"", spec.working_dir, "\" is not a directory");
  if (auto it = jobs_.find(id); it != jobs_.end()) {
    if (it->second.ended.has_value()) {
      return absl::AlreadyExistsError(
          absl::StrCat("job ", id, " has ended but is not forgotten yet (call Forget first)"));
    }
    return absl::AlreadyExistsError(absl::StrCat("job ", id, " is already running (pid ",
                                                 it->second.info.pid, ") or not yet collected"));
  }

  const std::string dir = JobDir(id);
  const std::string jobs_dir = absl::StrCat(state_dir_, "/jobs");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    return absl::InternalError(absl::StrCat("job ", id, ": creating ", dir, ": ", ec.message()));
  if (FileExists(absl::StrCat(dir, "/", kProcessFile))) {
    return absl::FailedPreconditionError(
        absl::StrCat("job ", id, ": ", dir, "/", kProcessFile,
                     " exists (an earlier agent's job): call Adopt before launching it again"));
  }
  for (const char* stale : {kExitFile, kExitTmp, kProcessTmp}) {
    UnlinkQuietly(absl::StrCat(dir, "/", stale));
  }

  ASSIGN_OR_RETURN(UniqueFd dir_fd, Open(dir, O_RDONLY | O_DIRECTORY, id));
  ASSIGN_OR_RETURN(UniqueFd out_fd, Open(dir + "/stdout.log", O_WRONLY | O_CREAT | O_APPEND, id));
  ASSIGN_OR_RETURN(UniqueFd err_fd, Open(dir + "/stderr.log", O_WRONLY | O_CREAT | O_APPEND, id));
  ASSIGN_OR_RETURN(UniqueFd null_fd, Open("/dev/null", O_RDWR, id));
  if (fsync(dir_fd.get()) != 0) {
    return ErrnoStatus(errno, absl::StrCat("job ", id, ": fsync(\"", dir, "\")"));
  }
  RETURN_IF_ERROR(FsyncDir(jobs_dir, id));
  RETURN_IF_ERROR(FsyncDir(state_dir_, id));

  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
    return ErrnoStatus(errno, absl::StrCat("job ", id, ": pipe2()"));
  }
  UniqueFd launch_rd(pipe_fds[0]);
  UniqueFd launch_wr(pipe_fds[1]);
  RETURN_IF_ERROR(MoveAboveStdio(launch_rd, id));
  RETURN_IF_ERROR(MoveAboveStdio(launch_wr, id));

  std::vector<char*> argv;
  for (const std::string& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : spec.env) env_strings.push_back(absl::StrCat(k, "=", v));
  std::vector<char*> envp;
  for (const std::string& e : env_strings) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  ChildPlan plan;
  plan.launch_wr = launch_wr.get();
  plan.dir_fd = dir_fd.get();
  plan.out_fd = out_fd.get();
  plan.err_fd = err_fd.get();
  plan.null_fd = null_fd.get();
  plan.file = argv[0];
  plan.argv = argv.data();
  plan.envp = envp.data();
  plan.working_dir = spec.working_dir.c_str();
  plan.drop_groups = spec.uid.has_value() || spec.gid.has_value();
  plan.set_gid = spec.gid.has_value();
  plan.gid = spec.gid.value_or(0);
  plan.set_uid = spec.uid.has_value();
  plan.uid = spec.uid.value_or(0);

  const pid_t supervisor = fork();
  if (supervisor == 0) RunSupervisor(plan);
  if (supervisor < 0) return ErrnoStatus(errno, absl::StrCat("job ", id, ": fork()"));
  unreaped_.push_back(supervisor);
  launch_wr.Reset();  // EOF once the supervisor and the job let go of theirs
  out_fd.Reset();
  err_fd.Reset();
  null_fd.Reset();
  dir_fd.Reset();

  // Wait for EOF (the job exec'ed) or a StageError, at most kLaunchTimeout.
  std::string msg;
  bool timed_out = false;
  const absl::Time deadline = absl::Now() + kLaunchTimeout;
  for (;;) {
    const int64_t left_ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (left_ms <= 0) {
      timed_out = true;
      break;
    }
    struct pollfd pfd {
      launch_rd.get(), POLLIN, 0
    };
    int pr = poll(&pfd, 1, static_cast<int>(std::min<int64_t>(left_ms, 1000)));
    if (pr < 0 && errno == EINTR) continue;
    if (pr < 0) {
      timed_out = true;
      break;
    }
    if (pr == 0) continue;
    char buf[256];
    ssize_t r = read(launch_rd.get(), buf, sizeof(buf));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    msg.append(buf, static_cast<size_t>(r));
  }

  absl::Status failure;
  if (timed_out) {
    failure = absl::DeadlineExceededError(
        absl::StrCat("job ", id, ": did not exec within ", absl::FormatDuration(kLaunchTimeout)));
  } else if (msg.size() >= sizeof(StageError)) {
    StageError e;
    memcpy(&e, msg.data(), sizeof(e));
    if (e.err == 0) e.err = EIO;
    failure = absl::Status(
        absl::ErrnoToStatusCode(e.err),
        absl::StrCat("job ", id, ": ", StageText(e, spec, dir), " failed: ", ErrnoText(e.err)));
  }
  absl::StatusOr<ProcessInfo> info =
      failure.ok() ? ReadProcessRecord(id, absl::StrCat(dir, "/", kProcessFile))
                   : absl::StatusOr<ProcessInfo>(failure);
  if (!info.ok() && failure.ok()) {
    failure = absl::InternalError(absl::StrCat(
        "job ", id, ": exec'ed without a readable process record: ", info.status().message()));
  }
  if (failure.ok()) {
    Job job;
    job.info = *info;
    jobs_[id] = job;
    return *info;
  }

  // Failed: make sure nothing of the attempt runs, then remove its records.
  auto partial = ReadProcessRecord(id, absl::StrCat(dir, "/", kProcessFile));
  if (partial.ok() && ProcessAlive(partial->pid, partial->start_ticks)) {
    kill(-partial->pgid, SIGKILL);
  }
  const absl::Time wait_until = absl::Now() + kAbortWait;
  bool reaped = false;
  while (!reaped) {
    int st;
    pid_t r = waitpid(supervisor, &st, WNOHANG);
    if (r == supervisor || (r < 0 && errno == ECHILD)) {
      reaped = true;
    } else if (absl::Now() > wait_until) {
      kill(supervisor, SIGKILL);
      while (waitpid(supervisor, &st, 0) < 0 && errno == EINTR) {
      }
      reaped = true;
    } else {
      absl::SleepFor(absl::Milliseconds(5));
    }
  }
  unreaped_.erase(std::remove(unreaped_.begin(), unreaped_.end(), supervisor), unreaped_.end());
  for (const char* rec : {kProcessFile, kProcessTmp, kExitFile, kExitTmp}) {
    UnlinkQuietly(absl::StrCat(dir, "/", rec));
  }
  FsyncDir(dir, id).IgnoreError();
  return failure;
}

std::optional<ExitReport> ProcessRunner::Finished(const Job& job) const {
  const ProcessInfo& info = job.info;
  // Liveness first, then the record: a supervisor that has just died has
  // written its record by then.
  const bool leader = ProcessAlive(info.pid, info.start_ticks);
  const bool supervisor = ProcessAlive(info.supervisor_pid, info.supervisor_start_ticks);
  const std::string path = absl::StrCat(JobDir(info.job_id), "/", kExitFile);
  absl::StatusOr<std::string> text = ReadSmallFile(path);
  if (text.ok()) {
    absl::StatusOr<ExitReport> report = ParseExitRecord(info.job_id, path, *text);
    if (report.ok()) return *report;
    return Lost(info.job_id, std::string(report.status().message()));
  }
  if (!absl::IsNotFound(text.status())) return std::nullopt;  // try again later
  if (leader || supervisor) return std::nullopt;
  return Lost(info.job_id,
              absl::StrCat("job ", info.job_id, ": process ", info.pid, " and supervisor ",
                           info.supervisor_pid, " are gone without an exit record"));
}

void ProcessRunner::Drop(const std::string& job_id) {
  const std::string dir = JobDir(job_id);
  UnlinkQuietly(absl::StrCat(dir, "/", kProcessFile));
  FsyncDir(dir, job_id).IgnoreError();
  jobs_.erase(job_id);
}

void ProcessRunner::ReapSupervisors() {
  std::vector<pid_t> still;
  for (pid_t pid : unreaped_) {
    int st;
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid || (r < 0 && errno == ECHILD)) continue;
    still.push_back(pid);
  }
  unreaped_ = std::move(still);
}

std::vector<ExitReport> ProcessRunner::CollectExited() {
  ReapSupervisors();
  std::vector<ExitReport> out;
  std::vector<std::string> done;
  for (auto& [id, job] : jobs_) {
    if (job.ended.has_value()) {
      out.push_back(*job.ended);
      continue;
    }
    if (std::optional<ExitReport> report = Finished(job)) {
      out.push_back(*report);
      if (retention_ == ExitRetention::kUntilForget) {
        job.ended = std::move(report);
      } else {
        done.push_back(id);
      }
    }
  }
  for (const std::string& id : done) Drop(id);
  ReapSupervisors();
  return out;
}

absl::Status ProcessRunner::Forget(const std::string& job_id) {
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) {
    return absl::NotFoundError(absl::StrCat("job ", job_id, " is not known to this runner"));
  }
  if (!it->second.ended.has_value()) {
    return absl::FailedPreconditionError(
        absl::StrCat("job ", job_id, ": its end was not reported yet, so it may still run"));
  }
  Drop(job_id);
  ReapSupervisors();
  return absl::OkStatus();
}

absl::Status ProcessRunner::SignalGroup(const Job& job, int sig, const char* what) const {
  const ProcessInfo& info = job.info;
  if (FileExists(absl::StrCat(JobDir(info.job_id), "/", kExitFile))) return absl::OkStatus();
  // Signal the group only while it provably is the job's: its leader or the
  // supervisor (which kills the group before it records the exit) is alive.
  if (!ProcessAlive(info.pid, info.start_ticks) &&
      !ProcessAlive(info.supervisor_pid, info.supervisor_start_ticks)) {
    return absl::OkStatus();
  }
  if (kill(-info.pgid, sig) != 0 && errno != ESRCH) {
    return ErrnoStatus(errno,
                       absl::StrCat("job ", info.job_id, ": kill(-", info.pgid, ", ", what, ")"));
  }
  return absl::OkStatus();
}

absl::Status ProcessRunner::Stop(const std::string& job_id, absl::Duration grace, absl::Time now) {
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) {
    return absl::NotFoundError(absl::StrCat("job ", job_id, " is not known to this runner"));
  }
  Job& job = it->second;
  if (job.ended.has_value()) return absl::OkStatus();  // reported ended: nothing to signal
  if (grace <= absl::ZeroDuration()) {
    RETURN_IF_ERROR(SignalGroup(job, SIGKILL, "SIGKILL"));
    job.kill_at = now;
    job.kill_sent = true;
    return absl::OkStatus();
  }
  RETURN_IF_ERROR(SignalGroup(job, SIGTERM, "SIGTERM"));
  // A stopped (SIGSTOP) process acts on SIGTERM only once continued.
  RETURN_IF_ERROR(SignalGroup(job, SIGCONT, "SIGCONT"));
  if (!job.kill_at.has_value() || now + grace < *job.kill_at) job.kill_at = now + grace;
  return absl::OkStatus();
}

absl::Status ProcessRunner::Poll(absl::Time now) {
  absl::Status first;
  for (auto& [id, job] : jobs_) {
    if (job.ended.has_value() || !job.kill_at.has_value() || job.kill_sent || now < *job.kill_at) {
      continue;
    }
    absl::Status s = SignalGroup(job, SIGKILL, "SIGKILL");
    if (s.ok()) {
      job.kill_sent = true;
    } else if (first.ok()) {
      first = s;
    }
  }
  return first;
}

std::vector<AdoptedJob> ProcessRunner::Adopt() {
  ReapSupervisors();
  std::vector<std::string> names;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(absl::StrCat(state_dir_, "/jobs"), ec), end;
       !ec && it != end; it.increment(ec)) {
    names.push_back(it->path().filename().string());
  }
  std::sort(names.begin(), names.end());

  std::vector<AdoptedJob> out;
  for (const std::string& id : names) {
    if (!ValidateJobId(id).ok() || jobs_.count(id) > 0) continue;
    const std::string path = absl::StrCat(JobDir(id), "/", kProcessFile);
    if (!FileExists(path)) continue;  // collected earlier: logs only
    AdoptedJob adopted;
    adopted.job_id = id;
    absl::StatusOr<ProcessInfo> info = ReadProcessRecord(id, path);
    if (!info.ok()) {
      adopted.outcome = AdoptedJob::Outcome::kLost;
      adopted.info.job_id = id;
      adopted.exit = Lost(id, absl::StrCat("job ", id, ": ", info.status().message()));
      if (retention_ == ExitRetention::kUntilForget) {
        Job job;
        job.info.job_id = id;
        job.ended = adopted.exit;
        jobs_[id] = std::move(job);
      } else {
        Drop(id);
      }
      out.push_back(std::move(adopted));
      continue;
    }
    Job job;
    job.info = *info;
    adopted.info = *info;
    if (std::optional<ExitReport> report = Finished(job)) {
      adopted.outcome = report->lost ? AdoptedJob::Outcome::kLost : AdoptedJob::Outcome::kExited;
      adopted.exit = *report;
      if (retention_ == ExitRetention::kUntilForget) {
        job.ended = std::move(report);
        jobs_[id] = std::move(job);
      } else {
        Drop(id);
      }
    } else {
      adopted.outcome = AdoptedJob::Outcome::kAdopted;
      jobs_[id] = std::move(job);
    }
    out.push_back(std::move(adopted));
  }
  return out;
}

std::vector<std::string> ProcessRunner::Running() const {
  std::vector<std::string> out;
  for (const auto& [id, job] : jobs_) {
    if (!job.ended.has_value()) out.push_back(id);
  }
  return out;
}

bool ProcessRunner::IsAlive(const std::string& job_id) const {
  auto it = jobs_.find(job_id);
  return it != jobs_.end() && ProcessAlive(it->second.info.pid, it->second.info.start_ticks);
}

}  // namespace greenlight::agent
