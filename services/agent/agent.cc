// greenlight-agent's loop; see agent.h for the design and the on-disk layout.
#include "services/agent/agent.h"

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/security/credentials.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>
#include <system_error>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/net.h"
#include "common/proto_time.h"
#include "common/status_macros.h"
#include "google/protobuf/text_format.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "services/agent/job_record.h"
#include "services/agent/launch_plan.h"
#include "services/agent/state_files.h"

namespace greenlight::agent {
namespace {

constexpr char kAssignmentFile[] = "assignment.textpb";
constexpr char kStateFile[] = "agent";
// Records and TLS files this agent reads: an assignment carries at most
// 256 x 4 KiB of argv plus its environment.
constexpr size_t kMaxRecordBytes = 4 << 20;
constexpr int kMaxGpus = 64;
// The loop checks for Shutdown this often while it waits for the next tick.
constexpr absl::Duration kStopCheck = absl::Milliseconds(50);
constexpr double kMjPerWh = 3.6e6;

absl::Status FromGrpc(const grpc::Status& s) {
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

bool ValidNodeName(const std::string& s) {
  if (s.empty() || s.size() > 63) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-';
  });
}

const char* KindName(v1::JobReportKind kind) {
  switch (kind) {
    case v1::JOB_REPORT_KIND_STARTED:
      return "STARTED";
    case v1::JOB_REPORT_KIND_PROGRESS:
      return "PROGRESS";
    case v1::JOB_REPORT_KIND_EXITED:
      return "EXITED";
    case v1::JOB_REPORT_KIND_FAILED_TO_START:
      return "FAILED_TO_START";
    default:
      return "UNSPECIFIED";
  }
}

std::string UserName(uid_t uid) {
  struct passwd pw;
  struct passwd* out = nullptr;
  char buf[4096];
  if (getpwuid_r(uid, &pw, buf, sizeof(buf), &out) == 0 && out != nullptr) return pw.pw_name;
  return absl::StrCat("uid ", uid);
}

std::string GpuList(const google::protobuf::RepeatedField<int32_t>& indices) {
  return absl::StrJoin(indices, ",");
}

// The indices N of the "reports[N]..." fields a refused heartbeat's
// google.rpc.BadRequest names.
std::set<int> RefusedReports(const grpc::Status& status) {
  std::set<int> out;
  google::rpc::Status details;
  if (status.error_details().empty() || !details.ParseFromString(status.error_details())) {
    return out;
  }
  for (const google::protobuf::Any& any : details.details()) {
    google::rpc::BadRequest bad;
    if (!any.UnpackTo(&bad)) continue;
    for (const auto& v : bad.field_violations()) {
      absl::string_view f = v.field();
      if (!absl::ConsumePrefix(&f, "reports[")) continue;
      const size_t close = f.find(']');
      int index = 0;
      if (close != absl::string_view::npos && absl::SimpleAtoi(f.substr(0, close), &index)) {
        out.insert(index);
      }
    }
  }
  return out;
}

std::string Describe(const ExitReport& e) {
  if (e.lost) return absl::StrCat("lost (", e.detail, ")");
  if (e.signaled) return absl::StrCat("signal ", e.signal);
  return absl::StrCat("exit code ", e.exit_code);
}

}  // namespace

Agent::Agent(AgentOptions options, std::unique_ptr<NvmlLibrary> nvml)
    : options_(std::move(options)),
      nvml_(std::move(nvml)),
      runner_(options_.state_dir, ProcessRunner::ExitRetention::kUntilForget),
      register_backoff_(options_.heartbeat_interval),
      heartbeat_interval_(options_.heartbeat_interval) {}

Agent::~Agent() = default;

