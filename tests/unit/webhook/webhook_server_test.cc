// The live webhook over TLS: AdmissionReview v1 requests as the API server
// sends them (tests/data/webhook/), a test CA made with the openssl CLI, a
// fake backend holding the ledger. Checks answers, patches, charges and
// releases, limits, and certificate reload.
#include "services/webhook/webhook_server.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/fake_admission_backend.h"

namespace greenlight::webhook {
namespace {

namespace fs = std::filesystem;
using greenlight::testing::FakeAdmissionBackend;
using nlohmann::json;
using ::testing::HasSubstr;

std::string Root() {
  const char* root = std::getenv("GREENLIGHT_ROOT");
  return root != nullptr ? root : ".";
}

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Fixture(const std::string& name) {
  std::string text = ReadFile(fs::path(Root()) / "tests/data/webhook" / name);
  EXPECT_FALSE(text.empty()) << "missing fixture " << name;
  return text;
}

json FixtureJson(const std::string& name) { return json::parse(Fixture(name)); }

void Run(const std::string& cmd) {
  int rc = std::system(cmd.c_str());
  ASSERT_EQ(rc, 0) << cmd;
}

// A temp directory with a test CA and two server certificates (CN webhook-a
// and webhook-b, SAN localhost and 127.0.0.1), removed at the end.
class TestPki {
 public:
  TestPki() {
    char tmpl[] = "/tmp/gl-webhook-test-XXXXXX";
    dir_ = mkdtemp(tmpl);
    Run(absl::StrCat("cd ", dir_,
                     " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
                     "-nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=greenlight-test-ca "
                     ">/dev/null 2>&1"));
    std::ofstream(fs::path(dir_) / "san.ext") << "subjectAltName=DNS:localhost,IP:127.0.0.1\n";
    for (const char* name : {"webhook-a", "webhook-b"}) Issue(name);
  }
  ~TestPki() { fs::remove_all(dir_); }
  void Issue(const std::string& cn) {
    Run(absl::StrCat("cd ", dir_,
                     " && openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 ",
                     "-nodes -keyout ", cn, ".key -out ", cn, ".csr -subj /CN=", cn,
                     " >/dev/null 2>&1 && openssl x509 -req -in ", cn,
                     ".csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext -out ",
                     cn, ".crt >/dev/null 2>&1"));
  }
  std::string path(const std::string& file) const { return (fs::path(dir_) / file).string(); }
  // Installs a pair as tls.crt/tls.key the way kubelet updates a Secret
  // volume: write aside, then rename into place.
  void Install(const std::string& cert_cn, const std::string& key_cn) const {
    fs::copy_file(path(cert_cn + ".crt"), path("tls.crt.new"),
                  fs::copy_options::overwrite_existing);
    fs::copy_file(path(key_cn + ".key"), path("tls.key.new"), fs::copy_options::overwrite_existing);
    fs::rename(path("tls.key.new"), path("tls.key"));
    fs::rename(path("tls.crt.new"), path("tls.crt"));
  }

 private:
  std::string dir_;
};

// Opens a verified TLS connection and returns the server certificate's CN
// ("" when the handshake or verification fails).
std::string PeerCommonName(int port, const std::string& ca_file) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_load_verify_locations(ctx, ca_file.c_str(), nullptr);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  std::string cn;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    SSL* ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    if (SSL_connect(ssl) == 1 && SSL_get_verify_result(ssl) == X509_V_OK) {
      X509* peer = SSL_get1_peer_certificate(ssl);
      char buf[256] = {0};
      X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, buf, sizeof(buf));
      cn = buf;
      X509_free(peer);
      SSL_shutdown(ssl);
    }
    SSL_free(ssl);
  }
  close(fd);
  SSL_CTX_free(ctx);
  return cn;
}

struct Reply {
  int status = 0;
  std::string body;
};

class WebhookServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_.Install("webhook-a", "webhook-a");
    backend_.AddTeam("team-vision", {.cost_budget_micros = 10'000'000'000, .gpu_quota = 64});
    backend_.AddTeam("team-nlp", {.cost_budget_micros = 100'000'000'000, .gpu_quota = 16});
    backend_.AddTeam("team-tiny", {.cost_budget_micros = 10'000'000, .gpu_quota = 8});
    backend_.AddPool({"aws/us-east-1/p4d.24xlarge", "us-east-1", "p4d.24xlarge", "A100-40GB",
                      "NVIDIA-A100-SXM4-40GB", 4'100'000, 100'000});
    backend_.AddPool({"aws/eu-north-1/p4de.24xlarge", "eu-north-1", "p4de.24xlarge", "A100-80GB",
                      "NVIDIA-A100-SXM4-80GB", 5'120'000, 10'000});
    backend_.AddPool({"gcp/europe-west4/a3-highgpu-8g", "europe-west4", "a3-highgpu-8g", "H100",
                      "NVIDIA-H100-80GB-HBM3", 11'060'000, 120'000});
    server_ = StartServer(Options());
  }

  WebhookServerOptions Options() const {
    WebhookServerOptions o;
    o.address = "127.0.0.1:0";
    o.cert_file = pki_.path("tls.crt");
    o.key_file = pki_.path("tls.key");
    o.cert_check_interval = absl::ZeroDuration();
    o.max_body_bytes = 2 << 20;
    return o;
  }

  std::unique_ptr<WebhookServer> StartServer(const WebhookServerOptions& o) {
    auto s = WebhookServer::Start(o, &backend_);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *std::move(s) : nullptr;
  }

  Reply Post(const std::string& path, const std::string& body, WebhookServer* server = nullptr) {
    httplib::SSLClient cli("127.0.0.1", (server ? server : server_.get())->port());
    cli.set_ca_cert_path(pki_.path("ca.crt").c_str());
    cli.enable_server_certificate_verification(true);
    cli.set_read_timeout(10, 0);
    auto res = cli.Post(path.c_str(), body, "application/json");
    if (!res) return Reply{-1, httplib::to_string(res.error())};
    return Reply{res->status, res->body};
  }

  // POSTs a review and returns its AdmissionReview response (checking the
  // envelope and that the uid is echoed).
  json Review(const std::string& path, const json& review) {
    Reply r = Post(path, review.dump());
    EXPECT_EQ(r.status, 200) << r.body;
    json out = json::parse(r.body, nullptr, false);
    EXPECT_EQ(out.value("apiVersion", ""), "admission.k8s.io/v1");
    EXPECT_EQ(out.value("kind", ""), "AdmissionReview");
    EXPECT_EQ(out["response"]["uid"], review["request"]["uid"]);
    return out["response"];
  }

  static json Patch(const json& response) {
    if (!response.contains("patch")) return json::array();
    EXPECT_EQ(response.value("patchType", ""), "JSONPatch");
    std::string raw;
    EXPECT_TRUE(absl::Base64Unescape(response["patch"].get<std::string>(), &raw));
    return json::parse(raw);
  }

  // /mutate then, on the patched object (uid assigned as the API server does
  // before validation), /validate: the full admission of a CREATE.
  json Create(json review, json* patched_object = nullptr) {
    json m = Review("/mutate", review);
    EXPECT_TRUE(m["allowed"].get<bool>()) << m.dump();
    json object = review["request"]["object"].patch(Patch(m));
    object["metadata"]["uid"] = "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9";
    review["request"]["object"] = object;
    json v = Review("/validate", review);
    EXPECT_TRUE(v["allowed"].get<bool>()) << v.dump();
    if (patched_object != nullptr) *patched_object = object;
    return v;
  }

  TestPki pki_;
  FakeAdmissionBackend backend_;
  std::unique_ptr<WebhookServer> server_;
};

TEST_F(WebhookServerTest, AnswersEachFixtureAsKubernetesExpects) {
  struct Case {
    std::string file;
    std::string path;
    int http;                          // expected HTTP status
    bool allowed;                      // when http == 200
    int code;                          // denial code when !allowed
    std::vector<std::string> message;  // substrings of the denial or error text
  };
  const std::vector<Case> cases = {
      {"pod-cpu-create.json", "/validate", 200, true, 0, {}},
      {"pod-cpu-create.json", "/mutate", 200, true, 0, {}},
      {"pod-from-job-create.json", "/mutate", 200, true, 0, {}},
      {"pod-from-job-create.json", "/validate", 200, true, 0, {}},
      {"pod-over-budget-create.json",
       "/validate",
       200,
       false,
       403,
       {"team-tiny", "budget", "$393.60", "ask a greenlight admin"}},
      {"pod-over-budget-create.json", "/mutate", 200, false, 403, {"budget"}},
      {"pod-cap-too-low-create.json",
       "/validate",
       200,
       false,
       403,
       {"cheapest feasible: $49.20", "cap $20.00", "raise greenlight.dev/max-cost-usd"}},
      {"pod-bad-deadline-create.json",
       "/validate",
       200,
       false,
       400,
       {"greenlight.dev/deadline", "RFC 3339"}},
      {"pod-unknown-team-create.json",
       "/validate",
       200,
       false,
       403,
       {"team-ghost", "ask a greenlight admin to create it"}},
      {"pod-typo-annotation-create.json",
       "/validate",
       200,
       false,
       400,
       {"unknown annotation greenlight.dev/max-cost", "greenlight.dev/max-cost-usd"}},
      {"pod-no-duration-create.json",
       "/mutate",
       200,
       false,
       400,
       {"greenlight.dev/duration", "greenlight.dev/reference-gpu-hours"}},
      {"malformed-truncated.json", "/validate", 400, false, 0, {"malformed AdmissionReview"}},
      {"malformed-truncated.json", "/mutate", 400, false, 0, {"malformed AdmissionReview"}},
      {"wrong-kind-deployment.json",
       "/validate",
       400,
       false,
       0,
       {"apps/v1 Deployment", "fix the rules"}},
      {"wrong-apiversion-v1beta1.json",
       "/mutate",
       400,
       false,
       0,
       {"admission.k8s.io/v1", "admissionReviewVersions"}},
      {"not-a-review-pod.json", "/validate", 400, false, 0, {"apiVersion"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.file + " " + c.path);
    size_t calls_before = backend_.calls().size();
    Reply r = Post(c.path, Fixture(c.file));
    ASSERT_EQ(r.status, c.http) << r.body;
    if (c.http != 200) {
      for (const auto& m : c.message) EXPECT_THAT(r.body, HasSubstr(m));
      EXPECT_EQ(backend_.calls().size(), calls_before) << "no backend call for a bad review";
      continue;
    }
    json resp = json::parse(r.body)["response"];
    EXPECT_EQ(resp["uid"], FixtureJson(c.file)["request"]["uid"]);
    EXPECT_EQ(resp["allowed"].get<bool>(), c.allowed) << resp.dump();
    if (!c.allowed) {
      EXPECT_EQ(resp["status"]["code"], c.code) << resp.dump();
      std::string msg = resp["status"]["message"];
      for (const auto& m : c.message) EXPECT_THAT(msg, HasSubstr(m));
      EXPECT_FALSE(resp.contains("patch")) << "a denial carries no patch";
    }
    if (c.file == "pod-cpu-create.json" || c.file == "pod-from-job-create.json") {
      EXPECT_FALSE(resp.contains("patch")) << "untouched";
      EXPECT_EQ(backend_.calls().size(), calls_before) << "no GPUs to charge";
    }
  }
  EXPECT_EQ(backend_.reserved_micros("team-tiny"), 0);
  EXPECT_TRUE(backend_.jobs().empty()) << "nothing in the table is admitted for real";
}

TEST_F(WebhookServerTest, MutatePinsTheChosenPoolAndAnnotatesTheQuote) {
  json review = FixtureJson("pod-gpu-create.json");
  json resp = Review("/mutate", review);
  ASSERT_TRUE(resp["allowed"].get<bool>()) << resp.dump();
  json ops = Patch(resp);
  // Existing annotations map: key by key, "/" escaped. No nodeSelector: whole map.
  std::vector<std::string> paths;
  for (const json& op : ops) {
    EXPECT_EQ(op["op"], "add");
    paths.push_back(op["path"]);
  }
  EXPECT_THAT(paths, ::testing::Contains("/metadata/annotations/greenlight.dev~1job-id"));
  EXPECT_THAT(paths, ::testing::Contains("/spec/nodeSelector"));

  json patched = review["request"]["object"].patch(ops);
  EXPECT_EQ(patched["spec"]["nodeSelector"],
            json({{"topology.kubernetes.io/region", "eu-north-1"},
                  {"node.kubernetes.io/instance-type", "p4de.24xlarge"},
                  {"nvidia.com/gpu.product", "NVIDIA-A100-SXM4-80GB"}}));
  const json& ann = patched["metadata"]["annotations"];
  auto jobs = backend_.jobs();
  ASSERT_EQ(jobs.size(), 1u);
  const auto& [job_id, job] = *jobs.begin();
  EXPECT_EQ(ann["greenlight.dev/job-id"], job_id);
  EXPECT_EQ(ann["greenlight.dev/request-id"],
            "k8s/team-vision/Pod/705ab4f5-6393-11e8-b7cc-42010a800002");
  EXPECT_EQ(ann["greenlight.dev/quote-cost-usd"], "61.44");
  EXPECT_EQ(ann["greenlight.dev/quote-carbon-kg"], "0.120");
  EXPECT_EQ(ann["greenlight.dev/pool"], "aws/eu-north-1/p4de.24xlarge");
  EXPECT_EQ(ann["greenlight.dev/planned-start"], "2025-06-30T08:00:00Z");
  EXPECT_TRUE(ann.contains("kubectl.kubernetes.io/last-applied-configuration"));

  // The spec the backend saw: 2 GPUs (max(init 1, trainer 2 + sidecar 0)), 6 h, caps.
  EXPECT_EQ(job.spec.team(), "team-vision");
  EXPECT_EQ(job.spec.gpus(), 2);
  EXPECT_EQ(job.spec.duration().seconds(), 6 * 3600);
  EXPECT_EQ(job.spec.max_cost_micros(), 500'000'000);
  EXPECT_THAT(job.spec.gpu_types(), ::testing::ElementsAre("A100-80GB", "H100"));
  EXPECT_EQ(backend_.reserved_micros("team-vision"), 61'440'000);
}

TEST_F(WebhookServerTest, MutateThenValidateChargesOnce) {
  json patched;
  json v = Create(FixtureJson("pod-gpu-create.json"), &patched);
  auto calls = backend_.calls();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].spec.request_id(), calls[1].spec.request_id());
  EXPECT_EQ(backend_.jobs().size(), 1u);
  EXPECT_EQ(backend_.reserved_micros("team-vision"), 61'440'000);
  ASSERT_TRUE(v.contains("warnings"));
  EXPECT_THAT(v["warnings"][0].get<std::string>(),
              HasSubstr(patched["metadata"]["annotations"]["greenlight.dev/job-id"]));

  // Validate alone (no mutating webhook installed): keyed by the object's uid,
  // still idempotent across retries.
  json review = FixtureJson("pod-gpu-create.json");
  review["request"]["object"]["metadata"]["uid"] = "11111111-2222-4333-8444-555555555555";
  for (int attempt = 0; attempt < 2; ++attempt) {
    json r = Review("/validate", review);
    EXPECT_TRUE(r["allowed"].get<bool>()) << r.dump();
  }
  EXPECT_EQ(backend_.jobs().size(), 2u);
  EXPECT_EQ(backend_.calls().back().spec.request_id(),
            "k8s/team-vision/Pod/11111111-2222-4333-8444-555555555555");
  EXPECT_EQ(backend_.reserved_micros("team-vision"), 2 * 61'440'000);
}

TEST_F(WebhookServerTest, DryRunIsAnsweredButNotCharged) {
  json review = FixtureJson("pod-gpu-create-dryrun.json");
  json m = Review("/mutate", review);
  ASSERT_TRUE(m["allowed"].get<bool>());
  json patched = review["request"]["object"].patch(Patch(m));
  EXPECT_EQ(patched["spec"]["nodeSelector"]["topology.kubernetes.io/region"], "eu-north-1");
  EXPECT_EQ(patched["metadata"]["annotations"]["greenlight.dev/quote-cost-usd"], "61.44");
  EXPECT_FALSE(patched["metadata"]["annotations"].contains("greenlight.dev/job-id"));
  json v = Review("/validate", review);
  ASSERT_TRUE(v["allowed"].get<bool>());
  EXPECT_THAT(v["warnings"][0].get<std::string>(), HasSubstr("not charged"));
  for (const auto& call : backend_.calls()) EXPECT_TRUE(call.options.dry_run);
  EXPECT_EQ(backend_.calls().size(), 2u);
  EXPECT_TRUE(backend_.jobs().empty());
  EXPECT_EQ(backend_.reserved_micros("team-vision"), 0);

  // A dry run is still denied when the real request would be.
  json over = FixtureJson("pod-over-budget-create.json");
  over["request"]["dryRun"] = true;
  json d = Review("/validate", over);
  EXPECT_FALSE(d["allowed"].get<bool>());
  EXPECT_EQ(d["status"]["code"], 403);
}

TEST_F(WebhookServerTest, DeleteReleasesTheReservationButNotOnDryRun) {
  json patched;
  Create(FixtureJson("pod-gpu-create.json"), &patched);
  std::string job_id = patched["metadata"]["annotations"]["greenlight.dev/job-id"];
  ASSERT_EQ(backend_.reserved_micros("team-vision"), 61'440'000);

  json dry = FixtureJson("pod-gpu-delete-dryrun.json");
  dry["request"]["oldObject"]["metadata"]["annotations"]["greenlight.dev/job-id"] = job_id;
  EXPECT_TRUE(Review("/validate", dry)["allowed"].get<bool>());
  EXPECT_TRUE(backend_.releases().empty());
  EXPECT_EQ(backend_.reserved_micros("team-vision"), 61'440'000);

  json del = FixtureJson("pod-gpu-delete.json");
  del["request"]["oldObject"]["metadata"]["annotations"]["greenlight.dev/job-id"] = job_id;
  json m = Review("/mutate", del);  // mutate ignores deletions
  EXPECT_TRUE(m["allowed"].get<bool>());
  EXPECT_FALSE(m.contains("patch"));
  EXPECT_TRUE(backend_.releases().empty());
  EXPECT_TRUE(Review("/validate", del)["allowed"].get<bool>());
  EXPECT_THAT(backend_.releases(), ::testing::ElementsAre(job_id));
  EXPECT_EQ(backend_.reserved_micros("team-vision"), 0);

  // Deleting something greenlight never admitted is allowed all the same.
  json unknown = FixtureJson("job-gpu-delete.json");
  json r = Review("/validate", unknown);
  EXPECT_TRUE(r["allowed"].get<bool>());
  EXPECT_EQ(backend_.releases().back(), "j-00000000000000b2");
}

TEST_F(WebhookServerTest, UpdateRechargesOnlyWhenTheJobChanged) {
  json patched;
  Create(FixtureJson("pod-gpu-create.json"), &patched);
  std::string job_id = patched["metadata"]["annotations"]["greenlight.dev/job-id"];
  size_t calls = backend_.calls().size();

  // Label change: no call, no patch.
  json relabel = FixtureJson("pod-gpu-update-labels.json");
  for (const char* which : {"object", "oldObject"}) {
    relabel["request"][which]["metadata"]["annotations"]["greenlight.dev/job-id"] = job_id;
  }
  for (const char* path : {"/mutate", "/validate"}) {
    json r = Review(path, relabel);
    EXPECT_TRUE(r["allowed"].get<bool>());
    EXPECT_FALSE(r.contains("patch"));
  }
  EXPECT_EQ(backend_.calls().size(), calls) << "unchanged job is not re-charged";

  // Cap raised: re-admitted under a new request_id, the old job released.
  json recap = FixtureJson("pod-gpu-update-caps.json");
  for (const char* which : {"object", "oldObject"}) {
    recap["request"][which]["metadata"]["annotations"]["greenlight.dev/job-id"] = job_id;
  }
  json r = Review("/validate", recap);
  ASSERT_TRUE(r["allowed"].get<bool>()) << r.dump();
  EXPECT_EQ(backend_.calls().back().spec.max_cost_micros(), 900'000'000);
  EXPECT_EQ(backend_.calls().back().spec.request_id(),
            "k8s/team-vision/Pod/8d3f2c1b-0a9e-4c7d-b6a5-f4e3d2c1b0a9@48213");
  EXPECT_THAT(backend_.releases(), ::testing::ElementsAre(job_id));
  EXPECT_EQ(backend_.jobs().size(), 2u);
  EXPECT_EQ(backend_.reserved_micros("team-vision"), 61'440'000) << "old released, new reserved";

  // Mutating a Pod update writes the new quote but never node selectors
  // (a Pod's spec is immutable).
  json m = Review("/mutate", recap);
  ASSERT_TRUE(m["allowed"].get<bool>()) << m.dump();
  EXPECT_EQ(Patch(m).dump().find("nodeSelector"), std::string::npos);
  EXPECT_NE(Patch(m).dump().find("greenlight.dev~1job-id"), std::string::npos);
}

TEST_F(WebhookServerTest, UpdatesAndDeletesOfUnreadableObjectsAreNotBlocked) {
  // A pod admitted before greenlight read its annotations carries a typo; a
  // controller removing a finalizer or adding a label must still get through.
  json relabel = FixtureJson("pod-gpu-update-labels.json");
  for (const char* which : {"object", "oldObject"}) {
    relabel["request"][which]["metadata"]["annotations"]["greenlight.dev/max-cost"] = "100";
  }
  for (const char* path : {"/mutate", "/validate"}) {
    json r = Review(path, relabel);
    EXPECT_TRUE(r["allowed"].get<bool>()) << path << " " << r.dump();
  }
  EXPECT_TRUE(backend_.calls().empty());

  // Introducing a bad value in an update is denied, naming it.
  json bad = FixtureJson("pod-gpu-update-labels.json");
  bad["request"]["object"]["metadata"]["annotations"]["greenlight.dev/deadline"] = "soon";
  json r = Review("/validate", bad);
  EXPECT_FALSE(r["allowed"].get<bool>());
  EXPECT_EQ(r["status"]["code"], 400);
  EXPECT_THAT(r["status"]["message"].get<std::string>(), HasSubstr("greenlight.dev/deadline"));

  // A deletion is never denied, even of an object greenlight cannot read.
  json del = FixtureJson("pod-gpu-delete.json");
  json& res = del["request"]["oldObject"]["spec"]["containers"][0]["resources"];
  res["limits"]["nvidia.com/gpu"] = "1.5";
  res["requests"]["nvidia.com/gpu"] = "1.5";
  EXPECT_TRUE(Review("/validate", del)["allowed"].get<bool>());
  EXPECT_TRUE(backend_.releases().empty());
}

TEST_F(WebhookServerTest, SuspendedKueueJobIsPatchedOnItsTemplateAndMayQueue) {
  json review = FixtureJson("job-gpu-create-suspended.json");
  json resp = Review("/mutate", review);
  ASSERT_TRUE(resp["allowed"].get<bool>()) << resp.dump();
  json ops = Patch(resp);
  std::vector<std::string> paths;
  for (const json& op : ops) paths.push_back(op["path"]);
  EXPECT_THAT(paths, ::testing::Contains(
                         "/spec/template/spec/nodeSelector/topology.kubernetes.io~1region"));
  EXPECT_THAT(paths, ::testing::Contains("/spec/template/metadata/annotations"));
  json job = review["request"]["object"].patch(ops);
  const json& selector = job["spec"]["template"]["spec"]["nodeSelector"];
  EXPECT_EQ(selector["cloud.google.com/compute-class"], "gpu") << "existing selector kept";
  EXPECT_EQ(selector["topology.kubernetes.io/region"], "us-east-1");
  EXPECT_EQ(selector["node.kubernetes.io/instance-type"], "p4d.24xlarge");
  std::string job_id = job["metadata"]["annotations"]["greenlight.dev/job-id"];
  EXPECT_EQ(job["spec"]["template"]["metadata"]["annotations"]["greenlight.dev/job-id"], job_id);
  EXPECT_EQ(job["spec"]["template"]["metadata"]["labels"]["app"], "llm");

  auto call = backend_.calls().back();
  EXPECT_EQ(call.spec.gpus(), 32) << "8 GPUs x parallelism 4";
  EXPECT_TRUE(call.options.allow_queueing) << "suspended Jobs can wait for quota";
  EXPECT_DOUBLE_EQ(call.spec.reference_gpu_hours(), 2048);
  EXPECT_TRUE(call.spec.checkpointable());
  EXPECT_EQ(call.spec.max_carbon_mg(), 250'000'000);
  EXPECT_EQ(backend_.jobs().at(job_id).result.pending_reason, "QUOTA");
}

TEST_F(WebhookServerTest, JobWithoutMapsGetsThemWhole) {
  json review = FixtureJson("job-gpu-create.json");
  json resp = Review("/mutate", review);
  ASSERT_TRUE(resp["allowed"].get<bool>()) << resp.dump();
  json job = review["request"]["object"].patch(Patch(resp));
  EXPECT_EQ(job["spec"]["template"]["spec"]["nodeSelector"]["topology.kubernetes.io/region"],
            "us-east-1");
  EXPECT_EQ(job["metadata"]["annotations"]["greenlight.dev/quote-cost-usd"], "16.40");
  EXPECT_EQ(job["spec"]["template"]["metadata"]["annotations"]["greenlight.dev/quote-cost-usd"],
            "16.40");
  auto call = backend_.calls().back();
  EXPECT_EQ(call.spec.gpus(), 2) << "1 GPU x min(parallelism 2, completions 4)";
  EXPECT_EQ(call.spec.duration().seconds(), 7200) << "from spec.activeDeadlineSeconds";
  EXPECT_FALSE(call.options.allow_queueing);

  // Pods the Job controller creates from that template are covered by the Job.
  json pod = FixtureJson("pod-from-job-create.json");
  pod["request"]["object"]["metadata"]["annotations"] =
      job["spec"]["template"]["metadata"]["annotations"];
  size_t calls = backend_.calls().size();
  EXPECT_TRUE(Review("/validate", pod)["allowed"].get<bool>());
  EXPECT_EQ(backend_.calls().size(), calls);
}

TEST_F(WebhookServerTest, ConfiguredLabelsChooseTeamAndSelectorKeys) {
  WebhookServerOptions o = Options();
  o.labels.team_label = "example.com/team";
  o.labels.region_label = "example.com/region";
  o.labels.instance_label = "";  // not pinned
  auto server = StartServer(o);
  ASSERT_NE(server, nullptr);
  json review = FixtureJson("pod-gpu-create.json");
  review["request"]["object"]["metadata"]["labels"]["example.com/team"] = "team-nlp";
  Reply r = Post("/mutate", review.dump(), server.get());
  ASSERT_EQ(r.status, 200) << r.body;
  json resp = json::parse(r.body)["response"];
  ASSERT_TRUE(resp["allowed"].get<bool>()) << resp.dump();
  json pod = review["request"]["object"].patch(Patch(resp));
  EXPECT_EQ(pod["spec"]["nodeSelector"],
            json({{"example.com/region", "eu-north-1"},
                  {"nvidia.com/gpu.product", "NVIDIA-A100-SXM4-80GB"}}));
  EXPECT_EQ(backend_.calls().back().spec.team(), "team-nlp");
  EXPECT_EQ(backend_.reserved_micros("team-nlp"), 61'440'000);
  EXPECT_EQ(backend_.reserved_micros("team-vision"), 0);
}

TEST_F(WebhookServerTest, BackendFailureIsAnHttpErrorSoFailurePolicyApplies) {
  backend_.FailNextAdmit(absl::UnavailableError("store is locked"));
  Reply r = Post("/validate", Fixture("pod-gpu-create.json"));
  EXPECT_EQ(r.status, 500);
  EXPECT_THAT(r.body, HasSubstr("store is locked"));
  EXPECT_TRUE(backend_.jobs().empty());
}

TEST_F(WebhookServerTest, HugeAndHostileBodiesAreRefusedWithoutHarm) {
  // ~1 MiB object (20k env vars) under the 2 MiB limit: answered.
  json review = FixtureJson("pod-gpu-create.json");
  json& env = review["request"]["object"]["spec"]["containers"][0]["env"];
  for (int i = 0; i < 20000; ++i) {
    env.push_back({{"name", absl::StrCat("HPARAM_", i)}, {"value", std::string(20, 'x')}});
  }
  std::string big = review.dump();
  ASSERT_GT(big.size(), 1u << 20);
  json resp = json::parse(Post("/validate", big).body)["response"];
  EXPECT_TRUE(resp["allowed"].get<bool>());

  // Over the limit: 413 before parsing.
  for (int i = 20000; i < 60000; ++i) {
    env.push_back({{"name", absl::StrCat("HPARAM_", i)}, {"value", std::string(20, 'x')}});
  }
  size_t calls = backend_.calls().size();
  EXPECT_EQ(Post("/validate", review.dump()).status, 413);
  EXPECT_EQ(backend_.calls().size(), calls);

  // Nesting that would blow a recursive parser's stack.
  std::string deep = std::string(200000, '[') + std::string(200000, ']');
  Reply r = Post("/validate", deep);
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("nested deeper"));

  for (const std::string& body :
       {std::string(""), std::string("null"), std::string("[]"), std::string("\"x\""),
        std::string("{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\"}"),
        std::string("{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\","
                    "\"request\":{\"uid\":\"u\",\"kind\":{\"kind\":\"Pod\",\"version\":\"v1\","
                    "\"group\":\"\"},\"operation\":\"CREATE\",\"namespace\":\"n\","
                    "\"object\":{\"metadata\":7}}}"),
        std::string("{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\","
                    "\"request\":{\"uid\":\"u\",\"kind\":{\"kind\":\"Pod\",\"version\":\"v1\","
                    "\"group\":\"\"},\"operation\":\"EXPLODE\",\"namespace\":\"n\"}}")}) {
    Reply bad = Post("/validate", body);
    EXPECT_TRUE(bad.status == 400 ||
                (bad.status == 200 && !json::parse(bad.body)["response"]["allowed"].get<bool>()))
        << body << " -> " << bad.status << " " << bad.body;
  }
  // Still serving.
  EXPECT_EQ(Post("/validate", Fixture("pod-cpu-create.json")).status, 200);
}

TEST_F(WebhookServerTest, ConcurrentAdmissionsAreEachChargedOnce) {
  json base = FixtureJson("pod-gpu-create.json");
  std::atomic<int> allowed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 5; ++i) {
        json review = base;
        std::string uid = absl::StrCat("00000000-0000-4000-8000-0000000", t, "00", i);
        review["request"]["uid"] = uid;
        review["request"]["object"]["metadata"]["uid"] = uid;
        Reply r = Post("/validate", review.dump());
        if (r.status == 200 && json::parse(r.body)["response"]["allowed"].get<bool>()) ++allowed;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(allowed.load(), 20);
  EXPECT_EQ(backend_.jobs().size(), 20u);
  EXPECT_EQ(backend_.reserved_micros("team-vision"), 20 * 61'440'000);
}

TEST_F(WebhookServerTest, ReloadsTheCertificateWhenTheFilesChange) {
  const std::string ca = pki_.path("ca.crt");
  EXPECT_EQ(PeerCommonName(server_->port(), ca), "webhook-a");
  pki_.Install("webhook-b", "webhook-b");
  EXPECT_EQ(PeerCommonName(server_->port(), ca), "webhook-b");
  EXPECT_EQ(server_->cert_reloads(), 1);
  // A half-written rotation (cert of one pair, key of another) keeps the
  // last good pair and is picked up once complete.
  pki_.Install("webhook-a", "webhook-b");
  EXPECT_EQ(PeerCommonName(server_->port(), ca), "webhook-b");
  pki_.Install("webhook-a", "webhook-a");
  EXPECT_EQ(PeerCommonName(server_->port(), ca), "webhook-a");
  EXPECT_EQ(server_->cert_reloads(), 2);
  // Requests still verify against the CA after the rotation.
  EXPECT_EQ(Post("/validate", Fixture("pod-cpu-create.json")).status, 200);
}

TEST_F(WebhookServerTest, HealthzAndUnknownPaths) {
  httplib::SSLClient cli("127.0.0.1", server_->port());
  cli.set_ca_cert_path(pki_.path("ca.crt").c_str());
  cli.enable_server_certificate_verification(true);
  auto h = cli.Get("/healthz");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  auto nf = cli.Post("/admit", "{}", "application/json");
  ASSERT_TRUE(nf);
  EXPECT_EQ(nf->status, 404);
}

TEST_F(WebhookServerTest, StartChecksAddressPortAndCertificate) {
  WebhookServerOptions taken = Options();
  taken.address = absl::StrCat("127.0.0.1:", server_->port());
  auto s = WebhookServer::Start(taken, &backend_);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.status().message()), HasSubstr("port in use"));

  WebhookServerOptions bad_addr = Options();
  bad_addr.address = "no-port";
  EXPECT_EQ(WebhookServer::Start(bad_addr, &backend_).status().code(),
            absl::StatusCode::kInvalidArgument);

  WebhookServerOptions missing = Options();
  missing.cert_file = pki_.path("absent.crt");
  s = WebhookServer::Start(missing, &backend_);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.status().message()), HasSubstr("absent.crt"));

  WebhookServerOptions mismatch = Options();
  mismatch.key_file = pki_.path("webhook-b.key");
  s = WebhookServer::Start(mismatch, &backend_);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.status().message()), HasSubstr("does not match"));

  EXPECT_EQ(WebhookServer::Start(Options(), nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(WebhookServerOptionsFromConfig, TakesAddressTlsAndLabelsFromTheConfig) {
  Config c;
  c.webhook_address = "0.0.0.0:8443";
  c.tls.cert_file = "/etc/greenlight/tls/tls.crt";
  c.tls.key_file = "/etc/greenlight/tls/tls.key";
  c.webhook_team_label = "example.com/team";
  c.webhook_gpu_label = "cloud.google.com/gke-accelerator";
  WebhookServerOptions o = WebhookServerOptionsFromConfig(c);
  EXPECT_EQ(o.address, "0.0.0.0:8443");
  EXPECT_EQ(o.cert_file, "/etc/greenlight/tls/tls.crt");
  EXPECT_EQ(o.key_file, "/etc/greenlight/tls/tls.key");
  EXPECT_EQ(o.labels.team_label, "example.com/team");
  EXPECT_EQ(o.labels.gpu_label, "cloud.google.com/gke-accelerator");
  EXPECT_EQ(o.labels.region_label, "topology.kubernetes.io/region");
}

// deploy/k8s ships this file in its ConfigMap: it must load with the real
// parser (unknown keys are fatal at start) and turn the webhook on with TLS.
TEST(DeployK8sConfig, LoadsWithTheRealParserAndEnablesTheWebhook) {
  auto c = LoadConfig(Root() + "/deploy/k8s/config/greenlightd.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->auth_mode, "token");
  EXPECT_TRUE(c->tls.enabled());
  WebhookServerOptions o = WebhookServerOptionsFromConfig(*c);
  EXPECT_EQ(o.address, "0.0.0.0:8443");
  EXPECT_EQ(o.cert_file, "/etc/greenlight/tls/tls.crt");
  EXPECT_EQ(o.key_file, "/etc/greenlight/tls/tls.key");
  EXPECT_EQ(o.labels.region_label, "topology.kubernetes.io/region");
}

}  // namespace
}  // namespace greenlight::webhook
