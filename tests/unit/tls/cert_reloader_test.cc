// tls::CertReloader behind tls::NewHttpsServer: every handshake gets the
// certificate on disk now, a half-written rotation keeps the last good set,
// and with a client CA only clients holding a certificate it signed get an
// answer, also after the CA file itself is replaced.
#include "common/tls/cert_reloader.h"

#include <httplib.h>

#include <memory>
#include <string>
#include <thread>

#include "common/tls/https_server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/test_pki.h"
#include "tests/testing/tls_client.h"

namespace greenlight::tls {
namespace {

using ::greenlight::testing::HttpsGet;
using ::greenlight::testing::HttpsRequest;
using ::greenlight::testing::HttpsResult;
using ::greenlight::testing::TempDir;
using ::greenlight::testing::TestPki;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

class CertReloaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(dir_.ok());
    if (!testing::HaveOpensslCli()) GTEST_SKIP() << "openssl CLI not installed";
    ASSERT_TRUE(pki_.Ca("ca1") && pki_.Ca("ca2") && pki_.Ca("clientca") && pki_.Ca("clientca2") &&
                pki_.Ca("rogueca"))
        << pki_.Log();
    ASSERT_TRUE(pki_.Leaf("srv1", "ca1", true, 1001) && pki_.Leaf("srv2", "ca2", true, 2002) &&
                pki_.Leaf("alice", "clientca", false, 3003) &&
                pki_.Leaf("bob", "clientca2", false, 3004) &&
                pki_.Leaf("mallory", "rogueca", false, 4004))
        << pki_.Log();
    pki_.Install("srv1");
    pki_.Replace("clientca.pem", "client-ca.pem");
  }
  void TearDown() override {
    if (server_ != nullptr) server_->stop();
    if (thread_.joinable()) thread_.join();
  }

  CertFiles Files(bool mutual) const {
    return {.cert_file = pki_.File("cert.pem"),
            .key_file = pki_.File("key.pem"),
            .client_ca_file = mutual ? pki_.File("client-ca.pem") : ""};
  }

  // Serves GET /ok over HTTPS with `certs` on a free loopback port.
  void Serve(std::unique_ptr<CertReloader> certs) {
    certs_ = std::move(certs);
    server_ = NewHttpsServer(certs_.get());
    ASSERT_TRUE(server_->is_valid());
    server_->Get("/ok", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("ok\n", "text/plain");
    });
    auto addr = ParseListenAddress("test address", "127.0.0.1:0", "127.0.0.1:0");
    ASSERT_TRUE(addr.ok()) << addr.status();
    auto port = ServeInBackground(*server_, *addr, "test address", "127.0.0.1:0", &thread_);
    ASSERT_TRUE(port.ok()) << port.status();
    port_ = *port;
  }

  // GET /ok trusting `ca`, presenting client leaf `client` ("" = none).
  HttpsResult Get(const std::string& ca, const std::string& client = "") const {
    HttpsRequest r{.port = port_, .path = "/ok", .ca_file = pki_.File(ca + ".pem")};
    return HttpsGet(r.WithClient(dir_.path(), client));
  }

  TempDir dir_;
  TestPki pki_{dir_.path()};
  std::unique_ptr<CertReloader> certs_;
  std::unique_ptr<httplib::SSLServer> server_;
  std::thread thread_;
  int port_ = 0;
};

TEST_F(CertReloaderTest, CreateRefusesUnusableFilesNamingListenerKeyAndFile) {
  struct Case {
    std::string name;
    CertFiles files;
    std::string want;
  };
  const std::string cert = pki_.File("srv1.pem"), key = pki_.File("srv1.key");
  for (const Case& c : std::vector<Case>{
           {"no files", {}, "metrics needs TLS: tls.cert_file and tls.key_file"},
           {"missing cert", {pki_.File("nope.pem"), key, ""}, "metrics.cert_file "},
           {"cert not PEM", {pki_.File("srv1.ext"), key, ""}, "no PEM certificate"},
           {"key not PEM", {cert, pki_.File("srv1.ext"), ""}, "metrics.key_file "},
           {"key of another cert", {cert, pki_.File("srv2.key"), ""}, "does not match"},
           {"missing client CA", {cert, key, pki_.File("nope.pem")}, "metrics.client_ca_file "},
           {"client CA not PEM", {cert, key, pki_.File("srv1.ext")}, "client_ca_file"},
       }) {
    auto r = CertReloader::Create("metrics", c.files, absl::ZeroDuration());
    ASSERT_FALSE(r.ok()) << c.name;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << c.name;
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(c.want)) << c.name;
  }
}

