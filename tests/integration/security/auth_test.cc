// Bearer-token authentication and team isolation, end to end: the real
// greenlightd in auth.mode=token with a bootstrap admin secret, driven over
// gRPC; restarts; the SQLite file is searched for secrets.
#include <openssl/evp.h>
#include <sqlite3.h>

#include <fstream>
#include <set>
#include <sstream>

#include "gmock/gmock.h"
#include "greenlight/v1/admin.grpc.pb.h"
#include "greenlight/v1/budgets.grpc.pb.h"
#include "greenlight/v1/inventory.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/testing/daemon_process.h"
#include "tests/testing/temp_dir.h"

namespace greenlight {
namespace {

using ::greenlight::testing::DaemonProcess;
using ::greenlight::testing::SetToken;
using ::greenlight::testing::TempDir;
using ::testing::HasSubstr;
namespace v1 = ::greenlight::v1;

constexpr char kAdminSecret[] = "bootstrap-admin-secret-0123456789abcdef";

std::string Sha256Hex(const std::string& s) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(s.data(), s.size(), md, &n, EVP_sha256(), nullptr);
  std::string out;
  for (unsigned int i = 0; i < n; ++i) out += absl::StrCat(absl::Hex(md[i], absl::kZeroPad2));
  return out;
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

v1::JobSpec Job(const std::string& team, const std::string& rid = "") {
  v1::JobSpec s;
  s.set_team(team);
  s.set_name("resnet");
  s.set_gpus(1);
  s.add_gpu_types("A100");
  s.set_reference_gpu_hours(4);
  s.set_max_cost_micros(500'000'000);
  s.set_request_id(rid);
  return s;
}

// A greenlightd in token mode plus typed calls with a given secret.
class TokenServer {
 public:
  explicit TokenServer(const TempDir& dir)
      : admin_file_(dir.File("admin.token")),
        d_({.store = dir.File("gl.db"),
            .flags = {"--auth_mode=token", "--admin_token_file=" + dir.File("admin.token"),
                      "--time_scale=1"},
            .log_file = dir.File("greenlightd.log")}) {
    std::ofstream(admin_file_) << kAdminSecret << "\n";
  }
  bool Start() {
    if (!d_.Start()) return false;
    sched_ = v1::Scheduler::NewStub(d_.channel());
    budgets_ = v1::Budgets::NewStub(d_.channel());
    admin_ = v1::Admin::NewStub(d_.channel());
    inventory_ = v1::Inventory::NewStub(d_.channel());
    return true;
  }
  DaemonProcess& daemon() { return d_; }

