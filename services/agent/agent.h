// greenlight-agent as a library: registers a node with greenlightd's
// AgentService (proto/greenlight/v1/executor.proto), runs the jobs it is
// assigned as real processes (ProcessRunner) and reports their start, progress
// (measured GPU energy, NvmlLibrary/GpuEnergyMeter) and exit until greenlightd
// acknowledges each report. docs/AGENT.md describes it for operators.
//
// One thread runs everything (Run): every heartbeat interval it
//   1. collects the exits of its jobs and samples their GPUs' energy,
//   2. queues reports: STARTED (pid, at launch), PROGRESS (energy and
//      utilisation, every report interval per running job; only the latest
//      unacknowledged PROGRESS of a job is kept), EXITED (exit code or signal,
//      final energy), FAILED_TO_START (the reason),
//   3. sends Heartbeat(reports, running job ids) and applies the response:
//      drops the acknowledged reports, stops the jobs it is told to stop
//      (SIGTERM to the process group, SIGKILL after the grace), launches the
//      new assignments (idempotent by job id), then
//   4. sends the SIGKILLs whose grace has passed (ProcessRunner::Poll).
// Local work (1, 2, 4) goes on while greenlightd is unreachable; the agent
// registers (again) with backoff when it is not registered or a heartbeat is
// answered NOT_FOUND / FAILED_PRECONDITION.
//
// State on disk, per job, next to the ProcessRunner's files
// (state_dir/jobs/<job_id>/):
//   assignment.textpb  the JobAssignment (text format, mode 0600): team,
//                      submitter, GPUs, command of the current run
//   agent              "key value" lines (mode 0600, written atomically):
//                        phase launching|running|failed|done
//                        next_sequence <n>   the next report's sequence
//                        started_acked 0|1   greenlightd acknowledged STARTED
//                        energy_wh <gpu index> <Wh>   last energy reported
//                        reason <text>       phase failed: why
//   work/              the job's working directory and HOME (mode 0700, owned
//                      by the --run-as user)
// so that a restarted agent (kill -9 included) re-adopts the jobs that still
// run (energy after the restart = energy persisted + what the new meter
// measures, so it never goes backwards), reports the ones that ended while it
// was down (EXITED; a job gone without an exit record as EXITED with signal 9
// and reason kLostWhileDown) and resends unacknowledged FAILED_TO_START.
// Sequences continue from next_sequence, so none is ever reused.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "greenlight/v1/executor.grpc.pb.h"
#include "services/agent/nvml.h"
#include "services/agent/process_runner.h"

namespace greenlight::agent {

inline constexpr char kAgentVersion[] = "greenlight-agent/0.1.0";
// FAILED_TO_START reason of every assignment of an agent running as root
// without --run-as and without --allow-root.
inline constexpr char kRootRefusal[] = "agent runs as root: give --run-as USER or --allow-root";
// EXITED reason of a job that vanished without an exit record while no agent
// watched it (reported with signal 9).
inline constexpr char kLostWhileDown[] = "lost while the agent was down";

struct AgentOptions {
  // greenlightd's gRPC address, "host:port".
  std::string server;
  // Bearer secret of an `agent` token ("authorization: Bearer <token>"); ""
  // sends none (a server in open mode).
  std::string token;
  // RegisterNodeRequest.pool_id.
  std::string pool;
  // The node name: 1-63 chars [a-z0-9.-].
  std::string node;
  // RegisterNodeRequest.hostname; "" = gethostname().
  std::string hostname;
  std::string state_dir = "/var/lib/greenlight-agent";

  // GPUs: with use_nvml, discovered through NVML at nvml_path (energy
  // measured). Without NVML (use_nvml false, or NVML fails to load and
  // declared_gpus is set) the node declares declared_gpus GPUs named gpu_type
  // (uuid "declared-<i>"), energy modelled by greenlightd: reports carry none.
  // NVML failing to load without declared_gpus is an error.
  bool use_nvml = true;
  std::string nvml_path = NvmlLibrary::kDefaultPath;
  std::optional<int> declared_gpus;
  std::string gpu_type;

  // Jobs run as this user (setgroups(0)/setgid/setuid; needs the agent to run
  // as root unless it is the agent's own user). "" = as the agent, which as
  // root needs allow_root: otherwise every assignment fails with kRootRefusal.
  std::string run_as;
  bool allow_root = false;

  // TLS: the CA that signed greenlightd's certificate ("" = plaintext), and an
  // optional client certificate and key for mutual TLS.
  std::string tls_ca_file;
  std::string tls_cert_file;
  std::string tls_key_file;

