// Placement decisions per second on the real price catalogs (all five clouds,
// 890 pools) replicated to 10,000 and 100,000 nodes, with 48- and 168-slot
// horizons. Beside the engine, in the same run:
//  - NaiveNodeScan: the peer, a node-by-node scheduler that scores every node
//    at every start slot with the same prefix sums (O(nodes x slots));
//  - PoolLoopCeiling: one pass over the pools checking type and price only,
//    the least work any pool-level engine must do (a ceiling, not a placement).
// Each reports decisions/s and the p99 latency of one decision.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "benchmark/benchmark.h"
#include "common/config.h"
#include "services/placement/engine.h"
#include "services/placement/time_search.h"
#include "services/providers/inventory.h"
#include "tests/testing/shipped_data.h"

namespace greenlight::placement {
namespace {

absl::Time BenchNow() {
  return absl::FromCivil(absl::CivilHour(2020, 6, 5, 8), absl::UTCTimeZone());
}

const providers::Inventory& RealInventory() {
  static const providers::Inventory* inv = [] {
    Config c = ::greenlight::testing::ShippedDataConfig();
    auto loaded = providers::LoadInventory(c, BenchNow());
    if (!loaded.ok()) {
      std::fprintf(stderr, "placement_bench: %s\n", std::string(loaded.status().message()).c_str());
      std::exit(2);
    }
    return new providers::Inventory(*std::move(loaded));
  }();
  return *inv;
}

// One node of the naive peer's cluster.
struct Node {
  int pool;
  int free_gpus;
};

struct Cluster {
  Snapshot snapshot;
  std::vector<Node> nodes;  // the same capacity, node by node
};

// The real pools with `total_nodes` spread evenly over them; 60 % of nodes
// free, 25 % partly used (a random free count), 15 % full. Fixed seed.
Cluster MakeCluster(int total_nodes, int horizon_slots) {
  const providers::Inventory& inv = RealInventory();
  Cluster c;
  Snapshot& s = c.snapshot;
  s.now = BenchNow();
  s.pools = inv.pools;
  s.zones = inv.zones;
  s.default_intensity_g_per_kwh = inv.default_intensity_g_per_kwh;
  s.slot = absl::Hours(1);
  s.horizon = absl::Hours(horizon_slots);
  s.team.carbon_price_micros_per_tonne = 100'000'000;
  std::mt19937 rng(42);
  const int n = static_cast<int>(s.pools.size());
  for (int i = 0; i < n; ++i) {
    Pool& p = s.pools[i];
    p.nodes = total_nodes / n + (i < total_nodes % n ? 1 : 0);
    p.free_nodes = 0;
    p.free_gpus_on_partial_nodes.clear();
    for (int k = 0; k < p.nodes; ++k) {
      int r = std::uniform_int_distribution<int>(0, 99)(rng);
      int free = r < 60 ? p.gpus_per_node
                        : (r < 85 && p.gpus_per_node > 1
                               ? std::uniform_int_distribution<int>(1, p.gpus_per_node - 1)(rng)
                               : 0);
      if (free == p.gpus_per_node) {
        ++p.free_nodes;
      } else if (free > 0) {
        p.free_gpus_on_partial_nodes.push_back(free);
      }
      c.nodes.push_back({i, free});
    }
    std::sort(p.free_gpus_on_partial_nodes.rbegin(), p.free_gpus_on_partial_nodes.rend());
  }
  return c;
}

// A fixed mix of 256 jobs: GPU types as users name them (a quarter say
// "any"), 1 to 32 GPUs, 1 to 48 h, some deadlines, caps, regions and
// checkpointable jobs, every mode.
std::vector<JobRequest> MakeJobs() {
  std::mt19937 rng(7);
  auto uni = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  const std::vector<std::vector<std::string>> types = {
      {"H100"}, {"A100", "A100-80GB"}, {"A100-80GB"}, {"V100"}, {"L4", "T4"}, {"A10G"}, {}, {}};
  const std::vector<std::vector<std::string>> regions = {
      {"us-*"}, {"eu-*", "europe-*"}, {"gcp/europe-west3", "aws/eu-central-1"}};
  std::vector<JobRequest> jobs;
  for (int i = 0; i < 256; ++i) {
    JobRequest j;
    j.gpus = std::vector<int>{1, 1, 2, 4, 8, 8, 16, 32}[uni(0, 7)];
    j.gpu_types = types[uni(0, static_cast<int>(types.size()) - 1)];
    if (uni(0, 1) == 0) {
      j.duration = absl::Hours(uni(1, 48));
    } else {
      j.reference_gpu_hours = uni(1, 48) * j.gpus;
    }
    int d = uni(0, 2);
    if (d == 1) j.deadline = BenchNow() + absl::Hours(uni(24, 72));
    if (d == 2) j.deadline = BenchNow() + absl::Hours(uni(72, 200));
    if (uni(0, 4) == 0) j.max_cost_micros = int64_t{uni(100, 5000)} * 1'000'000;
    if (uni(0, 4) == 0) j.max_carbon_mg = int64_t{uni(10, 500)} * 1'000'000;
    if (uni(0, 9) == 0) j.regions = regions[uni(0, static_cast<int>(regions.size()) - 1)];
    j.checkpointable = uni(0, 2) == 0;
    j.mode = std::vector<Mode>{Mode::kBalanced, Mode::kBalanced, Mode::kCheapest,
                               Mode::kGreenest}[uni(0, 3)];
    jobs.push_back(j);
  }
  return jobs;
}

// The peer: score every node at every start slot (balanced objective,
// contiguous, on-demand), with the same O(1) window integrals.
int64_t NaiveNodeScan(const JobRequest& job, const Cluster& c) {
  const Snapshot& s = c.snapshot;
  TimeFrame frame{std::max(job.not_before, s.now), s.now + s.horizon, job.deadline, s.slot};
  int64_t best = INT64_MAX;
  for (const Node& node : c.nodes) {
    const Pool& p = s.pools[node.pool];
    if (!job.gpu_types.empty() &&
        std::find(job.gpu_types.begin(), job.gpu_types.end(), p.gpu_type) == job.gpu_types.end()) {
      continue;
    }
    if (node.free_gpus < std::min(job.gpus, p.gpus_per_node)) continue;
    double hours = job.duration > absl::ZeroDuration()
                       ? absl::ToDoubleHours(job.duration)
                       : job.reference_gpu_hours / (job.gpus * p.speed);
    absl::Duration run = absl::Seconds(hours * 3600);
    double watts = job.gpus * p.gpu_power_w * p.pue;
    double cost = p.price_micros_per_node_hour * hours;
    ZoneCarbon zone = ZoneCarbon::For(s, p.zone);
    for (absl::Time t = frame.earliest; t <= frame.latest_start && t + run <= job.deadline;
         t += s.slot) {
      double carbon_mg = watts * zone.IntegralGkwhHours(t, t + run);
      int64_t objective = static_cast<int64_t>(cost + carbon_mg * 100'000'000 / 1e9);
      best = std::min(best, objective);
    }
  }
  return best;
}

// The ceiling: the cheapest matching pool, one pass, no time search.
int64_t PoolLoopCeiling(const JobRequest& job, const Snapshot& s) {
  int64_t best = INT64_MAX;
  for (const Pool& p : s.pools) {
    if (!job.gpu_types.empty() &&
        std::find(job.gpu_types.begin(), job.gpu_types.end(), p.gpu_type) == job.gpu_types.end()) {
      continue;
    }
    if (p.free_nodes == 0) continue;
    best = std::min(best, p.price_micros_per_node_hour);
  }
  return best;
}

double ThreadCpuUs() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) / 1e3;
}

