// Scrape cost of greenlightd's /metrics with 1,000 teams and 100 regions:
// registry serialization and an HTTP GET through the exposer, each beside the
// same measurement on an empty registry (the peer), and the latency of the
// scheduler's metric updates while /metrics is scraped. Goal: scrape < 50 ms.
//
//   metrics_bench [--teams=1000] [--regions=100] [--reps=50] [--seconds=5]
#include <curl/curl.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "prometheus/registry.h"
#include "prometheus/text_serializer.h"
#include "services/metrics/metrics_server.h"
#include "services/metrics/scheduler_metrics.h"

namespace {

using greenlight::metrics::MetricsServer;
using greenlight::metrics::SchedulerMetrics;
using Clock = std::chrono::steady_clock;

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// CPU time of the whole process (the exposer's threads included).
double ProcessCpuMs() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

// CPU time of the calling thread: unlike wall time, not inflated when other
// processes compete for the cores.
double ThreadCpuMs() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

struct Stats {
  double p50, p99, max;
  int n;
};

Stats Summarize(std::vector<double> v) {
  if (v.empty()) return {0, 0, 0, 0};
  std::sort(v.begin(), v.end());
  auto at = [&](double q) { return v[std::min(v.size() - 1, static_cast<size_t>(q * v.size()))]; };
  return {at(0.5), at(0.99), v.back(), static_cast<int>(v.size())};
}

const std::vector<std::string>& GpuTypes() {
  static const std::vector<std::string> kTypes = {"H100", "A100-80GB", "A100", "L4", "V100"};
  return kTypes;
}

// Fills every family the daemon fills, at the requested size.
void Populate(SchedulerMetrics& m, int teams, int regions) {
  std::vector<greenlight::metrics::TeamSample> samples;
  for (int i = 0; i < teams; ++i) {
    greenlight::metrics::TeamSample t;
    t.team = absl::StrCat("team-", i);
    t.parent = absl::StrCat("org-", i % 20);
    t.cost_budget_micros = 1'000'000'000 + i;
    t.cost_spent_micros = 123'456'789 + i;
    t.cost_reserved_micros = 1'000'000;
    t.carbon_budget_mg = 500'000'000;
    t.carbon_spent_mg = 42'000'000 + i;
    t.carbon_reserved_mg = 1'000'000;
    t.cost_burn_micros_per_hour = 32e6;
    t.carbon_burn_mg_per_hour = 4.5e6;
    t.running_gpus = i % 64;
    t.gpu_quota = 64;
    t.pending_by_reason = {{"QUOTA", i % 3}, {"CAPACITY", i % 2}};
    samples.push_back(std::move(t));
    for (int k = 0; k < 3; ++k) m.RecordAdmission(samples.back().team);
    m.RecordDecision({samples.back().team, 100, 100, 120, 150});
  }
  m.SetTeams(samples);
  std::vector<greenlight::metrics::ZoneSample> zones;
  std::vector<greenlight::metrics::PriceSample> prices;
  for (int r = 0; r < regions; ++r) {
    zones.push_back({absl::StrCat("zone-", r), 300.0 + r, 600, false});
    for (const std::string& gpu : GpuTypes()) {
      prices.push_back({absl::StrCat("region-", r), gpu, 2.5 + r * 0.01});
    }
  }
  m.SetZones(zones);
  m.SetPrices(prices);
  m.SetJobsByState({{"PENDING", 10}, {"PLANNED", 5}, {"RUNNING", 100}, {"SUCCEEDED", 1000}});
  for (const char* reason : {"budget", "max_cost", "max_carbon", "deadline", "invalid_argument"}) {
    m.RecordRejection(reason);
  }
  for (int i = 0; i < 1000; ++i) {
    m.ObservePlacementSeconds(1e-4 * (i % 10));
    m.ObserveCommitSeconds(1e-3 * (i % 10));
    m.ObserveBatchSize(i % 100);
  }
}

size_t Append(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// One GET on a fresh connection. Prometheus asks for gzip, which the exposer
// (built with zlib on Debian) honours: measured both ways.
bool Get(const std::string& url, std::string* body, bool gzip = false) {
  CURL* curl = curl_easy_init();
  if (gzip) {
    curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "gzip");
    // Keep the body compressed: the process CPU time then is the server's.
    curl_easy_setopt(curl, CURLOPT_HTTP_CONTENT_DECODING, 0L);
  }
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Append);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 10000L);
  long code = 0;
  const bool ok = curl_easy_perform(curl) == CURLE_OK &&
                  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK && code == 200;
  curl_easy_cleanup(curl);
  return ok;
}

