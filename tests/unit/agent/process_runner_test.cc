// ProcessRunner with real processes: exit codes and logs, the exact
// environment, exec failures, stopping whole process groups (TERM, then KILL
// after the grace), running as another user, and re-adoption by a restarted
// agent (also after kill -9 of the agent's process group).
#include "services/agent/process_runner.h"

#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/proc_table.h"
#include "tests/testing/temp_dir.h"

namespace greenlight::agent {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// Only bounds how long a broken build waits; nothing depends on it passing.
constexpr absl::Duration kDeadline = absl::Seconds(10);

bool WaitFor(const std::function<bool()>& cond, absl::Duration timeout = kDeadline) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (cond()) return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return cond();
}

std::optional<ExitReport> WaitForExit(ProcessRunner& runner, const std::string& job_id) {
  std::optional<ExitReport> found;
  WaitFor([&] {
    for (ExitReport& r : runner.CollectExited()) {
      if (r.job_id == job_id) found = std::move(r);
    }
    return found.has_value();
  });
  return found;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

using ::greenlight::testing::GroupMembers;
using ::greenlight::testing::ProcEntry;
using ::greenlight::testing::ReadProc;

// The process is gone for good: no such pid (not even a zombie), or the pid
// now belongs to another process.
bool Gone(const ProcEntry& p) {
  if (kill(p.pid, 0) != 0 && errno == ESRCH) return true;
  std::optional<ProcEntry> now = ReadProc(p.pid);
  return !now || now->start_ticks != p.start_ticks;
}

// Dead: gone, or a zombie nobody reaps.
bool Dead(pid_t pid, uint64_t start_ticks) {
  std::optional<ProcEntry> e = ReadProc(pid);
  return !e || e->start_ticks != start_ticks || e->state == 'Z';
}

class ProcessRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(tmp_.ok()); }

  // Kills whatever a failed test left running, through a runner of its own.
  void TearDown() override {
    ProcessRunner cleanup(state_);
    cleanup.Adopt();
    for (const std::string& id : cleanup.Running()) {
      cleanup.Stop(id, absl::ZeroDuration(), absl::Now()).IgnoreError();
    }
    WaitFor([&] {
      cleanup.CollectExited();
      return cleanup.Running().empty();
    });
  }

  LaunchSpec Spec(const std::string& id, std::vector<std::string> argv) {
    LaunchSpec spec;
    spec.job_id = id;
    spec.argv = std::move(argv);
    spec.env = {{"PATH", "/usr/bin:/bin"}, {"GREENLIGHT_JOB_ID", id}};
    spec.working_dir = tmp_.path();
    return spec;
  }

  std::string Log(const std::string& id, const std::string& name) {
    return ReadAll(absl::StrCat(state_, "/jobs/", id, "/", name));
  }

  testing::TempDir tmp_;
  std::string state_ = tmp_.File("state");
};

TEST_F(ProcessRunnerTest, ExitCodeAndBothLogs) {
  ProcessRunner runner(state_);
  auto info = runner.Launch(Spec("j1", {"/bin/sh", "-c", "echo out; echo err >&2; exit 3"}));
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->job_id, "j1");
  EXPECT_GT(info->pid, 0);
  EXPECT_EQ(info->pgid, info->pid);
  EXPECT_GT(info->supervisor_pid, 0);
  EXPECT_NE(info->supervisor_pid, getpid());
  EXPECT_LE(info->started, absl::Now());

  std::optional<ExitReport> exit = WaitForExit(runner, "j1");
  ASSERT_TRUE(exit.has_value());
  EXPECT_FALSE(exit->signaled);
  EXPECT_FALSE(exit->lost);
  EXPECT_EQ(exit->exit_code, 3);
  EXPECT_GE(exit->finished, info->started);
  EXPECT_EQ(Log("j1", "stdout.log"), "out\n");
  EXPECT_EQ(Log("j1", "stderr.log"), "err\n");
  // Collected: forgotten, the process record is gone, the logs stay.
  EXPECT_THAT(runner.Running(), IsEmpty());
  EXPECT_FALSE(std::filesystem::exists(runner.JobDir("j1") + "/process"));
  EXPECT_TRUE(std::filesystem::exists(runner.JobDir("j1") + "/exit"));
  EXPECT_THAT(runner.CollectExited(), IsEmpty());
}

