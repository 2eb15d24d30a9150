// The other data-file loaders: a SkyPilot price catalog for each provider
// (services/providers/price_catalog.h), the mlco2 GPU table and overrides
// (gpu_table.h) and the region -> zone table (region_zones.h). The first
// byte picks the loader; the rest is the file. The other inputs are the
// real files shipped in data/.
#include <cstddef>
#include <cstdint>

#include "services/providers/gpu_table.h"
#include "services/providers/price_catalog.h"
#include "services/providers/region_zones.h"
#include "tests/fuzz/fuzz_util.h"

namespace {
using namespace greenlight::providers;  // NOLINT

const GpuTable& Gpus() {
  static const GpuTable* t = [] {
    auto g = GpuTable::Load(greenlight::fuzz::Root() + "/data/gpus/mlco2_gpus.csv",
                            greenlight::fuzz::Root() + "/data/gpu_overrides.csv");
    if (!g.ok()) {
      std::fprintf(stderr, "cannot load the real GPU table: %s\n",
                   std::string(g.status().message()).c_str());
      std::abort();
    }
    return new GpuTable(std::move(*g));
  }();
  return *t;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 || size > 256 * 1024) return 0;
  const std::string root = greenlight::fuzz::Root();
  std::string path = greenlight::fuzz::ScratchFile(data + 1, size - 1);
  static const char* kProviders[] = {"aws", "gcp", "azure", "lambda", "runpod"};
  switch (data[0] % 9) {
    case 0:
    case 1:
    case 2:
    case 3:
    case 4: {
      greenlight::CatalogConfig c;
      c.provider = kProviders[data[0] % 9];
      c.file = path;
      if (c.provider == "gcp") c.host_file = root + "/data/prices/gcp_gpu_host_vms_partial.csv";
      CatalogStats stats;
      auto pools = LoadPriceCatalog(c, Gpus(), &stats);
      (void)CatalogNotes(c.provider, stats);
      if (pools.ok()) {
        for (const auto& p : *pools)
          GL_FUZZ_CHECK(p.gpus_per_node > 0 && p.price_micros_per_node_hour >= 0);
      }
      break;
    }
    case 5: {  // the file as gcp's host price list
      greenlight::CatalogConfig c{"gcp", root + "/data/prices/gcp_gpu_vms.csv", path};
      CatalogStats stats;
      (void)LoadPriceCatalog(c, Gpus(), &stats);
      break;
    }
    case 6:
      (void)GpuTable::Load(path, root + "/data/gpu_overrides.csv");
      break;
    case 7:
      (void)GpuTable::Load(root + "/data/gpus/mlco2_gpus.csv", path);
      break;
    case 8: {
      auto t = RegionTable::Load(path, root + "/data/gpus/mlco2_impact_cloud_region_carbon.csv");
      if (t.ok()) (void)t->Lookup("aws", "us-east-1");
      auto u = RegionTable::Load(root + "/data/region_zones.csv", path);
      if (u.ok()) (void)u->Lookup("gcp", "europe-west4");
      break;
    }
  }
  return 0;
}
