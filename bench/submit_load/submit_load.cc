// submit_load: N concurrent clients send M SubmitJob calls (each acknowledged
// only once durable) and, in the same run, the same load of Ping calls (the
// gRPC ceiling of this server on this machine). Prints throughput, p50/p99 and
// the ratio. Every status is checked; any non-OK submit is counted and shown.
//
//   build/bench/submit_load/submit_load --clients=32 --submits=20000
//   (starts its own greenlightd from the build tree; --target=H:P uses a running one)
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "tests/testing/daemon.h"

ABSL_FLAG(int, clients, 32, "concurrent client threads");
ABSL_FLAG(int, submits, 20000, "total submits (and pings)");
ABSL_FLAG(int, channels, 4, "gRPC channels shared by the clients");
ABSL_FLAG(std::string, target, "", "host:port of a running greenlightd (default: start one)");
ABSL_FLAG(int, server_pid, 0, "with --target: greenlightd's pid, to report its CPU per call");
ABSL_FLAG(bool, scrape, true, "also run the submit load while scraping /metrics every second");

namespace v1 = greenlight::v1;

struct Result {
  double seconds = 0;
  double server_cpu_s = -1;  // greenlightd's user+system CPU during the load (-1: unknown)
  double client_cpu_s = 0;   // this process's
  std::vector<double> lat_ms;
  std::map<std::string, int> errors;
};

// User+system CPU seconds of process `pid` (0 = this process), -1 if unknown.
double CpuSeconds(pid_t pid) {
  if (pid == 0) {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6 + u.ru_stime.tv_sec +
           u.ru_stime.tv_usec / 1e6;
  }
  std::ifstream f(absl::StrCat("/proc/", pid, "/stat"));
  std::string line;
  if (pid < 0 || !std::getline(f, line)) return -1;
  // Fields after the parenthesised command: utime and stime are the 12th and 13th.
  std::vector<std::string> fields = absl::StrSplit(line.substr(line.rfind(')') + 2), ' ');
  if (fields.size() < 13) return -1;
  return (std::stod(fields[11]) + std::stod(fields[12])) / sysconf(_SC_CLK_TCK);
}

pid_t g_server_pid = -1;

template <typename Call>
Result RunLoad(const std::vector<std::shared_ptr<grpc::Channel>>& channels, int clients, int total,
               Call call) {
  Result r;
  double server0 = CpuSeconds(g_server_pid), client0 = CpuSeconds(0);
  std::atomic<int> next{0};
  std::mutex mu;
  absl::Time t0 = absl::Now();
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      auto ch = channels[c % channels.size()];
      std::vector<double> lat;
      std::map<std::string, int> errs;
      for (int i; (i = next.fetch_add(1)) < total;) {
        absl::Time s = absl::Now();
        grpc::Status st = call(ch, c, i);
        lat.push_back(absl::ToDoubleMilliseconds(absl::Now() - s));
        if (!st.ok()) errs[absl::StrCat(st.error_code(), ": ", st.error_message().substr(0, 80))]++;
      }
      std::lock_guard<std::mutex> l(mu);
      r.lat_ms.insert(r.lat_ms.end(), lat.begin(), lat.end());
      for (auto& [k, v] : errs) r.errors[k] += v;
    });
  }
  for (auto& t : threads) t.join();
  r.seconds = absl::ToDoubleSeconds(absl::Now() - t0);
  double server1 = CpuSeconds(g_server_pid);
  if (server0 >= 0 && server1 >= 0) r.server_cpu_s = server1 - server0;
  r.client_cpu_s = CpuSeconds(0) - client0;
  std::sort(r.lat_ms.begin(), r.lat_ms.end());
  return r;
}

// GET /metrics over a plain socket; returns bytes read (0 on failure).
size_t Scrape(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  size_t total = 0;
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) {
    std::string req = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (write(fd, req.data(), req.size()) > 0) {
      char buf[65536];
      ssize_t n;
      while ((n = read(fd, buf, sizeof(buf))) > 0) total += n;
    }
  }
  close(fd);
  return total;
}

