// Starts the real greenlightd for security and reliability tests: any flags,
// any channel credentials (TLS, mTLS), stderr kept in a log file, the memory
// (RSS) of the process readable, and SIGKILL at destruction even when the test
// fails or dies (PR_SET_PDEATHSIG). tests/testing/daemon.h is the plain variant.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/net.h"
#include "greenlight/v1/scheduler.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace greenlight::testing {

inline std::string GreenlightRoot() {
  const char* r = std::getenv("GREENLIGHT_ROOT");
  return r ? r : std::filesystem::current_path().string();
}
inline std::string GreenlightBin() {
  const char* b = std::getenv("GREENLIGHT_BIN");
  return b ? b : (std::filesystem::current_path() / "build").string();
}

// Resident set size of a process in KiB (VmRSS), -1 if unknown.
inline int64_t RssKib(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtoll(line.c_str() + 6, nullptr, 10);
  }
  return -1;
}

// Memory bounds of tests grow by this under sanitizers (scripts/sanitize.sh
// sets GREENLIGHT_SANITIZED): shadow memory, redzones and quarantine.
inline bool Sanitized() { return std::getenv("GREENLIGHT_SANITIZED") != nullptr; }
inline int64_t MemoryBoundScale() { return Sanitized() ? 4 : 1; }

// A line of /proc/PID/status as a number ("Threads", "VmRSS"), -1 if unknown.
inline int64_t ProcStatus(pid_t pid, const std::string& key) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) == 0)
      return std::strtoll(line.c_str() + key.size() + 1, nullptr, 10);
  }
  return -1;
}

// A channel that never shares its connection with other channels, so that a
// test sees a fresh TLS handshake per channel.
inline std::shared_ptr<grpc::Channel> FreshChannel(
    const std::string& address, std::shared_ptr<grpc::ChannelCredentials> creds) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 500);
  return grpc::CreateCustomChannel(address, creds, args);
}

class DaemonProcess {
 public:
  struct Options {
    std::string store;               // SQLite path (kept across restarts)
    std::vector<std::string> flags;  // extra flags
    std::string config;              // default: deploy/config/demo.yaml
    std::string log_file;            // stderr goes here ("" = inherited)
    // Used to wait for readiness (Ping needs no token) and by channel().
    std::shared_ptr<grpc::ChannelCredentials> credentials;
  };
  explicit DaemonProcess(Options o) : o_(std::move(o)) {
    if (o_.config.empty()) o_.config = GreenlightRoot() + "/deploy/config/demo.yaml";
    if (!o_.credentials) o_.credentials = grpc::InsecureChannelCredentials();
  }
  ~DaemonProcess() { Kill(); }
  DaemonProcess(const DaemonProcess&) = delete;
  DaemonProcess& operator=(const DaemonProcess&) = delete;

  // Starts on a fresh free port and waits until Ping answers (up to
  // `timeout`). False if the process exited or never answered.
  bool Start(std::chrono::seconds timeout = std::chrono::seconds(60)) {
    Kill();
    port_ = *PickFreePort();
    std::vector<std::string> args = {GreenlightBin() + "/services/scheduler/greenlightd",
                                     "--config=" + o_.config,
                                     absl::StrCat("--grpc_address=127.0.0.1:", port_),
                                     "--metrics_address=off",
                                     "--store=" + o_.store,
                                     "--log_level=warn"};
    for (const auto& f : o_.flags) args.push_back(f);
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (!o_.log_file.empty()) {
        int fd = open(o_.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) dup2(fd, 2);
      }
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    auto give_up = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < give_up) {
      channel_ = FreshChannel(address(), o_.credentials);
      auto stub = greenlight::v1::Scheduler::NewStub(channel_);
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
      greenlight::v1::PingResponse resp;
      if (stub->Ping(&ctx, greenlight::v1::PingRequest(), &resp).ok()) return true;
      int status;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        exit_status_ = status;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }
  // SIGKILL: no chance to flush anything.
  int Kill() { return Signal(SIGKILL); }
  // SIGTERM and wait; returns the wait status.
  int Terminate() { return Signal(SIGTERM); }
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  int port() const { return port_; }
  int exit_status() const { return exit_status_; }
  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }
  // The channel Start() connected with.
  std::shared_ptr<grpc::Channel> channel() const { return channel_; }
  int64_t rss_kib() const { return pid_ > 0 ? RssKib(pid_) : -1; }
  std::string log() const {
    std::ifstream in(o_.log_file);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

 private:
  int Signal(int sig) {
    if (pid_ <= 0) return -1;
    kill(pid_, sig);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    exit_status_ = status;
    return status;
  }
  Options o_;
  int port_ = 0;
  pid_t pid_ = -1;
  int exit_status_ = 0;
  std::shared_ptr<grpc::Channel> channel_;
};

// Attaches "authorization: Bearer <secret>" to a call (nothing if empty).
inline void SetToken(grpc::ClientContext* ctx, const std::string& secret,
                     std::chrono::milliseconds deadline = std::chrono::seconds(30)) {
  if (!secret.empty()) ctx->AddMetadata("authorization", "Bearer " + secret);
  ctx->set_deadline(std::chrono::system_clock::now() + deadline);
}

}  // namespace greenlight::testing