double Percentile(std::vector<double>& v, int pct) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, v.size() * static_cast<size_t>(pct) / 100)];
}

// Runs `decide` per iteration over the job mix; reports decisions/s (per CPU
// second, Google Benchmark's rate) and the p50/p99 of one decision, both as
// thread CPU time (robust on a shared box) and as wall time.
template <typename Decide>
void RunDecisions(benchmark::State& state, Decide decide) {
  static const std::vector<JobRequest> jobs = MakeJobs();
  std::vector<double> cpu_us, wall_us;
  cpu_us.reserve(1 << 17);
  wall_us.reserve(1 << 17);
  size_t i = 0;
  for (auto _ : state) {
    double c0 = ThreadCpuUs();
    auto t0 = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(decide(jobs[i++ % jobs.size()]));
    auto t1 = std::chrono::steady_clock::now();
    double c1 = ThreadCpuUs();
    if (cpu_us.size() < cpu_us.capacity()) {
      cpu_us.push_back(c1 - c0);
      wall_us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
    }
  }
  state.counters["decisions/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["p50_cpu_us"] = Percentile(cpu_us, 50);
  state.counters["p99_cpu_us"] = Percentile(cpu_us, 99);
  state.counters["p99_wall_us"] = Percentile(wall_us, 99);
}

// The engine's decisions over the job mix on `snapshot`.
void RunPlace(benchmark::State& state, const Snapshot& snapshot) {
  PlacementEngine engine;
  int feasible = 0, total = 0;
  RunDecisions(state, [&](const JobRequest& job) {
    Decision d = engine.Place(job, snapshot);
    feasible += d.feasible;
    ++total;
    return d.chosen.objective_micros;
  });
  state.counters["feasible_%"] = total ? 100.0 * feasible / total : 0;
  state.counters["pools"] = static_cast<double>(snapshot.pools.size());
}

void BM_Place(benchmark::State& state) {
  const Cluster c = MakeCluster(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)));
  RunPlace(state, c.snapshot);
}