TEST_F(ProcessRunnerTest, RelaunchAppendsToTheLogs) {
  ProcessRunner runner(state_);
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(runner.Launch(Spec("again", {"/bin/sh", "-c", "echo run"})).ok());
    std::optional<ExitReport> exit = WaitForExit(runner, "again");
    ASSERT_TRUE(exit.has_value());
    EXPECT_EQ(exit->exit_code, 0);
  }
  EXPECT_EQ(Log("again", "stdout.log"), "run\nrun\n");
}

TEST_F(ProcessRunnerTest, EnvironmentIsExactlyTheGivenOne) {
  ASSERT_EQ(setenv("GREENLIGHT_TEST_MARKER", "agent-only", 1), 0);
  ProcessRunner runner(state_);
  LaunchSpec spec = Spec("envjob", {"env"});  // found through the job's PATH
  spec.env["WITH_SPACE"] = "a b";
  ASSERT_TRUE(runner.Launch(spec).ok());
  ASSERT_TRUE(WaitForExit(runner, "envjob").has_value());
  unsetenv("GREENLIGHT_TEST_MARKER");

  const std::string out = Log("envjob", "stdout.log");
  EXPECT_THAT(out, HasSubstr("GREENLIGHT_JOB_ID=envjob\n"));
  EXPECT_THAT(out, ::testing::Not(HasSubstr("GREENLIGHT_TEST_MARKER")));
  std::set<std::string> lines = absl::StrSplit(out, '\n', absl::SkipEmpty());
  EXPECT_EQ(lines, (std::set<std::string>{"GREENLIGHT_JOB_ID=envjob", "PATH=/usr/bin:/bin",
                                          "WITH_SPACE=a b"}));
}

TEST_F(ProcessRunnerTest, StdinIsDevNullAndNoAgentFdsLeak) {
  ProcessRunner runner(state_);
  // An fd the agent holds without close-on-exec must not reach the job.
  int leaked = open("/dev/null", O_RDONLY);
  ASSERT_GE(leaked, 0);
  ASSERT_TRUE(runner
                  .Launch(Spec("fds", {"/bin/sh", "-c",
                                       absl::StrCat("readlink /proc/self/fd/0; ls /proc/self/fd/",
                                                    leaked, " 2>/dev/null || echo closed")}))
                  .ok());
  close(leaked);
  ASSERT_TRUE(WaitForExit(runner, "fds").has_value());
  EXPECT_EQ(Log("fds", "stdout.log"), "/dev/null\nclosed\n");
}

TEST_F(ProcessRunnerTest, MissingBinaryIsALaunchErrorNamingIt) {
  ProcessRunner runner(state_);
  for (const std::string& binary : {std::string("/nonexistent/greenlight-no-such-binary"),
                                    std::string("greenlight-no-such-binary")}) {
    auto info = runner.Launch(Spec("missing", {binary, "--flag"}));
    ASSERT_FALSE(info.ok());
    EXPECT_EQ(info.status().code(), absl::StatusCode::kNotFound) << info.status();
    EXPECT_THAT(info.status().message(), HasSubstr("job missing"));
    EXPECT_THAT(info.status().message(), HasSubstr(absl::StrCat("execvpe(\"", binary, "\")")));
    EXPECT_THAT(info.status().message(), HasSubstr("No such file or directory"));
    // Nothing is left: no record, nothing tracked, nothing to collect.
    EXPECT_THAT(runner.Running(), IsEmpty());
    EXPECT_FALSE(std::filesystem::exists(runner.JobDir("missing") + "/process"));
    EXPECT_FALSE(std::filesystem::exists(runner.JobDir("missing") + "/exit"));
    EXPECT_THAT(runner.CollectExited(), IsEmpty());
  }
  // The id can be used again.
  ASSERT_TRUE(runner.Launch(Spec("missing", {"/bin/true"})).ok());
  std::optional<ExitReport> exit = WaitForExit(runner, "missing");
  ASSERT_TRUE(exit.has_value());
  EXPECT_EQ(exit->exit_code, 0);
}

