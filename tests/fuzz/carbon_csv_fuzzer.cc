// The carbon-intensity series loader (services/providers/carbon_csv.h): both
// formats, both Electricity Maps columns, the resampler behind them, and the
// series built from what loads.
#include <cstddef>
#include <cstdint>

#include "services/providers/carbon_csv.h"
#include "services/providers/carbon_series.h"
#include "tests/fuzz/fuzz_util.h"

using greenlight::providers::CarbonSeries;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 256 * 1024) return 0;  // real files are bigger, but the parser is linear
  std::string path = greenlight::fuzz::ScratchFile(data, size);
  absl::string_view text(reinterpret_cast<const char*>(data), size);
  absl::Time t;
  (void)greenlight::providers::ParseSeriesTime(text.substr(0, text.find('\n')), &t);
  greenlight::providers::ResampleOptions options;
  options.step = size % 2 ? absl::Minutes(30) : absl::Hours(1);
  for (auto column :
       {greenlight::providers::EmapsColumn::kLca, greenlight::providers::EmapsColumn::kDirect}) {
    auto s = greenlight::providers::LoadCarbonCsv(path, options, column);
    if (!s.ok()) continue;
    GL_FUZZ_CHECK(s->stats.slots == static_cast<int64_t>(s->values.size()));
    if (s->values.empty()) continue;
    CarbonSeries series("FUZZ", s->start, options.step, s->values, s->mean);
    absl::Time mid = s->start + options.step * static_cast<int64_t>(s->values.size() / 2);
    (void)series.At(mid);
    (void)series.WindowMean(s->start - absl::Hours(3), series.end() + absl::Hours(3));
    (void)series.IntegralGkwhHours(s->start, mid);
    (void)greenlight::providers::AlignmentShift(series.start(), series.end(),
                                                absl::FromUnixSeconds(1764288000));
  }
  return 0;
}
