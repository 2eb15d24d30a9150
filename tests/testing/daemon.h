// Starts the real greenlightd binary for integration tests: a free loopback
// port, a temporary store, the demo config; kills it at destruction even when
// the test fails.
#pragma once

#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/net.h"
#include "greenlight/v1/budgets.grpc.pb.h"
#include "greenlight/v1/inventory.grpc.pb.h"
#include "greenlight/v1/scheduler.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace greenlight::testing {

inline std::string RepoRoot() {
  const char* r = std::getenv("GREENLIGHT_ROOT");
  return r ? r : std::filesystem::current_path().string();
}
inline std::string BinDir() {
  const char* b = std::getenv("GREENLIGHT_BIN");
  return b ? b : (std::filesystem::current_path() / "build").string();
}

// A temporary directory removed at destruction.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "greenlight-XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class Daemon {
 public:
  // `store` is the SQLite path (kept across restarts); extra flags appended.
  Daemon(std::string store, std::vector<std::string> extra = {})
      : store_(std::move(store)), extra_(std::move(extra)) {}
  ~Daemon() { Kill(); }

  // Starts and waits until Ping answers (up to 30 s). Returns false on failure.
  bool Start() {
    grpc_port_ = *PickFreePort();
    std::string bin = absl::StrCat(BinDir(), "/services/scheduler/greenlightd");
    std::vector<std::string> args = {
        bin,
        absl::StrCat("--config=", RepoRoot(), "/deploy/config/demo.yaml"),
        absl::StrCat("--grpc_address=127.0.0.1:", grpc_port_),
        "--metrics_address=off",
        absl::StrCat("--store=", store_),
        "--log_level=warn"};
    for (const auto& e : extra_) args.push_back(e);
    pid_ = fork();
    if (pid_ == 0) {
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    for (int i = 0; i < 300; ++i) {
      // A fresh channel per try: a failed connect would otherwise back off for seconds.
      channel_ = grpc::CreateChannel(address(), grpc::InsecureChannelCredentials());
      auto stub = greenlight::v1::Scheduler::NewStub(channel_);
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(200));
      greenlight::v1::PingRequest req;
      greenlight::v1::PingResponse resp;
      if (stub->Ping(&ctx, req, &resp).ok()) return true;
      int status;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }
  // SIGKILL: no chance to flush anything.
  void Kill() { Signal(SIGKILL); }
  // SIGTERM and wait; returns the exit status.
  int Terminate() { return Signal(SIGTERM); }
  std::string address() const { return absl::StrCat("127.0.0.1:", grpc_port_); }
  std::shared_ptr<grpc::Channel> channel() const { return channel_; }
  pid_t pid() const { return pid_; }

 private:
  int Signal(int sig) {
    if (pid_ <= 0) return -1;
    kill(pid_, sig);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }
  std::string store_;
  std::vector<std::string> extra_;
  int grpc_port_ = 0;
  pid_t pid_ = -1;
  std::shared_ptr<grpc::Channel> channel_;
};

}  // namespace greenlight::testing
