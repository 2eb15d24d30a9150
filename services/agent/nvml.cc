#include "services/agent/nvml.h"

#include <dlfcn.h>

#include <limits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "common/units.h"

namespace greenlight::agent {
namespace {

// The subset of nvml.h the agent uses, declared here so that the build needs
// no NVIDIA headers. nvmlReturn_t is an int-sized enum in the real header.
using nvmlReturn_t = int;
struct nvmlDevice_st;
using nvmlDevice_t = nvmlDevice_st*;
struct nvmlMemory_t {
  unsigned long long total;
  unsigned long long free;
  unsigned long long used;
};
struct nvmlUtilization_t {
  unsigned int gpu;
  unsigned int memory;
};

constexpr nvmlReturn_t kNvmlSuccess = 0;
constexpr nvmlReturn_t kNvmlErrorInvalidArgument = 2;
constexpr nvmlReturn_t kNvmlErrorNotSupported = 3;
constexpr nvmlReturn_t kNvmlErrorNotFound = 6;

// Buffer sizes from nvml.h (NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE,
// NVML_DEVICE_UUID_V2_BUFFER_SIZE, NVML_DEVICE_NAME_V2_BUFFER_SIZE).
constexpr unsigned int kDriverVersionSize = 80;
constexpr unsigned int kUuidSize = 96;
constexpr unsigned int kNameSize = 96;

}  // namespace

struct NvmlLibrary::Api {
  nvmlReturn_t (*nvmlInit_v2)();
  nvmlReturn_t (*nvmlShutdown)();
  const char* (*nvmlErrorString)(nvmlReturn_t);
  nvmlReturn_t (*nvmlSystemGetDriverVersion)(char*, unsigned int);
  nvmlReturn_t (*nvmlDeviceGetCount_v2)(unsigned int*);
  nvmlReturn_t (*nvmlDeviceGetHandleByIndex_v2)(unsigned int, nvmlDevice_t*);
  nvmlReturn_t (*nvmlDeviceGetUUID)(nvmlDevice_t, char*, unsigned int);
  nvmlReturn_t (*nvmlDeviceGetName)(nvmlDevice_t, char*, unsigned int);
  nvmlReturn_t (*nvmlDeviceGetMemoryInfo)(nvmlDevice_t, nvmlMemory_t*);
  nvmlReturn_t (*nvmlDeviceGetPowerManagementLimit)(nvmlDevice_t, unsigned int*);
  nvmlReturn_t (*nvmlDeviceGetTotalEnergyConsumption)(nvmlDevice_t, unsigned long long*);
  nvmlReturn_t (*nvmlDeviceGetPowerUsage)(nvmlDevice_t, unsigned int*);
  nvmlReturn_t (*nvmlDeviceGetUtilizationRates)(nvmlDevice_t, nvmlUtilization_t*);

  std::string ErrorText(nvmlReturn_t r) const {
    const char* s = nvmlErrorString(r);
    return absl::StrCat(s != nullptr ? s : "unknown", " (NVML error ", r, ")");
  }

  // Status for a failed call; `what` names the entry point and its argument.
  absl::Status Error(nvmlReturn_t r, absl::string_view what) const {
    std::string msg = absl::StrCat(what, ": ", ErrorText(r));
    switch (r) {
      case kNvmlErrorNotSupported:
        return absl::UnimplementedError(msg);
      case kNvmlErrorNotFound:
        return absl::NotFoundError(msg);
      case kNvmlErrorInvalidArgument:
        return absl::InvalidArgumentError(msg);
      default:
        return absl::UnavailableError(msg);
    }
  }
};

namespace {

std::string GpuCall(const char* call, int index) { return absl::StrCat(call, "(gpu ", index, ")"); }

// Resolves `name` into `fn`, or appends `name` to `missing`.
template <typename Fn>
void Resolve(void* handle, const char* name, Fn* fn, std::vector<std::string>* missing) {
  void* sym = dlsym(handle, name);
  if (sym == nullptr) {
    missing->push_back(name);
    return;
  }
  *fn = reinterpret_cast<Fn>(sym);
}

int64_t ClampToInt64(unsigned long long v) {
  constexpr auto kMax = static_cast<unsigned long long>(std::numeric_limits<int64_t>::max());
  return static_cast<int64_t>(v > kMax ? kMax : v);
}

}  // namespace

absl::StatusOr<std::unique_ptr<NvmlLibrary>> NvmlLibrary::Load(const std::string& path) {
  dlerror();  // clear
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* err = dlerror();
    return absl::FailedPreconditionError(absl::StrCat("cannot load NVML library ", path, ": ",
                                                      err != nullptr ? err : "dlopen failed"));
  }
  auto api = std::make_unique<Api>();
  std::vector<std::string> missing;
#define GL_NVML_RESOLVE(fn) Resolve(handle, #fn, &api->fn, &missing)
  GL_NVML_RESOLVE(nvmlInit_v2);
  GL_NVML_RESOLVE(nvmlShutdown);
  GL_NVML_RESOLVE(nvmlErrorString);
  GL_NVML_RESOLVE(nvmlSystemGetDriverVersion);
  GL_NVML_RESOLVE(nvmlDeviceGetCount_v2);
  GL_NVML_RESOLVE(nvmlDeviceGetHandleByIndex_v2);
  GL_NVML_RESOLVE(nvmlDeviceGetUUID);
  GL_NVML_RESOLVE(nvmlDeviceGetName);
  GL_NVML_RESOLVE(nvmlDeviceGetMemoryInfo);
  GL_NVML_RESOLVE(nvmlDeviceGetPowerManagementLimit);
  GL_NVML_RESOLVE(nvmlDeviceGetTotalEnergyConsumption);
  GL_NVML_RESOLVE(nvmlDeviceGetPowerUsage);
  GL_NVML_RESOLVE(nvmlDeviceGetUtilizationRates);
#undef GL_NVML_RESOLVE
  if (!missing.empty()) {
    dlclose(handle);
    return absl::FailedPreconditionError(
        absl::StrCat(path, " is not a usable NVML library: missing symbol",
                     missing.size() > 1 ? "s " : " ", absl::StrJoin(missing, ", ")));
  }
  nvmlReturn_t r = api->nvmlInit_v2();
  if (r != kNvmlSuccess) {
    std::string err = api->ErrorText(r);
    dlclose(handle);
    return absl::FailedPreconditionError(
        absl::StrCat("nvmlInit_v2 failed (NVML library ", path, "): ", err));
  }
  return std::unique_ptr<NvmlLibrary>(new NvmlLibrary(path, handle, std::move(api)));
}

