// Properties over random snapshots, checked against an independent brute
// force: every (pool, on-demand | spot, start slot) is priced by direct
// integration of the hourly series, without the engine's filters, prefix sums
// or time search.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "services/placement/engine.h"
#include "tests/unit/placement/test_util.h"

namespace greenlight::placement {
namespace {

using testing::T0;

constexpr int kSeriesHours = 80;
const absl::Time kSeriesStart = T0() - absl::Hours(5);

struct World {
  Snapshot snap;
  JobRequest job;
  // Hourly values per zone as generated (for the reference integration).
  absl::flat_hash_map<std::string, std::vector<double>> values;
  absl::flat_hash_map<std::string, double> average;
  absl::flat_hash_map<std::string, bool> stale;
};

World RandomWorld(uint32_t seed) {
  std::mt19937 rng(seed);
  auto uni = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  auto real = [&](double lo, double hi) {
    return std::uniform_real_distribution<double>(lo, hi)(rng);
  };
  auto pick = [&](const auto& v) { return v[uni(0, static_cast<int>(v.size()) - 1)]; };
  World w;
  Snapshot& s = w.snap;
  s.now = T0() + absl::Minutes(uni(0, 120));
  s.slot = uni(0, 1) == 0 ? absl::Hours(1) : absl::Minutes(30);
  s.horizon = absl::Hours(pick(std::vector<int>{0, 6, 24, 48}));
  s.default_intensity_g_per_kwh = 400;
  s.team.carbon_price_micros_per_tonne = uni(0, 500) * 1'000'000LL;
  if (uni(0, 3) == 0) s.team.cost_headroom_micros = uni(0, 3000) * 1'000'000LL;
  if (uni(0, 3) == 0) s.team.carbon_headroom_mg = uni(0, 500) * 1'000'000LL;
  if (uni(0, 3) == 0) {
    s.team.gpu_quota_total = uni(0, 32);
    s.team.gpu_quota_free = uni(0, s.team.gpu_quota_total);
  }
  s.split_min_saving = pick(std::vector<double>{0.0, 0.01, 0.2});
  for (std::string zone : {"Z0", "Z1", "Z2"}) {
    std::vector<double> v(kSeriesHours);
    for (double& x : v) x = real(20, 800);
    double avg = real(100, 600);
    auto series =
        std::make_shared<providers::CarbonSeries>(zone, kSeriesStart, absl::Hours(1), v, avg);
    bool stale = uni(0, 9) == 0;
    series->set_stale(stale);
    w.values[zone] = v;
    w.average[zone] = avg;
    w.stale[zone] = stale;
    s.zones[zone] = series;
  }
  int n = uni(1, 40);
  for (int i = 0; i < n; ++i) {
    Pool p;
    p.id = absl::StrFormat("pool-%03d", uni(0, 999) * 100 + i);
    p.provider = pick(std::vector<std::string>{"aws", "gcp"});
    p.region = pick(std::vector<std::string>{"r1", "r2", "r3", "r4"});
    p.zone = pick(std::vector<std::string>{"Z0", "Z1", "Z2", "none"});
    p.gpu_type = pick(std::vector<std::string>{"A100", "H100", "V100"});
    p.gpus_per_node = pick(std::vector<int>{1, 2, 4, 8});
    p.nodes = uni(1, 6);
    p.free_nodes = uni(0, p.nodes);
    for (int k = uni(0, 3); k > 0 && p.gpus_per_node > 1; --k) {
      p.free_gpus_on_partial_nodes.push_back(uni(1, p.gpus_per_node - 1));
    }
    p.price_micros_per_node_hour = uni(0, 20) == 0 ? 0 : uni(100, 4000) * 10'000LL;
    if (uni(0, 1) == 0) {
      p.spot_price_micros_per_node_hour = uni(30, 4000) * 10'000LL;
    }
    p.gpu_power_w = pick(std::vector<double>{250, 300, 400, 700});
    p.pue = real(1.0, 1.6);
    p.speed = pick(std::vector<double>{0.45, 1.0, 2.0});
    s.pools.push_back(p);
  }
  JobRequest& j = w.job;
  j.gpus = pick(std::vector<int>{1, 2, 4, 8, 12, 16});
  if (uni(0, 1) == 0) {
    std::vector<std::string> all = {"A100", "H100", "V100"};
    for (const auto& t : all) {
      if (uni(0, 1) == 0) j.gpu_types.push_back(t);
    }
  }
  if (uni(0, 1) == 0) {
    j.duration = absl::Minutes(uni(30, 30 * 60));
  } else {
    j.reference_gpu_hours = real(1, 30) * j.gpus;
  }
  if (uni(0, 2) == 0) j.max_cost_micros = uni(1, 2000) * 1'000'000LL;
  if (uni(0, 2) == 0) j.max_carbon_mg = uni(1, 300) * 1'000'000LL;
  if (uni(0, 2) == 0) j.not_before = s.now + absl::Minutes(uni(-60, 600));
  if (uni(0, 1) == 0) j.deadline = s.now + absl::Minutes(uni(60, 80 * 60));
  j.checkpointable = uni(0, 1) == 0;
  if (uni(0, 3) == 0) j.regions = {pick(std::vector<std::string>{"r1", "r2", "r3", "r4"})};
  j.mode = pick(std::vector<Mode>{Mode::kCheapest, Mode::kGreenest, Mode::kBalanced});
  if (uni(0, 3) == 0) j.carbon_price_micros_per_tonne = uni(1, 1000) * 1'000'000LL;
  j.top_k = uni(0, 6);
  return w;
}

// Direct integral of intensity over [a, b) in (g/kWh) x h, hour by hour.
double Integral(const World& w, const std::string& zone, absl::Time a, absl::Time b) {
  auto it = w.values.find(zone);
  if (it == w.values.end()) return w.snap.default_intensity_g_per_kwh * absl::ToDoubleHours(b - a);
  double avg = w.average.at(zone);
  if (w.stale.at(zone)) return avg * absl::ToDoubleHours(b - a);
  double total = 0;
  for (absl::Time t = a; t < b;) {
    absl::Duration rem;
    int64_t idx = absl::IDivDuration(t - kSeriesStart, absl::Hours(1), &rem);
    if (t < kSeriesStart) idx = -1;
    absl::Time slot_end =
        idx < 0 ? std::min(b, kSeriesStart) : std::min(b, kSeriesStart + absl::Hours(idx + 1));
    double v = (idx >= 0 && idx < kSeriesHours) ? it->second[idx] : avg;
    total += v * absl::ToDoubleHours(slot_end - t);
    t = slot_end;
  }
  return total;
}

struct Ref {
  bool found = false;
  int64_t cost = 0, carbon = 0, objective = 0;
};

bool TypeAllowed(const JobRequest& j, const Pool& p) {
  return j.gpu_types.empty() ||
         std::find(j.gpu_types.begin(), j.gpu_types.end(), p.gpu_type) != j.gpu_types.end();
}
bool RegionAllowed(const JobRequest& j, const Pool& p) {
  return j.regions.empty() ||
         std::find(j.regions.begin(), j.regions.end(), p.region) != j.regions.end();
}
int Nodes(const JobRequest& j, const Pool& p) {
  return j.gpus <= p.gpus_per_node ? 1 : (j.gpus + p.gpus_per_node - 1) / p.gpus_per_node;
}
bool HasCapacityNow(const JobRequest& j, const Pool& p) {
  int nodes = Nodes(j, p);
  if (nodes > p.nodes) return false;
  if (p.free_nodes >= nodes) return true;
  if (nodes == 1) {
    for (int f : p.free_gpus_on_partial_nodes) {
      if (f >= j.gpus) return true;
    }
  }
  return false;
}
bool QuotaAllows(const World& w) {
  const TeamView& t = w.snap.team;
  return (t.gpu_quota_total < 0 || w.job.gpus <= t.gpu_quota_total) &&
         (t.gpu_quota_free < 0 || w.job.gpus <= t.gpu_quota_free);
}
int64_t CarbonPrice(const World& w) {
  if (w.job.carbon_price_micros_per_tonne > 0) return w.job.carbon_price_micros_per_tonne;
  if (w.snap.team.carbon_price_micros_per_tonne > 0)
    return w.snap.team.carbon_price_micros_per_tonne;
  return w.snap.default_carbon_price_micros_per_tonne;
}
absl::Time Earliest(const World& w) { return std::max(w.job.not_before, w.snap.now); }

// Best contiguous option by brute force, in the job's mode (primary key).
Ref BruteForce(const World& w) {
  const JobRequest& j = w.job;
  Ref best;
  if (!QuotaAllows(w)) return best;
  absl::Time earliest = Earliest(w);
  absl::Time latest = std::max(earliest, w.snap.now + w.snap.horizon);
  double factor = w.snap.spot.OverheadFactor();
  for (const Pool& p : w.snap.pools) {
    if (!TypeAllowed(j, p) || !RegionAllowed(j, p) || !HasCapacityNow(j, p)) continue;
    double base = j.duration > absl::ZeroDuration() ? absl::ToDoubleHours(j.duration)
                                                    : j.reference_gpu_hours / (j.gpus * p.speed);
    double share = j.gpus <= p.gpus_per_node ? double(j.gpus) / p.gpus_per_node : Nodes(j, p);
    for (int v = 0; v < 2; ++v) {
      bool spot = v == 1;
      int64_t price = spot ? p.spot_price_micros_per_node_hour : p.price_micros_per_node_hour;
      if (price <= 0) continue;
      if (spot && (!j.checkpointable ||
                   (p.price_micros_per_node_hour > 0 &&
                    p.spot_price_micros_per_node_hour * factor >= p.price_micros_per_node_hour))) {
        continue;
      }
      double hours = base * (spot ? factor : 1.0);
      absl::Duration run = absl::Seconds(std::round(hours * 3600));
      int64_t cost = std::llround(price * share * hours);
      double watts = j.gpus * p.gpu_power_w * p.pue;
      std::vector<absl::Time> starts = {earliest};
      int64_t slot_s = absl::ToInt64Seconds(w.snap.slot);
      int64_t e_s = absl::ToUnixSeconds(earliest);
      absl::Time b = absl::FromUnixSeconds((e_s / slot_s + 1) * slot_s);
      for (; b <= latest; b += w.snap.slot) starts.push_back(b);
      for (absl::Time st : starts) {
        if (st + run > j.deadline) continue;
        int64_t carbon = std::llround(watts * Integral(w, p.zone, st, st + run));
        if (j.max_cost_micros > 0 && cost > j.max_cost_micros) continue;
        if (j.max_carbon_mg > 0 && carbon > j.max_carbon_mg) continue;
        const TeamView& t = w.snap.team;
        if (t.cost_headroom_micros >= 0 && cost > t.cost_headroom_micros) continue;
        if (t.carbon_headroom_mg >= 0 && carbon > t.carbon_headroom_mg) continue;
        int64_t objective =
            j.mode == Mode::kCheapest
                ? cost
                : cost + std::llround(double(carbon) * double(CarbonPrice(w)) / 1e9);
        auto key = [&](int64_t c, int64_t g, int64_t o) {
          switch (j.mode) {
            case Mode::kCheapest:
              return std::make_pair(c, g);
            case Mode::kGreenest:
              return std::make_pair(g, c);
            case Mode::kBalanced:
              break;
          }
          return std::make_pair(o, g);
        };
        if (!best.found ||
            key(cost, carbon, objective) < key(best.cost, best.carbon, best.objective)) {
          best = {true, cost, carbon, objective};
        }
      }
    }
  }
  return best;
}

// Carbon sums from prefix sums and from direct integration differ in the last
// bits; a few mg (and the micro-dollars they price) is the slack.
bool NotWorse(Mode mode, const Option& o, const Ref& r) {
  const int64_t tol = 4 + static_cast<int64_t>(std::abs(r.carbon) * 1e-9);
  switch (mode) {
    case Mode::kCheapest:
      return o.cost_micros < r.cost || (o.cost_micros == r.cost && o.carbon_mg <= r.carbon + tol);
    case Mode::kGreenest:
      return o.carbon_mg <= r.carbon + tol;
    case Mode::kBalanced:
      return o.objective_micros <= r.objective + tol;
  }
  return false;
}

void ExpectRespectsConstraints(const World& w, const Option& o, const std::string& what) {
  const JobRequest& j = w.job;
  ASSERT_GE(o.pool, 0) << what;
  ASSERT_LT(o.pool, static_cast<int>(w.snap.pools.size())) << what;
  const Pool& p = w.snap.pools[o.pool];
  EXPECT_EQ(o.pool_id, p.id) << what;
  EXPECT_TRUE(TypeAllowed(j, p)) << what;
  EXPECT_TRUE(RegionAllowed(j, p)) << what;
  EXPECT_TRUE(HasCapacityNow(j, p)) << what;
  EXPECT_TRUE(QuotaAllows(w)) << what;
  EXPECT_EQ(o.nodes, Nodes(j, p)) << what;
  EXPECT_GE(o.start, Earliest(w)) << what;
  EXPECT_LE(o.end, j.deadline) << what;
  if (j.max_cost_micros > 0) {
    EXPECT_LE(o.cost_micros, j.max_cost_micros) << what;
  }
  if (j.max_carbon_mg > 0) {
    EXPECT_LE(o.carbon_mg, j.max_carbon_mg) << what;
  }
  if (w.snap.team.cost_headroom_micros >= 0) {
    EXPECT_LE(o.cost_micros, w.snap.team.cost_headroom_micros) << what;
  }
  if (w.snap.team.carbon_headroom_mg >= 0) {
    EXPECT_LE(o.carbon_mg, w.snap.team.carbon_headroom_mg) << what;
  }
  if (o.spot || o.split) {
    EXPECT_TRUE(j.checkpointable) << what;
  }
  // Slots: sorted, disjoint, inside [start, end], adding up to the runtime.
  ASSERT_FALSE(o.slots.empty()) << what;
  absl::Duration sum;
  for (size_t i = 0; i < o.slots.size(); ++i) {
    EXPECT_LT(o.slots[i].start, o.slots[i].end) << what;
    if (i > 0) {
      EXPECT_LT(o.slots[i - 1].end, o.slots[i].start) << what;
    }
    sum += o.slots[i].end - o.slots[i].start;
  }
  EXPECT_EQ(o.slots.front().start, o.start) << what;
  EXPECT_EQ(o.slots.back().end, o.end) << what;
  EXPECT_EQ(sum, o.runtime) << what;
}

bool SameOption(const Option& a, const Option& b) {
  return a.pool_id == b.pool_id && a.spot == b.spot && a.start == b.start && a.end == b.end &&
         a.cost_micros == b.cost_micros && a.carbon_mg == b.carbon_mg &&
         a.objective_micros == b.objective_micros && a.split == b.split;
}

constexpr int kWorlds = 400;

TEST(PlacementProperties, ChosenIsNeverWorseThanAnyAlternativeOrBruteForceOption) {
  int feasible = 0, split = 0, spot = 0, shifted = 0;
  for (uint32_t seed = 1; seed <= kWorlds; ++seed) {
    World w = RandomWorld(seed);
    Decision d = PlacementEngine().Place(w.job, w.snap);
    Ref ref = BruteForce(w);
    std::string what = absl::StrFormat("seed %d: %s", seed, d.summary);
    // Whatever a contiguous brute force finds, the engine finds too.
    if (ref.found) {
      ASSERT_TRUE(d.feasible) << what;
    }
    if (!d.feasible) continue;
    ++feasible;
    split += d.chosen.split;
    spot += d.chosen.spot;
    shifted += d.chosen.start > Earliest(w);
    // Only a split plan can meet limits that no contiguous run meets.
    if (!ref.found) {
      EXPECT_TRUE(d.chosen.split) << what;
      continue;
    }
    EXPECT_TRUE(NotWorse(w.job.mode, d.chosen, ref))
        << what << " ref cost " << ref.cost << " carbon " << ref.carbon << " objective "
        << ref.objective;
    for (size_t i = 0; i < d.alternatives.size(); ++i) {
      EXPECT_FALSE(BetterOption(w.job.mode, d.alternatives[i], d.chosen)) << what;
      if (i > 0) {
        EXPECT_FALSE(BetterOption(w.job.mode, d.alternatives[i], d.alternatives[i - 1])) << what;
      }
      EXPECT_FALSE(d.alternatives[i].why_not.empty()) << what;
    }
    EXPECT_LE(static_cast<int>(d.alternatives.size()), std::max(0, w.job.top_k)) << what;
  }
  // The generator must exercise every branch, or the property proves little.
  EXPECT_GT(feasible, kWorlds / 5);
  EXPECT_GT(split, 5);
  EXPECT_GT(spot, 5);
  EXPECT_GT(shifted, 5);
}

TEST(PlacementProperties, NoReturnedOptionBreaksACapDeadlineOrCapacity) {
  for (uint32_t seed = 1; seed <= kWorlds; ++seed) {
    World w = RandomWorld(seed);
    Decision d = PlacementEngine().Place(w.job, w.snap);
    if (!d.feasible) {
      EXPECT_TRUE(d.alternatives.empty());
      continue;
    }
    std::string what = absl::StrFormat("seed %d: %s", seed, d.summary);
    ExpectRespectsConstraints(w, d.chosen, "chosen " + what);
    for (const Option& alt : d.alternatives) ExpectRespectsConstraints(w, alt, "alt " + what);
    int rejected = 0;
    for (const auto& [reason, n] : d.rejections) rejected += n;
    EXPECT_LT(rejected, d.pools_considered) << what;
  }
}

// Random bookings on about half the pools (capacity_calendar.h).
absl::flat_hash_map<int, PoolBookings> RandomBookings(const World& w, uint32_t seed) {
  std::mt19937 rng(seed * 7919u);
  auto uni = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  absl::flat_hash_map<int, PoolBookings> out;
  for (int i = 0; i < static_cast<int>(w.snap.pools.size()); ++i) {
    if (uni(0, 1) == 0) continue;
    PoolBookings& b = out[i];
    for (int k = uni(1, 4); k > 0; --k) {
      absl::Time start = w.snap.now + absl::Minutes(uni(-60, 40 * 60));
      b.push_back({start, start + absl::Minutes(uni(30, 12 * 60)), uni(1, w.snap.pools[i].nodes)});
    }
  }
  return out;
}

// Booked whole nodes at t, summed directly.
int BookedAt(const PoolBookings& b, absl::Time t) {
  int n = 0;
  for (const Booking& x : b) n += x.start <= t && t < x.end ? x.nodes : 0;
  return n;
}

void ExpectRespectsCalendar(const World& w, const absl::flat_hash_map<int, PoolBookings>& booked,
                            const Option& o, const std::string& what) {
  auto it = booked.find(o.pool);
  if (it == booked.end()) return;
  const PoolBookings* b = &it->second;
  const Pool& p = w.snap.pools[o.pool];
  if (o.on_partial_node && o.start == w.snap.now) return;  // no whole node used
  for (const Slot& slot : o.slots) {
    // The booked count only rises at a booking's start: check those instants.
    std::vector<absl::Time> at = {slot.start};
    for (const Booking& x : *b)
      if (x.start > slot.start && x.start < slot.end) at.push_back(x.start);
    for (absl::Time t : at) {
      EXPECT_LE(BookedAt(*b, t) + o.nodes, p.free_nodes)
          << what << " pool " << p.id << " at " << absl::FormatTime(t);
    }
  }
}

TEST(PlacementProperties, BookedCapacityIsNeverPromisedTwiceAndOnlyNarrows) {
  int with_bookings = 0, moved = 0, lost = 0;
  for (uint32_t seed = 1; seed <= 5 * kWorlds; ++seed) {
    World w = RandomWorld(seed);
    Decision free = PlacementEngine().Place(w.job, w.snap);
    absl::flat_hash_map<int, PoolBookings> booked = RandomBookings(w, seed);
    auto table = std::make_shared<BookingTable>();
    for (const auto& [pool, b] : booked) (*table)[pool] = std::make_shared<const BookedProfile>(b);
    w.snap.bookings = std::move(table);
    Decision d = PlacementEngine().Place(w.job, w.snap);
    std::string what = absl::StrFormat("seed %d: %s", seed, d.summary);
    // Every option the decision names is a real pool's (the quote in an error too).
    if (d.has_best_over_cap) {
      ASSERT_GE(d.best_over_cap.pool, 0) << what;
      ASSERT_LT(d.best_over_cap.pool, static_cast<int>(w.snap.pools.size())) << what;
      EXPECT_EQ(d.best_over_cap.pool_id, w.snap.pools[d.best_over_cap.pool].id) << what;
    }
    if (d.feasible) {
      ++with_bookings;
      ExpectRespectsConstraints(w, d.chosen, "chosen " + what);
      ExpectRespectsCalendar(w, booked, d.chosen, "chosen " + what);
      for (const Option& alt : d.alternatives) {
        ExpectRespectsConstraints(w, alt, "alt " + what);
        ExpectRespectsCalendar(w, booked, alt, "alt " + what);
      }
      // Bookings only take options away.
      ASSERT_TRUE(free.feasible) << what;
      EXPECT_FALSE(BetterOption(w.job.mode, d.chosen, free.chosen)) << what;
      moved += !SameOption(d.chosen, free.chosen);
    } else if (free.feasible) {
      ++lost;
      EXPECT_TRUE(d.not_now) << what;  // booked capacity may free up
    }
  }
  // The generator must make bookings matter, or the property proves little.
  EXPECT_GT(with_bookings, kWorlds / 10);
  EXPECT_GT(moved, 5);
  EXPECT_GT(lost, 5);
}

TEST(PlacementProperties, SameSnapshotSameDecisionWhateverThePoolOrder) {
  for (uint32_t seed = 1; seed <= kWorlds; ++seed) {
    World w = RandomWorld(seed);
    Decision a = PlacementEngine().Place(w.job, w.snap);
    Decision b = PlacementEngine().Place(w.job, w.snap);
    std::string what = absl::StrFormat("seed %d", seed);
    EXPECT_EQ(a.summary, b.summary) << what;
    EXPECT_EQ(a.feasible, b.feasible) << what;
    EXPECT_TRUE(SameOption(a.chosen, b.chosen)) << what;
    ASSERT_EQ(a.alternatives.size(), b.alternatives.size()) << what;
    for (size_t i = 0; i < a.alternatives.size(); ++i) {
      EXPECT_TRUE(SameOption(a.alternatives[i], b.alternatives[i])) << what;
    }
    // Pool order is not part of the decision (ties break on pool id).
    std::mt19937 rng(seed);
    std::shuffle(w.snap.pools.begin(), w.snap.pools.end(), rng);
    Decision c = PlacementEngine().Place(w.job, w.snap);
    EXPECT_EQ(a.feasible, c.feasible) << what;
    EXPECT_EQ(a.not_now, c.not_now) << what;
    EXPECT_TRUE(SameOption(a.chosen, c.chosen)) << what;
    EXPECT_EQ(a.rejections, c.rejections) << what;
    EXPECT_EQ(a.summary, c.summary) << what;
  }
}

}  // namespace
}  // namespace greenlight::placement
