// MetricsServer: serves /metrics over HTTP, picks a port for port 0, and turns
// a taken port or a bad address into a clear absl::Status instead of an abort.
#include "services/metrics/metrics_server.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/gauge.h"
#include "services/metrics/scheduler_metrics.h"

namespace greenlight::metrics {
namespace {

using ::testing::HasSubstr;

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

}  // namespace
}  // namespace greenlight::metrics