// The same with a capacity calendar: every pool carries 8 bookings of planned
// jobs (random starts over the horizon, 1-24 h, up to half its free nodes
// each), so every pool's windows are searched around booked intervals.
void BM_PlaceWithBookings(benchmark::State& state) {
  Cluster c = MakeCluster(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)));
  std::mt19937 rng(11);
  auto uni = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  auto table = std::make_shared<BookingTable>();
  const int horizon_h = static_cast<int>(state.range(1));
  for (int i = 0; i < static_cast<int>(c.snapshot.pools.size()); ++i) {
    const Pool& p = c.snapshot.pools[i];
    PoolBookings b;
    for (int k = 0; k < 8; ++k) {
      absl::Time start = BenchNow() + absl::Hours(uni(0, horizon_h));
      b.push_back({start, start + absl::Hours(uni(1, 24)), uni(1, std::max(1, p.free_nodes / 2))});
    }
    (*table)[i] = std::make_shared<const BookedProfile>(b);
  }
  c.snapshot.bookings = std::move(table);
  RunPlace(state, c.snapshot);
}

void BM_NaiveNodeScan(benchmark::State& state) {
  const Cluster c = MakeCluster(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)));
  RunDecisions(state, [&](const JobRequest& job) { return NaiveNodeScan(job, c); });
}

void BM_PoolLoopCeiling(benchmark::State& state) {
  const Cluster c = MakeCluster(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)));
  RunDecisions(state, [&](const JobRequest& job) { return PoolLoopCeiling(job, c.snapshot); });
}

// Args: {nodes, horizon slots}.
#define GL_PLACEMENT_ARGS      \
  ArgNames({"nodes", "slots"}) \
      ->Args({10'000, 48})     \
      ->Args({10'000, 168})    \
      ->Args({100'000, 48})    \
      ->Args({100'000, 168})

BENCHMARK(BM_Place)->GL_PLACEMENT_ARGS->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_PlaceWithBookings)->GL_PLACEMENT_ARGS->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_NaiveNodeScan)->GL_PLACEMENT_ARGS->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_PoolLoopCeiling)->GL_PLACEMENT_ARGS->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace greenlight::placement

BENCHMARK_MAIN();
