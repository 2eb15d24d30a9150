// An in-memory AdmissionBackend for webhook tests: teams with a cost budget
// and GPU quota, pools with a per-GPU-hour price and carbon, a ledger of
// reservations keyed by job id and request_id (idempotent like SubmitJob).
// Deterministic: the cheapest allowed pool wins; job ids count up.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/units.h"
#include "google/protobuf/util/message_differencer.h"
#include "services/webhook/admission_backend.h"

namespace greenlight::testing {

class FakeAdmissionBackend final : public webhook::AdmissionBackend {
 public:
  struct Team {
    int64_t cost_budget_micros = 0;  // 0 = unlimited
    int32_t gpu_quota = 0;           // 0 = unlimited
  };
  struct Pool {
    std::string id;
    std::string region;
    std::string instance_type;
    std::string gpu_type;
    std::string gpu_product;
    int64_t micros_per_gpu_hour = 0;
    int64_t mg_per_gpu_hour = 0;
  };
  struct Call {
    greenlight::v1::JobSpec spec;
    webhook::AdmitOptions options;
  };
  struct Job {
    greenlight::v1::JobSpec spec;
    webhook::AdmitResult result;
    bool released = false;
  };

  void AddTeam(const std::string& name, Team team) {
    std::lock_guard<std::mutex> l(mu_);
    teams_[name] = team;
  }
  void AddPool(Pool pool) {
    std::lock_guard<std::mutex> l(mu_);
    pools_.push_back(std::move(pool));
  }
  // The next Admit returns `status` (e.g. UNAVAILABLE) without side effects.
  void FailNextAdmit(absl::Status status) {
    std::lock_guard<std::mutex> l(mu_);
    fail_next_ = std::move(status);
  }

  absl::StatusOr<webhook::AdmitResult> Admit(const greenlight::v1::JobSpec& spec,
                                             const webhook::AdmitOptions& options) override {
    std::lock_guard<std::mutex> l(mu_);
    calls_.push_back({spec, options});
    if (fail_next_.has_value()) {
      absl::Status st = *fail_next_;
      fail_next_.reset();
      return st;
    }
    auto team = teams_.find(spec.team());
    if (team == teams_.end()) {
      return absl::NotFoundError(absl::StrCat("team \"", spec.team(), "\" not found"));
    }
    if (spec.request_id().empty()) return absl::InvalidArgumentError("request_id: required");
    if (auto it = by_request_.find(spec.request_id());
        it != by_request_.end() && !options.dry_run) {
      Job& job = jobs_.at(it->second);
      if (!google::protobuf::util::MessageDifferencer::Equals(job.spec, spec)) {
        return absl::AlreadyExistsError(
            absl::StrCat("request_id ", spec.request_id(), " was used for a different spec"));
      }
      webhook::AdmitResult r = job.result;
      r.deduplicated = true;
      return r;
    }
    const Pool* best = nullptr;
    for (const Pool& p : pools_) {
      bool type_ok = spec.gpu_types().empty();
      for (const auto& t : spec.gpu_types()) type_ok |= t == p.gpu_type;
      bool region_ok = spec.regions().empty();
      for (const auto& r : spec.regions()) region_ok |= r == p.region;
      if (type_ok && region_ok &&
          (best == nullptr || p.micros_per_gpu_hour < best->micros_per_gpu_hour)) {
        best = &p;
      }
    }
    if (best == nullptr) {
      return absl::FailedPreconditionError("no pool offers the allowed gpu types and regions");
    }
    double gpu_hours = spec.has_duration()
                           ? spec.gpus() * static_cast<double>(spec.duration().seconds()) / 3600
                           : spec.reference_gpu_hours();
    Money cost = Money::FromMicros(RoundToInt64(gpu_hours * best->micros_per_gpu_hour));
    Carbon carbon = Carbon::FromMg(RoundToInt64(gpu_hours * best->mg_per_gpu_hour));
    if (spec.max_cost_micros() > 0 && cost.micros() > spec.max_cost_micros()) {
      return absl::FailedPreconditionError(
          absl::StrCat("cheapest feasible: ", cost.ToString(), " on ", best->id, " > cap ",
                       Money::FromMicros(spec.max_cost_micros()).ToString()));
    }
    if (spec.max_carbon_mg() > 0 && carbon.mg() > spec.max_carbon_mg()) {
      return absl::FailedPreconditionError(
          absl::StrCat("cleanest feasible: ", carbon.ToString(), " > cap ",
                       Carbon::FromMg(spec.max_carbon_mg()).ToString()));
    }
    int64_t& reserved = reserved_micros_[spec.team()];
    if (team->second.cost_budget_micros > 0 &&
        reserved + cost.micros() > team->second.cost_budget_micros) {
      return absl::ResourceExhaustedError(
          absl::StrCat("team ", spec.team(), ": monthly cost budget ",
                       Money::FromMicros(team->second.cost_budget_micros).ToString(), " has ",
                       Money::FromMicros(team->second.cost_budget_micros - reserved).ToString(),
                       " left; this job needs ", cost.ToString()));
    }
    webhook::AdmitResult r;
    int32_t& gpus = gpus_in_use_[spec.team()];
    if (team->second.gpu_quota > 0 && gpus + spec.gpus() > team->second.gpu_quota) {
      if (!options.allow_queueing) {
        return absl::ResourceExhaustedError(
            absl::StrCat("team ", spec.team(), ": GPU quota ", team->second.gpu_quota, " full"));
      }
      r.pending_reason = "QUOTA";
    }
    r.pool_id = best->id;
    r.region = best->region;
    r.instance_type = best->instance_type;
    r.gpu_type = best->gpu_type;
    r.gpu_product = best->gpu_product;
    r.nodes = 1;
    r.start = absl::FromUnixSeconds(1751270400);  // 2025-06-30T08:00:00Z
    r.cost_micros = cost.micros();
    r.carbon_mg = carbon.mg();
    r.summary = absl::StrCat(best->id, ": ", cost.ToString(), ", ", carbon.ToString());
    if (options.dry_run) return r;
    r.job_id = absl::StrFormat("j-%016x", ++next_job_);
    reserved += cost.micros();
    if (r.pending_reason.empty()) gpus += spec.gpus();
    jobs_[r.job_id] = Job{spec, r, false};
    by_request_[spec.request_id()] = r.job_id;
    return r;
  }