TEST_F(ProcessRunnerTest, StopKillsTheWholeProcessGroup) {
  ProcessRunner runner(state_);
  auto info = runner.Launch(Spec("grp", {"/bin/sh", "-c", "sleep 100 & sleep 100; wait"}));
  ASSERT_TRUE(info.ok()) << info.status();
  std::vector<ProcEntry> members;
  ASSERT_TRUE(WaitFor([&] {
    members = GroupMembers(info->pgid);
    return members.size() >= 3;  // the shell and both sleeps
  }));
  EXPECT_TRUE(runner.IsAlive("grp"));
  EXPECT_THAT(runner.Running(), ElementsAre("grp"));

  const absl::Time now = absl::Now();
  const absl::Duration grace = absl::Seconds(30);
  ASSERT_TRUE(runner.Stop("grp", grace, now).ok());
  ASSERT_TRUE(runner.Poll(now + grace + absl::Seconds(1)).ok());
  std::optional<ExitReport> exit = WaitForExit(runner, "grp");
  ASSERT_TRUE(exit.has_value());
  EXPECT_TRUE(exit->signaled);
  EXPECT_TRUE(exit->signal == SIGTERM || exit->signal == SIGKILL) << exit->signal;
  for (const ProcEntry& p : members) EXPECT_TRUE(Gone(p)) << p.pid << " " << p.comm;
  EXPECT_FALSE(runner.IsAlive("grp"));
  EXPECT_THAT(runner.Running(), IsEmpty());
}

TEST_F(ProcessRunnerTest, JobIgnoringTermGetsKillAfterTheGrace) {
  ProcessRunner runner(state_);
  auto info = runner.Launch(Spec("trap", {"/bin/sh", "-c", "trap \"\" TERM; sleep 100"}));
  ASSERT_TRUE(info.ok()) << info.status();
  // Once sleep runs the trap is in place.
  ASSERT_TRUE(WaitFor([&] {
    for (const ProcEntry& p : GroupMembers(info->pgid)) {
      if (p.comm == "sleep") return true;
    }
    return false;
  }));
  const absl::Time now = absl::Now();
  const absl::Duration grace = absl::Seconds(30);
  ASSERT_TRUE(runner.Stop("trap", grace, now).ok());
  ASSERT_TRUE(runner.Poll(now + grace / 2).ok());  // before the grace: no KILL
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_TRUE(runner.IsAlive("trap"));
  EXPECT_THAT(runner.CollectExited(), IsEmpty());

  ASSERT_TRUE(runner.Poll(now + grace).ok());
  std::optional<ExitReport> exit = WaitForExit(runner, "trap");
  ASSERT_TRUE(exit.has_value());
  EXPECT_TRUE(exit->signaled);
  EXPECT_EQ(exit->signal, SIGKILL);
  EXPECT_THAT(GroupMembers(info->pgid), IsEmpty());
}

TEST_F(ProcessRunnerTest, LeftoversOfAnExitedJobAreKilled) {
  ProcessRunner runner(state_);
  // The main process exits at once, leaving a background sleep (in the group)
  // and a setsid'ed one (escaped the group, re-parented to the supervisor).
  auto info = runner.Launch(Spec(
      "leftover", {"/bin/sh", "-c", "sleep 100 & setsid sleep 101 & echo $! > bg.pid; exit 0"}));
  ASSERT_TRUE(info.ok()) << info.status();
  std::optional<ExitReport> exit = WaitForExit(runner, "leftover");
  ASSERT_TRUE(exit.has_value());
  EXPECT_EQ(exit->exit_code, 0);
  EXPECT_THAT(GroupMembers(info->pgid), IsEmpty());
  int escaped = 0;
  ASSERT_TRUE(absl::SimpleAtoi(absl::StripAsciiWhitespace(ReadAll(tmp_.File("bg.pid"))), &escaped));
  std::optional<ProcEntry> e = ReadProc(escaped);
  EXPECT_TRUE(!e || e->comm != "sleep" || e->state == 'Z') << "setsid sleep " << escaped;
}

