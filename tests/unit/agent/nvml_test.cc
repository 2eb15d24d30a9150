// NvmlLibrary and GpuEnergyMeter against the test NVML library
// (tests/testing/fake_nvml), loaded by path through the production dlopen
// code, with GPUs and counters from a file the test rewrites between samples.
#include "services/agent/nvml.h"

#include <stdlib.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_testing.h"
#include "tests/testing/temp_dir.h"

namespace greenlight::agent {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

std::string FakeLibraryPath() {
  const char* bin = std::getenv("GREENLIGHT_BIN");
  return std::string(bin != nullptr ? bin : "GREENLIGHT_BIN-unset") +
         "/testing/nvml/libnvidia-ml.so.1";
}

class NvmlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(dir_.ok());
    ASSERT_NE(std::getenv("GREENLIGHT_BIN"), nullptr) << "run under ctest";
    setenv("GREENLIGHT_FAKE_NVML_FILE", file_.c_str(), 1);
  }
  void TearDown() override { unsetenv("GREENLIGHT_FAKE_NVML_FILE"); }

  // Replaces the fake's state file.
  void Write(const std::string& text) {
    std::ofstream out(file_, std::ios::trunc);
    out << text;
    ASSERT_TRUE(out.good());
  }

  absl::StatusOr<std::unique_ptr<NvmlLibrary>> Load() {
    return NvmlLibrary::Load(FakeLibraryPath());
  }

  testing::TempDir dir_;
  std::string file_ = dir_.File("nvml.txt");
};