absl::StatusOr<std::unique_ptr<Agent>> Agent::Create(AgentOptions o) {
  auto bad = [](absl::string_view flag, auto&&... parts) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": ", parts...));
  };
  if (o.server.empty()) return bad("--server", "required: greenlightd's HOST:PORT");
  if (auto hp = ParseHostPort(o.server); !hp.ok() || hp->port == 0) {
    return bad("--server", "\"", o.server, "\" is not HOST:PORT",
               hp.ok() ? "" : absl::StrCat(" (", hp.status().message(), ")"));
  }
  if (o.pool.empty()) return bad("--pool", "required: the agent pool this node joins");
  if (!ValidNodeName(o.node)) {
    return bad("--node", "\"", o.node, "\" is not a node name: 1-63 characters [a-z0-9.-]");
  }
  if (o.state_dir.empty()) return bad("--state-dir", "empty");
  if (o.heartbeat_interval <= absl::ZeroDuration())
    return bad("--heartbeat-interval", "must be > 0");
  if (o.report_interval <= absl::ZeroDuration()) return bad("--report-interval", "must be > 0");
  if (o.grace < absl::ZeroDuration()) return bad("--grace", "must be >= 0");
  if (o.rpc_timeout <= absl::ZeroDuration()) return bad("rpc timeout", "must be > 0");
  if (o.max_backoff < o.heartbeat_interval) o.max_backoff = o.heartbeat_interval;
  if (o.declared_gpus.has_value()) {
    if (*o.declared_gpus < 0 || *o.declared_gpus > kMaxGpus) {
      return bad("--gpus", *o.declared_gpus, " is not 0..", kMaxGpus);
    }
    if (*o.declared_gpus > 0 && o.gpu_type.empty()) {
      return bad("--gpu-type", "required with --gpus (the declared GPUs' name, e.g. H100)");
    }
  }
  if (o.tls_cert_file.empty() != o.tls_key_file.empty()) {
    return bad("--tls-cert", "--tls-cert and --tls-key go together (mutual TLS)");
  }
  if (!o.tls_cert_file.empty() && o.tls_ca_file.empty()) {
    return bad("--tls-ca", "required with --tls-cert (the CA of greenlightd's certificate)");
  }

  std::unique_ptr<NvmlLibrary> nvml;
  if (o.use_nvml) {
    absl::StatusOr<std::unique_ptr<NvmlLibrary>> lib = NvmlLibrary::Load(o.nvml_path);
    if (lib.ok()) {
      nvml = std::move(*lib);
      if (o.declared_gpus.has_value()) {
        GL_LOG_WARN("NVML loaded: --gpus and --gpu-type are ignored, the GPUs are discovered",
                    F("nvml", o.nvml_path));
      }
    } else if (o.declared_gpus.has_value()) {
      GL_LOG_WARN("NVML did not load: using the declared GPUs, energy modelled by greenlightd",
                  F("nvml", o.nvml_path), F("error", lib.status().message()));
    } else {
      return absl::FailedPreconditionError(absl::StrCat(
          "--nvml: NVML did not load from ", o.nvml_path, ": ", lib.status().message(),
          " (give --nvml PATH, or --no-nvml / --gpus N --gpu-type NAME to declare the GPUs "
          "with modelled energy)"));
    }
  }
  std::unique_ptr<Agent> agent(new Agent(std::move(o), std::move(nvml)));
  RETURN_IF_ERROR(agent->Init());
  return agent;
}

