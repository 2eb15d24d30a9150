// What the agent launches for an assignment: refused assignments name their
// rule; the environment is the job's own plus the agent's GREENLIGHT_* and
// CUDA variables only; working dirs stay under the job's work dir.
#include "services/agent/launch_plan.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "tests/testing/status_testing.h"
#include "tests/testing/temp_dir.h"

namespace greenlight::agent {
namespace {

namespace v1 = greenlight::v1;
using ::greenlight::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

v1::JobAssignment Assignment() {
  v1::JobAssignment a;
  a.set_job_id("j-1");
  a.set_team("nlp");
  a.add_gpu_indices(2);
  a.add_gpu_indices(0);
  a.mutable_command()->add_argv("python");
  a.mutable_command()->add_argv("train.py");
  (*a.mutable_command()->mutable_env())["LR"] = "3e-4";
  return a;
}

TEST(LaunchPlan, TheEnvironmentIsTheJobsOwnPlusTheAgentsVariables) {
  TempDir dir;
  auto spec = PlanLaunch(Assignment(), dir.path(), {0, 1, 2, 3}, "box-1", {});
  ASSERT_OK(spec.status());
  const std::string work = dir.File(kWorkDir);
  EXPECT_THAT(spec->argv, ElementsAre("python", "train.py"));
  EXPECT_EQ(spec->working_dir, work);
  EXPECT_TRUE(std::filesystem::is_directory(work));
  EXPECT_THAT(spec->env, UnorderedElementsAre(Pair("LR", "3e-4"), Pair("GREENLIGHT_JOB_ID", "j-1"),
                                              Pair("GREENLIGHT_TEAM", "nlp"),
                                              Pair("CUDA_VISIBLE_DEVICES", "2,0"),
                                              Pair("PATH", kDefaultJobPath), Pair("HOME", work)));
  v1::JobAssignment resumed = Assignment();
  resumed.set_resume(true);
  (*resumed.mutable_command()->mutable_env())["PATH"] = "/opt/bin";
  auto again = PlanLaunch(resumed, dir.path(), {0, 2}, "box-1", {});
  ASSERT_OK(again.status());
  EXPECT_EQ(again->env.at("GREENLIGHT_RESUME"), "1");
  EXPECT_EQ(again->env.at("PATH"), "/opt/bin") << "the job's own PATH wins";
}

TEST(LaunchPlan, RefusedAssignmentsNameTheirRule) {
  TempDir dir;
  struct Case {
    std::string name;
    std::function<void(v1::JobAssignment&)> edit;
    std::string want;
  };
  for (const Case& c : std::vector<Case>{
           {"no argv", [](auto& a) { a.mutable_command()->clear_argv(); }, "no argv"},
           {"GPU of another node", [](auto& a) { a.add_gpu_indices(7); }, "GPU index 7 is not"},
           {"GPU twice", [](auto& a) { a.add_gpu_indices(2); }, "assigned twice"},
           {"bad env name", [](auto& a) { (*a.mutable_command()->mutable_env())["1X"] = ""; },
            "[A-Za-z_][A-Za-z0-9_]*"},
           {"agent's variable",
            [](auto& a) { (*a.mutable_command()->mutable_env())["GREENLIGHT_TOKEN"] = "x"; },
            "set by the agent"},
           {"CUDA",
            [](auto& a) { (*a.mutable_command()->mutable_env())["CUDA_VISIBLE_DEVICES"] = "0"; },
            "set by the agent"},
           {"absolute dir", [](auto& a) { a.mutable_command()->set_working_dir("/etc"); },
            "must be relative"},
           {"escape", [](auto& a) { a.mutable_command()->set_working_dir("a/../../x"); },
            "escapes the job directory"},
       }) {
    v1::JobAssignment a = Assignment();
    c.edit(a);
    auto spec = PlanLaunch(a, dir.path(), {0, 1, 2}, "box-1", {});
    ASSERT_FALSE(spec.ok()) << c.name;
    EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument) << c.name;
    EXPECT_THAT(std::string(spec.status().message()), HasSubstr(c.want)) << c.name;
  }
  EXPECT_FALSE(std::filesystem::exists(dir.File("x")));
}

TEST(LaunchPlan, WorkingDirsResolveBelowTheWorkDirAndBelongToTheJobsUser) {
  auto parts = WorkingDirParts("a/./b/../c//d");
  ASSERT_OK(parts.status());
  EXPECT_THAT(*parts, ElementsAre("a", "c", "d"));
  EXPECT_TRUE(WorkingDirParts("")->empty());

  TempDir dir;
  v1::JobAssignment a = Assignment();
  a.mutable_command()->set_working_dir("runs/../exp1");
  JobUser user;
  struct passwd* nobody = getpwnam("nobody");
  if (geteuid() == 0 && nobody != nullptr) user = {nobody->pw_uid, nobody->pw_gid};
  auto spec = PlanLaunch(a, dir.path(), {0, 2}, "box-1", user);
  ASSERT_OK(spec.status());
  EXPECT_EQ(spec->working_dir, dir.File(kWorkDir) + "/exp1");
  EXPECT_EQ(spec->uid, user.uid);
  struct stat st;
  ASSERT_EQ(stat(spec->working_dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  if (user.uid.has_value()) {
    EXPECT_EQ(st.st_uid, *user.uid) << "the job user owns it";
  }
}

}  // namespace
}  // namespace greenlight::agent