TEST_F(ProcessRunnerTest, RunsAsAnotherUserWithoutSupplementaryGroups) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  struct passwd* nobody = getpwnam("nobody");
  if (nobody == nullptr) GTEST_SKIP() << "no user nobody";
  ProcessRunner runner(state_);
  LaunchSpec spec = Spec("asnobody", {"/bin/sh", "-c", "id -u; id -G"});
  spec.uid = nobody->pw_uid;
  spec.gid = nobody->pw_gid;
  spec.working_dir = "/";
  ASSERT_TRUE(runner.Launch(spec).ok());
  std::optional<ExitReport> exit = WaitForExit(runner, "asnobody");
  ASSERT_TRUE(exit.has_value());
  EXPECT_EQ(exit->exit_code, 0) << Log("asnobody", "stderr.log");
  EXPECT_EQ(Log("asnobody", "stdout.log"),
            absl::StrCat(nobody->pw_uid, "\n", nobody->pw_gid, "\n"));
}

TEST_F(ProcessRunnerTest, JobCannotReadTheAgentsTokenFile) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  struct passwd* nobody = getpwnam("nobody");
  if (nobody == nullptr) GTEST_SKIP() << "no user nobody";
  ASSERT_EQ(chmod(tmp_.path().c_str(), 0755), 0);  // only the file mode protects it
  const std::string token = tmp_.File("agent.token");
  { std::ofstream(token) << "s3cret\n"; }
  ASSERT_EQ(chmod(token.c_str(), 0600), 0);

  ProcessRunner runner(state_);
  LaunchSpec spec = Spec("thief", {"cat", token});
  spec.uid = nobody->pw_uid;
  spec.gid = nobody->pw_gid;
  spec.working_dir = "/";
  ASSERT_TRUE(runner.Launch(spec).ok());
  std::optional<ExitReport> exit = WaitForExit(runner, "thief");
  ASSERT_TRUE(exit.has_value());
  EXPECT_FALSE(exit->signaled);
  EXPECT_NE(exit->exit_code, 0);
  EXPECT_THAT(Log("thief", "stderr.log"), HasSubstr("Permission denied"));
  EXPECT_THAT(Log("thief", "stdout.log"), ::testing::Not(HasSubstr("s3cret")));
}

TEST_F(ProcessRunnerTest, ChdirAfterDroppingPrivilegesFailsLaunch) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  struct passwd* nobody = getpwnam("nobody");
  if (nobody == nullptr) GTEST_SKIP() << "no user nobody";
  const std::string private_dir = tmp_.File("private");
  ASSERT_EQ(mkdir(private_dir.c_str(), 0700), 0);
  ProcessRunner runner(state_);
  LaunchSpec spec = Spec("nochdir", {"/bin/true"});
  spec.uid = nobody->pw_uid;
  spec.gid = nobody->pw_gid;
  spec.working_dir = private_dir;
  auto info = runner.Launch(spec);
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.status().code(), absl::StatusCode::kPermissionDenied) << info.status();
  EXPECT_THAT(info.status().message(), HasSubstr("job nochdir"));
  EXPECT_THAT(info.status().message(), HasSubstr(absl::StrCat("chdir(\"", private_dir, "\")")));
  EXPECT_THAT(info.status().message(), HasSubstr("Permission denied"));
  EXPECT_THAT(runner.Running(), IsEmpty());
}

TEST_F(ProcessRunnerTest, RestartedRunnerAdoptsARunningJob) {
  ProcessInfo first;
  {
    ProcessRunner agent(state_);
    auto info = agent.Launch(Spec("long", {"sleep", "100"}));
    ASSERT_TRUE(info.ok()) << info.status();
    first = *info;
  }  // the agent goes away; the job must not

  ProcessRunner restarted(state_);
  EXPECT_EQ(restarted.Stop("long", absl::Seconds(5), absl::Now()).code(),
            absl::StatusCode::kNotFound);  // not adopted yet
  EXPECT_EQ(restarted.Launch(Spec("long", {"sleep", "1"})).status().code(),
            absl::StatusCode::kFailedPrecondition);
  std::vector<AdoptedJob> adopted = restarted.Adopt();
  ASSERT_EQ(adopted.size(), 1u);
  EXPECT_EQ(adopted[0].job_id, "long");
  EXPECT_EQ(adopted[0].outcome, AdoptedJob::Outcome::kAdopted);
  EXPECT_EQ(adopted[0].info.pid, first.pid);
  EXPECT_EQ(adopted[0].info.start_ticks, first.start_ticks);
  EXPECT_TRUE(restarted.IsAlive("long"));
  EXPECT_THAT(restarted.Running(), ElementsAre("long"));
  EXPECT_THAT(restarted.Adopt(), IsEmpty());  // already tracked
  EXPECT_EQ(restarted.Launch(Spec("long", {"sleep", "1"})).status().code(),
            absl::StatusCode::kAlreadyExists);

  ASSERT_TRUE(restarted.Stop("long", absl::Seconds(30), absl::Now()).ok());
  std::optional<ExitReport> exit = WaitForExit(restarted, "long");
  ASSERT_TRUE(exit.has_value());
  EXPECT_TRUE(exit->signaled);
  EXPECT_EQ(exit->signal, SIGTERM);
}