absl::Status Agent::Init() {
  const AgentOptions& o = options_;
  std::string hostname = o.hostname;
  if (hostname.empty()) {
    char buf[256] = {0};
    if (gethostname(buf, sizeof(buf) - 1) == 0) hostname = buf;
  }

  // Who the jobs run as.
  const uid_t euid = geteuid();
  if (!o.run_as.empty()) {
    struct passwd pw;
    struct passwd* found = nullptr;
    char buf[4096];
    if (getpwnam_r(o.run_as.c_str(), &pw, buf, sizeof(buf), &found) != 0 || found == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("--run-as: no user \"", o.run_as, "\""));
    }
    if (pw.pw_uid == 0 && !o.allow_root) {
      return absl::InvalidArgumentError("--run-as: jobs run as root only with --allow-root");
    }
    if (euid != 0 && pw.pw_uid != euid) {
      return absl::InvalidArgumentError(absl::StrCat("--run-as: the agent runs as ", UserName(euid),
                                                     ", not root: it cannot run jobs as ",
                                                     o.run_as));
    }
    if (pw.pw_uid != euid) {
      run_uid_ = pw.pw_uid;
      run_gid_ = pw.pw_gid;
    }
    run_user_ = o.run_as;
  } else {
    run_user_ = UserName(euid);
  }
  const bool jobs_as_root = o.run_as.empty() ? euid == 0 : run_user_ == "root";
  if (euid == 0 && o.run_as.empty() && !o.allow_root) root_refusal_ = kRootRefusal;

  // What the node registers as.
  registration_.set_node(o.node);
  registration_.set_pool_id(o.pool);
  registration_.set_hostname(hostname);
  registration_.set_agent_version(o.agent_version);
  std::string energy;
  if (nvml_ != nullptr) {
    absl::StatusOr<std::vector<GpuInfo>> gpus = nvml_->Discover();
    if (!gpus.ok()) {
      return absl::Status(gpus.status().code(),
                          absl::StrCat("--nvml: discovering the GPUs via ", nvml_->path(), ": ",
                                       gpus.status().message()));
    }
    for (const GpuInfo& g : *gpus) {
      v1::GpuDevice* d = registration_.add_gpus();
      d->set_index(g.index);
      d->set_uuid(g.uuid);
      d->set_name(g.name);
      d->set_memory_bytes(g.memory_bytes);
      d->set_power_limit_mw(g.power_limit_mw);
    }
    registration_.set_energy_measured(true);
    const std::string driver = nvml_->DriverVersion();
    energy = absl::StrCat("measured (NVML ", nvml_->path(), ", driver ",
                          driver.empty() ? "unknown" : driver, ")");
  } else {
    for (int i = 0; i < o.declared_gpus.value_or(0); ++i) {
      v1::GpuDevice* d = registration_.add_gpus();
      d->set_index(i);
      d->set_uuid(absl::StrCat("declared-", i));
      d->set_name(o.gpu_type);
    }
    registration_.set_energy_measured(false);
    energy = "modelled";
  }
  std::vector<std::string> gpu_text;
  for (const v1::GpuDevice& d : registration_.gpus()) {
    gpu_text.push_back(absl::StrCat(d.index(), ":", d.name(), ":", d.uuid()));
  }

  // The state directory: traversable (not listable) by the job user, so it
  // can reach its work dir; every record inside is 0600.
  {
    std::error_code ec;
    std::filesystem::create_directories(o.state_dir, ec);
    if (ec) {
      return absl::FailedPreconditionError(
          absl::StrCat("--state-dir: creating ", o.state_dir, ": ", ec.message()));
    }
    const std::string jobs = absl::StrCat(o.state_dir, "/jobs");
    if (absl::Status s = MakeDir(jobs, 0711); !s.ok()) {
      return absl::FailedPreconditionError(absl::StrCat("--state-dir: ", s.message()));
    }
    if (run_uid_.has_value()) {
      for (const std::string& dir : {o.state_dir, jobs}) {
        struct stat st;
        if (stat(dir.c_str(), &st) == 0 && (st.st_mode & 0011) != 0011) {
          if (chmod(dir.c_str(), (st.st_mode & 07777) | 0011) != 0) {
            return ErrnoStatus(errno, absl::StrCat("--state-dir: chmod(\"", dir, "\")"));
          }
          GL_LOG_INFO("made the state dir traversable for the job user", F("dir", dir),
                      F("run_as", run_user_));
        }
      }
    }
  }

  // The channel.
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (!o.tls_ca_file.empty()) {
    grpc::SslCredentialsOptions ssl;
    absl::StatusOr<std::string> ca = ReadSmallFile(o.tls_ca_file, kMaxRecordBytes);
    if (!ca.ok())
      return absl::InvalidArgumentError(absl::StrCat("--tls-ca: ", ca.status().message()));
    ssl.pem_root_certs = *ca;
    if (!o.tls_cert_file.empty()) {
      absl::StatusOr<std::string> cert = ReadSmallFile(o.tls_cert_file, kMaxRecordBytes);
      if (!cert.ok()) {
        return absl::InvalidArgumentError(absl::StrCat("--tls-cert: ", cert.status().message()));
      }
      absl::StatusOr<std::string> key = ReadSmallFile(o.tls_key_file, kMaxRecordBytes);
      if (!key.ok()) {
        return absl::InvalidArgumentError(absl::StrCat("--tls-key: ", key.status().message()));
      }
      ssl.pem_cert_chain = *cert;
      ssl.pem_private_key = *key;
    }
    creds = grpc::SslCredentials(ssl);
  } else {
    creds = grpc::InsecureChannelCredentials();
  }
  grpc::ChannelArguments args;
  // Reconnect soon after greenlightd comes back (the default backoff grows
  // to two minutes): within a second, well inside any lease.
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
              static_cast<int>(std::min<int64_t>(
                  1000, std::max<int64_t>(100, absl::ToInt64Milliseconds(o.max_backoff)))));
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  stub_ = v1::AgentService::NewStub(grpc::CreateCustomChannel(o.server, creds, args));

  GL_LOG_INFO("greenlight-agent starting", F("node", o.node), F("pool", o.pool),
              F("hostname", hostname), F("server", o.server),
              F("tls", o.tls_ca_file.empty() ? "off" : (o.tls_cert_file.empty() ? "on" : "mutual")),
              F("gpus", gpu_text.empty() ? std::string("none") : absl::StrJoin(gpu_text, ",")),
              F("energy", energy), F("state_dir", o.state_dir), F("run_as", run_user_),
              F("version", o.agent_version));
  if (!root_refusal_.empty()) {
    GL_LOG_WARN(
        "THE AGENT RUNS AS ROOT WITHOUT --run-as: IT REFUSES TO START JOBS (each assignment "
        "fails to start) until restarted with --run-as USER or --allow-root",
        F("reason", root_refusal_));
  } else if (jobs_as_root) {
    GL_LOG_WARN("JOBS RUN AS ROOT (--allow-root): every job has full control of this machine",
                F("run_as", run_user_));
  }
  Recover(absl::Now());
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Persistence and recovery.
// ---------------------------------------------------------------------------

void Agent::Persist(const std::string& id, const Job& job) {
  if (!ValidJobId(id)) return;
  JobRecord r;
  switch (job.phase) {
    case Phase::kLaunching:
      r.phase = JobRecord::Phase::kLaunching;
      break;
    case Phase::kRunning:
      r.phase = JobRecord::Phase::kRunning;
      break;
    case Phase::kEnded:
      // An ended job's process record (kept until Forget) says how it ended;
      // a job that failed to start has none.
      r.phase = job.failed ? JobRecord::Phase::kFailed : JobRecord::Phase::kRunning;
      break;
    case Phase::kDone:
      r.phase = JobRecord::Phase::kDone;
      break;
  }
  r.next_sequence = job.next_sequence;
  r.started_acked = job.started_acked;
  r.reported_wh = job.reported_wh;
  r.reason = job.reason;
  absl::Status s = WriteFileAtomic(runner_.JobDir(id), kStateFile, EncodeJobRecord(r));
  if (!s.ok())
    GL_LOG_ERROR("cannot persist the job's state", F("job", id), F("error", s.message()));
}