  absl::Status Release(const std::string& ref, const std::string& reason) override {
    std::lock_guard<std::mutex> l(mu_);
    releases_.push_back(ref);
    std::string job_id = ref;
    if (auto it = by_request_.find(ref); it != by_request_.end()) job_id = it->second;
    auto it = jobs_.find(job_id);
    if (it == jobs_.end()) return absl::NotFoundError(absl::StrCat("job ", ref, " not found"));
    Job& job = it->second;
    if (job.released) return absl::OkStatus();
    job.released = true;
    reserved_micros_[job.spec.team()] -= job.result.cost_micros;
    if (job.result.pending_reason.empty()) gpus_in_use_[job.spec.team()] -= job.spec.gpus();
    return absl::OkStatus();
  }

  // Inspection.
  std::vector<Call> calls() const {
    std::lock_guard<std::mutex> l(mu_);
    return calls_;
  }
  std::vector<std::string> releases() const {
    std::lock_guard<std::mutex> l(mu_);
    return releases_;
  }
  std::map<std::string, Job> jobs() const {
    std::lock_guard<std::mutex> l(mu_);
    return jobs_;
  }
  int64_t reserved_micros(const std::string& team) const {
    std::lock_guard<std::mutex> l(mu_);
    auto it = reserved_micros_.find(team);
    return it == reserved_micros_.end() ? 0 : it->second;
  }
  int32_t gpus_in_use(const std::string& team) const {
    std::lock_guard<std::mutex> l(mu_);
    auto it = gpus_in_use_.find(team);
    return it == gpus_in_use_.end() ? 0 : it->second;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, Team> teams_;
  std::vector<Pool> pools_;
  std::map<std::string, Job> jobs_;                // by job id
  std::map<std::string, std::string> by_request_;  // request_id -> job id
  std::map<std::string, int64_t> reserved_micros_;
  std::map<std::string, int32_t> gpus_in_use_;
  std::vector<Call> calls_;
  std::vector<std::string> releases_;
  std::optional<absl::Status> fail_next_;
  uint64_t next_job_ = 0;
};

}  // namespace greenlight::testing
