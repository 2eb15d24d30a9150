// Job processes under a supervisor; see process_runner.h for the design and
// the on-disk layout. This file is the agent's side (ordinary code); what runs
// after fork() is in supervisor.cc, which must stay async-signal-safe.
#include "services/agent/process_runner.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
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
#include "services/agent/state_files.h"
#include "services/agent/supervisor.h"

namespace greenlight::agent {
namespace {

using supervisor::ChildPlan;
using supervisor::kExitFile;
using supervisor::kExitTmp;
using supervisor::kProcessFile;
using supervisor::kProcessTmp;
using supervisor::ProcessAlive;
using supervisor::RunSupervisor;
using supervisor::StageError;

// Process and exit records are a few lines; anything larger is not ours.
constexpr size_t kMaxRecordBytes = 1 << 16;
// How long a failed Launch waits for its supervisor to finish.
constexpr absl::Duration kAbortWait = absl::Seconds(5);

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
  ASSIGN_OR_RETURN(std::string text, ReadSmallFile(path, kMaxRecordBytes));
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

bool HasNul(const std::string& s) { return s.find('\0') != std::string::npos; }

std::string StageText(const StageError& e, const LaunchSpec& spec, const std::string& dir) {
  switch (e.stage) {
    case supervisor::kStageSetsid:
      return "supervisor setsid()";
    case supervisor::kStageSubreaper:
      return "supervisor prctl(PR_SET_CHILD_SUBREAPER)";
    case supervisor::kStagePipe:
      return "supervisor pipe2()";
    case supervisor::kStageClone:
      return "supervisor clone() of the job";
    case supervisor::kStageProcStat:
      return "supervisor reading /proc/<pid>/stat";
    case supervisor::kStageRecord:
      return absl::StrCat("supervisor writing ", dir, "/", kProcessFile);
    case supervisor::kStageSetpgid:
      return "setpgid(0, 0)";
    case supervisor::kStageDup:
      return "dup2() of the log files";
    case supervisor::kStageSetgroups:
      return "setgroups(0, NULL)";
    case supervisor::kStageSetgid:
      return absl::StrCat("setgid(", spec.gid.value_or(0), ")");
    case supervisor::kStageSetuid:
      return absl::StrCat("setuid(", spec.uid.value_or(0), ")");
    case supervisor::kStageChdir:
      return absl::StrCat("chdir(\"", spec.working_dir, "\")");
    case supervisor::kStageExec:
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
  absl::StatusOr<std::string> text = ReadSmallFile(path, kMaxRecordBytes);
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