void Agent::PersistAssignment(const std::string& id, const Job& job) {
  if (!ValidJobId(id)) return;
  std::string text;
  google::protobuf::TextFormat::PrintToString(job.assignment, &text);
  absl::Status s = WriteFileAtomic(runner_.JobDir(id), kAssignmentFile, text);
  if (!s.ok()) {
    GL_LOG_ERROR("cannot persist the job's assignment", F("job", id), F("error", s.message()));
  }
}

void Agent::Recover(absl::Time now) {
  // 1. What earlier agents recorded.
  std::error_code ec;
  std::vector<std::string> ids;
  for (std::filesystem::directory_iterator it(absl::StrCat(options_.state_dir, "/jobs"), ec), end;
       !ec && it != end; it.increment(ec)) {
    ids.push_back(it->path().filename().string());
  }
  std::sort(ids.begin(), ids.end());
  for (const std::string& id : ids) {
    if (!ValidJobId(id)) continue;
    const std::string dir = runner_.JobDir(id);
    absl::StatusOr<std::string> state =
        ReadSmallFile(absl::StrCat(dir, "/", kStateFile), kMaxRecordBytes);
    if (!state.ok()) continue;  // not an agent's job (or never assigned)
    const JobRecord record = DecodeJobRecord(*state);
    Job job;
    job.next_sequence = record.next_sequence;
    job.started_acked = record.started_acked;
    job.reported_wh = record.reported_wh;
    job.reason = record.reason;
    absl::StatusOr<std::string> assignment =
        ReadSmallFile(absl::StrCat(dir, "/", kAssignmentFile), kMaxRecordBytes);
    if (!assignment.ok() ||
        !google::protobuf::TextFormat::ParseFromString(*assignment, &job.assignment)) {
      GL_LOG_WARN("job's assignment record is missing or unreadable: team unknown", F("job", id));
      job.assignment.Clear();
    }
    job.assignment.set_job_id(id);
    job.energy_wh = job.reported_wh;
    job.base_wh = job.reported_wh;
    switch (record.phase) {
      case JobRecord::Phase::kDone:
        job.phase = Phase::kDone;
        break;
      case JobRecord::Phase::kFailed:
        job.phase = Phase::kEnded;
        job.failed = true;
        break;
      case JobRecord::Phase::kLaunching:
        job.phase = Phase::kLaunching;
        break;
      case JobRecord::Phase::kRunning:
        job.phase = Phase::kRunning;
        break;
    }
    jobs_[id] = std::move(job);
  }

  // 2. What still runs, and what ended while no agent watched.
  std::set<std::string> seen;
  for (AdoptedJob& a : runner_.Adopt()) {
    seen.insert(a.job_id);
    auto [it, inserted] = jobs_.try_emplace(a.job_id);
    Job& job = it->second;
    if (inserted) {
      GL_LOG_WARN("adopted a job without the agent's record of it: team unknown",
                  F("job", a.job_id));
      job.assignment.set_job_id(a.job_id);
      job.phase = Phase::kRunning;
    }
    if (job.phase == Phase::kDone && a.outcome != AdoptedJob::Outcome::kAdopted) {
      // Its end was acknowledged just before the last agent stopped.
      runner_.Forget(a.job_id).IgnoreError();
      continue;
    }
    job.phase = Phase::kRunning;
    job.failed = false;
    job.pid = a.info.pid;
    if (a.outcome == AdoptedJob::Outcome::kAdopted) {
      if (nvml_ != nullptr && job.assignment.gpu_indices_size() > 0) {
        job.meter = std::make_unique<GpuEnergyMeter>(
            nvml_.get(), std::vector<int>(job.assignment.gpu_indices().begin(),
                                          job.assignment.gpu_indices().end()));
      }
      SampleEnergy(a.job_id, job, now);  // the new meter's baseline
      if (!job.started_acked) QueueStarted(a.job_id, job, now);
      job.next_progress = now + options_.report_interval;
      GL_LOG_INFO("re-adopted a running job", F("job", a.job_id), F("team", job.assignment.team()),
                  F("submitter", job.assignment.submitter()), F("pid", a.info.pid),
                  F("gpus", GpuList(job.assignment.gpu_indices())));
      continue;
    }
    if (!job.started_acked) QueueStarted(a.job_id, job, now);
    ExitReport exit = a.exit;
    std::string reason;
    if (a.outcome == AdoptedJob::Outcome::kLost) {
      reason = kLostWhileDown;
      GL_LOG_WARN("job was lost while the agent was down: reported as killed (signal 9)",
                  F("job", a.job_id), F("team", job.assignment.team()), F("detail", exit.detail));
    } else {
      GL_LOG_INFO("job ended while the agent was down", F("job", a.job_id),
                  F("team", job.assignment.team()), F("outcome", Describe(exit)));
    }
    QueueExited(a.job_id, job, exit, reason, now);
  }

  // 3. Recorded jobs without a process record.
  for (auto& [id, job] : jobs_) {
    if (seen.count(id) > 0) continue;
    if (job.phase == Phase::kEnded && job.failed) {
      v1::JobReport r = NewReport(id, job, v1::JOB_REPORT_KIND_FAILED_TO_START, now, false);
      r.set_reason(job.reason);
      job.pending.push_back(std::move(r));
      Persist(id, job);
    } else if (job.phase == Phase::kLaunching) {
      FailToStart(id, job, "the agent stopped while launching the job", now);
    } else if (job.phase == Phase::kRunning) {
      // Its process record is gone although its end was never acknowledged.
      ExitReport lost;
      lost.job_id = id;
      lost.lost = true;
      lost.detail = "no process record";
      GL_LOG_WARN("job has no process record: reported as lost", F("job", id));
      QueueExited(id, job, lost, kLostWhileDown, now);
    }
  }
}