  grpc::Status Submit(const std::string& token, const v1::JobSpec& spec, v1::Job* out = nullptr) {
    grpc::ClientContext ctx;
    SetToken(&ctx, token);
    v1::SubmitJobRequest req;
    *req.mutable_spec() = spec;
    v1::SubmitJobResponse resp;
    grpc::Status st = sched_->SubmitJob(&ctx, req, &resp);
    if (out) *out = resp.job();
    return st;
  }
  grpc::Status Get(const std::string& token, const std::string& id, v1::Job* out = nullptr) {
    grpc::ClientContext ctx;
    SetToken(&ctx, token);
    v1::GetJobRequest req;
    req.set_job_id(id);
    v1::GetJobResponse resp;
    grpc::Status st = sched_->GetJob(&ctx, req, &resp);
    if (out) *out = resp.job();
    return st;
  }
  grpc::Status Cancel(const std::string& token, const std::string& id) {
    grpc::ClientContext ctx;
    SetToken(&ctx, token);
    v1::CancelJobRequest req;
    req.set_job_id(id);
    v1::CancelJobResponse resp;
    return sched_->CancelJob(&ctx, req, &resp);
  }
  grpc::Status List(const std::string& token, const std::string& team, std::vector<v1::Job>* out) {
    grpc::ClientContext ctx;
    SetToken(&ctx, token);
    v1::ListJobsRequest req;
    req.set_team(team);
    req.set_page_size(1000);
    v1::ListJobsResponse resp;
    grpc::Status st = sched_->ListJobs(&ctx, req, &resp);
    if (out) out->assign(resp.jobs().begin(), resp.jobs().end());
    return st;
  }
  grpc::Status Usage(const std::string& token, const std::string& team, v1::Usage* out = nullptr) {
    grpc::ClientContext ctx;
    SetToken(&ctx, token);
    v1::GetUsageRequest req;
    req.set_team(team);
    v1::GetUsageResponse resp;
    grpc::Status st = budgets_->GetUsage(&ctx, req, &resp);
    if (out) *out = resp.usage();
    return st;
  }
  grpc::Status SetTeam(const std::string& token, const std::string& team, int64_t budget_micros) {
    grpc::ClientContext ctx;
    SetToken(&ctx, token);
    v1::SetTeamRequest req;
    req.mutable_team()->set_name(team);
    req.mutable_team()->set_parent("acme");
    req.mutable_team()->set_monthly_cost_budget_micros(budget_micros);
    v1::SetTeamResponse resp;
    return budgets_->SetTeam(&ctx, req, &resp);
  }
  grpc::Status ListTeams(const std::string& token, std::set<std::string>* names) {
    grpc::ClientContext ctx;
    SetToken(&ctx, token);
    v1::ListTeamsResponse resp;
    grpc::Status st = budgets_->ListTeams(&ctx, v1::ListTeamsRequest(), &resp);
    for (const auto& t : resp.teams()) names->insert(t.name());
    return st;
  }
  grpc::Status ListPools(const std::string& token) {
    grpc::ClientContext ctx;
    SetToken(&ctx, token);
    v1::ListPoolsResponse resp;
    return inventory_->ListPools(&ctx, v1::ListPoolsRequest(), &resp);
  }
  grpc::Status CreateToken(const std::string& token, const std::string& team, bool admin,
                           v1::CreateTokenResponse* out) {
    grpc::ClientContext ctx;
    SetToken(&ctx, token);
    v1::CreateTokenRequest req;
    req.set_team(team);
    req.set_admin(admin);
    req.set_description("test");
    return admin_->CreateToken(&ctx, req, out);
  }
  grpc::Status Revoke(const std::string& token, const std::string& id) {
    grpc::ClientContext ctx;
    SetToken(&ctx, token);
    v1::RevokeTokenRequest req;
    req.set_id(id);
    v1::RevokeTokenResponse resp;
    return admin_->RevokeToken(&ctx, req, &resp);
  }
  grpc::Status ListTokens(const std::string& token, v1::ListTokensResponse* out) {
    grpc::ClientContext ctx;
    SetToken(&ctx, token);
    return admin_->ListTokens(&ctx, v1::ListTokensRequest(), out);
  }
  // Reads the stream for `for_ms`; returns its final status.
  grpc::Status Watch(const std::string& token, const std::string& team, int for_ms,
                     std::vector<v1::JobEvent>* events) {
    grpc::ClientContext ctx;
    SetToken(&ctx, token, std::chrono::milliseconds(for_ms));
    v1::WatchJobsRequest req;
    req.set_team(team);
    auto reader = sched_->WatchJobs(&ctx, req);
    v1::JobEvent e;
    while (reader->Read(&e)) events->push_back(e);
    return reader->Finish();
  }

