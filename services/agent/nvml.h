// NVML (the NVIDIA Management Library) for greenlight-agent, loaded at run
// time with dlopen so that the agent builds and runs on machines without the
// NVIDIA driver: GPU discovery, and per-GPU energy metered from the driver's
// total-energy counter or, where the GPU lacks one, by integrating power.
// Tests load tests/testing/fake_nvml (a stand-in libnvidia-ml.so.1) through
// the same path.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace greenlight::agent {

struct GpuInfo {
  int index = 0;               // NVML index
  std::string uuid;            // "GPU-8f1c..."
  std::string name;            // "NVIDIA H100 80GB HBM3"
  int64_t memory_bytes = 0;    // total framebuffer memory
  int64_t power_limit_mw = 0;  // power management limit
};

// One loaded and initialised NVML. Every method may be called from several
// threads at once (NVML itself is thread-safe). NVML errors become statuses
// that name the entry point, the GPU and NVML's error string; NVML's
// NOT_SUPPORTED is always absl::UnimplementedError, NOT_FOUND NotFound,
// INVALID_ARGUMENT InvalidArgument, anything else Unavailable.
class NvmlLibrary {
 public:
  static constexpr char kDefaultPath[] = "libnvidia-ml.so.1";

  // dlopen(path, RTLD_NOW | RTLD_LOCAL) (a name without '/' is searched for
  // as dlopen does), resolves every entry point and calls nvmlInit_v2.
  // Errors: FailedPrecondition naming `path` and dlerror() when the library
  // does not load, naming every missing symbol and `path` when it is not an
  // NVML library, and naming nvmlInit_v2 and NVML's error string when
  // initialisation fails.
  static absl::StatusOr<std::unique_ptr<NvmlLibrary>> Load(const std::string& path = kDefaultPath);

  // nvmlShutdown, then dlclose.
  ~NvmlLibrary();
  NvmlLibrary(const NvmlLibrary&) = delete;
  NvmlLibrary& operator=(const NvmlLibrary&) = delete;

  const std::string& path() const { return path_; }
  // The driver version ("550.54.15"), or "" when NVML cannot tell.
  std::string DriverVersion() const;
  // Every GPU NVML sees, by index.
  absl::StatusOr<std::vector<GpuInfo>> Discover() const;

  // Low-level reads of one GPU by NVML index.
  // Energy since the driver was loaded, mJ (nvmlDeviceGetTotalEnergyConsumption);
  // UnimplementedError where the GPU has no such counter (before Volta).
  absl::StatusOr<int64_t> TotalEnergyMj(int index) const;
  // Current board power draw, mW (nvmlDeviceGetPowerUsage).
  absl::StatusOr<int64_t> PowerMw(int index) const;
  // GPU utilisation over the driver's last sample period, percent 0..100.
  absl::StatusOr<int> UtilizationPct(int index) const;

 private:
  struct Api;  // resolved entry points (nvml.cc)

  NvmlLibrary(std::string path, void* handle, std::unique_ptr<Api> api);
  // nvmlDeviceGetHandleByIndex_v2; `call` names the caller's entry point.
  absl::StatusOr<void*> Device(int index, const char* call) const;

  std::string path_;
  void* handle_;  // from dlopen
  std::unique_ptr<Api> api_;
};

// Values of GpuEnergySample::source.
inline constexpr char kEnergySourceTotalEnergy[] = "total_energy";
inline constexpr char kEnergySourcePowerIntegration[] = "power_integration";

struct GpuEnergySample {
  int index = 0;
  // Energy since the meter's first sample, mJ; never decreases.
  int64_t energy_mj = 0;
  // How the last interval was measured: kEnergySourceTotalEnergy or
  // kEnergySourcePowerIntegration.
  std::string source;
  // GPU utilisation now, percent; -1 where the GPU does not report it.
  int utilization_pct = -1;
};

// Meters the energy of a fixed set of GPUs from periodic samples.
//
// Each Sample reads each GPU's total-energy counter and adds the increase
// since the previous sample. A GPU without that counter (NVML NOT_SUPPORTED)
// is metered by power instead: each interval adds the trapezoid
// (p_prev + p_now) / 2 * (now - t_prev), kept exact to the millijoule with the
// sub-millijoule remainder carried to the next interval.
//
// Energy never goes backwards. A counter below its previous reading (the
// driver was reloaded, which restarts the counter) is a reset: the interval
// adds nothing, the accumulated energy is kept and the new reading becomes the
// baseline. Likewise a sample time not after the previous one adds nothing
// and restarts the power baseline, and the first interval after a GPU
// switches between counter and power adds nothing.
//
// Not thread-safe: one caller samples.
class GpuEnergyMeter {
 public:
  // `nvml` must outlive the meter.
  GpuEnergyMeter(const NvmlLibrary* nvml, std::vector<int> gpu_indices);

  // Reads every GPU and returns one sample per GPU, in construction order.
  // The first call establishes the baselines (energy 0). On error (a GPU read
  // failed, other than NOT_SUPPORTED where a fallback exists) nothing is
  // updated, so a later call continues as if this one had not happened.
  absl::StatusOr<std::vector<GpuEnergySample>> Sample(absl::Time now);

 private:
  struct GpuState {
    int index = 0;
    int64_t energy_mj = 0;
    bool has_counter = false;  // last sample read the counter
    int64_t counter_mj = 0;
    bool has_power = false;  // last sample read power instead
    int64_t power_mw = 0;
    absl::Time power_time;
    // Integrated power not yet a whole mJ, in units of 0.5 mW*ns (0 .. 2e9 - 1).
    int64_t remainder = 0;
  };

  const NvmlLibrary* nvml_;
  std::vector<GpuState> gpus_;
};

}  // namespace greenlight::agent