// ---------------------------------------------------------------------------
// Reports.
// ---------------------------------------------------------------------------

v1::JobReport Agent::NewReport(const std::string& id, Job& job, v1::JobReportKind kind,
                               absl::Time now, bool with_energy) {
  v1::JobReport r;
  r.set_job_id(id);
  r.set_kind(kind);
  r.set_pid(job.pid);
  *r.mutable_time() = ToProto(now);
  r.set_sequence(job.next_sequence++);
  if (with_energy && nvml_ != nullptr) {
    for (int index : job.assignment.gpu_indices()) {
      v1::GpuEnergy* e = r.add_energy();
      e->set_index(index);
      e->set_energy_wh(job.energy_wh[index]);
      job.reported_wh[index] = job.energy_wh[index];
    }
    r.set_utilization_pct(job.utilization_pct);
  }
  return r;
}

void Agent::QueueStarted(const std::string& id, Job& job, absl::Time now) {
  job.pending.push_back(NewReport(id, job, v1::JOB_REPORT_KIND_STARTED, now, false));
  Persist(id, job);
}

void Agent::QueueProgress(const std::string& id, Job& job, absl::Time now) {
  // Only the latest PROGRESS of a job is worth resending.
  job.pending.erase(std::remove_if(job.pending.begin(), job.pending.end(),
                                   [](const v1::JobReport& r) {
                                     return r.kind() == v1::JOB_REPORT_KIND_PROGRESS;
                                   }),
                    job.pending.end());
  job.pending.push_back(NewReport(id, job, v1::JOB_REPORT_KIND_PROGRESS, now, true));
  Persist(id, job);
}

void Agent::QueueExited(const std::string& id, Job& job, const ExitReport& exit,
                        const std::string& lost_reason, absl::Time now) {
  v1::JobReport r = NewReport(id, job, v1::JOB_REPORT_KIND_EXITED, now, true);
  if (exit.lost) {
    r.set_signal(SIGKILL);
    r.set_reason(lost_reason.empty() ? absl::StrCat("lost: ", exit.detail) : lost_reason);
  } else if (exit.signaled) {
    r.set_signal(exit.signal);
  } else {
    r.set_exit_code(exit.exit_code);
  }
  if (exit.finished != absl::InfinitePast()) *r.mutable_time() = ToProto(exit.finished);
  job.pending.push_back(std::move(r));
  job.phase = Phase::kEnded;
  job.meter.reset();
  Persist(id, job);
}

void Agent::FailToStart(const std::string& id, Job& job, std::string reason, absl::Time now) {
  job.phase = Phase::kEnded;
  job.failed = true;
  job.reason = std::move(reason);
  job.pid = 0;
  job.meter.reset();
  v1::JobReport r = NewReport(id, job, v1::JOB_REPORT_KIND_FAILED_TO_START, now, false);
  r.set_reason(job.reason);
  job.pending.push_back(std::move(r));
  Persist(id, job);
  GL_LOG_WARN("job failed to start", F("job", id), F("team", job.assignment.team()),
              F("submitter", job.assignment.submitter()), F("reason", job.reason));
}

void Agent::SampleEnergy(const std::string& id, Job& job, absl::Time now) {
  if (job.meter == nullptr) return;
  absl::StatusOr<std::vector<GpuEnergySample>> samples = job.meter->Sample(now);
  if (!samples.ok()) {
    if (!job.meter_failing) {
      GL_LOG_WARN("cannot read the job's GPU energy (keeps the last value; logged once)",
                  F("job", id), F("error", samples.status().message()));
    }
    job.meter_failing = true;
    return;
  }
  job.meter_failing = false;
  int util_sum = 0;
  int util_n = 0;
  for (const GpuEnergySample& s : *samples) {
    job.energy_wh[s.index] = job.base_wh[s.index] + static_cast<double>(s.energy_mj) / kMjPerWh;
    if (s.utilization_pct >= 0) {
      util_sum += s.utilization_pct;
      ++util_n;
    }
  }
  job.utilization_pct = util_n > 0 ? util_sum / util_n : 0;
}