struct Fixture {
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  std::unique_ptr<SchedulerMetrics> metrics;
  std::unique_ptr<MetricsServer> server;
  std::string url;
};

std::unique_ptr<Fixture> MakeFixture(int teams, int regions) {
  auto f = std::make_unique<Fixture>();
  f->metrics = std::make_unique<SchedulerMetrics>(*f->registry, "bench");
  Populate(*f->metrics, teams, regions);
  auto server = MetricsServer::Start("127.0.0.1:0", f->registry);
  if (!server.ok()) {
    std::fprintf(stderr, "metrics_bench: %s\n", std::string(server.status().message()).c_str());
    std::exit(1);
  }
  f->server = std::move(*server);
  f->url = absl::StrCat("http://127.0.0.1:", f->server->port(), "/metrics");
  return f;
}

void Print(const char* what, const char* registry, const Stats& s, const std::string& extra) {
  std::printf("%-34s %-7s %9.3f %9.3f %9.3f %5d  %s\n", what, registry, s.p50, s.p99, s.max, s.n,
              extra.c_str());
}

int IntFlag(int argc, char** argv, const char* name, int def) {
  const std::string prefix = absl::StrCat("--", name, "=");
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], prefix.c_str(), prefix.size()) == 0)
      return std::atoi(argv[i] + prefix.size());
  }
  return def;
}

