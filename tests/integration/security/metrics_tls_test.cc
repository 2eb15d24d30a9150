// /metrics over HTTPS and mutual TLS against the real greenlightd
// (--metrics_tls with the tls.* files), with certificates made by the test
// (openssl CLI): Prometheus' view of the endpoint, plain HTTP and untrusting
// clients refused, and certificate rotation without restart.
#include <filesystem>
#include <fstream>
#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/daemon_process.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/test_pki.h"
#include "tests/testing/tls_client.h"

namespace greenlight {
namespace {

using ::greenlight::testing::DaemonProcess;
using ::greenlight::testing::HttpsGet;
using ::greenlight::testing::HttpsRequest;
using ::greenlight::testing::HttpsResult;
using ::greenlight::testing::PlainHttpGet;
using ::greenlight::testing::TempDir;
using ::greenlight::testing::TestPki;
using ::testing::HasSubstr;
using ::testing::Not;

class MetricsTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(dir_.ok());
    if (!testing::HaveOpensslCli()) GTEST_SKIP() << "openssl CLI not installed";
    ASSERT_TRUE(pki_.MakeRotationSet()) << pki_.Log();
    pki_.Install("gen1");  // cert.pem / key.pem
    metrics_port_ = *PickFreePort();
  }

  // greenlightd with gRPC on TLS and /metrics on HTTPS (mutual with `mtls`).
  DaemonProcess::Options Daemon(bool mtls, std::vector<std::string> extra = {}) {
    std::vector<std::string> f = {"--tls_cert_file=" + pki_.File("cert.pem"),
                                  "--tls_key_file=" + pki_.File("key.pem"),
                                  "--tls_reload_s=1",
                                  absl::StrCat("--metrics_address=127.0.0.1:", metrics_port_),
                                  "--metrics_tls",
                                  "--log_level=info"};
    if (mtls) f.push_back("--tls_client_ca_file=" + pki_.File("clientca.pem"));
    for (auto& e : extra) f.push_back(std::move(e));
    grpc::SslCredentialsOptions o;
    o.pem_root_certs = Slurp(pki_.File("ca1.pem"));
    if (mtls) {
      o.pem_cert_chain = Slurp(pki_.File("alice.pem"));
      o.pem_private_key = Slurp(pki_.File("alice.key"));
    }
    return {.store = dir_.File("gl.db"),
            .flags = std::move(f),
            .log_file = dir_.File("d.log"),
            .credentials = grpc::SslCredentials(o)};
  }

  // GET /metrics trusting `ca`, presenting client leaf `client` ("" = none).
  HttpsResult Scrape(const std::string& ca, const std::string& client = "") const {
    HttpsRequest r{.port = metrics_port_, .ca_file = pki_.File(ca + ".pem")};
    return HttpsGet(r.WithClient(dir_.path(), client));
  }

  static std::string Slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  TempDir dir_;
  TestPki pki_{dir_.path()};
  int metrics_port_ = 0;
};

TEST_F(MetricsTlsTest, ServesHttpsWithTheCaAndRefusesPlainHttpAndUntrustingClients) {
  DaemonProcess d(Daemon(false));
  ASSERT_TRUE(d.Start()) << d.log();
  HttpsResult r = Scrape("ca1");
  ASSERT_EQ(r.response.status, 200) << r.error << "\n" << d.log();
  EXPECT_EQ(r.peer_serial, 1001);
  EXPECT_THAT(r.response.headers["content-type"], HasSubstr("text/plain; version=0.0.4"));
  EXPECT_THAT(r.response.body, HasSubstr("greenlight_build_info{"));
  EXPECT_THAT(r.response.body, HasSubstr("greenlight_team_cost_budget_usd{"));

  const std::string plain = PlainHttpGet(metrics_port_);
  EXPECT_THAT(plain, Not(HasSubstr("greenlight_"))) << "plain HTTP must get no metrics";
  EXPECT_THAT(plain, Not(HasSubstr(" 200 ")));
  HttpsResult untrusting = Scrape("ca2");
  EXPECT_FALSE(untrusting.handshake) << "a client not trusting the CA must fail the handshake";
  EXPECT_EQ(untrusting.response.status, 0);

  EXPECT_THAT(d.log(), HasSubstr("msg=\"metrics serving over HTTPS\""));
  EXPECT_THAT(d.log(), HasSubstr(absl::StrCat("url=https://127.0.0.1:", metrics_port_)));
  EXPECT_THAT(d.log(), Not(HasSubstr("INSECURE: /metrics")));
}