// ---------------------------------------------------------------------------
// Jobs.
// ---------------------------------------------------------------------------

absl::StatusOr<LaunchSpec> Agent::PrepareLaunch(const std::string& id, const Job& job) {
  std::set<int> node_gpus;
  for (const v1::GpuDevice& d : registration_.gpus()) node_gpus.insert(d.index());
  v1::JobAssignment a = job.assignment;
  a.set_job_id(id);
  return PlanLaunch(a, runner_.JobDir(id), node_gpus, options_.node, {run_uid_, run_gid_});
}

void Agent::Launch(const std::string& id, Job& job, absl::Time now) {
  if (!ValidJobId(id)) {
    FailToStart(id, job, absl::StrCat("invalid job id \"", id, "\""), now);
    return;
  }
  job.phase = Phase::kLaunching;
  if (absl::Status s = MakeDir(runner_.JobDir(id), 0711); !s.ok()) {
    FailToStart(id, job, std::string(s.message()), now);
    return;
  }
  PersistAssignment(id, job);
  Persist(id, job);
  if (!root_refusal_.empty()) {
    FailToStart(id, job, root_refusal_, now);
    return;
  }
  absl::StatusOr<LaunchSpec> spec = PrepareLaunch(id, job);
  if (!spec.ok()) {
    FailToStart(id, job, absl::StrCat("job ", id, ": ", spec.status().message()), now);
    return;
  }
  absl::StatusOr<ProcessInfo> info = runner_.Launch(*spec);
  if (!info.ok()) {
    FailToStart(id, job, std::string(info.status().message()), now);
    return;
  }
  job.phase = Phase::kRunning;
  job.pid = info->pid;
  job.base_wh.clear();
  job.energy_wh.clear();
  job.reported_wh.clear();
  for (int index : job.assignment.gpu_indices()) job.base_wh[index] = 0;
  job.energy_wh = job.base_wh;
  if (nvml_ != nullptr && job.assignment.gpu_indices_size() > 0) {
    job.meter = std::make_unique<GpuEnergyMeter>(
        nvml_.get(),
        std::vector<int>(job.assignment.gpu_indices().begin(), job.assignment.gpu_indices().end()));
    SampleEnergy(id, job, now);  // the baseline: energy is counted from here
  }
  QueueStarted(id, job, now);
  job.next_progress = now + options_.report_interval;
  GL_LOG_INFO("job launched", F("job", id), F("team", job.assignment.team()),
              F("submitter", job.assignment.submitter()), F("pid", info->pid),
              F("gpus", GpuList(job.assignment.gpu_indices())), F("run_as", run_user_),
              F("resume", job.assignment.resume()), F("argv0", spec->argv[0]),
              F("workdir", spec->working_dir));
}

void Agent::CollectExits(absl::Time now) {
  for (const ExitReport& exit : runner_.CollectExited()) {
    auto it = jobs_.find(exit.job_id);
    if (it == jobs_.end() || it->second.phase != Phase::kRunning) continue;  // queued already
    Job& job = it->second;
    SampleEnergy(exit.job_id, job, now);  // the final reading
    double total = 0;
    for (const auto& [index, wh] : job.energy_wh) total += wh;
    GL_LOG_INFO("job exited", F("job", exit.job_id), F("team", job.assignment.team()),
                F("outcome", Describe(exit)),
                F("energy_wh", nvml_ != nullptr ? absl::StrFormat("%.6f", total) : "modelled"));
    QueueExited(exit.job_id, job, exit, "", now);
  }
}

absl::Duration Agent::GraceOf(const Job& job, absl::Duration ordered) const {
  if (ordered > absl::ZeroDuration()) return ordered;
  if (job.assignment.has_grace_period()) {
    absl::Duration assigned = FromProto(job.assignment.grace_period());
    if (assigned > absl::ZeroDuration()) return assigned;
  }
  return options_.grace;
}

// ---------------------------------------------------------------------------
// The server.
// ---------------------------------------------------------------------------

void Agent::NoteRpcFailure(const char* rpc, const grpc::Status& status) {
  if (failures_ == 0) {
    GL_LOG_WARN("greenlightd did not answer; retrying (logged once until it answers)",
                F("rpc", rpc), F("server", options_.server),
                F("code", absl::StatusCodeToString(FromGrpc(status).code())),
                F("error", status.error_message()));
  }
  ++failures_;
}

void Agent::NoteRpcSuccess() {
  if (failures_ > 0) {
    GL_LOG_INFO("greenlightd answers again", F("server", options_.server),
                F("failed_calls", failures_));
  }
  failures_ = 0;
}

