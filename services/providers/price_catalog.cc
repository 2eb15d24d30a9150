// SkyPilot catalog rows -> pools, with the quirk rules of price_catalog.h.
#include "services/providers/price_catalog.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <tuple>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/csv.h"
#include "common/status_macros.h"
#include "common/units.h"
#include "services/providers/csv_text.h"

namespace greenlight::providers {
namespace {

struct Offer {
  double price = 0;
  double spot = 0;  // 0 = none
};

struct PoolKey {
  std::string region, instance_type;
  bool operator<(const PoolKey& o) const {
    return std::tie(region, instance_type) < std::tie(o.region, o.instance_type);
  }
};

struct PoolAcc {
  std::string gpu;
  int gpus = 0;
  std::vector<double> prices;
  std::vector<double> spots;
};

// Upstream rows known to be wrong, fixed here (see data/SOURCES-prices-gpus-traces.md).
struct CountFix {
  const char* provider;
  const char* instance_type;
  int gpus;
};
constexpr CountFix kCountFixes[] = {
    // Azure catalog says 12; the VM has 8 x H100 (ND H100 v5 series).
    {"azure", "Standard_ND96isr_H100_v5", 8},
};

void AddDistinct(std::vector<std::string>* v, const std::string& s) {
  if (std::find(v->begin(), v->end(), s) == v->end()) v->push_back(s);
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Optional price cell: empty -> *present = false; a number must be >= 0.
absl::Status PriceCell(const CsvTable& t, size_t r, int col, double* out, bool* present) {
  *present = false;
  if (col < 0 || Trimmed(t, r, col).empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(*out, t.Double(r, col));
  if (*out < 0)
    return absl::InvalidArgumentError(absl::StrCat(t.Where(r, col), ": negative price"));
  *present = true;
  return absl::OkStatus();
}

// GCP host VM prices: (machine type, zone) and (machine type, region) -> offer.
struct HostPrices {
  absl::flat_hash_map<std::string, Offer> by_zone;
  absl::flat_hash_map<std::string, Offer> by_region;  // highest price of the region's zones
};

absl::StatusOr<HostPrices> LoadGcpHosts(const std::string& path) {
  HostPrices h;
  ASSIGN_OR_RETURN(CsvTable t, CsvTable::ReadFile(path));
  ASSIGN_OR_RETURN(int c_type, t.Column("InstanceType"));
  ASSIGN_OR_RETURN(int c_region, t.Column("Region"));
  ASSIGN_OR_RETURN(int c_price, t.Column("Price"));
  int c_zone = t.HasColumn("AvailabilityZone") ? *t.Column("AvailabilityZone") : -1;
  int c_spot = t.HasColumn("SpotPrice") ? *t.Column("SpotPrice") : -1;
  for (size_t r = 0; r < t.rows(); ++r) {
    std::string type = Trimmed(t, r, c_type);
    if (type.empty()) continue;
    Offer o;
    bool has_price = false, has_spot = false;
    RETURN_IF_ERROR(PriceCell(t, r, c_price, &o.price, &has_price));
    RETURN_IF_ERROR(PriceCell(t, r, c_spot, &o.spot, &has_spot));
    if (!has_price) continue;
    if (!has_spot) o.spot = 0;
    std::string region = Trimmed(t, r, c_region);
    if (c_zone >= 0) h.by_zone[absl::StrCat(type, "@", Trimmed(t, r, c_zone))] = o;
    Offer& reg = h.by_region[absl::StrCat(type, "@", region)];
    if (o.price > reg.price) reg = o;
  }
  return h;
}

}  // namespace

std::string GcpHostMachine(absl::string_view gpu, int count) {
  // GCP accelerator-optimized machine families (cloud.google.com/compute/docs/gpus).
  if (gpu == "A100") {
    if (count == 16) return "a2-megagpu-16g";
    if (count == 1 || count == 2 || count == 4 || count == 8)
      return absl::StrCat("a2-highgpu-", count, "g");
  } else if (gpu == "A100-80GB") {
    if (count == 1 || count == 2 || count == 4 || count == 8)
      return absl::StrCat("a2-ultragpu-", count, "g");
  } else if (gpu == "H100") {
    if (count == 1 || count == 2 || count == 4 || count == 8)
      return absl::StrCat("a3-highgpu-", count, "g");
  } else if (gpu == "H100-MEGA") {
    if (count == 8) return "a3-megagpu-8g";
  } else if (gpu == "H200") {
    if (count == 8) return "a3-ultragpu-8g";
  }
  return "";
}

absl::StatusOr<std::vector<Pool>> LoadPriceCatalog(const CatalogConfig& catalog,
                                                   const GpuTable& gpus, CatalogStats* stats) {
  CatalogStats local;
  if (stats == nullptr) stats = &local;
  *stats = CatalogStats{};
  const std::string provider = absl::AsciiStrToLower(catalog.provider);
  ASSIGN_OR_RETURN(CsvTable t, CsvTable::ReadFile(catalog.file));
  ASSIGN_OR_RETURN(int c_type, t.Column("InstanceType"));
  ASSIGN_OR_RETURN(int c_gpu, t.Column("AcceleratorName"));
  ASSIGN_OR_RETURN(int c_count, t.Column("AcceleratorCount"));
  ASSIGN_OR_RETURN(int c_price, t.Column("Price"));
  ASSIGN_OR_RETURN(int c_region, t.Column("Region"));
  int c_spot = t.HasColumn("SpotPrice") ? *t.Column("SpotPrice") : -1;

  HostPrices hosts;
  bool have_hosts = false;
  if (provider == "gcp" && !catalog.host_file.empty()) {
    ASSIGN_OR_RETURN(hosts, LoadGcpHosts(catalog.host_file));
    have_hosts = true;
  }
  int c_zone = t.HasColumn("AvailabilityZone") ? *t.Column("AvailabilityZone") : -1;

  std::map<PoolKey, PoolAcc> acc;  // ordered: deterministic pool order
  for (size_t r = 0; r < t.rows(); ++r) {
    ++stats->rows;
    std::string gpu_name = Trimmed(t, r, c_gpu);
    std::string type = Trimmed(t, r, c_type);
    std::string region = Trimmed(t, r, c_region);
    if (gpu_name.empty()) continue;  // host-only rows in a mixed file: not a GPU pool
    if (region.empty())
      return absl::InvalidArgumentError(absl::StrCat(t.Where(r, c_region), ": empty region"));
    ASSIGN_OR_RETURN(double count_d, t.Double(r, c_count));
    if (count_d < 1 || count_d > 64 || count_d != std::floor(count_d)) {
      return absl::InvalidArgumentError(absl::StrCat(
          t.Where(r, c_count), ": GPU count must be a whole number in [1, 64], got ", count_d));
    }
    int count = static_cast<int>(count_d);
    for (const CountFix& fix : kCountFixes) {
      if (provider == fix.provider && type == fix.instance_type && count != fix.gpus) {
        count = fix.gpus;
        ++stats->count_corrected;
      }
    }
    Offer o;
    bool has_price = false, has_spot = false;
    RETURN_IF_ERROR(PriceCell(t, r, c_price, &o.price, &has_price));
    RETURN_IF_ERROR(PriceCell(t, r, c_spot, &o.spot, &has_spot));
    if (!has_price || o.price <= 0) {
      ++stats->empty_price;
      continue;
    }
    if (has_spot && (o.spot <= 0 || o.spot >= o.price)) {
      ++stats->spot_ignored;
      has_spot = false;
    }
    if (!has_spot) o.spot = 0;
    const GpuModel* model = gpus.Find(gpu_name);
    if (model == nullptr) {
      ++stats->unknown_gpu;
      AddDistinct(&stats->unknown_gpu_names, gpu_name);
      continue;
    }
    if (provider == "gcp" && type.empty()) {
      // GCP prices the GPU attachment only; the VM is host machine + GPUs.
      std::string host = GcpHostMachine(model->name, count);
      const Offer* h = nullptr;
      if (!host.empty() && have_hosts) {
        std::string zone = c_zone >= 0 ? Trimmed(t, r, c_zone) : "";
        // Same zone first; a region-level host price otherwise.
        if (auto it = hosts.by_zone.find(absl::StrCat(host, "@", zone));
            it != hosts.by_zone.end()) {
          h = &it->second;
        } else if (auto jt = hosts.by_region.find(absl::StrCat(host, "@", region));
                   jt != hosts.by_region.end()) {
          h = &jt->second;
        }
      }
      if (h == nullptr) {
        ++stats->no_host_price;
        AddDistinct(&stats->no_host_gpus, absl::StrCat(model->name, "x", count));
        continue;
      }
      o.price += h->price;
      o.spot = (o.spot > 0 && h->spot > 0) ? o.spot + h->spot : 0;
      type = host;
      ++stats->host_added;
    }
    if (type.empty())
      return absl::InvalidArgumentError(absl::StrCat(t.Where(r, c_type), ": empty instance type"));
    PoolAcc& a = acc[PoolKey{region, type}];
    if (a.gpus != 0 && (a.gpus != count || a.gpu != model->name)) {
      return absl::InvalidArgumentError(
          absl::StrCat(t.Where(r, c_gpu), ": ", type, " in ", region, " was ", a.gpus, " x ", a.gpu,
                       " on an earlier row, here ", count, " x ", model->name));
    }
    a.gpu = model->name;
    a.gpus = count;
    a.prices.push_back(o.price);
    if (o.spot > 0) a.spots.push_back(o.spot);
  }

  std::vector<Pool> pools;
  pools.reserve(acc.size());
  for (const auto& [key, a] : acc) {
    Pool p;
    p.provider = provider;
    p.region = key.region;
    p.instance_type = key.instance_type;
    p.id = absl::StrCat(provider, "/", key.region, "/", key.instance_type);
    p.gpu_type = a.gpu;
    p.gpus_per_node = a.gpus;
    auto [lo, hi] = std::minmax_element(a.prices.begin(), a.prices.end());
    if (*lo != *hi) ++stats->ondemand_differs;
    p.price_micros_per_node_hour = Money::FromUsd(*hi).micros();
    p.spot_price_micros_per_node_hour =
        a.spots.empty() ? 0 : Money::FromUsd(Median(a.spots)).micros();
    if (p.spot_price_micros_per_node_hour >= p.price_micros_per_node_hour)
      p.spot_price_micros_per_node_hour = 0;
    const GpuModel* m = gpus.Find(a.gpu);
    p.gpu_power_w = m->power_w;
    p.speed = m->speed;
    pools.push_back(std::move(p));
  }
  stats->pools = static_cast<int64_t>(pools.size());
  return pools;
}

std::vector<std::string> CatalogNotes(absl::string_view provider, const CatalogStats& s) {
  std::vector<std::string> notes;
  if (s.empty_price > 0) {
    notes.push_back(
        absl::StrCat(provider, ": ", s.empty_price, " rows without an on-demand price skipped"));
  }
  if (s.unknown_gpu > 0) {
    notes.push_back(absl::StrCat(provider, ": ", s.unknown_gpu,
                                 " rows with GPUs not in the GPU table skipped (",
                                 absl::StrJoin(s.unknown_gpu_names, ", "), ")"));
  }
  if (s.spot_ignored > 0) {
    notes.push_back(
        absl::StrCat(provider, ": ", s.spot_ignored, " spot prices at or above on-demand ignored"));
  }
  if (s.no_host_price > 0) {
    notes.push_back(absl::StrCat(provider, ": ", s.no_host_price,
                                 " GPU-only rows skipped, no host VM price (",
                                 absl::StrJoin(s.no_host_gpus, ", "), ")"));
  }
  if (s.host_added > 0) {
    notes.push_back(
        absl::StrCat(provider, ": ", s.host_added, " GPU-only rows priced as host VM + GPUs"));
  }
  if (s.count_corrected > 0) {
    notes.push_back(absl::StrCat(provider, ": ", s.count_corrected,
                                 " rows with a known wrong GPU count corrected"));
  }
  if (s.ondemand_differs > 0) {
    notes.push_back(
        absl::StrCat(provider, ": ", s.ondemand_differs,
                     " pools whose zones list different on-demand prices (highest used)"));
  }
  return notes;
}

}  // namespace greenlight::providers
