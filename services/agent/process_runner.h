// Job processes for greenlight-agent: every assigned training job runs as a
// real child process under a small supervisor, so that
//   * killing or restarting the agent (kill -9 included, and a kill of the
//     agent's whole process group) never kills or orphans a job: the
//     supervisor is in its own session and keeps waiting for the job;
//   * the job's exit status is never lost: the supervisor writes it to disk;
//   * a restarted agent re-adopts the jobs that still run (Adopt) and learns
//     the exit of those that ended while it was away;
//   * nothing of a job outlives it unbilled: the supervisor is a child
//     subreaper, and once the job's main process has ended it SIGKILLs the
//     job's process group and every descendant re-parented to it before it
//     records the exit.
//
// Process tree of one job:
//
//   agent ──fork──> supervisor (setsid; PR_SET_CHILD_SUBREAPER; stdio on
//                   /dev/null; every other inherited fd closed)
//                     └──clone──> job (process group leader, pgid == pid;
//                                 stdin /dev/null, stdout/stderr to the logs;
//                                 optional setgroups(0)/setgid/setuid; chdir;
//                                 execvpe with exactly LaunchSpec::env)
//
// Between fork and exec only async-signal-safe calls run (the agent may be
// multithreaded: gRPC), so the supervisor is written with raw system calls and
// no allocation.
//
// On-disk layout (state_dir is the constructor's argument):
//
//   state_dir/jobs/<job_id>/stdout.log   job's stdout, appended across launches
//   state_dir/jobs/<job_id>/stderr.log   job's stderr, appended across launches
//   state_dir/jobs/<job_id>/process      written by the supervisor before the
//                                        job execs, "key value" lines:
//                                          pid <job pid>
//                                          pgid <job process group>
//                                          start_ticks <job /proc/pid/stat field 22>
//                                          supervisor_pid <pid>
//                                          supervisor_start_ticks <ticks>
//                                          started_unix_ns <wall clock, ns>
//                                        present while the job is known; removed
//                                        once its exit (or loss) was reported
//                                        (kForgetWhenReported) or the caller
//                                        called Forget (kUntilForget).
//   state_dir/jobs/<job_id>/exit         written by the supervisor once the job
//                                        and everything it left behind is gone:
//                                          exit_code <code>   or   signal <number>
//                                          finished_unix_ns <wall clock, ns>
//                                        kept (with the logs) after reporting,
//                                        removed by the next Launch of the id.
//
// Both records are written to a ".tmp" file, fsynced, renamed into place and
// the directory fsynced, so a reader sees either nothing or the whole record,
// also after a crash. Start ticks defend against pid reuse: a pid counts as the
// job's only while /proc/<pid>/stat shows the recorded start time and the
// process is not a zombie.
//
// Deployment note: the supervisors must not share the agent's fate, so a
// systemd unit for the agent needs KillMode=process (the default
// control-group mode would kill every job with the agent).
//
// ProcessRunner is not thread-safe: the agent calls it from one thread and
// polls (CollectExited, Poll); no call blocks for long (Launch waits at most
// kLaunchTimeout for the exec).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace greenlight::agent {

struct LaunchSpec {
  // [A-Za-z0-9._-]{1,128}, not "." or "..": names the state directory.
  std::string job_id;
  // argv[0] is looked up as execvpe does, with PATH taken from `env` (the
  // default path /bin:/usr/bin when `env` has none).
  std::vector<std::string> argv;
  // The whole environment: nothing is inherited from the agent.
  std::map<std::string, std::string> env;
  // Must exist; the job chdirs there after dropping privileges.
  std::string working_dir;
  // Run as this user/group: setgroups(0, NULL), setgid(gid), setuid(uid).
  // A uid needs a gid (otherwise the job would keep the agent's group).
  std::optional<uid_t> uid;
  std::optional<gid_t> gid;
};

struct ProcessInfo {
  std::string job_id;
  pid_t pid = 0;             // the job's main process
  pid_t pgid = 0;            // its process group (== pid)
  uint64_t start_ticks = 0;  // /proc/<pid>/stat field 22 (clock ticks since boot)
  absl::Time started;        // wall clock when the supervisor recorded it
  pid_t supervisor_pid = 0;
  uint64_t supervisor_start_ticks = 0;
};

struct ExitReport {
  std::string job_id;
  bool signaled = false;  // killed by `signal`; else exited with `exit_code`
  int exit_code = 0;
  int signal = 0;
  absl::Time finished = absl::InfinitePast();  // from the exit record
  // The job is gone but no exit was recorded (its supervisor was killed, the
  // machine rebooted, or a record is unreadable): the outcome is unknown.
  bool lost = false;
  std::string detail;  // why it is lost
};

struct AdoptedJob {
  enum class Outcome {
    kAdopted,  // still running: tracked again, Stop/IsAlive/CollectExited work
    kExited,   // ended while no agent watched: `exit` holds its exit record
    kLost,     // gone without an exit record: `exit.lost`, `exit.detail`
  };
  std::string job_id;
  Outcome outcome = Outcome::kLost;
  ProcessInfo info;  // from the process record (zero when unreadable)
  ExitReport exit;   // kExited and kLost
};

