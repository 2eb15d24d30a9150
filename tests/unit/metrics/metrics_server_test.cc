// MetricsServer: serves /metrics over HTTP or HTTPS (optionally mutual TLS),
// picks a port for port 0, and turns a taken port, a bad address or an
// unusable certificate into a clear absl::Status instead of an abort.
#include "services/metrics/metrics_server.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdlib>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/gauge.h"
#include "services/metrics/scheduler_metrics.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/test_pki.h"
#include "tests/testing/tls_client.h"

namespace greenlight::metrics {
namespace {

using ::greenlight::testing::HttpsGet;
using ::greenlight::testing::HttpsRequest;
using ::greenlight::testing::HttpsResult;
using ::greenlight::testing::PlainHttpGet;
using ::greenlight::testing::TempDir;
using ::greenlight::testing::TestPki;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

size_t Append(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// GET http://127.0.0.1:port/path; returns the HTTP status (0 on transport error).
long HttpGet(int port, const std::string& path, std::string* body) {
  CURL* curl = curl_easy_init();
  const std::string url = absl::StrCat("http://127.0.0.1:", port, path);
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Append);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L);
  long code = 0;
  if (curl_easy_perform(curl) == CURLE_OK) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_cleanup(curl);
  return code;
}

// A listening loopback socket on a kernel-chosen port, closed on destruction.
class Listener {
 public:
  explicit Listener(bool reuse_port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    const int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    // gRPC binds like this: a second SO_REUSEPORT bind would silently succeed.
    if (reuse_port) setsockopt(fd_, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    listen(fd_, 4);
    socklen_t len = sizeof(addr);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~Listener() { close(fd_); }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

TEST(MetricsServer, PortZeroPicksAFreePortAndServesTheRegistry) {
  auto registry = std::make_shared<prometheus::Registry>();
  SchedulerMetrics metrics(*registry, "test-version");
  metrics.RecordAdmission("ml");
  auto server = MetricsServer::Start("127.0.0.1:0", registry);
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_GT((*server)->port(), 0);
  EXPECT_EQ((*server)->address(), absl::StrCat("127.0.0.1:", (*server)->port()));
  std::string body;
  ASSERT_EQ(HttpGet((*server)->port(), "/metrics", &body), 200);
  EXPECT_THAT(body, HasSubstr("greenlight_build_info{version=\"test-version\"} 1"));
  EXPECT_THAT(body, HasSubstr("greenlight_admissions_total{team=\"ml\"} 1"));
}

TEST(MetricsServer, TakenPortIsAClearErrorNotAnAbort) {
  for (bool reuse_port : {false, true}) {
    Listener taken(reuse_port);
    const std::string address = absl::StrCat("127.0.0.1:", taken.port());
    auto server = MetricsServer::Start(address, std::make_shared<prometheus::Registry>());
    ASSERT_FALSE(server.ok()) << "reuse_port=" << reuse_port;
    EXPECT_EQ(server.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(std::string(server.status().message()),
                HasSubstr(absl::StrCat("metrics address ", address, ": port in use")));
  }
}

TEST(MetricsServer, SecondServerOnTheSamePortFailsAndTheFirstKeepsServing) {
  auto registry = std::make_shared<prometheus::Registry>();
  auto first = MetricsServer::Start("127.0.0.1:0", registry);
  ASSERT_TRUE(first.ok()) << first.status();
  const int port = (*first)->port();
  auto second = MetricsServer::Start(absl::StrCat("127.0.0.1:", port), registry);
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(std::string(second.status().message()), HasSubstr("port in use"));
  std::string body;
  EXPECT_EQ(HttpGet(port, "/metrics", &body), 200);
}

TEST(MetricsServer, PortIsFreeAgainAfterTheServerIsDestroyed) {
  auto registry = std::make_shared<prometheus::Registry>();
  auto first = MetricsServer::Start("127.0.0.1:0", registry);
  ASSERT_TRUE(first.ok()) << first.status();
  const int port = (*first)->port();
  std::string body;
  ASSERT_EQ(HttpGet(port, "/metrics", &body), 200);  // leaves a TIME_WAIT connection
  first->reset();
  auto again = MetricsServer::Start(absl::StrCat("127.0.0.1:", port), registry);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ((*again)->port(), port);
}

TEST(MetricsServer, RejectsMalformedAddressesNamingTheAddress) {
  struct Case {
    std::string address;
    std::string why;
  };
  for (const Case& c : std::vector<Case>{
           {"9464", "no port"},
           {"127.0.0.1:", "port must be 0..65535"},
           {"127.0.0.1:65536", "port must be 0..65535"},
           {"127.0.0.1:-1", "port must be 0..65535"},
           {"127.0.0.1:12ab", "port must be 0..65535"},
           {"example.com:9464", "host must be an IP address or localhost"},
           {"[::g]:9464", "not an IPv6 address"},
       }) {
    auto server = MetricsServer::Start(c.address, std::make_shared<prometheus::Registry>());
    ASSERT_FALSE(server.ok()) << c.address;
    EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument) << c.address;
    EXPECT_THAT(std::string(server.status().message()), HasSubstr(c.address)) << c.address;
    EXPECT_THAT(std::string(server.status().message()), HasSubstr(c.why)) << c.address;
  }
}

TEST(MetricsServer, NullRegistryIsInvalid) {
  auto server = MetricsServer::Start("127.0.0.1:0", nullptr);
  EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(MetricsServer, LocalhostMeansLoopback) {
  auto server = MetricsServer::Start("localhost:0", std::make_shared<prometheus::Registry>());
  ASSERT_TRUE(server.ok()) << server.status();
  std::string body;
  EXPECT_EQ(HttpGet((*server)->port(), "/metrics", &body), 200);
}

TEST(MetricsServer, LoopbackOnlyIsTrueForLoopbackAddressesOnly) {
  for (const auto& [address, loopback] :
       std::vector<std::pair<std::string, bool>>{{"127.0.0.1:0", true},
                                                 {"localhost:0", true},
                                                 {"[::1]:0", true},
                                                 {"0.0.0.0:0", false},
                                                 {":0", false}}) {
    auto server = MetricsServer::Start(address, std::make_shared<prometheus::Registry>());
    if (!server.ok() && address == "[::1]:0") continue;  // no IPv6 in this sandbox
    ASSERT_TRUE(server.ok()) << address << ": " << server.status();
    EXPECT_EQ((*server)->loopback_only(), loopback) << address;
    EXPECT_FALSE((*server)->https());
    EXPECT_THAT((*server)->url(), StartsWith("http://")) << address;
  }
}

TEST(MetricsServerOptionsFromConfig, MetricsTlsTakesTheTlsFilesOrIsAnError) {
  Config c;
  c.metrics_address = "0.0.0.0:9464";
  c.tls = {.cert_file = "/tls/tls.crt", .key_file = "/tls/tls.key", .client_ca_file = "/tls/ca"};
  auto plain = MetricsServerOptionsFromConfig(c, absl::Seconds(3));
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(plain->address, "0.0.0.0:9464");
  EXPECT_FALSE(plain->https())
      << "tls.* alone leaves /metrics plain: server.metrics_tls turns it on";

  c.metrics_tls = true;
  auto https = MetricsServerOptionsFromConfig(c, absl::Seconds(3));
  ASSERT_TRUE(https.ok()) << https.status();
  EXPECT_TRUE(https->https());
  EXPECT_EQ(https->tls.cert_file, "/tls/tls.crt");
  EXPECT_EQ(https->tls.key_file, "/tls/tls.key");
  EXPECT_EQ(https->tls.client_ca_file, "/tls/ca");
  EXPECT_EQ(https->cert_check_interval, absl::Seconds(3));

  c.tls = {};  // e.g. cleared by a flag after the config was parsed
  auto bad = MetricsServerOptionsFromConfig(c, absl::Seconds(3));
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("server.metrics_tls"));
}

// deploy/k8s ships this file in its ConfigMap: /metrics must be HTTPS there.
TEST(DeployK8sConfig, ServesMetricsOverHttpsWithTheServingCertificate) {
  const char* root = std::getenv("GREENLIGHT_ROOT");
  auto c = LoadConfig(std::string(root ? root : ".") + "/deploy/k8s/config/greenlightd.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  auto o = MetricsServerOptionsFromConfig(*c, absl::Seconds(5));
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_TRUE(o->https());
  EXPECT_EQ(o->address, "0.0.0.0:9464");
  EXPECT_EQ(o->tls.cert_file, "/etc/greenlight/tls/tls.crt");
}

// Decompresses a gzip body ("" on error).
std::string Gunzip(const std::string& in) {
  z_stream z{};
  if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) return "";
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  std::string out;
  char buf[16384];
  int rc = Z_OK;
  while (rc == Z_OK) {
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof(buf);
    rc = inflate(&z, Z_NO_FLUSH);
    out.append(buf, sizeof(buf) - z.avail_out);
  }
  inflateEnd(&z);
  return rc == Z_STREAM_END ? out : "";
}

class MetricsServerHttps : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(dir_.ok());
    if (!testing::HaveOpensslCli()) GTEST_SKIP() << "openssl CLI not installed";
    ASSERT_TRUE(pki_.Ca("ca") && pki_.Ca("otherca") && pki_.Ca("clientca") &&
                pki_.Leaf("server", "ca", true, 1001) &&
                pki_.Leaf("alice", "clientca", false, 3003) &&
                pki_.Leaf("mallory", "otherca", false, 4004))
        << pki_.Log();
    metrics_.RecordAdmission("ml");
  }
  MetricsServerOptions Options(bool mutual) const {
    MetricsServerOptions o;
    o.address = "127.0.0.1:0";
    o.tls = {.cert_file = pki_.File("server.pem"),
             .key_file = pki_.File("server.key"),
             .client_ca_file = mutual ? pki_.File("clientca.pem") : ""};
    return o;
  }
  HttpsResult Get(int port, const std::string& client = "",
                  std::vector<std::string> headers = {}) const {
    HttpsRequest r{.port = port, .ca_file = pki_.File("ca.pem"), .headers = std::move(headers)};
    return HttpsGet(r.WithClient(dir_.path(), client));
  }

  TempDir dir_;
  TestPki pki_{dir_.path()};
  std::shared_ptr<prometheus::Registry> registry_ = std::make_shared<prometheus::Registry>();
  SchedulerMetrics metrics_{*registry_, "test-version"};
};

TEST_F(MetricsServerHttps, ServesTheRegistryOverHttpsOnly) {
  auto server = MetricsServer::Start(Options(false), registry_);
  ASSERT_TRUE(server.ok()) << server.status();
  const int port = (*server)->port();
  EXPECT_TRUE((*server)->https());
  EXPECT_FALSE((*server)->mutual_tls());
  EXPECT_EQ((*server)->url(), absl::StrCat("https://127.0.0.1:", port, "/metrics"));

  HttpsResult r = Get(port);
  ASSERT_EQ(r.response.status, 200) << r.error;
  EXPECT_EQ(r.peer_serial, 1001);
  EXPECT_EQ(r.response.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_THAT(r.response.body, HasSubstr("greenlight_build_info{version=\"test-version\"} 1"));
  EXPECT_THAT(r.response.body, HasSubstr("greenlight_admissions_total{team=\"ml\"} 1"));

  EXPECT_EQ(Get(port, "", {}).response.status, 200) << "no client certificate needed";
  HttpsRequest other{.port = port, .path = "/other", .ca_file = pki_.File("ca.pem")};
  EXPECT_EQ(HttpsGet(other).response.status, 404);
  HttpsRequest untrusting{.port = port, .ca_file = pki_.File("otherca.pem")};
  EXPECT_FALSE(HttpsGet(untrusting).handshake) << "a client not trusting the CA fails";
  EXPECT_THAT(PlainHttpGet(port), Not(HasSubstr("greenlight_"))) << "plain HTTP gets nothing";
  std::string body;
  EXPECT_NE(HttpGet(port, "/metrics", &body), 200);
}

TEST_F(MetricsServerHttps, GzipsTheExpositionWhenTheScraperAcceptsIt) {
  auto server = MetricsServer::Start(Options(false), registry_);
  ASSERT_TRUE(server.ok()) << server.status();
  HttpsResult r = Get((*server)->port(), "", {"Accept-Encoding: gzip"});
  ASSERT_EQ(r.response.status, 200) << r.error;
  EXPECT_EQ(r.response.headers["content-encoding"], "gzip");
  EXPECT_THAT(Gunzip(r.response.body), HasSubstr("greenlight_admissions_total{team=\"ml\"} 1"));
}

TEST_F(MetricsServerHttps, MutualTlsAnswersOnlyClientsWithACertificateFromTheClientCa) {
  auto server = MetricsServer::Start(Options(true), registry_);
  ASSERT_TRUE(server.ok()) << server.status();
  const int port = (*server)->port();
  EXPECT_TRUE((*server)->mutual_tls());
  HttpsResult r = Get(port, "alice");
  ASSERT_EQ(r.response.status, 200) << r.error;
  EXPECT_THAT(r.response.body, HasSubstr("greenlight_build_info"));
  EXPECT_EQ(Get(port).response.status, 0) << "no client certificate";
  EXPECT_EQ(Get(port, "mallory").response.status, 0) << "client certificate from another CA";
}

TEST_F(MetricsServerHttps, TakenPortOrUnusableCertificateIsAClearError) {
  for (bool reuse_port : {false, true}) {
    Listener taken(reuse_port);
    MetricsServerOptions o = Options(false);
    o.address = absl::StrCat("127.0.0.1:", taken.port());
    auto server = MetricsServer::Start(o, registry_);
    ASSERT_FALSE(server.ok()) << "reuse_port=" << reuse_port;
    EXPECT_EQ(server.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(std::string(server.status().message()),
                HasSubstr(absl::StrCat("metrics address ", o.address, ": port in use")));
  }
  MetricsServerOptions missing = Options(false);
  missing.tls.cert_file = pki_.File("absent.pem");
  auto server = MetricsServer::Start(missing, registry_);
  EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(server.status().message()), HasSubstr("absent.pem"));
  MetricsServerOptions mismatch = Options(false);
  mismatch.tls.key_file = pki_.File("alice.key");
  server = MetricsServer::Start(mismatch, registry_);
  EXPECT_THAT(std::string(server.status().message()), HasSubstr("does not match"));
  MetricsServerOptions bad_ca = Options(true);
  bad_ca.tls.client_ca_file = pki_.File("absent-ca.pem");
  server = MetricsServer::Start(bad_ca, registry_);
  EXPECT_THAT(std::string(server.status().message()), HasSubstr("client_ca_file"));
}

TEST_F(MetricsServerHttps, PortIsFreeAgainAfterTheServerIsDestroyed) {
  auto first = MetricsServer::Start(Options(false), registry_);
  ASSERT_TRUE(first.ok()) << first.status();
  const int port = (*first)->port();
  ASSERT_EQ(Get(port).response.status, 200);
  first->reset();
  MetricsServerOptions again = Options(false);
  again.address = absl::StrCat("127.0.0.1:", port);
  auto second = MetricsServer::Start(again, registry_);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(Get(port).response.status, 200);
}

}  // namespace
}  // namespace greenlight::metrics