TEST_F(ProcessRunnerTest, JobSurvivesKillNineOfTheAgentsProcessGroup) {
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t agent = fork();
  ASSERT_GE(agent, 0);
  if (agent == 0) {
    setpgid(0, 0);
    ProcessRunner runner(state_);
    char ok = runner.Launch(Spec("k9", {"sleep", "100"})).ok() ? 'y' : 'n';
    if (write(ready[1], &ok, 1) != 1) _exit(1);
    for (;;) pause();
  }
  close(ready[1]);
  char ok = 0;
  ASSERT_EQ(read(ready[0], &ok, 1), 1);
  close(ready[0]);
  ASSERT_EQ(ok, 'y');
  ASSERT_EQ(kill(-agent, SIGKILL), 0);
  int st = 0;
  ASSERT_EQ(waitpid(agent, &st, 0), agent);

  ProcessRunner restarted(state_);
  std::vector<AdoptedJob> adopted = restarted.Adopt();
  ASSERT_EQ(adopted.size(), 1u);
  EXPECT_EQ(adopted[0].outcome, AdoptedJob::Outcome::kAdopted);
  EXPECT_TRUE(restarted.IsAlive("k9"));
  ASSERT_TRUE(restarted.Stop("k9", absl::ZeroDuration(), absl::Now()).ok());
  std::optional<ExitReport> exit = WaitForExit(restarted, "k9");
  ASSERT_TRUE(exit.has_value());
  EXPECT_TRUE(exit->signaled);
  EXPECT_EQ(exit->signal, SIGKILL);
}

TEST_F(ProcessRunnerTest, JobThatEndedUnwatchedIsReportedExited) {
  {
    ProcessRunner agent(state_);
    ASSERT_TRUE(agent.Launch(Spec("quick", {"/bin/sh", "-c", "exit 7"})).ok());
  }
  ASSERT_TRUE(WaitFor([&] { return std::filesystem::exists(state_ + "/jobs/quick/exit"); }));

  ProcessRunner restarted(state_);
  std::vector<AdoptedJob> adopted = restarted.Adopt();
  ASSERT_EQ(adopted.size(), 1u);
  EXPECT_EQ(adopted[0].job_id, "quick");
  EXPECT_EQ(adopted[0].outcome, AdoptedJob::Outcome::kExited);
  EXPECT_FALSE(adopted[0].exit.signaled);
  EXPECT_FALSE(adopted[0].exit.lost);
  EXPECT_EQ(adopted[0].exit.exit_code, 7);
  // Reported once.
  EXPECT_THAT(restarted.Running(), IsEmpty());
  EXPECT_THAT(restarted.CollectExited(), IsEmpty());
  EXPECT_THAT(restarted.Adopt(), IsEmpty());
  EXPECT_THAT(ProcessRunner(state_).Adopt(), IsEmpty());
}