NvmlLibrary::NvmlLibrary(std::string path, void* handle, std::unique_ptr<Api> api)
    : path_(std::move(path)), handle_(handle), api_(std::move(api)) {}

NvmlLibrary::~NvmlLibrary() {
  api_->nvmlShutdown();
  dlclose(handle_);
}

std::string NvmlLibrary::DriverVersion() const {
  char buf[kDriverVersionSize] = {};
  if (api_->nvmlSystemGetDriverVersion(buf, sizeof(buf)) != kNvmlSuccess) return "";
  buf[sizeof(buf) - 1] = '\0';
  return buf;
}

absl::StatusOr<void*> NvmlLibrary::Device(int index, const char* call) const {
  if (index < 0) {
    return absl::InvalidArgumentError(absl::StrCat(GpuCall(call, index), ": negative GPU index"));
  }
  nvmlDevice_t device = nullptr;
  nvmlReturn_t r = api_->nvmlDeviceGetHandleByIndex_v2(static_cast<unsigned int>(index), &device);
  if (r != kNvmlSuccess) {
    return api_->Error(r, GpuCall("nvmlDeviceGetHandleByIndex_v2", index));
  }
  return static_cast<void*>(device);
}

absl::StatusOr<std::vector<GpuInfo>> NvmlLibrary::Discover() const {
  unsigned int count = 0;
  nvmlReturn_t r = api_->nvmlDeviceGetCount_v2(&count);
  if (r != kNvmlSuccess) return api_->Error(r, "nvmlDeviceGetCount_v2");
  std::vector<GpuInfo> gpus;
  for (unsigned int i = 0; i < count; ++i) {
    const int index = static_cast<int>(i);
    ASSIGN_OR_RETURN(void* handle, Device(index, "nvmlDeviceGetHandleByIndex_v2"));
    nvmlDevice_t device = static_cast<nvmlDevice_t>(handle);
    GpuInfo info;
    info.index = index;
    char uuid[kUuidSize] = {};
    if ((r = api_->nvmlDeviceGetUUID(device, uuid, sizeof(uuid))) != kNvmlSuccess) {
      return api_->Error(r, GpuCall("nvmlDeviceGetUUID", index));
    }
    uuid[sizeof(uuid) - 1] = '\0';
    info.uuid = uuid;
    char name[kNameSize] = {};
    if ((r = api_->nvmlDeviceGetName(device, name, sizeof(name))) != kNvmlSuccess) {
      return api_->Error(r, GpuCall("nvmlDeviceGetName", index));
    }
    name[sizeof(name) - 1] = '\0';
    info.name = name;
    nvmlMemory_t memory = {};
    if ((r = api_->nvmlDeviceGetMemoryInfo(device, &memory)) != kNvmlSuccess) {
      return api_->Error(r, GpuCall("nvmlDeviceGetMemoryInfo", index));
    }
    info.memory_bytes = ClampToInt64(memory.total);
    unsigned int limit = 0;
    r = api_->nvmlDeviceGetPowerManagementLimit(device, &limit);
    if (r == kNvmlSuccess) {
      info.power_limit_mw = limit;
    } else if (r != kNvmlErrorNotSupported) {  // unsupported: 0, unknown
      return api_->Error(r, GpuCall("nvmlDeviceGetPowerManagementLimit", index));
    }
    gpus.push_back(std::move(info));
  }
  return gpus;
}