absl::Status Agent::Register(absl::Time now) {
  grpc::ClientContext ctx;
  if (!options_.token.empty()) ctx.AddMetadata("authorization", "Bearer " + options_.token);
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + options_.rpc_timeout));
  v1::RegisterNodeResponse resp;
  grpc::Status status = stub_->RegisterNode(&ctx, registration_, &resp);
  if (status.ok()) {
    NoteRpcSuccess();
    registered_ = true;
    register_backoff_ = options_.heartbeat_interval;
    heartbeat_interval_ = options_.heartbeat_interval;
    if (resp.has_heartbeat_interval()) {
      absl::Duration asked = FromProto(resp.heartbeat_interval());
      if (asked > absl::ZeroDuration() && asked < heartbeat_interval_) heartbeat_interval_ = asked;
    }
    absl::Duration lease =
        resp.has_lease_timeout() ? FromProto(resp.lease_timeout()) : absl::ZeroDuration();
    GL_LOG_INFO("node registered", F("node", options_.node), F("pool", options_.pool),
                F("slot", resp.node().slot()), F("gpus", registration_.gpus_size()),
                F("energy", registration_.energy_measured() ? "measured" : "modelled"),
                F("heartbeat_interval", absl::FormatDuration(heartbeat_interval_)),
                F("lease_timeout", absl::FormatDuration(lease)));
    if (lease > absl::ZeroDuration() && heartbeat_interval_ * 2 > lease) {
      GL_LOG_WARN("the heartbeat interval is more than half the lease: the node may be lost",
                  F("heartbeat_interval", absl::FormatDuration(heartbeat_interval_)),
                  F("lease_timeout", absl::FormatDuration(lease)));
    }
    return absl::OkStatus();
  }
  switch (status.error_code()) {
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::PERMISSION_DENIED:
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::ALREADY_EXISTS: {
      absl::Status refused = FromGrpc(status);
      GL_LOG_ERROR("greenlightd refused the registration", F("node", options_.node),
                   F("pool", options_.pool), F("code", absl::StatusCodeToString(refused.code())),
                   F("error", status.error_message()));
      return absl::Status(refused.code(),
                          absl::StrCat("greenlightd refused to register node ", options_.node,
                                       " in pool ", options_.pool, ": ", status.error_message()));
    }
    default:
      break;
  }
  NoteRpcFailure("RegisterNode", status);
  next_register_ = now + register_backoff_;
  register_backoff_ = std::min(register_backoff_ * 2, options_.max_backoff);
  return absl::OkStatus();
}

void Agent::Heartbeat(absl::Time now) {
  v1::HeartbeatRequest req;
  req.set_node(options_.node);
  for (const auto& [id, job] : jobs_) {
    for (const v1::JobReport& r : job.pending) *req.add_reports() = r;
    if (job.phase == Phase::kRunning) req.add_running_job_ids(id);
  }
  grpc::ClientContext ctx;
  if (!options_.token.empty()) ctx.AddMetadata("authorization", "Bearer " + options_.token);
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + options_.rpc_timeout));
  v1::HeartbeatResponse resp;
  grpc::Status status = stub_->Heartbeat(&ctx, req, &resp);
  if (!status.ok()) {
    if (status.error_code() == grpc::StatusCode::NOT_FOUND ||
        status.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
      NoteRpcSuccess();
      GL_LOG_WARN("greenlightd does not know this node (any more): registering again",
                  F("node", options_.node), F("error", status.error_message()));
      registered_ = false;
      next_register_ = now;
      return;
    }
    if (status.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
      // greenlightd refuses the whole heartbeat for one bad report: drop
      // the reports it names, or every later heartbeat would be refused too.
      const std::set<int> refused = RefusedReports(status);
      for (int index : refused) {
        if (index < 0 || index >= req.reports_size()) continue;
        const v1::JobReport& bad = req.reports(index);
        auto it = jobs_.find(bad.job_id());
        if (it == jobs_.end()) continue;
        auto& pending = it->second.pending;
        pending.erase(
            std::remove_if(pending.begin(), pending.end(),
                           [&](const v1::JobReport& r) { return r.sequence() == bad.sequence(); }),
            pending.end());
        GL_LOG_ERROR("greenlightd refused a report: dropped, not resent", F("job", bad.job_id()),
                     F("kind", KindName(bad.kind())), F("sequence", bad.sequence()),
                     F("error", status.error_message()));
      }
      if (!refused.empty()) {
        NoteRpcSuccess();
        return;
      }
    }
    NoteRpcFailure("Heartbeat", status);
    return;
  }
  NoteRpcSuccess();
  ApplyAcks(resp);
  std::set<std::string> stopped;
  for (const v1::StopOrder& order : resp.stop()) {
    ApplyStop(order, now);
    stopped.insert(order.job_id());
  }
  for (const v1::JobAssignment& a : resp.launch()) {
    if (stopped.count(a.job_id()) > 0) continue;
    ApplyLaunch(a, now);
  }
}