 private:
  std::string admin_file_;
  DaemonProcess d_;
  std::unique_ptr<v1::Scheduler::Stub> sched_;
  std::unique_ptr<v1::Budgets::Stub> budgets_;
  std::unique_ptr<v1::Admin::Stub> admin_;
  std::unique_ptr<v1::Inventory::Stub> inventory_;
};

TEST(TokenAuth, NoOrBadCredentialsAreUnauthenticatedOnEveryService) {
  TempDir dir;
  TokenServer s(dir);
  ASSERT_TRUE(s.Start()) << s.daemon().log();
  for (const std::string& token :
       {std::string(), std::string("not-a-token-0123456789"), std::string(kAdminSecret) + "x"}) {
    SCOPED_TRACE("token '" + token + "'");
    EXPECT_EQ(s.Submit(token, Job("ml-research")).error_code(), grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_EQ(s.Get(token, "j-0000000000000000").error_code(), grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_EQ(s.List(token, "", nullptr).error_code(), grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_EQ(s.Usage(token, "ml-research").error_code(), grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_EQ(s.ListPools(token).error_code(), grpc::StatusCode::UNAUTHENTICATED);
    v1::ListTokensResponse tokens;
    EXPECT_EQ(s.ListTokens(token, &tokens).error_code(), grpc::StatusCode::UNAUTHENTICATED);
    std::vector<v1::JobEvent> events;
    EXPECT_EQ(s.Watch(token, "", 2000, &events).error_code(), grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_TRUE(events.empty());
  }
  // The message says how to authenticate.
  grpc::Status st = s.Submit("", Job("ml-research"));
  EXPECT_THAT(st.error_message(), HasSubstr("Bearer"));
  // Nothing was stored by any refused call.
  std::vector<v1::Job> jobs;
  ASSERT_TRUE(s.List(kAdminSecret, "", &jobs).ok());
  EXPECT_TRUE(jobs.empty());
}

TEST(TokenAuth, TeamTokensSeeAndChangeOnlyTheirOwnJobsAndUsage) {
  TempDir dir;
  TokenServer s(dir);
  ASSERT_TRUE(s.Start()) << s.daemon().log();
  v1::CreateTokenResponse ml, vision;
  ASSERT_TRUE(s.CreateToken(kAdminSecret, "ml-research", false, &ml).ok());
  ASSERT_TRUE(s.CreateToken(kAdminSecret, "vision", false, &vision).ok());
  EXPECT_EQ(ml.token().team(), "ml-research");
  EXPECT_FALSE(ml.token().admin());
  EXPECT_NE(ml.secret(), vision.secret());
  EXPECT_GE(ml.secret().size(), 32u);

  // Each team submits its own jobs; submitting for another team is refused.
  v1::Job ml_job, ml_job2, vision_job;
  ASSERT_TRUE(s.Submit(ml.secret(), Job("ml-research"), &ml_job).ok());
  ASSERT_TRUE(s.Submit(ml.secret(), Job("ml-research"), &ml_job2).ok());
  ASSERT_TRUE(s.Submit(vision.secret(), Job("vision"), &vision_job).ok());
  EXPECT_EQ(s.Submit(ml.secret(), Job("vision")).error_code(), grpc::StatusCode::PERMISSION_DENIED);

  // Get: own job OK; the other team's job is NOT_FOUND with the very message
  // an unknown id gets (no existence leak).
  EXPECT_TRUE(s.Get(ml.secret(), ml_job.id()).ok());
  grpc::Status other = s.Get(vision.secret(), ml_job.id());
  EXPECT_EQ(other.error_code(), grpc::StatusCode::NOT_FOUND);
  const std::string unknown_id = "j-00000000000000ff";
  grpc::Status unknown = s.Get(vision.secret(), unknown_id);
  EXPECT_EQ(unknown.error_code(), grpc::StatusCode::NOT_FOUND);
  std::string other_msg = other.error_message();
  other_msg.replace(other_msg.find(ml_job.id()), ml_job.id().size(), unknown_id);
  EXPECT_EQ(other_msg, unknown.error_message());

  // Cancel: another team's job is NOT_FOUND and stays untouched.
  EXPECT_EQ(s.Cancel(vision.secret(), ml_job.id()).error_code(), grpc::StatusCode::NOT_FOUND);
  v1::Job after;
  ASSERT_TRUE(s.Get(kAdminSecret, ml_job.id(), &after).ok());
  EXPECT_NE(after.state(), v1::JOB_STATE_CANCELLED);
  EXPECT_TRUE(s.Cancel(ml.secret(), ml_job2.id()).ok());

  // List: only own jobs, also when asking for nothing in particular; asking
  // for another team is refused; admin sees all.
  std::vector<v1::Job> jobs;
  ASSERT_TRUE(s.List(ml.secret(), "", &jobs).ok());
  ASSERT_EQ(jobs.size(), 2u);
  for (const auto& j : jobs) EXPECT_EQ(j.spec().team(), "ml-research");
  EXPECT_EQ(s.List(ml.secret(), "vision", nullptr).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  ASSERT_TRUE(s.List(kAdminSecret, "", &jobs).ok());
  EXPECT_EQ(jobs.size(), 3u);

  // Usage and teams: own only; the other team looks absent.
  v1::Usage u;
  ASSERT_TRUE(s.Usage(ml.secret(), "ml-research", &u).ok());
  EXPECT_GT(u.cost_reserved_micros() + u.cost_spent_micros(), 0);
  EXPECT_EQ(s.Usage(ml.secret(), "vision").error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(s.Usage(ml.secret(), "acme").error_code(), grpc::StatusCode::NOT_FOUND);
  std::set<std::string> teams;
  ASSERT_TRUE(s.ListTeams(ml.secret(), &teams).ok());
  EXPECT_EQ(teams, std::set<std::string>({"ml-research"}));

  // Watch: only own events; asking for another team is refused.
  std::vector<v1::JobEvent> events;
  grpc::Status w = s.Watch(vision.secret(), "", 1500, &events);
  EXPECT_EQ(w.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << w.error_message();
  ASSERT_FALSE(events.empty());
  std::set<std::string> seen_jobs;
  for (const auto& e : events) {
    EXPECT_EQ(e.team(), "vision");
    EXPECT_EQ(e.job().spec().team(), "vision");
    seen_jobs.insert(e.job_id());
  }
  EXPECT_EQ(seen_jobs, std::set<std::string>({vision_job.id()}));
  events.clear();
  EXPECT_EQ(s.Watch(vision.secret(), "ml-research", 1500, &events).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(events.empty());

  // Admin-only calls refuse team tokens.
  EXPECT_EQ(s.SetTeam(ml.secret(), "ml-research", 1).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  v1::CreateTokenResponse escalate;
  EXPECT_EQ(s.CreateToken(ml.secret(), "", true, &escalate).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(s.CreateToken(ml.secret(), "vision", false, &escalate).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(escalate.secret().empty());
  EXPECT_EQ(s.Revoke(ml.secret(), vision.token().id()).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  v1::ListTokensResponse listed;
  EXPECT_EQ(s.ListTokens(ml.secret(), &listed).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  // Admin can.
  EXPECT_TRUE(s.SetTeam(kAdminSecret, "ml-research", 100'000'000'000).ok());
  ASSERT_TRUE(s.ListTokens(kAdminSecret, &listed).ok());
  EXPECT_EQ(listed.tokens_size(), 2);
}

TEST(TokenAuth, RevokedTokensFailAndTokensSurviveRestartStoredOnlyHashed) {
  TempDir dir;
  std::string ml_secret, vision_secret, admin2_secret, ml_id, vision_id;
  {
    TokenServer s(dir);
    ASSERT_TRUE(s.Start()) << s.daemon().log();
    v1::CreateTokenResponse ml, vision, admin2;
    ASSERT_TRUE(s.CreateToken(kAdminSecret, "ml-research", false, &ml).ok());
    ASSERT_TRUE(s.CreateToken(kAdminSecret, "vision", false, &vision).ok());
    ASSERT_TRUE(s.CreateToken(kAdminSecret, "", true, &admin2).ok());
    ml_secret = ml.secret();
    vision_secret = vision.secret();
    admin2_secret = admin2.secret();
    ml_id = ml.token().id();
    vision_id = vision.token().id();
    // A created admin token works like the bootstrap one.
    v1::CreateTokenResponse unused;
    ASSERT_TRUE(s.CreateToken(admin2_secret, "vision", false, &unused).ok());
    ASSERT_TRUE(s.Revoke(admin2_secret, unused.token().id()).ok());

    ASSERT_TRUE(s.Submit(vision_secret, Job("vision")).ok());
    ASSERT_TRUE(s.Revoke(kAdminSecret, vision_id).ok());
    grpc::Status st = s.Submit(vision_secret, Job("vision"));
    EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_EQ(s.List(vision_secret, "", nullptr).error_code(), grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_EQ(s.Revoke(kAdminSecret, "t-nonexist").error_code(), grpc::StatusCode::NOT_FOUND);
    s.daemon().Kill();  // no clean shutdown: the WAL stays, and is searched too
    std::string bytes = Slurp(dir.File("gl.db")) + Slurp(dir.File("gl.db-wal"));
    ASSERT_FALSE(bytes.empty());
    for (const auto& secret : {ml_secret, vision_secret, admin2_secret, std::string(kAdminSecret)})
      EXPECT_EQ(bytes.find(secret), std::string::npos) << "a bearer secret is in the store file";
  }
  // Restart on the same store: tokens work, the revoked one stays revoked.
  TokenServer s(dir);
  ASSERT_TRUE(s.Start()) << s.daemon().log();
  EXPECT_TRUE(s.Submit(ml_secret, Job("ml-research")).ok());
  EXPECT_TRUE(s.List(admin2_secret, "", nullptr).ok());
  EXPECT_EQ(s.Submit(vision_secret, Job("vision")).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  v1::ListTokensResponse listed;
  ASSERT_TRUE(s.ListTokens(kAdminSecret, &listed).ok());
  int revoked = 0;
  for (const auto& t : listed.tokens()) revoked += t.revoked() ? 1 : 0;
  EXPECT_EQ(listed.tokens_size(), 4);
  EXPECT_EQ(revoked, 2);
  ASSERT_EQ(s.daemon().Terminate(), 0);

  // The tokens table holds SHA-256 hashes only.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(dir.File("gl.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr),
            SQLITE_OK);
  sqlite3_stmt* q = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT id, secret_sha256, body FROM tokens", -1, &q, nullptr),
            SQLITE_OK);
  std::map<std::string, std::string> hash_by_id;
  while (sqlite3_step(q) == SQLITE_ROW) {
    std::string id(reinterpret_cast<const char*>(sqlite3_column_text(q, 0)));
    std::string hash(reinterpret_cast<const char*>(sqlite3_column_text(q, 1)));
    std::string body(static_cast<const char*>(sqlite3_column_blob(q, 2)),
                     sqlite3_column_bytes(q, 2));
    EXPECT_EQ(hash.size(), 64u);
    for (const auto& secret : {ml_secret, vision_secret, admin2_secret}) {
      EXPECT_EQ(body.find(secret), std::string::npos);
      EXPECT_NE(hash, secret);
    }
    hash_by_id[id] = hash;
  }
  sqlite3_finalize(q);
  sqlite3_close(db);
  EXPECT_EQ(hash_by_id.size(), 4u);
  EXPECT_EQ(hash_by_id[ml_id], Sha256Hex(ml_secret));
  EXPECT_EQ(hash_by_id[vision_id], Sha256Hex(vision_secret));
  std::string bytes = Slurp(dir.File("gl.db")) + Slurp(dir.File("gl.db-wal"));
  for (const auto& secret : {ml_secret, vision_secret, admin2_secret, std::string(kAdminSecret)})
    EXPECT_EQ(bytes.find(secret), std::string::npos);
}

TEST(TokenAuth, TokenModeWithoutAdminFileStartsButOnlyStoredTokensCall) {
  TempDir dir;
  DaemonProcess d({.store = dir.File("gl.db"),
                   .flags = {"--auth_mode=token"},
                   .log_file = dir.File("greenlightd.log")});
  ASSERT_TRUE(d.Start()) << d.log();
  auto stub = v1::Scheduler::NewStub(d.channel());
  grpc::ClientContext ctx;
  SetToken(&ctx, kAdminSecret);
  v1::ListJobsResponse resp;
  EXPECT_EQ(stub->ListJobs(&ctx, v1::ListJobsRequest(), &resp).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

TEST(TokenAuth, ShortOrMissingAdminSecretFileIsAStartupError) {
  TempDir dir;
  std::ofstream(dir.File("short.token")) << "short\n";
  for (const std::string& file : {dir.File("short.token"), dir.File("missing.token")}) {
    DaemonProcess d({.store = dir.File("gl.db"),
                     .flags = {"--auth_mode=token", "--admin_token_file=" + file},
                     .log_file = dir.File("greenlightd.log")});
    EXPECT_FALSE(d.Start(std::chrono::seconds(20)));
    EXPECT_TRUE(WIFEXITED(d.exit_status()));
    EXPECT_NE(WEXITSTATUS(d.exit_status()), 0) << file;
  }
  EXPECT_THAT(Slurp(dir.File("greenlightd.log")), HasSubstr("admin_token_file"));
}

}  // namespace
}  // namespace greenlight
