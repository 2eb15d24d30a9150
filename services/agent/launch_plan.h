// What the agent launches for an assignment: the assignment checked against
// the node (its GPUs, the job's environment, its working dir), the job's
// clean environment (its own variables plus GREENLIGHT_* and
// CUDA_VISIBLE_DEVICES, nothing of the agent's), and its work directories,
// created and owned by the user the job runs as.
#pragma once

#include <sys/types.h>

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "greenlight/v1/executor.pb.h"
#include "services/agent/process_runner.h"

namespace greenlight::agent {

// The job directory's subdirectory the job owns; its HOME and default cwd.
inline constexpr char kWorkDir[] = "work";
inline constexpr char kDefaultJobPath[] = "/usr/local/bin:/usr/bin:/bin";

struct JobUser {
  std::optional<uid_t> uid;  // none: the agent's own user
  std::optional<gid_t> gid;
};

// [A-Za-z_][A-Za-z0-9_]*
bool ValidEnvName(const std::string& name);

// A working dir relative to the work dir, as its parts ("a/./b/../c" ->
// {a, c}); INVALID_ARGUMENT when absolute or when it climbs out.
absl::StatusOr<std::vector<std::string>> WorkingDirParts(const std::string& working_dir);

// The LaunchSpec of `a` under `job_dir` on a node with `node_gpus`, creating
// job_dir/work and the working dir below it (mode 0700, owned by `user`).
// INVALID_ARGUMENT naming the rule for anything the job may not ask for.
absl::StatusOr<LaunchSpec> PlanLaunch(const greenlight::v1::JobAssignment& a,
                                      const std::string& job_dir, const std::set<int>& node_gpus,
                                      const std::string& node, const JobUser& user);

}  // namespace greenlight::agent