  // How often the agent heartbeats (the shorter of this and the interval
  // greenlightd asks for at registration).
  absl::Duration heartbeat_interval = absl::Seconds(1);
  // How often a running job's energy is reported (PROGRESS).
  absl::Duration report_interval = absl::Seconds(10);
  // SIGTERM-to-SIGKILL grace of a stop whose order and assignment give none.
  absl::Duration grace = absl::Seconds(30);
  // Deadline of each RPC.
  absl::Duration rpc_timeout = absl::Seconds(10);
  // Longest wait between two registration attempts.
  absl::Duration max_backoff = absl::Seconds(30);
  std::string agent_version = kAgentVersion;
};

class Agent {
 public:
  // Validates the options (InvalidArgument naming the flag: "--node: ..."),
  // resolves --run-as, loads NVML or declares the GPUs, creates the state
  // directory, re-adopts what an earlier agent left in it and logs what the
  // node registers as. Contacts no server yet.
  static absl::StatusOr<std::unique_ptr<Agent>> Create(AgentOptions options);
  // Leaves every job running under its supervisor.
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // Registers and heartbeats until Shutdown. Returns OK after Shutdown, or
  // the error of a registration greenlightd refused for good
  // (UNAUTHENTICATED, PERMISSION_DENIED, INVALID_ARGUMENT, ALREADY_EXISTS).
  absl::Status Run();
  // Makes Run return within about 50 ms. Async-signal-safe (an atomic store).
  void Shutdown();

  // What the node registers as (set by Create).
  const v1::RegisterNodeRequest& registration() const { return registration_; }
  // The heartbeat interval in use (changes at registration).
  absl::Duration heartbeat_interval() const { return heartbeat_interval_; }

 private:
  enum class Phase {
    kLaunching,  // assignment persisted, Launch not finished
    kRunning,    // the process runs (launched or adopted)
    kEnded,      // EXITED or FAILED_TO_START queued, not acknowledged yet
    kDone,       // its final report was acknowledged
  };

  struct Job {
    v1::JobAssignment assignment;
    Phase phase = Phase::kLaunching;
    bool failed = false;  // ended by FAILED_TO_START (no process)
    std::string reason;   // the FAILED_TO_START reason
    int64_t next_sequence = 1;
    bool started_acked = false;
    int64_t pid = 0;
    // Energy per GPU index: at the start of this agent's meter (persisted
    // energy of an adopted job, else 0), now, and last reported.
    std::map<int, double> base_wh;
    std::map<int, double> energy_wh;
    std::map<int, double> reported_wh;
    int utilization_pct = 0;
    std::unique_ptr<GpuEnergyMeter> meter;
    bool meter_failing = false;  // logs a failing meter once per streak
    absl::Time next_progress = absl::InfinitePast();
    bool stop_logged = false;
    bool duplicate_logged = false;
    // Unacknowledged reports, by sequence.
    std::vector<v1::JobReport> pending;
  };

  Agent(AgentOptions options, std::unique_ptr<NvmlLibrary> nvml);

  absl::Status Init();
  void Recover(absl::Time now);
  bool Tick(absl::Time now, absl::Status* fatal);

  // Server side.
  absl::Status Register(absl::Time now);
  void Heartbeat(absl::Time now);
  void ApplyAcks(const v1::HeartbeatResponse& response);
  void ApplyStop(const v1::StopOrder& order, absl::Time now);
  void ApplyLaunch(const v1::JobAssignment& assignment, absl::Time now);
  void NoteRpcFailure(const char* rpc, const grpc::Status& status);
  void NoteRpcSuccess();

  // Jobs.
  void Launch(const std::string& id, Job& job, absl::Time now);
  absl::StatusOr<LaunchSpec> PrepareLaunch(const std::string& id, const Job& job);
  void CollectExits(absl::Time now);
  void SampleEnergy(const std::string& id, Job& job, absl::Time now);
  void FailToStart(const std::string& id, Job& job, std::string reason, absl::Time now);
  void QueueStarted(const std::string& id, Job& job, absl::Time now);
  void QueueProgress(const std::string& id, Job& job, absl::Time now);
  // `lost_reason` is the reason of a lost job ("" = "lost: " + its detail).
  void QueueExited(const std::string& id, Job& job, const ExitReport& exit,
                   const std::string& lost_reason, absl::Time now);
  v1::JobReport NewReport(const std::string& id, Job& job, v1::JobReportKind kind, absl::Time now,
                          bool with_energy);
  void Persist(const std::string& id, const Job& job);
  void PersistAssignment(const std::string& id, const Job& job);
  absl::Duration GraceOf(const Job& job, absl::Duration ordered) const;

  AgentOptions options_;
  std::unique_ptr<NvmlLibrary> nvml_;
  ProcessRunner runner_;
  v1::RegisterNodeRequest registration_;
  std::string root_refusal_;  // non-empty: every launch fails with it
  std::optional<uid_t> run_uid_;
  std::optional<gid_t> run_gid_;
  std::string run_user_;  // for logs: the --run-as user or the agent's

  std::unique_ptr<v1::AgentService::Stub> stub_;
  bool registered_ = false;
  absl::Time next_register_ = absl::InfinitePast();
  absl::Duration register_backoff_;
  absl::Duration heartbeat_interval_;
  int failures_ = 0;  // consecutive failed RPCs (logged at the first)

  std::map<std::string, Job> jobs_;
  std::atomic<bool> stop_{false};
};

}  // namespace greenlight::agent
