// Test helper: serializes a registry in the text format and indexes the
// samples by "name{label="value",...}" (labels sorted, as prometheus-cpp writes them).
#pragma once

#include <map>
#include <optional>
#include <sstream>
#include <string>

#include "prometheus/registry.h"
#include "prometheus/text_serializer.h"

namespace greenlight::metrics::testing {

struct Exposition {
  std::string text;
  std::map<std::string, double> samples;  // series -> value

  std::optional<double> Get(const std::string& series) const {
    auto it = samples.find(series);
    if (it == samples.end()) return std::nullopt;
    return it->second;
  }
  bool Has(const std::string& series) const { return samples.contains(series); }
  // Number of samples whose series starts with `prefix` followed by '{' or ' '.
  int CountSeries(const std::string& name) const {
    int n = 0;
    for (const auto& [series, value] : samples) {
      if (series == name || series.rfind(name + "{", 0) == 0) ++n;
    }
    return n;
  }
};

inline Exposition Scrape(const prometheus::Registry& registry) {
  Exposition e;
  e.text = prometheus::TextSerializer().Serialize(registry.Collect());
  std::istringstream in(e.text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    // Label values in these tests contain no spaces: the value follows the last space.
    const size_t space = line.rfind(' ');
    e.samples[line.substr(0, space)] = std::stod(line.substr(space + 1));
  }
  return e;
}

}  // namespace greenlight::metrics::testing