void Agent::ApplyAcks(const v1::HeartbeatResponse& response) {
  for (const auto& [id, acked_seq] : response.acknowledged()) {
    const int64_t acked = acked_seq;  // a lambda below cannot capture a structured binding
    auto it = jobs_.find(id);
    if (it == jobs_.end()) continue;
    Job& job = it->second;
    bool started = false;
    bool final_report = false;
    auto& pending = job.pending;
    const size_t before = pending.size();
    pending.erase(std::remove_if(pending.begin(), pending.end(),
                                 [&](const v1::JobReport& r) {
                                   if (r.sequence() > acked) return false;
                                   if (r.kind() == v1::JOB_REPORT_KIND_STARTED) started = true;
                                   if (r.kind() == v1::JOB_REPORT_KIND_EXITED ||
                                       r.kind() == v1::JOB_REPORT_KIND_FAILED_TO_START) {
                                     final_report = true;
                                   }
                                   return true;
                                 }),
                  pending.end());
    if (pending.size() == before) continue;
    if (started) job.started_acked = true;
    if (final_report && job.phase == Phase::kEnded) {
      job.phase = Phase::kDone;
      pending.clear();
      Persist(id, job);  // before Forget: a crash in between must not report it again
      if (!job.failed) {
        absl::Status s = runner_.Forget(id);
        if (!s.ok() && !absl::IsNotFound(s)) {
          GL_LOG_WARN("cannot forget the ended job", F("job", id), F("error", s.message()));
        }
      }
      GL_LOG_DEBUG("job's end acknowledged", F("job", id));
    } else if (started) {
      Persist(id, job);
    }
  }
}

void Agent::ApplyStop(const v1::StopOrder& order, absl::Time now) {
  auto it = jobs_.find(order.job_id());
  if (it == jobs_.end() || it->second.phase != Phase::kRunning) {
    GL_LOG_DEBUG("stop order for a job not running here", F("job", order.job_id()));
    return;
  }
  Job& job = it->second;
  const absl::Duration grace = GraceOf(
      job, order.has_grace_period() ? FromProto(order.grace_period()) : absl::ZeroDuration());
  absl::Status s = runner_.Stop(order.job_id(), grace, now);
  if (!s.ok()) {
    GL_LOG_WARN("cannot stop the job", F("job", order.job_id()), F("error", s.message()));
    return;
  }
  if (!job.stop_logged) {
    GL_LOG_INFO("stopping job: SIGTERM to its process group, SIGKILL after the grace",
                F("job", order.job_id()), F("team", job.assignment.team()),
                F("reason", order.reason()), F("grace", absl::FormatDuration(grace)));
    job.stop_logged = true;
  }
}

void Agent::ApplyLaunch(const v1::JobAssignment& assignment, absl::Time now) {
  const std::string& id = assignment.job_id();
  auto it = jobs_.find(id);
  if (it != jobs_.end()) {
    Job& job = it->second;
    if (job.phase != Phase::kDone || !assignment.resume()) {
      // Resent until greenlightd sees STARTED, or a job that finished here:
      // launched once. A job that ended here runs again only as a resume.
      if (!job.duplicate_logged) {
        GL_LOG_INFO("launch ignored: the job already ran or runs on this node", F("job", id),
                    F("phase", job.phase == Phase::kDone ? "done" : "running or reporting"));
        job.duplicate_logged = true;
      }
      return;
    }
    Job fresh;
    fresh.next_sequence = job.next_sequence;
    job = std::move(fresh);
  }
  Job& job = jobs_[id];
  job.assignment = assignment;
  Launch(id, job, now);
}

// ---------------------------------------------------------------------------
// The loop.
// ---------------------------------------------------------------------------

bool Agent::Tick(absl::Time now, absl::Status* fatal) {
  CollectExits(now);
  for (auto& [id, job] : jobs_) {
    if (job.phase != Phase::kRunning) continue;
    SampleEnergy(id, job, now);
    if (now >= job.next_progress) {
      QueueProgress(id, job, now);
      job.next_progress = now + options_.report_interval;
    }
  }
  if (!registered_ && now >= next_register_) {
    absl::Status s = Register(now);
    if (!s.ok()) {
      *fatal = s;
      return false;
    }
  }
  if (registered_) Heartbeat(now);
  if (absl::Status s = runner_.Poll(absl::Now()); !s.ok()) {
    GL_LOG_WARN("cannot kill a job after its grace", F("error", s.message()));
  }
  return true;
}

absl::Status Agent::Run() {
  absl::Status fatal;
  while (!stop_.load(std::memory_order_relaxed)) {
    const absl::Time now = absl::Now();
    if (!Tick(now, &fatal)) break;
    const absl::Time next = now + heartbeat_interval_;
    for (absl::Time t = absl::Now(); t < next && !stop_.load(std::memory_order_relaxed);
         t = absl::Now()) {
      absl::SleepFor(std::min(kStopCheck, next - t));
    }
  }
  int running = 0;
  for (const auto& [id, job] : jobs_) running += job.phase == Phase::kRunning ? 1 : 0;
  GL_LOG_INFO(
      "greenlight-agent stopping: its jobs keep running under their supervisors, and the "
      "next agent on this state dir re-adopts them",
      F("node", options_.node), F("jobs_running", running), F("state_dir", options_.state_dir));
  return fatal;
}

void Agent::Shutdown() { stop_.store(true, std::memory_order_relaxed); }

}  // namespace greenlight::agent