TEST_F(MetricsTlsTest, MutualTlsRequiresAClientCertificateFromTheClientCa) {
  DaemonProcess d(Daemon(true));
  ASSERT_TRUE(d.Start()) << d.log();
  HttpsResult r = Scrape("ca1", "alice");
  ASSERT_EQ(r.response.status, 200) << r.error << "\n" << d.log();
  EXPECT_THAT(r.response.body, HasSubstr("greenlight_build_info{"));
  EXPECT_EQ(Scrape("ca1").response.status, 0) << "no client certificate";
  EXPECT_EQ(Scrape("ca1", "mallory").response.status, 0) << "a certificate from another CA";
  EXPECT_THAT(PlainHttpGet(metrics_port_), Not(HasSubstr("greenlight_")));
  EXPECT_THAT(d.log(), HasSubstr("tls=mtls"));
}

TEST_F(MetricsTlsTest, ReplacedCertificateIsServedToNewScrapesWithoutRestart) {
  DaemonProcess d(Daemon(false));
  ASSERT_TRUE(d.Start()) << d.log();
  const pid_t pid = d.pid();
  ASSERT_EQ(Scrape("ca1").peer_serial, 1001);

  // Rotate as cert-manager and the kubelet do: written aside, renamed in.
  pki_.Install("gen2");

  // Checked at most every --tls_reload_s (1 s); allow a generous minute.
  HttpsResult r;
  auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < give_up) {
    r = Scrape("ca2");
    if (r.response.status == 200) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  ASSERT_EQ(r.response.status, 200) << "the new certificate was never served\n" << d.log();
  EXPECT_EQ(r.peer_serial, 2002);
  EXPECT_THAT(r.response.body, HasSubstr("greenlight_build_info{"));
  EXPECT_FALSE(Scrape("ca1").handshake) << "the old certificate is still served";
  EXPECT_EQ(d.pid(), pid);
  EXPECT_TRUE(d.running());
  EXPECT_THAT(d.log(), HasSubstr("metrics: certificate reloaded"));
}

TEST_F(MetricsTlsTest, MetricsTlsWithoutTlsFilesIsAStartupErrorNamingTheKey) {
  DaemonProcess d(
      {.store = dir_.File("gl.db"),
       .flags = {absl::StrCat("--metrics_address=127.0.0.1:", metrics_port_), "--metrics_tls"},
       .log_file = dir_.File("d.log")});
  EXPECT_FALSE(d.Start(std::chrono::seconds(20)));
  EXPECT_TRUE(WIFEXITED(d.exit_status()));
  EXPECT_EQ(WEXITSTATUS(d.exit_status()), 2);
  EXPECT_THAT(d.log(), HasSubstr("server.metrics_tls: needs tls.cert_file and tls.key_file"));
}

TEST_F(MetricsTlsTest, PlainMetricsOffLoopbackAreLoggedAsInsecure) {
  // Plain HTTP on all interfaces (gRPC keeps TLS): allowed, but said loudly.
  DaemonProcess d(
      {.store = dir_.File("gl.db"),
       .flags = {absl::StrCat("--metrics_address=0.0.0.0:", metrics_port_), "--log_level=info"},
       .log_file = dir_.File("d.log")});
  ASSERT_TRUE(d.Start()) << d.log();
  EXPECT_THAT(PlainHttpGet(metrics_port_), HasSubstr("greenlight_build_info{"));
  EXPECT_THAT(d.log(), HasSubstr("msg=\"metrics serving over plain HTTP\""));
  EXPECT_THAT(d.log(), HasSubstr("INSECURE: /metrics is plain HTTP on a non-loopback address"));

  // On loopback plain HTTP is the demo's default, and not warned about.
  d.Kill();
  std::filesystem::remove(dir_.File("d.log"));
  DaemonProcess local(
      {.store = dir_.File("gl2.db"),
       .flags = {absl::StrCat("--metrics_address=127.0.0.1:", metrics_port_), "--log_level=info"},
       .log_file = dir_.File("d.log")});
  ASSERT_TRUE(local.Start()) << local.log();
  EXPECT_THAT(local.log(), HasSubstr("metrics serving over plain HTTP"));
  EXPECT_THAT(local.log(), Not(HasSubstr("INSECURE: /metrics")));
}

}  // namespace
}  // namespace greenlight