class ProcessRunner {
 public:
  // How long Launch waits for the job to exec (or fail to).
  static constexpr absl::Duration kLaunchTimeout = absl::Seconds(10);

  // What CollectExited and Adopt do with a job once they report its end.
  enum class ExitRetention {
    // Forget it at once: its process record is removed as it is reported, so
    // an exit reported just before the caller dies is not reported again.
    kForgetWhenReported,
    // Keep it until the caller calls Forget(job_id): CollectExited reports it
    // on every call, and the process record stays, so a restarted runner's
    // Adopt reports it again. For a caller that must pass the exit on (the
    // agent, to greenlightd) before it may be dropped.
    kUntilForget,
  };

  // Creates nothing yet: Launch creates state_dir/jobs/<job_id> as needed.
  // Destroying the runner leaves every job running (an agent restart).
  explicit ProcessRunner(std::string state_dir,
                         ExitRetention retention = ExitRetention::kForgetWhenReported);
  ProcessRunner(const ProcessRunner&) = delete;
  ProcessRunner& operator=(const ProcessRunner&) = delete;

  // Starts the job under a supervisor and returns once it has exec'ed, with
  // its process record on disk. Errors, all naming the job:
  //   InvalidArgument: bad job id, empty argv, NUL in argv/env, bad env name,
  //     uid without gid, working dir missing or not a directory;
  //   AlreadyExists: the job is running (or its exit is not collected yet,
  //     or with kUntilForget not forgotten yet);
  //   FailedPrecondition: an earlier agent's process record exists (Adopt first);
  //   the errno's code (e.g. NotFound for a missing binary, PermissionDenied)
  //     naming the failed call and the errno text when a file or a system call
  //     fails, in the job before exec included: "job j: execvpe(\"foo\")
  //     failed: No such file or directory". A failed launch leaves no record.
  absl::StatusOr<ProcessInfo> Launch(const LaunchSpec& spec);

  // Non-blocking. Every known job whose exit record exists, or that is gone
  // without one (reported lost), is reported. With kForgetWhenReported it is
  // forgotten at once: its process record is removed, the logs and the exit
  // record stay. With kUntilForget it is reported again by every call until
  // Forget(job_id) (the same report: the outcome is read once). Also reaps
  // supervisors that are this process's children.
  std::vector<ExitReport> CollectExited();

  // Forgets a job whose end was reported (by CollectExited or Adopt): removes
  // its process record, the logs and the exit record stay, and the id may be
  // launched again. NotFound for a job this runner does not know (or has
  // forgotten already); FailedPrecondition for a job whose end was not
  // reported yet (it may still run: forgetting it would leave it unwatched).
  absl::Status Forget(const std::string& job_id);

  // SIGTERM to the job's whole process group now; Poll sends SIGKILL to the
  // group once `grace` has passed (a grace <= 0 sends SIGKILL now). NotFound
  // for a job this runner does not know; OK (nothing sent) when the job has
  // already ended. A second Stop keeps the earlier deadline.
  absl::Status Stop(const std::string& job_id, absl::Duration grace, absl::Time now);

  // SIGKILLs the process group of every stopping job whose grace ended by
  // `now`. Returns the first signalling error (after trying every job).
  absl::Status Poll(absl::Time now);

  // For an agent that restarted: reads every state_dir/jobs/*/process this
  // runner does not track yet. A job with an exit record is reported kExited
  // (with the exit); a job whose main process or supervisor is alive (same
  // start ticks) is kAdopted and tracked; a job gone without an exit record,
  // or an unreadable record, is kLost. kExited and kLost jobs are forgotten
  // (kForgetWhenReported), or tracked as ended until Forget (kUntilForget:
  // CollectExited reports them too, a later Adopt of this runner does not).
  // Sorted by job id. Reports are at-least-once: a crash between reading and
  // removing a record reports it again on the next Adopt.
  std::vector<AdoptedJob> Adopt();

  // Known (launched or adopted) jobs whose end was not reported yet (by
  // CollectExited or Adopt), sorted; a job that has just ended stays listed
  // until it is collected.
  std::vector<std::string> Running() const;
  // The job is known and its main process is alive (same pid and start ticks,
  // not a zombie).
  bool IsAlive(const std::string& job_id) const;

  const std::string& state_dir() const { return state_dir_; }
  std::string JobDir(const std::string& job_id) const;

 private:
  struct Job {
    ProcessInfo info;
    std::optional<absl::Time> kill_at;
    bool kill_sent = false;
    // kUntilForget: the end, once reported (reported again until Forget).
    std::optional<ExitReport> ended;
  };

  // Liveness and exit record of a tracked job: the exit report if it ended.
  std::optional<ExitReport> Finished(const Job& job) const;
  absl::Status SignalGroup(const Job& job, int sig, const char* what) const;
  // Removes the process record and stops tracking the job.
  void Drop(const std::string& job_id);
  void ReapSupervisors();

  std::string state_dir_;
  ExitRetention retention_;
  std::map<std::string, Job> jobs_;
  std::vector<pid_t> unreaped_;  // supervisors forked here, not yet waited for
};

}  // namespace greenlight::agent
