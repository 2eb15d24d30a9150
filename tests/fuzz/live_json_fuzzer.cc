// The live carbon API parsers (services/providers/live_parsers.h):
// Electricity Maps v3, WattTime v3 (data and signal index) and the Carbon
// Aware SDK (forecasts and emissions). The first byte picks the parser.
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "services/providers/live_parsers.h"
#include "tests/fuzz/fuzz_util.h"

using namespace greenlight::providers;  // NOLINT

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  absl::string_view json(reinterpret_cast<const char*>(data + 1), size - 1);
  absl::StatusOr<LivePoints> p;
  switch (data[0] % 6) {
    case 0:
      p = ParseElectricityMaps(json);
      break;
    case 1:
      p = ParseWattTime(json);
      break;
    case 2:
      p = ParseWattTimeSignalIndex(json);
      break;
    case 3:
      p = ParseCarbonAwareForecast(json, "westus");
      break;
    case 4:
      p = ParseCarbonAwareForecast(json, "");
      break;
    case 5:
      p = ParseCarbonAwareEmissions(json, "westus");
      break;
  }
  if (p.ok()) {
    for (const auto& pt : p->points) GL_FUZZ_CHECK(std::isfinite(pt.value) && pt.value >= 0);
  }
  return 0;
}
