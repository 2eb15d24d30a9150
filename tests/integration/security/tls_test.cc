// gRPC over TLS and mutual TLS against the real greenlightd, with a CA and
// certificates made by the test (openssl CLI), and certificate rotation
// without restart: replaced files are served to new connections.
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/daemon_process.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/test_pki.h"

namespace greenlight {
namespace {

using ::greenlight::testing::DaemonProcess;
using ::greenlight::testing::FreshChannel;
using ::greenlight::testing::TempDir;
using ::testing::HasSubstr;
namespace v1 = ::greenlight::v1;

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

using Pki = ::greenlight::testing::TestPki;

std::shared_ptr<grpc::ChannelCredentials> TrustOnly(const Pki& pki, const std::string& ca,
                                                    const std::string& client = "") {
  grpc::SslCredentialsOptions o;
  o.pem_root_certs = pki.Pem(ca);
  if (!client.empty()) {
    o.pem_cert_chain = pki.Pem(client);
    o.pem_private_key = pki.Key(client);
  }
  return grpc::SslCredentials(o);
}

// Ping over a fresh connection; on success *serial is the server
// certificate's serial number as seen by the client.
grpc::Status PingFresh(const std::string& address, std::shared_ptr<grpc::ChannelCredentials> creds,
                       long* serial = nullptr) {
  auto stub = v1::Scheduler::NewStub(FreshChannel(address, creds));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1::PingResponse resp;
  grpc::Status st = stub->Ping(&ctx, v1::PingRequest(), &resp);
  if (st.ok() && serial) {
    *serial = -1;
    auto pems = ctx.auth_context()->FindPropertyValues("x509_pem_cert");
    if (!pems.empty()) {
      std::string pem(pems[0].data(), pems[0].size());
      BIO* b = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
      X509* x = PEM_read_bio_X509(b, nullptr, nullptr, nullptr);
      if (x) *serial = ASN1_INTEGER_get(X509_get_serialNumber(x));
      X509_free(x);
      BIO_free(b);
    }
  }
  return st;
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(dir_.ok());
    if (!testing::HaveOpensslCli()) GTEST_SKIP() << "openssl CLI not installed";
    ASSERT_TRUE(pki_.MakeRotationSet()) << pki_.Log();
    std::filesystem::copy_file(pki_.File("gen1.pem"), pki_.File("server.pem"));
    std::filesystem::copy_file(pki_.File("gen1.key"), pki_.File("server.key"));
  }
  std::vector<std::string> TlsFlags(bool mtls) {
    std::vector<std::string> f = {"--tls_cert_file=" + pki_.File("server.pem"),
                                  "--tls_key_file=" + pki_.File("server.key"), "--tls_reload_s=1"};
    if (mtls) f.push_back("--tls_client_ca_file=" + pki_.File("clientca.pem"));
    return f;
  }
  TempDir dir_;
  Pki pki_{dir_.path()};
};

TEST_F(TlsTest, ServesTlsWithItsCertificateAndRefusesPlaintextAndUntrustingClients) {
  DaemonProcess d({.store = dir_.File("gl.db"),
                   .flags = TlsFlags(false),
                   .log_file = dir_.File("d.log"),
                   .credentials = TrustOnly(pki_, "ca1")});
  ASSERT_TRUE(d.Start()) << d.log();
  long serial = 0;
  grpc::Status st = PingFresh(d.address(), TrustOnly(pki_, "ca1"), &serial);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(serial, 1001);
  // A real call over TLS (open mode in the demo config).
  {
    auto stub = v1::Scheduler::NewStub(d.channel());
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::ListJobsResponse resp;
    EXPECT_TRUE(stub->ListJobs(&ctx, v1::ListJobsRequest(), &resp).ok());
  }
  EXPECT_FALSE(PingFresh(d.address(), grpc::InsecureChannelCredentials()).ok())
      << "a plaintext client must not get an answer";
  EXPECT_FALSE(PingFresh(d.address(), TrustOnly(pki_, "ca2")).ok())
      << "a client that does not trust the server's CA must fail the handshake";
  // Without mTLS a client certificate is not needed, and not harmful.
  EXPECT_TRUE(PingFresh(d.address(), TrustOnly(pki_, "ca1", "alice")).ok());
}

TEST_F(TlsTest, MutualTlsRequiresAClientCertificateFromTheClientCa) {
  DaemonProcess d({.store = dir_.File("gl.db"),
                   .flags = TlsFlags(true),
                   .log_file = dir_.File("d.log"),
                   .credentials = TrustOnly(pki_, "ca1", "alice")});
  ASSERT_TRUE(d.Start()) << d.log();
  EXPECT_TRUE(PingFresh(d.address(), TrustOnly(pki_, "ca1", "alice")).ok());
  EXPECT_FALSE(PingFresh(d.address(), TrustOnly(pki_, "ca1")).ok()) << "no client certificate";
  EXPECT_FALSE(PingFresh(d.address(), TrustOnly(pki_, "ca1", "mallory")).ok())
      << "client certificate from a CA the server does not trust";
  EXPECT_FALSE(PingFresh(d.address(), grpc::InsecureChannelCredentials()).ok());
}

TEST_F(TlsTest, ReplacedCertificateIsServedToNewConnectionsWithoutRestart) {
  DaemonProcess d({.store = dir_.File("gl.db"),
                   .flags = TlsFlags(false),
                   .log_file = dir_.File("d.log"),
                   .credentials = TrustOnly(pki_, "ca1")});
  ASSERT_TRUE(d.Start()) << d.log();
  pid_t pid = d.pid();
  long serial = 0;
  ASSERT_TRUE(PingFresh(d.address(), TrustOnly(pki_, "ca1"), &serial).ok());
  ASSERT_EQ(serial, 1001);
  ASSERT_FALSE(PingFresh(d.address(), TrustOnly(pki_, "ca2")).ok());

  // Rotate: new files written aside, then renamed over the served ones (how
  // cert-manager and kubelet swap them: atomically, file by file).
  std::filesystem::copy_file(pki_.File("gen2.key"), pki_.File("server.key.new"));
  std::filesystem::copy_file(pki_.File("gen2.pem"), pki_.File("server.pem.new"));
  std::filesystem::rename(pki_.File("server.key.new"), pki_.File("server.key"));
  std::filesystem::rename(pki_.File("server.pem.new"), pki_.File("server.pem"));

  // The watcher re-reads every second; allow a generous minute.
  bool rotated = false;
  auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!rotated && std::chrono::steady_clock::now() < give_up) {
    rotated = PingFresh(d.address(), TrustOnly(pki_, "ca2"), &serial).ok();
    if (!rotated) std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  ASSERT_TRUE(rotated) << "the new certificate was never served\n" << d.log();
  EXPECT_EQ(serial, 2002);
  EXPECT_EQ(d.pid(), pid);
  EXPECT_TRUE(d.running());
  EXPECT_FALSE(PingFresh(d.address(), TrustOnly(pki_, "ca1")).ok())
      << "the old certificate is still served";
}

TEST_F(TlsTest, MismatchedKeyOrMissingFileIsAStartupErrorNamingTheKey) {
  struct Case {
    std::string name, cert, key, want;
  };
  for (const Case& c : std::vector<Case>{
           {"key of another cert", pki_.File("gen1.pem"), pki_.File("gen2.key"), "does not match"},
           {"missing cert", pki_.File("nope.pem"), pki_.File("gen1.key"), "tls.cert_file"},
           {"key is not PEM", pki_.File("gen1.pem"), pki_.File("gen1.ext"), "tls.key_file"},
       }) {
    std::string log = dir_.File(c.name + ".log");
    DaemonProcess d({.store = dir_.File("gl.db"),
                     .flags = {"--tls_cert_file=" + c.cert, "--tls_key_file=" + c.key},
                     .log_file = log,
                     .credentials = TrustOnly(pki_, "ca1")});
    EXPECT_FALSE(d.Start(std::chrono::seconds(20))) << c.name;
    EXPECT_TRUE(WIFEXITED(d.exit_status())) << c.name;
    EXPECT_EQ(WEXITSTATUS(d.exit_status()), 2) << c.name;
    EXPECT_THAT(Slurp(log), HasSubstr(c.want)) << c.name;
  }
}

}  // namespace
}  // namespace greenlight