TEST_F(ProcessRunnerTest, KeptExitIsReportedUntilForgottenAlsoAfterARestart) {
  using Retention = ProcessRunner::ExitRetention;
  {
    ProcessRunner agent(state_, Retention::kUntilForget);
    ASSERT_TRUE(agent.Launch(Spec("kept", {"/bin/sh", "-c", "exit 5"})).ok());
    std::optional<ExitReport> exit = WaitForExit(agent, "kept");
    ASSERT_TRUE(exit.has_value());
    EXPECT_EQ(exit->exit_code, 5);
    // Reported again on every call, not listed as running, record kept.
    std::vector<ExitReport> again = agent.CollectExited();
    ASSERT_EQ(again.size(), 1u);
    EXPECT_EQ(again[0].job_id, "kept");
    EXPECT_EQ(again[0].exit_code, 5);
    EXPECT_EQ(again[0].finished, exit->finished);
    EXPECT_THAT(agent.Running(), IsEmpty());
    EXPECT_TRUE(std::filesystem::exists(agent.JobDir("kept") + "/process"));
    EXPECT_EQ(agent.Launch(Spec("kept", {"/bin/true"})).status().code(),
              absl::StatusCode::kAlreadyExists);
    EXPECT_TRUE(agent.Stop("kept", absl::Seconds(1), absl::Now()).ok());  // ended: nothing sent
  }  // the agent dies before it passed the exit on

  ProcessRunner restarted(state_, Retention::kUntilForget);
  std::vector<AdoptedJob> adopted = restarted.Adopt();
  ASSERT_EQ(adopted.size(), 1u);
  EXPECT_EQ(adopted[0].job_id, "kept");
  EXPECT_EQ(adopted[0].outcome, AdoptedJob::Outcome::kExited);
  EXPECT_EQ(adopted[0].exit.exit_code, 5);
  EXPECT_THAT(restarted.Adopt(), IsEmpty());  // tracked now
  std::vector<ExitReport> collected = restarted.CollectExited();
  ASSERT_EQ(collected.size(), 1u);
  EXPECT_EQ(collected[0].exit_code, 5);

  ASSERT_TRUE(restarted.Forget("kept").ok());
  EXPECT_FALSE(std::filesystem::exists(restarted.JobDir("kept") + "/process"));
  EXPECT_TRUE(std::filesystem::exists(restarted.JobDir("kept") + "/exit"));
  EXPECT_THAT(restarted.CollectExited(), IsEmpty());
  EXPECT_EQ(restarted.Forget("kept").code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(ProcessRunner(state_, Retention::kUntilForget).Adopt(), IsEmpty());

  // A running job cannot be forgotten; a forgotten id can be launched again.
  ASSERT_TRUE(restarted.Launch(Spec("kept", {"sleep", "100"})).ok());
  EXPECT_EQ(restarted.Forget("kept").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(restarted.Running(), ElementsAre("kept"));
  ASSERT_TRUE(restarted.Stop("kept", absl::ZeroDuration(), absl::Now()).ok());
  std::optional<ExitReport> killed = WaitForExit(restarted, "kept");
  ASSERT_TRUE(killed.has_value());
  EXPECT_EQ(killed->signal, SIGKILL);
  EXPECT_TRUE(restarted.Forget("kept").ok());
}

TEST_F(ProcessRunnerTest, KeptLostJobIsReportedUntilForgotten) {
  ASSERT_TRUE(std::filesystem::create_directories(state_ + "/jobs/garbled"));
  { std::ofstream(state_ + "/jobs/garbled/process") << "pid twelve\n"; }
  ProcessRunner runner(state_, ProcessRunner::ExitRetention::kUntilForget);
  std::vector<AdoptedJob> adopted = runner.Adopt();
  ASSERT_EQ(adopted.size(), 1u);
  EXPECT_EQ(adopted[0].outcome, AdoptedJob::Outcome::kLost);
  std::vector<ExitReport> collected = runner.CollectExited();
  ASSERT_EQ(collected.size(), 1u);
  EXPECT_TRUE(collected[0].lost);
  EXPECT_THAT(runner.Running(), IsEmpty());
  EXPECT_TRUE(std::filesystem::exists(state_ + "/jobs/garbled/process"));
  ASSERT_TRUE(runner.Forget("garbled").ok());
  EXPECT_FALSE(std::filesystem::exists(state_ + "/jobs/garbled/process"));
  EXPECT_THAT(runner.CollectExited(), IsEmpty());
}

TEST_F(ProcessRunnerTest, JobGoneWithoutAnExitRecordIsReportedLost) {
  ProcessInfo info;
  {
    ProcessRunner agent(state_);
    auto launched = agent.Launch(Spec("vanished", {"sleep", "100"}));
    ASSERT_TRUE(launched.ok()) << launched.status();
    info = *launched;
  }
  // As after a reboot: supervisor and job die, nobody records the exit.
  ASSERT_EQ(kill(info.supervisor_pid, SIGKILL), 0);
  int st = 0;
  ASSERT_EQ(waitpid(info.supervisor_pid, &st, 0), info.supervisor_pid);  // our child
  ASSERT_EQ(kill(-info.pgid, SIGKILL), 0);
  ASSERT_TRUE(WaitFor([&] { return Dead(info.pid, info.start_ticks); }));

  ProcessRunner restarted(state_);
  std::vector<AdoptedJob> adopted = restarted.Adopt();
  ASSERT_EQ(adopted.size(), 1u);
  EXPECT_EQ(adopted[0].job_id, "vanished");
  EXPECT_EQ(adopted[0].outcome, AdoptedJob::Outcome::kLost);
  EXPECT_TRUE(adopted[0].exit.lost);
  EXPECT_THAT(adopted[0].exit.detail, HasSubstr("without an exit record"));
  EXPECT_EQ(adopted[0].info.pid, info.pid);
  EXPECT_THAT(restarted.Running(), IsEmpty());
  EXPECT_THAT(restarted.Adopt(), IsEmpty());
}

TEST_F(ProcessRunnerTest, UnreadableProcessRecordIsReportedLost) {
  ASSERT_TRUE(std::filesystem::create_directories(state_ + "/jobs/garbled"));
  { std::ofstream(state_ + "/jobs/garbled/process") << "pid twelve\n"; }
  ProcessRunner runner(state_);
  std::vector<AdoptedJob> adopted = runner.Adopt();
  ASSERT_EQ(adopted.size(), 1u);
  EXPECT_EQ(adopted[0].outcome, AdoptedJob::Outcome::kLost);
  EXPECT_THAT(adopted[0].exit.detail, HasSubstr("malformed"));
  EXPECT_THAT(runner.Adopt(), IsEmpty());
}

TEST_F(ProcessRunnerTest, BadLaunchSpecsAreRefused) {
  ProcessRunner runner(state_);
  for (const std::string& id :
       {std::string(""), std::string("../x"), std::string(".."), std::string("."),
        std::string("a/b"), std::string("a b"), std::string(200, 'x')}) {
    auto info = runner.Launch(Spec(id, {"/bin/true"}));
    ASSERT_FALSE(info.ok()) << id;
    EXPECT_EQ(info.status().code(), absl::StatusCode::kInvalidArgument) << id;
    EXPECT_THAT(info.status().message(), HasSubstr("job id")) << id;
  }
  EXPECT_FALSE(std::filesystem::exists(tmp_.File("x")));

  auto empty_argv = runner.Launch(Spec("ok", {}));
  EXPECT_EQ(empty_argv.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(empty_argv.status().message(), HasSubstr("argv is empty"));

  LaunchSpec no_dir = Spec("ok", {"/bin/true"});
  no_dir.working_dir = tmp_.File("does-not-exist");
  auto missing_dir = runner.Launch(no_dir);
  EXPECT_EQ(missing_dir.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(missing_dir.status().message(), HasSubstr("does-not-exist"));

  LaunchSpec uid_only = Spec("ok", {"/bin/true"});
  uid_only.uid = 65534;
  EXPECT_EQ(runner.Launch(uid_only).status().code(), absl::StatusCode::kInvalidArgument);

  LaunchSpec bad_env = Spec("ok", {"/bin/true"});
  bad_env.env["A=B"] = "c";
  EXPECT_EQ(runner.Launch(bad_env).status().code(), absl::StatusCode::kInvalidArgument);

  EXPECT_EQ(runner.Stop("unknown", absl::Seconds(1), absl::Now()).code(),
            absl::StatusCode::kNotFound);
  EXPECT_FALSE(runner.IsAlive("unknown"));
  EXPECT_THAT(runner.Running(), IsEmpty());
}

TEST_F(ProcessRunnerTest, SecondLaunchOfARunningJobIsRefused) {
  ProcessRunner runner(state_);
  ASSERT_TRUE(runner.Launch(Spec("dup", {"sleep", "100"})).ok());
  auto again = runner.Launch(Spec("dup", {"sleep", "100"}));
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(again.status().message(), HasSubstr("job dup"));
  ASSERT_TRUE(runner.Stop("dup", absl::ZeroDuration(), absl::Now()).ok());
  ASSERT_TRUE(WaitForExit(runner, "dup").has_value());
  // Stopping a job that has ended and was collected: unknown.
  EXPECT_EQ(runner.Stop("dup", absl::Seconds(1), absl::Now()).code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace greenlight::agent
