// The supervisor's async-signal-safe building blocks on their own: number
// parsing and formatting, /proc/<pid>/stat, liveness against pid reuse, and
// the atomic record write (also how it fails).
#include "services/agent/supervisor.h"

#include <fcntl.h>
#include <grp.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/proc_table.h"
#include "tests/testing/temp_dir.h"

namespace greenlight::agent::supervisor {
namespace {

using ::testing::ElementsAre;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::set<std::string> DirEntries(const std::string& dir) {
  std::set<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    out.insert(e.path().filename().string());
  }
  return out;
}

SafeBuffer Text(const char* s) {
  SafeBuffer b;
  b.Append(s);
  return b;
}

// An fd that closes itself, so a failed assertion leaks nothing.
struct Fd {
  explicit Fd(int v) : fd(v) {}
  ~Fd() {
    if (fd >= 0) close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int fd;
};

// A forked child that has exited but is not reaped yet (a zombie).
pid_t ExitedUnreapedChild() {
  pid_t pid = fork();
  if (pid == 0) _exit(0);
  if (pid > 0) {
    siginfo_t info;
    // WNOWAIT: wait for the exit but leave the child a zombie.
    while (waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT) < 0 && errno == EINTR) {
    }
  }
  return pid;
}

void Reap(pid_t pid) {
  int st;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
}

TEST(ParseU64, AcceptsOnlyNonEmptyRunsOfDigits) {
  struct Case {
    std::string text;
    std::optional<uint64_t> want;
  };
  for (const Case& c : std::vector<Case>{
           {"", std::nullopt},
           {"0", 0},
           {"7", 7},
           {"000123", 123},
           {"4194304", 4194304},
           {"18446744073709551615", std::numeric_limits<uint64_t>::max()},
           {"12a", std::nullopt},
           {"a12", std::nullopt},
           {"-1", std::nullopt},
           {"+1", std::nullopt},
           {" 1", std::nullopt},
           {"1 ", std::nullopt},
           {"1\n", std::nullopt},
           {"1.5", std::nullopt},
       }) {
    uint64_t out = 99;
    const bool ok = ParseU64(c.text.data(), c.text.data() + c.text.size(), &out);
    EXPECT_EQ(ok, c.want.has_value()) << "\"" << c.text << "\"";
    // A failed parse leaves the output alone.
    EXPECT_EQ(out, c.want.value_or(99)) << "\"" << c.text << "\"";
  }
}

TEST(ParseU64, ReadsOnlyTheGivenRange) {
  const char text[] = "12345 678";
  uint64_t out = 0;
  ASSERT_TRUE(ParseU64(text, text + 3, &out));
  EXPECT_EQ(out, 123u);
  ASSERT_TRUE(ParseU64(text + 6, text + 9, &out));
  EXPECT_EQ(out, 678u);
  EXPECT_FALSE(ParseU64(text, text + 6, &out));  // takes in the space
}

TEST(SafeBuffer, FormatsNumbersAndRecordLines) {
  struct Case {
    std::string name;
    std::function<void(SafeBuffer&)> write;
    std::string want;
  };
  for (const Case& c : std::vector<Case>{
           {"u64 zero", [](SafeBuffer& b) { b.AppendU64(0); }, "0"},
           {"u64 max", [](SafeBuffer& b) { b.AppendU64(std::numeric_limits<uint64_t>::max()); },
            "18446744073709551615"},
           {"i64 zero", [](SafeBuffer& b) { b.AppendI64(0); }, "0"},
           {"i64 minus one", [](SafeBuffer& b) { b.AppendI64(-1); }, "-1"},
           {"i64 max", [](SafeBuffer& b) { b.AppendI64(std::numeric_limits<int64_t>::max()); },
            "9223372036854775807"},
           {"i64 min", [](SafeBuffer& b) { b.AppendI64(std::numeric_limits<int64_t>::min()); },
            "-9223372036854775808"},
           {"text then number",
            [](SafeBuffer& b) {
              b.Append("/proc/");
              b.AppendU64(4242);
              b.Append("/stat");
            },
            "/proc/4242/stat"},
           {"record lines",
            [](SafeBuffer& b) {
              b.Line("pid", 42);
              b.Line("exit_code", -3);
              b.Line("finished_unix_ns", 1'700'000'000'123'456'789);
            },
            "pid 42\nexit_code -3\nfinished_unix_ns 1700000000123456789\n"},
           {"empty append", [](SafeBuffer& b) { b.Append(""); }, ""},
       }) {
    SafeBuffer b;
    c.write(b);
    EXPECT_EQ(std::string(b.data, b.len), c.want) << c.name;
    EXPECT_EQ(b.data[b.len], '\0') << c.name;
  }
}

TEST(SafeBuffer, TruncatesWhenFullAndStaysTerminated) {
  const size_t cap = sizeof(SafeBuffer{}.data) - 1;  // room for the NUL
  SafeBuffer b;
  b.Append(std::string(cap + 100, 'x').c_str());
  EXPECT_EQ(b.len, cap);
  EXPECT_EQ(b.data[cap], '\0');
  EXPECT_EQ(std::strlen(b.data), cap);
  b.AppendU64(12345);  // no room: nothing changes
  b.Line("pid", 1);
  EXPECT_EQ(b.len, cap);
  EXPECT_EQ(b.data[cap], '\0');

  // A number that half fits keeps its leading digits.
  SafeBuffer n;
  n.Append(std::string(cap - 2, 'x').c_str());
  n.AppendU64(12345);
  EXPECT_EQ(n.len, cap);
  EXPECT_EQ(std::string(n.data + cap - 2), "12");
}

TEST(ReadProcStat, ReadsThisProcess) {
  ProcStat st;
  ASSERT_TRUE(ReadProcStat(getpid(), &st));
  EXPECT_EQ(st.state, 'R');  // it is running: it reads its own stat
  EXPECT_EQ(st.ppid, getppid());
  EXPECT_EQ(st.pgrp, getpgrp());
  std::optional<testing::ProcEntry> independent = testing::ReadProc(getpid());
  ASSERT_TRUE(independent.has_value());
  EXPECT_EQ(st.start_ticks, independent->start_ticks);
}

TEST(ReadProcStat, CountsFieldsFromTheLastParenthesis) {
  char old_name[17] = {};
  ASSERT_EQ(prctl(PR_GET_NAME, old_name, 0, 0, 0), 0);
  // A command name that looks like the end of field 2 and more fields.
  ASSERT_EQ(prctl(PR_SET_NAME, "a) Z 1 (2 3", 0, 0, 0), 0);
  ProcStat st;
  const bool ok = ReadProcStat(getpid(), &st);
  prctl(PR_SET_NAME, old_name, 0, 0, 0);
  ASSERT_TRUE(ok);
  EXPECT_EQ(st.state, 'R');
  EXPECT_EQ(st.ppid, getppid());
  EXPECT_EQ(st.pgrp, getpgrp());
  EXPECT_EQ(st.start_ticks, testing::ReadProc(getpid())->start_ticks);
}

TEST(ReadProcStat, FailsForNoProcess) {
  ProcStat st;
  EXPECT_FALSE(ReadProcStat(0, &st));
  EXPECT_FALSE(ReadProcStat(-1, &st));
  EXPECT_FALSE(ReadProcStat(-getpid(), &st));

  pid_t dead = ExitedUnreapedChild();
  ASSERT_GT(dead, 0);
  Reap(dead);
  EXPECT_FALSE(ReadProcStat(dead, &st)) << "pid " << dead << " was reaped";
}

TEST(ProcessAlive, TrueOnlyForTheRightStartTime) {
  std::optional<testing::ProcEntry> self = testing::ReadProc(getpid());
  ASSERT_TRUE(self.has_value());
  EXPECT_TRUE(ProcessAlive(getpid(), self->start_ticks));
  // The same pid with another start time is another (a reusing) process.
  EXPECT_FALSE(ProcessAlive(getpid(), self->start_ticks + 1));
  EXPECT_FALSE(ProcessAlive(getpid(), self->start_ticks - 1));
  EXPECT_FALSE(ProcessAlive(getpid(), 0));
  EXPECT_FALSE(ProcessAlive(0, self->start_ticks));
}

TEST(ProcessAlive, TrueWhileRunningFalseAsZombieAndOnceReaped) {
  int hold[2];
  ASSERT_EQ(pipe2(hold, O_CLOEXEC), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(hold[1]);  // else the child holds its own pipe open and never sees EOF
    char c;
    while (read(hold[0], &c, 1) < 0 && errno == EINTR) {
    }
    _exit(0);  // EOF: the test let go
  }
  close(hold[0]);
  ProcStat st;
  ASSERT_TRUE(ReadProcStat(child, &st));
  EXPECT_EQ(st.ppid, getpid());
  EXPECT_TRUE(ProcessAlive(child, st.start_ticks));
  const uint64_t ticks = st.start_ticks;

  close(hold[1]);
  siginfo_t info;
  while (waitid(P_PID, static_cast<id_t>(child), &info, WEXITED | WNOWAIT) < 0 && errno == EINTR) {
  }
  ProcStat zombie;
  ASSERT_TRUE(ReadProcStat(child, &zombie));  // still in /proc...
  EXPECT_EQ(zombie.state, 'Z');
  EXPECT_EQ(zombie.start_ticks, ticks);
  EXPECT_FALSE(ProcessAlive(child, ticks));  // ...but not alive

  Reap(child);
  EXPECT_FALSE(ProcessAlive(child, ticks));
}

TEST(WriteRecordAt, WritesTheWholeRecordAndLeavesNoTmpFile) {
  testing::TempDir tmp;
  ASSERT_TRUE(tmp.ok());
  Fd dir(open(tmp.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_GE(dir.fd, 0);
  SafeBuffer rec;
  rec.Line("exit_code", 3);
  rec.Line("finished_unix_ns", 1'700'000'000'000'000'000);
  ASSERT_EQ(WriteRecordAt(dir.fd, kExitTmp, kExitFile, rec), 0);
  EXPECT_EQ(ReadFile(tmp.File(kExitFile)), "exit_code 3\nfinished_unix_ns 1700000000000000000\n");
  EXPECT_THAT(DirEntries(tmp.path()), ElementsAre(kExitFile));
}

TEST(WriteRecordAt, ReplacesAnOldRecordAndAStaleTmpFile) {
  testing::TempDir tmp;
  ASSERT_TRUE(tmp.ok());
  std::ofstream(tmp.File(kProcessFile)) << "pid 1\npgid 1\n" << std::string(1000, '#');
  std::ofstream(tmp.File(kProcessTmp)) << std::string(4000, '#');
  Fd dir(open(tmp.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_GE(dir.fd, 0);
  ASSERT_EQ(WriteRecordAt(dir.fd, kProcessTmp, kProcessFile, Text("pid 7\n")), 0);
  EXPECT_EQ(ReadFile(tmp.File(kProcessFile)), "pid 7\n");
  EXPECT_THAT(DirEntries(tmp.path()), ElementsAre(kProcessFile));
}

TEST(WriteRecordAt, ReturnsTheErrnoAndLeavesNoTmpFile) {
  testing::TempDir tmp;
  ASSERT_TRUE(tmp.ok());
  const std::string gone = tmp.File("gone");
  const std::string blocked = tmp.File("blocked");
  ASSERT_EQ(mkdir(gone.c_str(), 0755), 0);
  ASSERT_EQ(mkdir(blocked.c_str(), 0755), 0);
  // The record's name is taken by a non-empty directory: the rename fails.
  ASSERT_EQ(mkdir((blocked + "/" + kExitFile).c_str(), 0755), 0);
  std::ofstream(blocked + "/" + kExitFile + "/keep") << "x";
  std::ofstream(tmp.File("plain")) << "x";

  Fd gone_fd(open(gone.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  Fd blocked_fd(open(blocked.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  Fd plain_fd(open(tmp.File("plain").c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_GE(gone_fd.fd, 0);
  ASSERT_GE(blocked_fd.fd, 0);
  ASSERT_GE(plain_fd.fd, 0);
  ASSERT_EQ(rmdir(gone.c_str()), 0);  // removed while the supervisor holds it

  const SafeBuffer rec = Text("signal 9\n");
  EXPECT_EQ(WriteRecordAt(gone_fd.fd, kExitTmp, kExitFile, rec), ENOENT);
  EXPECT_EQ(WriteRecordAt(plain_fd.fd, kExitTmp, kExitFile, rec), ENOTDIR);
  EXPECT_EQ(WriteRecordAt(-1, kExitTmp, kExitFile, rec), EBADF);
  EXPECT_EQ(WriteRecordAt(blocked_fd.fd, kExitTmp, kExitFile, rec), EISDIR);
  EXPECT_THAT(DirEntries(blocked), ElementsAre(kExitFile));  // the tmp file is gone
  EXPECT_THAT(DirEntries(blocked + "/" + kExitFile), ElementsAre("keep"));
}

TEST(WriteRecordAt, ReturnsEaccesInAReadOnlyDirectory) {
  testing::TempDir tmp;
  ASSERT_TRUE(tmp.ok());
  const std::string ro = tmp.File("ro");
  ASSERT_EQ(mkdir(ro.c_str(), 0555), 0);
  ASSERT_EQ(chmod(ro.c_str(), 0555), 0);  // whatever the umask
  Fd dir(open(ro.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_GE(dir.fd, 0);
  // Root ignores the mode, so the write runs in a child as nobody then.
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (geteuid() == 0 && (setgroups(0, nullptr) != 0 || setgid(65534) != 0 || setuid(65534) != 0))
      _exit(200);
    _exit(WriteRecordAt(dir.fd, kExitTmp, kExitFile, Text("exit_code 0\n")));
  }
  int st = 0;
  ASSERT_EQ(waitpid(child, &st, 0), child);
  ASSERT_TRUE(WIFEXITED(st));
  ASSERT_NE(WEXITSTATUS(st), 200) << "could not drop root";
  EXPECT_EQ(WEXITSTATUS(st), EACCES);
  EXPECT_TRUE(DirEntries(ro).empty());
  chmod(ro.c_str(), 0755);  // so TempDir can clean up without root
}

}  // namespace
}  // namespace greenlight::agent::supervisor
