// The agent's state-dir files: atomic writes, bounded reads, private
// directories that refuse symlinks, the job id rule.
#include "services/agent/state_files.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "tests/testing/status_testing.h"
#include "tests/testing/temp_dir.h"

namespace greenlight::agent {
namespace {

using ::greenlight::testing::TempDir;
using ::testing::HasSubstr;

mode_t ModeOf(const std::string& path) {
  struct stat st;
  EXPECT_EQ(lstat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

TEST(StateFiles, WriteFileAtomicReplacesWholeWithItsModeAndLeavesNoTmp) {
  TempDir dir;
  ASSERT_OK(WriteFileAtomic(dir.path(), "rec", "first\n"));
  ASSERT_OK(WriteFileAtomic(dir.path(), "rec", "second\n"));
  auto text = ReadSmallFile(dir.File("rec"), 1024);
  ASSERT_OK(text.status());
  EXPECT_EQ(*text, "second\n");
  EXPECT_EQ(ModeOf(dir.File("rec")), 0600u);
  EXPECT_FALSE(std::filesystem::exists(dir.File("rec.tmp")));
  ASSERT_OK(WriteFileAtomic(dir.path(), "pub", "x", 0644));
  EXPECT_EQ(ModeOf(dir.File("pub")), 0644u);
}

TEST(StateFiles, WriteIntoAMissingDirFailsNamingTheFile) {
  TempDir dir;
  absl::Status s = WriteFileAtomic(dir.File("nope"), "rec", "x");
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("nope/rec.tmp"));
}

TEST(StateFiles, ReadSmallFileIsBoundedAndSaysWhenAFileIsMissing) {
  TempDir dir;
  std::ofstream(dir.File("big")) << std::string(10'000, 'a');
  auto big = ReadSmallFile(dir.File("big"), 9'999);
  EXPECT_EQ(big.status().code(), absl::StatusCode::kDataLoss) << big.status();
  auto exact = ReadSmallFile(dir.File("big"), 10'000);
  ASSERT_OK(exact.status());
  EXPECT_EQ(exact->size(), 10'000u);
  EXPECT_EQ(ReadSmallFile(dir.File("absent"), 10).status().code(), absl::StatusCode::kNotFound);
}

TEST(StateFiles, MakeDirSetsItsModeDespiteTheUmaskAndRefusesSymlinks) {
  TempDir dir;
  const mode_t old = umask(077);
  bool created = false;
  ASSERT_OK(MakeDir(dir.File("jobs"), 0711, &created));
  umask(old);
  EXPECT_TRUE(created);
  EXPECT_EQ(ModeOf(dir.File("jobs")), 0711u);
  ASSERT_OK(MakeDir(dir.File("jobs"), 0711, &created));
  EXPECT_FALSE(created) << "it existed";
  ASSERT_EQ(symlink(dir.File("jobs").c_str(), dir.File("link").c_str()), 0);
  absl::Status s = MakeDir(dir.File("link"), 0700);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("symlinks are refused"));
}

TEST(StateFiles, JobIdsAreSafePathElements) {
  for (const char* ok : {"j-0123abcd", "A.b_c-d", "x"}) EXPECT_TRUE(ValidJobId(ok)) << ok;
  for (const std::string& bad :
       {std::string(""), std::string("."), std::string(".."), std::string("a/b"),
        std::string("a b"), std::string(129, 'x'), std::string("nul\0x", 5)}) {
    EXPECT_FALSE(ValidJobId(bad)) << bad;
    EXPECT_EQ(ValidateJobId(bad).code(), absl::StatusCode::kInvalidArgument);
  }
  EXPECT_TRUE(ValidJobId(std::string(128, 'x')));
  EXPECT_THAT(std::string(ValidateJobId("a/b").message()), HasSubstr("[A-Za-z0-9._-]"));
}

}  // namespace
}  // namespace greenlight::agent