// Latency of the writer thread's metric updates (one SetTeams of every team
// and one RecordAdmission, as after a group commit) for `seconds`, while
// another thread scrapes /metrics every `scrape_every` (0 = back to back;
// negative = no scrapes).
Stats UpdateLatency(Fixture& f, int teams, int seconds, std::chrono::milliseconds scrape_every,
                    int* scrapes) {
  std::vector<greenlight::metrics::TeamSample> samples(teams);
  for (int i = 0; i < teams; ++i) {
    samples[i].team = absl::StrCat("team-", i);
    samples[i].parent = absl::StrCat("org-", i % 20);
    samples[i].cost_budget_micros = 1'000'000'000;
    samples[i].carbon_budget_mg = 500'000'000;
    samples[i].gpu_quota = 64;
    samples[i].pending_by_reason = {{"QUOTA", 1}, {"CAPACITY", 0}};
  }
  std::atomic<bool> stop{false};
  std::atomic<int> done{0};
  std::thread scraper;
  if (scrape_every.count() >= 0) {
    scraper = std::thread([&] {
      while (!stop.load()) {
        const auto next = Clock::now() + scrape_every;
        std::string body;
        if (Get(f.url, &body, /*gzip=*/true)) ++done;
        while (!stop.load() && Clock::now() < next) {
          std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
      }
    });
  }
  std::vector<double> ms;
  const auto end = Clock::now() + std::chrono::seconds(seconds);
  int64_t tick = 0;
  while (Clock::now() < end) {
    for (auto& s : samples) s.cost_spent_micros = ++tick;
    const auto t0 = Clock::now();
    f.metrics->SetTeams(samples);
    f.metrics->RecordAdmission("team-1");
    ms.push_back(Ms(Clock::now() - t0));
    // The daemon refreshes team gauges after commits, not in a busy loop.
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  stop = true;
  if (scraper.joinable()) scraper.join();
  *scrapes = done.load();
  return Summarize(ms);
}

}  // namespace

int main(int argc, char** argv) {
  const int teams = IntFlag(argc, argv, "teams", 1000);
  const int regions = IntFlag(argc, argv, "regions", 100);
  const int reps = IntFlag(argc, argv, "reps", 50);
  const int seconds = IntFlag(argc, argv, "seconds", 5);
  curl_global_init(CURL_GLOBAL_DEFAULT);

  auto empty = MakeFixture(0, 0);
  auto full = MakeFixture(teams, regions);
  std::string body;
  Get(full->url, &body);
  const size_t full_bytes = body.size();
  const size_t full_lines = std::count(body.begin(), body.end(), '\n');
  std::printf(
      "metrics_bench: %d teams, %d regions x %zu GPU types; full scrape %zu bytes, %zu lines\n",
      teams, regions, GpuTypes().size(), full_bytes, full_lines);
  std::printf("%-34s %-7s %9s %9s %9s %5s\n", "measurement (ms)", "registry", "p50", "p99", "max",
              "n");

  double full_http_p99 = 0, full_http_cpu_p99 = 0;
  for (Fixture* f : {empty.get(), full.get()}) {
    const char* name = f == empty.get() ? "empty" : "full";
    std::vector<double> ser, ser_cpu, http, http_gzip, http_gzip_cpu;
    for (int i = 0; i < reps; ++i) {
      const auto t0 = Clock::now();
      const double c0 = ThreadCpuMs();
      const std::string text = prometheus::TextSerializer().Serialize(f->registry->Collect());
      ser_cpu.push_back(ThreadCpuMs() - c0);
      ser.push_back(Ms(Clock::now() - t0));
      std::string out;
      const auto t1 = Clock::now();
      if (!Get(f->url, &out)) {
        std::fprintf(stderr, "metrics_bench: GET %s failed\n", f->url.c_str());
        return 1;
      }
      http.push_back(Ms(Clock::now() - t1));
      out.clear();
      const auto t2 = Clock::now();
      const double p2 = ProcessCpuMs();
      if (!Get(f->url, &out, /*gzip=*/true)) {
        std::fprintf(stderr, "metrics_bench: GET %s (gzip) failed\n", f->url.c_str());
        return 1;
      }
      http_gzip.push_back(Ms(Clock::now() - t2));
      http_gzip_cpu.push_back(ProcessCpuMs() - p2);
    }
    Print("collect+serialize", name, Summarize(ser), "wall");
    Print("collect+serialize, CPU time", name, Summarize(ser_cpu), "thread CPU");
    Print("HTTP GET /metrics", name, Summarize(http), "identity");
    const Stats h = Summarize(http_gzip);
    Print("HTTP GET /metrics, gzip", name, h, "as Prometheus scrapes");
    const Stats cpu = Summarize(http_gzip_cpu);
    Print("HTTP GET /metrics, gzip, CPU time", name, cpu, "process CPU");
    if (f == full.get()) full_http_cpu_p99 = cpu.p99;
    if (f == full.get()) full_http_p99 = h.p99;
  }

  struct Mode {
    const char* name;
    int every_ms;  // < 0: no scrapes; 0: back to back
  };
  for (const Mode& mode : {Mode{"update: idle", -1}, Mode{"update: scrape every 1 s", 1000},
                           Mode{"update: back-to-back scrapes", 0}}) {
    int scrapes = 0;
    const Stats s =
        UpdateLatency(*full, teams, seconds, std::chrono::milliseconds(mode.every_ms), &scrapes);
    Print(mode.name, "full", s,
          mode.every_ms < 0 ? "no scrapes" : absl::StrCat(scrapes, " scrapes"));
  }

  // Wall time depends on what else runs on the box: print the load with it.
  double load1 = 0;
  if (FILE* f = std::fopen("/proc/loadavg", "r")) {
    if (std::fscanf(f, "%lf", &load1) != 1) load1 = 0;
    std::fclose(f);
  }
  std::printf(
      "goal: full gzip scrape < 50 ms: wall p99 %.3f ms (%s), CPU p99 %.3f ms (%s); "
      "load average %.2f on %u cores\n",
      full_http_p99, full_http_p99 < 50 ? "met" : "NOT MET", full_http_cpu_p99,
      full_http_cpu_p99 < 50 ? "met" : "NOT MET", load1, std::thread::hardware_concurrency());
  curl_global_cleanup();
  return 0;
}
