// A full disk under the store: the real greenlightd on a 4 MiB tmpfs that
// the test fills. Writes must answer UNAVAILABLE with a clear message and
// write nothing, reads keep working, writes work again once space returns,
// nothing acknowledged is lost across kill -9, and the file passes
// PRAGMA integrity_check. Root ignores file permissions, so a read-only
// file would not fail a write here; a real full filesystem does.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/reliability/reliability_util.h"
#include "tests/testing/daemon_process.h"
#include "tests/testing/temp_dir.h"

namespace greenlight {
namespace {

using namespace ::greenlight::testing;  // NOLINT
using ::testing::AnyOf;
using ::testing::HasSubstr;
namespace v1 = ::greenlight::v1;

// A size-limited tmpfs mounted for the test, unmounted at the end.
class SmallFilesystem {
 public:
  SmallFilesystem(const std::string& dir, const std::string& size) : dir_(dir) {
    std::filesystem::create_directories(dir_);
    std::string cmd =
        absl::StrCat("mount -t tmpfs -o size=", size, " tmpfs '", dir_, "' 2>/dev/null");
    mounted_ = std::system(cmd.c_str()) == 0;
  }
  ~SmallFilesystem() {
    if (!mounted_) return;
    for (int i = 0; i < 50; ++i) {
      if (std::system(absl::StrCat("umount '", dir_, "' 2>/dev/null").c_str()) == 0) return;
      usleep(100 * 1000);
    }
    std::system(absl::StrCat("umount -l '", dir_, "'").c_str());
  }
  bool mounted() const { return mounted_; }

 private:
  std::string dir_;
  bool mounted_ = false;
};

// Writes zeros to `path` until the filesystem refuses (ENOSPC).
int64_t FillUp(const std::string& path) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return -1;
  std::string block(64 * 1024, '\0');
  int64_t total = 0;
  for (size_t chunk = block.size(); chunk > 0; chunk /= 2) {
    for (;;) {
      ssize_t n = write(fd, block.data(), chunk);
      if (n <= 0) break;
      total += n;
    }
  }
  fsync(fd);
  close(fd);
  return errno == ENOSPC ? total : -1;
}

grpc::Status Submit(v1::Scheduler::Stub* stub, const std::string& rid,
                    v1::SubmitJobResponse* resp) {
  grpc::ClientContext ctx;
  ctx.set_deadline(In(std::chrono::seconds(30)));
  v1::SubmitJobRequest req;
  *req.mutable_spec() = ReliabilityJob("ml-research", rid);
  return stub->SubmitJob(&ctx, req, resp);
}

TEST(DiskFull, WritesAnswerUnavailableReadsWorkAndTheServerRecoversWithASoundStore) {
  TempDir dir;
  SmallFilesystem fs(dir.File("fs"), "4m");
  if (!fs.mounted())
    GTEST_SKIP()
        << "cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN): disk-full test skipped";
  const std::string db = dir.File("fs/gl.db");
  DaemonProcess d({.store = db, .flags = {"--time_scale=0.000001"}, .log_file = dir.File("d.log")});
  ASSERT_TRUE(d.Start()) << d.log();
  auto stub = v1::Scheduler::NewStub(d.channel());
  auto budgets = v1::Budgets::NewStub(d.channel());

  std::map<std::string, std::string> acked;  // request_id -> job id
  for (int i = 0; i < 20; ++i) {
    v1::SubmitJobResponse resp;
    std::string rid = absl::StrCat("before/", i);
    ASSERT_TRUE(Submit(stub.get(), rid, &resp).ok());
    acked[rid] = resp.job().id();
  }

  // Fill the disk. SQLite may still have room inside its WAL, so writes
  // succeed until the WAL must grow: submit until the first refusal.
  ASSERT_GT(FillUp(dir.File("fs/filler")), 0);
  std::set<std::string> refused;
  grpc::Status first_refusal;
  for (int i = 0; i < 5000 && refused.empty(); ++i) {
    v1::SubmitJobResponse resp;
    std::string rid = absl::StrCat("full/", i);
    grpc::Status st = Submit(stub.get(), rid, &resp);
    if (st.ok()) {
      acked[rid] = resp.job().id();
    } else {
      refused.insert(rid);
      first_refusal = st;
    }
  }
  ASSERT_FALSE(refused.empty()) << "no write failed on a full disk";
  EXPECT_EQ(first_refusal.error_code(), grpc::StatusCode::UNAVAILABLE)
      << first_refusal.error_message();
  EXPECT_THAT(first_refusal.error_message(), AnyOf(HasSubstr("disk is full"), HasSubstr("full")));
  EXPECT_THAT(first_refusal.error_message(), HasSubstr("nothing was written"));
  std::printf("full disk refused a write after %zu acknowledged: %s\n", acked.size(),
              first_refusal.error_message().c_str());

  // While full: more writes are refused the same way, reads all work.
  for (int i = 0; i < 5; ++i) {
    v1::SubmitJobResponse resp;
    std::string rid = absl::StrCat("still-full/", i);
    grpc::Status st = Submit(stub.get(), rid, &resp);
    if (st.ok()) {
      acked[rid] = resp.job().id();  // a checkpoint may have freed WAL room
    } else {
      EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << st.error_message();
      refused.insert(rid);
    }
  }
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(In(std::chrono::seconds(30)));
    v1::GetJobRequest req;
    req.set_job_id(acked.begin()->second);
    v1::GetJobResponse resp;
    EXPECT_TRUE(stub->GetJob(&ctx, req, &resp).ok());
  }
  std::vector<v1::Job> jobs;
  EXPECT_TRUE(ListAllJobs(stub.get(), &jobs));
  v1::Usage usage;
  EXPECT_TRUE(GetUsage(budgets.get(), "ml-research", &usage).ok());
  EXPECT_TRUE(HealthServing(d.channel(), std::chrono::seconds(10)));

  // Space returns: writes work again, without a restart.
  std::filesystem::remove(dir.File("fs/filler"));
  bool recovered = false;
  for (int i = 0; i < 50 && !recovered; ++i) {
    v1::SubmitJobResponse resp;
    std::string rid = absl::StrCat("after/", i);
    grpc::Status st = Submit(stub.get(), rid, &resp);
    if (st.ok()) {
      acked[rid] = resp.job().id();
      recovered = true;
    } else {
      refused.insert(rid);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  EXPECT_TRUE(recovered) << "writes did not recover once space returned";
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(In(std::chrono::seconds(30)));
    v1::CancelJobRequest req;
    req.set_job_id(acked["before/0"]);
    v1::CancelJobResponse resp;
    EXPECT_TRUE(stub->CancelJob(&ctx, req, &resp).ok());
  }

  // Crash, restart: the acknowledged are there once, the refused are not.
  d.Kill();
  ASSERT_TRUE(d.Start()) << d.log();
  stub = v1::Scheduler::NewStub(d.channel());
  budgets = v1::Budgets::NewStub(d.channel());
  jobs.clear();
  ASSERT_TRUE(ListAllJobs(stub.get(), &jobs));
  std::map<std::string, int> count;
  for (const auto& j : jobs) count[j.spec().request_id()]++;
  for (const auto& [rid, id] : acked) EXPECT_EQ(count[rid], 1) << rid;
  for (const auto& rid : refused) EXPECT_EQ(count[rid], 0) << rid << " was refused but stored";
  EXPECT_EQ(jobs.size(), acked.size());
  ExpectLedgerInvariants(budgets.get(), db);
  d.Kill();
  EXPECT_EQ(IntegrityCheck(db), "ok");
}

}  // namespace
}  // namespace greenlight