double Pct(const std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
}

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  int clients = absl::GetFlag(FLAGS_clients), total = absl::GetFlag(FLAGS_submits);
  greenlight::testing::TempDir dir;
  std::unique_ptr<greenlight::testing::Daemon> daemon;
  int metrics_port = 0;
  std::string target = absl::GetFlag(FLAGS_target);
  if (target.empty()) {
    // Time at real speed so that the load, not the simulated executor, is measured.
    metrics_port = *greenlight::PickFreePort();
    daemon = std::make_unique<greenlight::testing::Daemon>(
        dir.path() + "/bench.db",
        std::vector<std::string>{"--time_scale=1",
                                 absl::StrCat("--metrics_address=127.0.0.1:", metrics_port)});
    if (!daemon->Start()) {
      std::fprintf(stderr, "submit_load: could not start greenlightd\n");
      return 1;
    }
    target = daemon->address();
    g_server_pid = daemon->pid();
  }
  if (absl::GetFlag(FLAGS_server_pid) > 0) g_server_pid = absl::GetFlag(FLAGS_server_pid);
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < absl::GetFlag(FLAGS_channels); ++i) {
    grpc::ChannelArguments args;
    args.SetInt("grpc.channel_id", i);  // distinct connections
    channels.push_back(grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args));
  }
  {
    // A team without budget limits so that every submit is admitted.
    auto budgets = v1::Budgets::NewStub(channels[0]);
    grpc::ClientContext ctx;
    v1::SetTeamRequest req;
    req.mutable_team()->set_name("bench");
    v1::SetTeamResponse resp;
    grpc::Status st = budgets->SetTeam(&ctx, req, &resp);
    if (!st.ok()) {
      std::fprintf(stderr, "SetTeam: %s\n", st.error_message().c_str());
      return 1;
    }
  }
  auto ping = [](const std::shared_ptr<grpc::Channel>& ch, int, int) {
    auto stub = v1::Scheduler::NewStub(ch);
    grpc::ClientContext ctx;
    v1::PingResponse resp;
    return stub->Ping(&ctx, v1::PingRequest(), &resp);
  };
  auto submit = [](const std::shared_ptr<grpc::Channel>& ch, int c, int i) {
    auto stub = v1::Scheduler::NewStub(ch);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    v1::SubmitJobRequest req;
    auto* s = req.mutable_spec();
    s->set_team("bench");
    s->set_name("load");
    s->set_gpus(1 + i % 4);
    s->add_gpu_types(i % 2 ? "A100" : "H100");
    s->set_reference_gpu_hours(2 + i % 7);
    s->set_request_id(absl::StrCat("load-", c, "-", i));
    v1::SubmitJobResponse resp;
    return stub->SubmitJob(&ctx, req, &resp);
  };
  // Warm up both paths.
  RunLoad(channels, clients, 200, ping);
  Result p = RunLoad(channels, clients, total, ping);
  Result s = RunLoad(channels, clients, total, submit);
  // The same load again while Prometheus-style scrapes hit /metrics every second.
  Result sc;
  std::vector<double> scrape_ms;
  if (absl::GetFlag(FLAGS_scrape) && metrics_port > 0) {
    std::atomic<bool> done{false};
    std::thread scraper([&] {
      while (!done) {
        absl::Time t = absl::Now();
        if (Scrape(metrics_port) > 0)
          scrape_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - t));
        for (int i = 0; i < 10 && !done; ++i) absl::SleepFor(absl::Milliseconds(100));
      }
    });
    auto submit2 = [&](const std::shared_ptr<grpc::Channel>& ch, int c, int i) {
      return submit(ch, c, i + total);
    };
    sc = RunLoad(channels, clients, total, submit2);
    done = true;
    scraper.join();
    std::sort(scrape_ms.begin(), scrape_ms.end());
  }
  auto line = [&](const char* name, const Result& r) {
    std::printf("%-22s %8d calls %8.0f /s   p50 %6.2f ms   p99 %6.2f ms   errors %zu\n", name,
                static_cast<int>(r.lat_ms.size()), r.lat_ms.size() / r.seconds, Pct(r.lat_ms, 0.5),
                Pct(r.lat_ms, 0.99), r.errors.size());
    // CPU per call does not depend on what else the box runs, unlike calls/s.
    if (r.server_cpu_s >= 0)
      std::printf("%-22s server CPU %6.1f us/call   client CPU %6.1f us/call\n", "",
                  1e6 * r.server_cpu_s / r.lat_ms.size(), 1e6 * r.client_cpu_s / r.lat_ms.size());
    for (auto& [k, v] : r.errors) std::printf("    %6d x %s\n", v, k.c_str());
  };
  std::printf("submit_load: %d clients, %d channels, target %s (store synchronous=full)\n", clients,
              static_cast<int>(channels.size()), target.c_str());
  line("Ping (gRPC ceiling)", p);
  line("SubmitJob (durable)", s);
  if (!sc.lat_ms.empty()) {
    line("SubmitJob + scrape 1/s", sc);
    std::printf("%-22s %8zu scrapes  p50 %6.2f ms   max %6.2f ms\n", "/metrics scrape",
                scrape_ms.size(), Pct(scrape_ms, 0.5), scrape_ms.empty() ? 0 : scrape_ms.back());
  }
  std::printf("ratio submit/ping throughput: %.2f\n",
              (s.lat_ms.size() / s.seconds) / (p.lat_ms.size() / p.seconds));
  int errors = 0;
  for (auto& [k, v] : s.errors) errors += v;
  for (auto& [k, v] : sc.errors) errors += v;
  return errors == 0 ? 0 : 3;
}