absl::StatusOr<int64_t> NvmlLibrary::TotalEnergyMj(int index) const {
  constexpr char kCall[] = "nvmlDeviceGetTotalEnergyConsumption";
  ASSIGN_OR_RETURN(void* device, Device(index, kCall));
  unsigned long long mj = 0;
  nvmlReturn_t r =
      api_->nvmlDeviceGetTotalEnergyConsumption(static_cast<nvmlDevice_t>(device), &mj);
  if (r != kNvmlSuccess) return api_->Error(r, GpuCall(kCall, index));
  return ClampToInt64(mj);
}

absl::StatusOr<int64_t> NvmlLibrary::PowerMw(int index) const {
  constexpr char kCall[] = "nvmlDeviceGetPowerUsage";
  ASSIGN_OR_RETURN(void* device, Device(index, kCall));
  unsigned int mw = 0;
  nvmlReturn_t r = api_->nvmlDeviceGetPowerUsage(static_cast<nvmlDevice_t>(device), &mw);
  if (r != kNvmlSuccess) return api_->Error(r, GpuCall(kCall, index));
  return static_cast<int64_t>(mw);
}

absl::StatusOr<int> NvmlLibrary::UtilizationPct(int index) const {
  constexpr char kCall[] = "nvmlDeviceGetUtilizationRates";
  ASSIGN_OR_RETURN(void* device, Device(index, kCall));
  nvmlUtilization_t util = {};
  nvmlReturn_t r = api_->nvmlDeviceGetUtilizationRates(static_cast<nvmlDevice_t>(device), &util);
  if (r != kNvmlSuccess) return api_->Error(r, GpuCall(kCall, index));
  return static_cast<int>(util.gpu > 100 ? 100 : util.gpu);
}

GpuEnergyMeter::GpuEnergyMeter(const NvmlLibrary* nvml, std::vector<int> gpu_indices)
    : nvml_(nvml) {
  gpus_.reserve(gpu_indices.size());
  for (int index : gpu_indices) {
    GpuState s;
    s.index = index;
    gpus_.push_back(s);
  }
}

absl::StatusOr<std::vector<GpuEnergySample>> GpuEnergyMeter::Sample(absl::Time now) {
  // Two half-mW*ns per mJ: the trapezoid (p0 + p1) / 2 * dt is accumulated as
  // (p0 + p1) * dt_ns, exact in 128 bits.
  constexpr int64_t kUnitsPerMj = 2'000'000'000;
  std::vector<GpuState> next = gpus_;
  std::vector<GpuEnergySample> out;
  out.reserve(next.size());
  for (GpuState& g : next) {
    GpuEnergySample sample;
    sample.index = g.index;
    absl::StatusOr<int64_t> counter = nvml_->TotalEnergyMj(g.index);
    if (counter.ok()) {
      sample.source = kEnergySourceTotalEnergy;
      // Below the previous reading: a reset (driver reload); add nothing.
      if (g.has_counter && *counter >= g.counter_mj) {
        g.energy_mj = SatAdd(g.energy_mj, *counter - g.counter_mj);
      }
      g.has_counter = true;
      g.counter_mj = *counter;
      g.has_power = false;
      g.remainder = 0;
    } else if (absl::IsUnimplemented(counter.status())) {
      ASSIGN_OR_RETURN(int64_t power, nvml_->PowerMw(g.index));
      sample.source = kEnergySourcePowerIntegration;
      if (g.has_power && now > g.power_time) {
        const __int128 units =
            static_cast<__int128>(g.power_mw + power) *
                static_cast<__int128>(absl::ToInt64Nanoseconds(now - g.power_time)) +
            g.remainder;
        const __int128 mj = units / kUnitsPerMj;
        g.remainder = static_cast<int64_t>(units % kUnitsPerMj);
        g.energy_mj = SatAdd(g.energy_mj, mj > std::numeric_limits<int64_t>::max()
                                              ? std::numeric_limits<int64_t>::max()
                                              : static_cast<int64_t>(mj));
      }
      g.has_power = true;
      g.power_mw = power;
      g.power_time = now;
      g.has_counter = false;
    } else {
      return counter.status();
    }
    absl::StatusOr<int> util = nvml_->UtilizationPct(g.index);
    if (util.ok()) {
      sample.utilization_pct = *util;
    } else if (!absl::IsUnimplemented(util.status())) {
      return util.status();
    }
    sample.energy_mj = g.energy_mj;
    out.push_back(std::move(sample));
  }
  gpus_ = std::move(next);
  return out;
}

}  // namespace greenlight::agent