const absl::Time kT0 = absl::FromUnixSeconds(1'700'000'000);

TEST_F(NvmlTest, DiscoversEveryGpuWithExactFields) {
  Write(
      "# index uuid name memory_mib power_limit_mw energy_mj power_mw util_pct\n"
      "\n"
      "0 GPU-aaaa-0000 NVIDIA-H100-80GB-HBM3 81559 700000 123456789 250000 87\n"
      "1 GPU-bbbb-1111 NVIDIA-A100-SXM4-40GB 40960 400000 - 150000 12\n"
      "   # indented comment\n"
      "2 GPU-cccc-2222 Tesla-V100-SXM2-16GB 16384 300000 0 60000 0\n");
  ASSERT_OK_AND_ASSIGN(auto nvml, Load());
  EXPECT_EQ(nvml->path(), FakeLibraryPath());
  EXPECT_EQ(nvml->DriverVersion(), "550.00.00-greenlight-fake");
  ASSERT_OK_AND_ASSIGN(std::vector<GpuInfo> gpus, nvml->Discover());
  ASSERT_EQ(gpus.size(), 3u);
  EXPECT_EQ(gpus[0].index, 0);
  EXPECT_EQ(gpus[0].uuid, "GPU-aaaa-0000");
  EXPECT_EQ(gpus[0].name, "NVIDIA-H100-80GB-HBM3");
  EXPECT_EQ(gpus[0].memory_bytes, int64_t{81559} * 1024 * 1024);
  EXPECT_EQ(gpus[0].power_limit_mw, 700000);
  EXPECT_EQ(gpus[1].index, 1);
  EXPECT_EQ(gpus[1].uuid, "GPU-bbbb-1111");
  EXPECT_EQ(gpus[1].name, "NVIDIA-A100-SXM4-40GB");
  EXPECT_EQ(gpus[1].memory_bytes, int64_t{40960} * 1024 * 1024);
  EXPECT_EQ(gpus[1].power_limit_mw, 400000);
  EXPECT_EQ(gpus[2].index, 2);
  EXPECT_EQ(gpus[2].uuid, "GPU-cccc-2222");
  EXPECT_EQ(gpus[2].name, "Tesla-V100-SXM2-16GB");
  EXPECT_EQ(gpus[2].memory_bytes, int64_t{16384} * 1024 * 1024);
  EXPECT_EQ(gpus[2].power_limit_mw, 300000);
}

TEST_F(NvmlTest, LowLevelReadsReturnTheFileAndDistinguishNotSupported) {
  Write(
      "0 GPU-a H100 81559 700000 5000 250000 87\n"
      "1 GPU-b A100 40960 400000 - 150000 12\n");
  ASSERT_OK_AND_ASSIGN(auto nvml, Load());
  ASSERT_OK_AND_ASSIGN(int64_t energy, nvml->TotalEnergyMj(0));
  EXPECT_EQ(energy, 5000);
  ASSERT_OK_AND_ASSIGN(int64_t power, nvml->PowerMw(1));
  EXPECT_EQ(power, 150000);
  ASSERT_OK_AND_ASSIGN(int util, nvml->UtilizationPct(0));
  EXPECT_EQ(util, 87);

  absl::StatusOr<int64_t> unsupported = nvml->TotalEnergyMj(1);
  EXPECT_EQ(unsupported.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(
      unsupported.status().message(),
      AllOf(HasSubstr("nvmlDeviceGetTotalEnergyConsumption(gpu 1)"), HasSubstr("Not Supported")));

  EXPECT_EQ(nvml->PowerMw(2).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(nvml->PowerMw(-1).status().code(), absl::StatusCode::kInvalidArgument);

  // Counters are re-read on every call.
  Write(
      "0 GPU-a H100 81559 700000 9000 255000 90\n"
      "1 GPU-b A100 40960 400000 - 151000 12\n");
  ASSERT_OK_AND_ASSIGN(energy, nvml->TotalEnergyMj(0));
  EXPECT_EQ(energy, 9000);
  ASSERT_OK_AND_ASSIGN(power, nvml->PowerMw(1));
  EXPECT_EQ(power, 151000);
}

TEST_F(NvmlTest, MeterEnergyIsTheExactCounterDelta) {
  Write(
      "0 GPU-a H100 81559 700000 1000000 250000 87\n"
      "1 GPU-b H100 81559 700000 42 100000 5\n");
  ASSERT_OK_AND_ASSIGN(auto nvml, Load());
  GpuEnergyMeter meter(nvml.get(), {0, 1});

  ASSERT_OK_AND_ASSIGN(std::vector<GpuEnergySample> s, meter.Sample(kT0));
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].index, 0);
  EXPECT_EQ(s[0].energy_mj, 0);
  EXPECT_EQ(s[0].source, kEnergySourceTotalEnergy);
  EXPECT_EQ(s[0].utilization_pct, 87);
  EXPECT_EQ(s[1].index, 1);
  EXPECT_EQ(s[1].energy_mj, 0);
  EXPECT_EQ(s[1].utilization_pct, 5);

  Write(
      "0 GPU-a H100 81559 700000 3500123 250000 90\n"
      "1 GPU-b H100 81559 700000 50 100000 6\n");
  ASSERT_OK_AND_ASSIGN(s, meter.Sample(kT0 + absl::Seconds(10)));
  EXPECT_EQ(s[0].energy_mj, 2500123);
  EXPECT_EQ(s[0].source, kEnergySourceTotalEnergy);
  EXPECT_EQ(s[0].utilization_pct, 90);
  EXPECT_EQ(s[1].energy_mj, 8);
  EXPECT_EQ(s[1].utilization_pct, 6);

  // Unchanged counters add nothing, whatever the power says.
  ASSERT_OK_AND_ASSIGN(s, meter.Sample(kT0 + absl::Seconds(20)));
  EXPECT_EQ(s[0].energy_mj, 2500123);
  EXPECT_EQ(s[1].energy_mj, 8);
}

TEST_F(NvmlTest, MeterIntegratesPowerWhenTheCounterIsNotSupported) {
  Write("0 GPU-a V100 16384 300000 - 100000 50\n");
  ASSERT_OK_AND_ASSIGN(auto nvml, Load());
  GpuEnergyMeter meter(nvml.get(), {0});

  ASSERT_OK_AND_ASSIGN(std::vector<GpuEnergySample> s, meter.Sample(kT0));
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].energy_mj, 0);
  EXPECT_EQ(s[0].source, kEnergySourcePowerIntegration);
  EXPECT_EQ(s[0].utilization_pct, 50);

  // (100 W + 200 W) / 2 * 10 s = 1500 J.
  Write("0 GPU-a V100 16384 300000 - 200000 50\n");
  ASSERT_OK_AND_ASSIGN(s, meter.Sample(kT0 + absl::Seconds(10)));
  EXPECT_EQ(s[0].energy_mj, 1'500'000);
  EXPECT_EQ(s[0].source, kEnergySourcePowerIntegration);

  // (200 W + 300 W) / 2 * 0.25 s = 62.5 J.
  Write("0 GPU-a V100 16384 300000 - 300000 50\n");
  ASSERT_OK_AND_ASSIGN(s, meter.Sample(kT0 + absl::Milliseconds(10'250)));
  EXPECT_EQ(s[0].energy_mj, 1'562'500);

  // A sample time before the previous one adds nothing and restarts the
  // baseline there: the next interval is 100 W over 2 s = 200 J.
  Write("0 GPU-a V100 16384 300000 - 100000 50\n");
  ASSERT_OK_AND_ASSIGN(s, meter.Sample(kT0 + absl::Seconds(5)));
  EXPECT_EQ(s[0].energy_mj, 1'562'500);
  ASSERT_OK_AND_ASSIGN(s, meter.Sample(kT0 + absl::Seconds(7)));
  EXPECT_EQ(s[0].energy_mj, 1'762'500);
}

TEST_F(NvmlTest, PowerIntegrationCarriesSubMillijoulesExactly) {
  // 1 mW for 0.4 s is 0.4 mJ: whole millijoules appear only once the carried
  // remainder adds up, and none are lost to rounding.
  Write("0 GPU-a V100 16384 300000 - 1 0\n");
  ASSERT_OK_AND_ASSIGN(auto nvml, Load());
  GpuEnergyMeter meter(nvml.get(), {0});
  ASSERT_OK(meter.Sample(kT0));
  std::vector<int64_t> got;
  for (int i = 1; i <= 10; ++i) {
    ASSERT_OK_AND_ASSIGN(auto s, meter.Sample(kT0 + i * absl::Milliseconds(400)));
    got.push_back(s[0].energy_mj);
  }
  EXPECT_EQ(got, (std::vector<int64_t>{0, 0, 1, 1, 2, 2, 2, 3, 3, 4}));
}

TEST_F(NvmlTest, CounterResetKeepsTheAccumulatedEnergy) {
  Write("0 GPU-a H100 81559 700000 10000 250000 10\n");
  ASSERT_OK_AND_ASSIGN(auto nvml, Load());
  GpuEnergyMeter meter(nvml.get(), {0});
  ASSERT_OK(meter.Sample(kT0));
  Write("0 GPU-a H100 81559 700000 15000 250000 10\n");
  ASSERT_OK_AND_ASSIGN(auto s, meter.Sample(kT0 + absl::Seconds(1)));
  EXPECT_EQ(s[0].energy_mj, 5000);

  // Driver reload: the counter restarts near zero. The interval adds nothing.
  Write("0 GPU-a H100 81559 700000 300 250000 10\n");
  ASSERT_OK_AND_ASSIGN(s, meter.Sample(kT0 + absl::Seconds(2)));
  EXPECT_EQ(s[0].energy_mj, 5000);
  EXPECT_EQ(s[0].source, kEnergySourceTotalEnergy);

  // Then deltas continue from the new baseline.
  Write("0 GPU-a H100 81559 700000 1300 250000 10\n");
  ASSERT_OK_AND_ASSIGN(s, meter.Sample(kT0 + absl::Seconds(3)));
  EXPECT_EQ(s[0].energy_mj, 6000);
}

TEST_F(NvmlTest, MeterMetersOnlyItsGpusWithEachGpusOwnSource) {
  Write(
      "0 GPU-a H100 81559 700000 1000 250000 10\n"
      "1 GPU-b V100 16384 300000 - 100000 20\n"
      "2 GPU-c H100 81559 700000 7000 250000 30\n");
  ASSERT_OK_AND_ASSIGN(auto nvml, Load());
  GpuEnergyMeter meter(nvml.get(), {2, 1});
  ASSERT_OK(meter.Sample(kT0));
  Write(
      "0 GPU-a H100 81559 700000 99999 250000 10\n"
      "1 GPU-b V100 16384 300000 - 100000 20\n"
      "2 GPU-c H100 81559 700000 9000 250000 30\n");
  ASSERT_OK_AND_ASSIGN(auto s, meter.Sample(kT0 + absl::Seconds(2)));
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].index, 2);
  EXPECT_EQ(s[0].energy_mj, 2000);
  EXPECT_EQ(s[0].source, kEnergySourceTotalEnergy);
  EXPECT_EQ(s[0].utilization_pct, 30);
  EXPECT_EQ(s[1].index, 1);
  EXPECT_EQ(s[1].energy_mj, 200'000);  // 100 W for 2 s
  EXPECT_EQ(s[1].source, kEnergySourcePowerIntegration);
  EXPECT_EQ(s[1].utilization_pct, 20);
}

TEST_F(NvmlTest, FailedSampleChangesNothing) {
  Write(
      "0 GPU-a H100 81559 700000 1000 250000 10\n"
      "1 GPU-b V100 16384 300000 - 100000 20\n");
  ASSERT_OK_AND_ASSIGN(auto nvml, Load());
  GpuEnergyMeter meter(nvml.get(), {0, 1});
  ASSERT_OK(meter.Sample(kT0));

  // The fake answers NVML_ERROR_UNKNOWN while its file is unreadable.
  Write("this is not a counter line\n");
  absl::StatusOr<std::vector<GpuEnergySample>> bad = meter.Sample(kT0 + absl::Seconds(1));
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(bad.status().message(), HasSubstr("Unknown Error"));

  Write(
      "0 GPU-a H100 81559 700000 4000 250000 10\n"
      "1 GPU-b V100 16384 300000 - 100000 20\n");
  ASSERT_OK_AND_ASSIGN(auto s, meter.Sample(kT0 + absl::Seconds(2)));
  EXPECT_EQ(s[0].energy_mj, 3000);
  EXPECT_EQ(s[1].energy_mj, 200'000);  // 100 W from kT0, not from the failed sample
}

TEST_F(NvmlTest, TwoLoadsShareTheLibraryAndShutDownIndependently) {
  Write("0 GPU-a H100 81559 700000 1000 250000 10\n");
  ASSERT_OK_AND_ASSIGN(auto first, Load());
  ASSERT_OK_AND_ASSIGN(auto second, Load());
  first.reset();
  ASSERT_OK_AND_ASSIGN(std::vector<GpuInfo> gpus, second->Discover());
  ASSERT_EQ(gpus.size(), 1u);
  EXPECT_EQ(gpus[0].uuid, "GPU-a");
}

TEST_F(NvmlTest, MissingLibraryNamesThePath) {
  const std::string path = dir_.File("no-such-dir/libnvidia-ml.so.1");
  absl::StatusOr<std::unique_ptr<NvmlLibrary>> nvml = NvmlLibrary::Load(path);
  EXPECT_EQ(nvml.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(nvml.status().message(),
              AllOf(HasSubstr("cannot load NVML library"), HasSubstr(path)));
}

TEST_F(NvmlTest, MissingCounterFileFailsInit) {
  setenv("GREENLIGHT_FAKE_NVML_FILE", dir_.File("absent.txt").c_str(), 1);
  absl::StatusOr<std::unique_ptr<NvmlLibrary>> nvml = Load();
  EXPECT_EQ(nvml.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(nvml.status().message(),
              AllOf(HasSubstr("nvmlInit_v2 failed"), HasSubstr(FakeLibraryPath()),
                    HasSubstr("Unknown Error (NVML error 999)")));

  unsetenv("GREENLIGHT_FAKE_NVML_FILE");
  EXPECT_EQ(Load().status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(NvmlTest, MalformedCounterFileFailsInit) {
  Write("0 GPU-a H100 81559 700000 1000 250000\n");  // 7 fields
  EXPECT_THAT(Load().status().message(), HasSubstr("nvmlInit_v2 failed"));
  Write("1 GPU-a H100 81559 700000 1000 250000 10\n");  // no index 0
  EXPECT_THAT(Load().status().message(), HasSubstr("nvmlInit_v2 failed"));
  Write("0 GPU-a H100 81559 700000 1000 250000 101\n");  // util over 100
  EXPECT_THAT(Load().status().message(), HasSubstr("nvmlInit_v2 failed"));
}

TEST_F(NvmlTest, LibraryWithoutNvmlSymbolsNamesThemAndThePath) {
  // libm loads fine but exports none of the NVML entry points.
  absl::StatusOr<std::unique_ptr<NvmlLibrary>> nvml = NvmlLibrary::Load("libm.so.6");
  EXPECT_EQ(nvml.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(nvml.status().message(),
              AllOf(HasSubstr("libm.so.6"), HasSubstr("missing symbols"), HasSubstr("nvmlInit_v2"),
                    HasSubstr("nvmlDeviceGetTotalEnergyConsumption")));
}

}  // namespace
}  // namespace greenlight::agent
