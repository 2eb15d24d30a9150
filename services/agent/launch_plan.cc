#include "services/agent/launch_plan.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "services/agent/state_files.h"

namespace greenlight::agent {
namespace v1 = greenlight::v1;

bool ValidEnvName(const std::string& k) {
  if (k.empty() || absl::ascii_isdigit(static_cast<unsigned char>(k[0]))) return false;
  return std::all_of(k.begin(), k.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

absl::StatusOr<std::vector<std::string>> WorkingDirParts(const std::string& working_dir) {
  std::vector<std::string> parts;
  if (working_dir.empty()) return parts;
  if (working_dir[0] == '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("working dir \"", working_dir, "\" must be relative to the job directory"));
  }
  for (absl::string_view p : absl::StrSplit(working_dir, '/', absl::SkipEmpty())) {
    if (p == ".") continue;
    if (p == "..") {
      if (parts.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("working dir \"", working_dir, "\" escapes the job directory"));
      }
      parts.pop_back();
      continue;
    }
    parts.emplace_back(p);
  }
  return parts;
}

namespace {

absl::Status CheckGpus(const v1::JobAssignment& a, const std::set<int>& node_gpus,
                       const std::string& node) {
  std::set<int> assigned;
  for (int index : a.gpu_indices()) {
    if (node_gpus.count(index) == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("GPU index ", index, " is not a GPU of node ", node));
    }
    if (!assigned.insert(index).second) {
      return absl::InvalidArgumentError(absl::StrCat("GPU index ", index, " is assigned twice"));
    }
  }
  return absl::OkStatus();
}

absl::Status MakeOwnedDir(const std::string& dir, const JobUser& user) {
  bool created = false;
  RETURN_IF_ERROR(MakeDir(dir, 0700, &created));
  if (created && user.uid.has_value() && lchown(dir.c_str(), *user.uid, *user.gid) != 0) {
    return ErrnoStatus(errno, absl::StrCat("chown(\"", dir, "\")"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<LaunchSpec> PlanLaunch(const v1::JobAssignment& a, const std::string& job_dir,
                                      const std::set<int>& node_gpus, const std::string& node,
                                      const JobUser& user) {
  const v1::Command& cmd = a.command();
  if (cmd.argv_size() == 0) return absl::InvalidArgumentError("the command has no argv");
  RETURN_IF_ERROR(CheckGpus(a, node_gpus, node));
  LaunchSpec spec;
  spec.job_id = a.job_id();
  spec.argv.assign(cmd.argv().begin(), cmd.argv().end());
  for (const auto& [k, v] : cmd.env()) {
    if (!ValidEnvName(k)) {
      return absl::InvalidArgumentError(
          absl::StrCat("environment variable name \"", k, "\" is not [A-Za-z_][A-Za-z0-9_]*"));
    }
    if (absl::StartsWith(k, "GREENLIGHT_") || k == "CUDA_VISIBLE_DEVICES") {
      return absl::InvalidArgumentError(
          absl::StrCat("environment variable ", k, " is set by the agent, not the job"));
    }
    spec.env[k] = v;
  }
  ASSIGN_OR_RETURN(std::vector<std::string> parts, WorkingDirParts(cmd.working_dir()));
  // Directories: the job dir (root's, traversable), its work dir (the job
  // user's), and the working dir below it.
  const std::string work = absl::StrCat(job_dir, "/", kWorkDir);
  RETURN_IF_ERROR(MakeOwnedDir(work, user));
  spec.working_dir = work;
  for (const std::string& p : parts) {
    spec.working_dir = absl::StrCat(spec.working_dir, "/", p);
    RETURN_IF_ERROR(MakeOwnedDir(spec.working_dir, user));
  }
  spec.env["GREENLIGHT_JOB_ID"] = a.job_id();
  spec.env["GREENLIGHT_TEAM"] = a.team();
  if (a.resume()) spec.env["GREENLIGHT_RESUME"] = "1";
  spec.env["CUDA_VISIBLE_DEVICES"] = absl::StrJoin(a.gpu_indices(), ",");
  if (spec.env.count("PATH") == 0) spec.env["PATH"] = kDefaultJobPath;
  spec.env["HOME"] = work;
  spec.uid = user.uid;
  spec.gid = user.gid;
  return spec;
}

}  // namespace greenlight::agent