TEST_F(CertReloaderTest, CheckCertFilesNamesTheConfigKeyOfTheBadFile) {
  const std::string cert = pki_.File("srv1.pem"), key = pki_.File("srv1.key");
  EXPECT_TRUE(CheckCertFiles("tls", {cert, key, ""}).ok());
  absl::Status mismatch = CheckCertFiles("tls", {cert, pki_.File("srv2.key"), ""});
  EXPECT_EQ(mismatch.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(mismatch.message()), HasSubstr("tls.key_file "));
  EXPECT_THAT(std::string(mismatch.message()), HasSubstr("does not match tls.cert_file "));
  EXPECT_THAT(std::string(CheckCertFiles("tls", {pki_.File("nope.pem"), key, ""}).message()),
              HasSubstr("tls.cert_file "));
}

TEST_F(CertReloaderTest, EveryHandshakeGetsTheFilesOnDiskAndAHalfWrittenSetKeepsTheLastGood) {
  auto certs = CertReloader::Create("test", Files(false), absl::ZeroDuration());
  ASSERT_TRUE(certs.ok()) << certs.status();
  Serve(*std::move(certs));
  HttpsResult r = Get("ca1");
  ASSERT_EQ(r.response.status, 200) << r.error;
  EXPECT_EQ(r.peer_serial, 1001);
  EXPECT_THAT(r.client_ca_names, IsEmpty()) << "no client certificate is asked for";

  pki_.Install("srv2");
  r = Get("ca2");
  ASSERT_EQ(r.response.status, 200) << r.error;
  EXPECT_EQ(r.peer_serial, 2002);
  EXPECT_FALSE(Get("ca1").handshake) << "the old certificate is still served";
  EXPECT_EQ(certs_->reloads(), 1);

  // The certificate of one pair with the key of the other: not loaded.
  pki_.Replace("srv1.pem", "cert.pem");
  EXPECT_EQ(Get("ca2").peer_serial, 2002);
  EXPECT_FALSE(certs_->CheckNow());
  pki_.Replace("srv1.key", "key.pem");
  EXPECT_EQ(Get("ca1").peer_serial, 1001);
  EXPECT_EQ(certs_->reloads(), 2);
}

TEST_F(CertReloaderTest, TheCheckIntervalLimitsHowOftenFilesAreLookedAt) {
  auto certs = CertReloader::Create("test", Files(false), absl::Hours(1));
  ASSERT_TRUE(certs.ok()) << certs.status();
  Serve(*std::move(certs));
  pki_.Install("srv2");
  EXPECT_EQ(Get("ca1").peer_serial, 1001) << "not checked again within the interval";
  EXPECT_TRUE(certs_->CheckNow());
  EXPECT_EQ(Get("ca2").peer_serial, 2002);
}

TEST_F(CertReloaderTest, MutualTlsAnswersOnlyClientsWithACertificateFromTheCurrentClientCa) {
  auto certs = CertReloader::Create("test", Files(true), absl::ZeroDuration());
  ASSERT_TRUE(certs.ok()) << certs.status();
  EXPECT_TRUE((*certs)->mutual());
  Serve(*std::move(certs));

  HttpsResult r = Get("ca1", "alice");
  ASSERT_EQ(r.response.status, 200) << r.error;
  EXPECT_THAT(r.client_ca_names, ElementsAre("clientca")) << "the CA a client should pick from";
  EXPECT_EQ(Get("ca1").response.status, 0) << "no client certificate";
  EXPECT_EQ(Get("ca1", "mallory").response.status, 0) << "a certificate from another CA";
  EXPECT_EQ(Get("ca1", "bob").response.status, 0) << "a CA that is not (yet) the client CA";

  // Rotating the client CA: bob's CA replaces alice's for new connections.
  pki_.Replace("clientca2.pem", "client-ca.pem");
  r = Get("ca1", "bob");
  ASSERT_EQ(r.response.status, 200) << r.error;
  EXPECT_THAT(r.client_ca_names, ElementsAre("clientca2"));
  EXPECT_EQ(Get("ca1", "alice").response.status, 0);
  EXPECT_EQ(certs_->reloads(), 1);

  // An empty CA file (half-written) keeps the previous CA.
  pki_.Replace("srv1.ext", "client-ca.pem");
  std::filesystem::resize_file(pki_.File("client-ca.pem"), 0);
  EXPECT_EQ(Get("ca1", "bob").response.status, 200);
  EXPECT_EQ(certs_->reloads(), 1);
}

}  // namespace
}  // namespace greenlight::tls
