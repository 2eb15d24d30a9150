// JSON -> points for Electricity Maps v3, WattTime v3 and the Carbon Aware SDK.
#include "services/providers/live_parsers.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace greenlight::providers {
namespace {

using Json = nlohmann::json;

absl::Status Bad(absl::string_view api, absl::string_view path, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(api, ": ", path, ": ", why));
}

absl::StatusOr<Json> ParseJson(absl::string_view api, absl::string_view text) {
  Json j = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Bad(api, "$", "not valid JSON");
  return j;
}

// Reads a time field that must be a string in one of ParseSeriesTime's formats.
absl::StatusOr<absl::Time> TimeField(absl::string_view api, const Json& obj, const char* key,
                                     const std::string& path) {
  if (!obj.is_object() || !obj.contains(key))
    return Bad(api, absl::StrCat(path, ".", key), "missing");
  const Json& v = obj.at(key);
  absl::Time t;
  if (!v.is_string() || !ParseSeriesTime(v.get_ref<const std::string&>(), &t)) {
    return Bad(api, absl::StrCat(path, ".", key), "not a time");
  }
  return t;
}

// Optional number: null/missing -> *present=false. Negative or absurd values are errors.
absl::Status NumberField(absl::string_view api, const Json& obj, const char* key,
                         const std::string& path, double* out, bool* present) {
  *present = false;
  if (!obj.contains(key) || obj.at(key).is_null()) return absl::OkStatus();
  const Json& v = obj.at(key);
  if (!v.is_number()) return Bad(api, absl::StrCat(path, ".", key), "not a number");
  *out = v.get<double>();
  if (!std::isfinite(*out) || *out < 0 || *out > 1e5)
    return Bad(api, absl::StrCat(path, ".", key), "out of range");
  *present = true;
  return absl::OkStatus();
}

std::string StringField(const Json& obj, const char* key) {
  if (obj.is_object() && obj.contains(key) && obj.at(key).is_string())
    return obj.at(key).get<std::string>();
  return "";
}

void SortPoints(LivePoints* out) {
  std::stable_sort(out->points.begin(), out->points.end(),
                   [](const SeriesPoint& a, const SeriesPoint& b) { return a.t < b.t; });
}

// WattTime data[] of {point_time, value} -> points (raw values).
absl::Status WattTimeData(const Json& data, const std::string& path, LivePoints* out) {
  if (!data.is_array()) return Bad("watttime", path, "not an array");
  for (size_t i = 0; i < data.size(); ++i) {
    std::string p = absl::StrCat(path, "[", i, "]");
    SeriesPoint pt;
    auto t = TimeField("watttime", data[i], "point_time", p);
    if (!t.ok()) return t.status();
    pt.t = *t;
    bool present = false;
    absl::Status s = NumberField("watttime", data[i], "value", p, &pt.value, &present);
    if (!s.ok()) return s;
    if (present) out->points.push_back(pt);
  }
  return absl::OkStatus();
}

absl::Status WattTimeMeta(const Json& root, LivePoints* out) {
  if (!root.contains("meta") || !root.at("meta").is_object())
    return Bad("watttime", "meta", "missing");
  const Json& meta = root.at("meta");
  out->zone = StringField(meta, "region");
  out->units = StringField(meta, "units");
  if (meta.contains("data_point_period_seconds") &&
      meta.at("data_point_period_seconds").is_number_integer()) {
    out->period = absl::Seconds(meta.at("data_point_period_seconds").get<int64_t>());
  }
  if (meta.contains("generated_at")) {
    auto t = TimeField("watttime", meta, "generated_at", "meta");
    if (!t.ok()) return t.status();
    out->generated_at = *t;
  }
  if (meta.contains("warnings") && meta.at("warnings").is_array()) {
    for (const Json& w : meta.at("warnings")) {
      std::string msg = w.is_object()
                            ? absl::StrCat(StringField(w, "type"), ": ", StringField(w, "message"))
                            : (w.is_string() ? w.get<std::string>() : "");
      if (!msg.empty()) out->warnings.push_back(msg);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<LivePoints> WattTimeAny(absl::string_view json, bool index) {
  auto root = ParseJson("watttime", json);
  if (!root.ok()) return root.status();
  LivePoints out;
  if (!root->is_object() || !root->contains("data")) return Bad("watttime", "data", "missing");
  absl::Status s = WattTimeMeta(*root, &out);
  if (!s.ok()) return s;
  const Json& data = root->at("data");
  if (data.is_array() && !data.empty() && data[0].is_object() && data[0].contains("forecast")) {
    // /forecast/historical: several forecasts; the newest one is the best.
    size_t best = 0;
    absl::Time best_t = absl::InfinitePast();
    for (size_t i = 0; i < data.size(); ++i) {
      auto t = TimeField("watttime", data[i], "generated_at", absl::StrCat("data[", i, "]"));
      if (!t.ok()) return t.status();
      if (*t > best_t) best_t = *t, best = i;
    }
    out.generated_at = best_t;
    // Only data[0] was seen to hold a forecast; the newest entry may not
    // (found by tests/fuzz/live_json_fuzzer: at() threw and aborted).
    if (!data[best].contains("forecast"))
      return Bad("watttime", absl::StrCat("data[", best, "].forecast"), "missing");
    s = WattTimeData(data[best].at("forecast"), absl::StrCat("data[", best, "].forecast"), &out);
  } else {
    s = WattTimeData(data, "data", &out);
  }
  if (!s.ok()) return s;
  if (index) {
    if (out.units != "percentile")
      return Bad("watttime", "meta.units",
                 absl::StrCat("expected percentile, got '", out.units, "'"));
    for (const SeriesPoint& p : out.points) {
      if (p.value > 100) return Bad("watttime", "data", "percentile above 100");
    }
  } else if (out.units == "lbs_co2_per_mwh") {
    for (SeriesPoint& p : out.points) p.value *= kGramsPerKwhPerLbPerMwh;
    out.units = "g_co2_per_kwh";
  } else {
    return Bad("watttime", "meta.units",
               absl::StrCat("'", out.units,
                            "' is not an intensity this parser converts (lbs_co2_per_mwh)"));
  }
  SortPoints(&out);
  return out;
}

}  // namespace

absl::StatusOr<LivePoints> ParseElectricityMaps(absl::string_view json) {
  auto root = ParseJson("electricitymaps", json);
  if (!root.ok()) return root.status();
  if (!root->is_object()) return Bad("electricitymaps", "$", "not an object");
  LivePoints out;
  out.zone = StringField(*root, "zone");
  out.units = "gCO2eq/kWh";
  auto entry = [&](const Json& e, const std::string& path) -> absl::Status {
    SeriesPoint p;
    auto t = TimeField("electricitymaps", e, "datetime", path);
    if (!t.ok()) return t.status();
    p.t = *t;
    bool present = false;
    absl::Status s = NumberField("electricitymaps", e, "carbonIntensity", path, &p.value, &present);
    if (!s.ok()) return s;
    if (present) out.points.push_back(p);
    if (e.contains("isEstimated") && e.at("isEstimated").is_boolean() &&
        e.at("isEstimated").get<bool>()) {
      // Estimated points are kept; the count is surfaced as a warning.
      if (out.warnings.empty()) out.warnings.push_back("estimated points");
    }
    return absl::OkStatus();
  };
  const char* list =
      root->contains("history") ? "history" : (root->contains("forecast") ? "forecast" : nullptr);
  if (list != nullptr) {
    const Json& arr = root->at(list);
    if (!arr.is_array()) return Bad("electricitymaps", list, "not an array");
    for (size_t i = 0; i < arr.size(); ++i) {
      absl::Status s = entry(arr[i], absl::StrCat(list, "[", i, "]"));
      if (!s.ok()) return s;
    }
    if (std::string(list) == "forecast" && root->contains("updatedAt")) {
      auto t = TimeField("electricitymaps", *root, "updatedAt", "$");
      if (!t.ok()) return t.status();
      out.generated_at = *t;
    }
  } else {
    if (!root->contains("carbonIntensity")) {
      return Bad("electricitymaps", "$", "neither history, forecast nor carbonIntensity");
    }
    absl::Status s = entry(*root, "$");
    if (!s.ok()) return s;
  }
  if (root->contains("emissionFactorType") &&
      StringField(*root, "emissionFactorType") == "direct") {
    out.units = "gCO2eq/kWh (direct)";
  }
  if (out.points.size() >= 2) out.period = out.points[1].t - out.points[0].t;
  SortPoints(&out);
  return out;
}

absl::StatusOr<LivePoints> ParseWattTime(absl::string_view json) {
  return WattTimeAny(json, false);
}

absl::StatusOr<LivePoints> ParseWattTimeSignalIndex(absl::string_view json) {
  return WattTimeAny(json, true);
}

absl::StatusOr<LivePoints> ParseCarbonAwareForecast(absl::string_view json,
                                                    absl::string_view location) {
  auto root = ParseJson("carbon-aware-sdk", json);
  if (!root.ok()) return root.status();
  if (!root->is_array()) return Bad("carbon-aware-sdk", "$", "not an array of forecasts");
  if (root->empty()) return Bad("carbon-aware-sdk", "$", "no forecast");
  size_t idx = 0;
  if (!location.empty()) {
    idx = root->size();
    for (size_t i = 0; i < root->size(); ++i) {
      if (StringField((*root)[i], "location") == location) idx = i;
    }
    if (idx == root->size())
      return absl::NotFoundError(
          absl::StrCat("carbon-aware-sdk: no forecast for '", location, "'"));
  }
  const Json& f = (*root)[idx];
  const std::string path = absl::StrCat("[", idx, "]");
  LivePoints out;
  out.zone = StringField(f, "location");
  out.units = "gCO2e/kWh";
  if (f.contains("generatedAt")) {
    auto t = TimeField("carbon-aware-sdk", f, "generatedAt", path);
    if (!t.ok()) return t.status();
    out.generated_at = *t;
  }
  if (!f.contains("forecastData") || !f.at("forecastData").is_array()) {
    return Bad("carbon-aware-sdk", absl::StrCat(path, ".forecastData"), "missing");
  }
  const Json& data = f.at("forecastData");
  for (size_t i = 0; i < data.size(); ++i) {
    std::string p = absl::StrCat(path, ".forecastData[", i, "]");
    SeriesPoint pt;
    auto t = TimeField("carbon-aware-sdk", data[i], "timestamp", p);
    if (!t.ok()) return t.status();
    pt.t = *t;
    bool present = false;
    absl::Status s = NumberField("carbon-aware-sdk", data[i], "value", p, &pt.value, &present);
    if (!s.ok()) return s;
    if (present) out.points.push_back(pt);
    if (i == 0 && data[i].contains("duration") && data[i].at("duration").is_number_integer()) {
      out.period = absl::Minutes(data[i].at("duration").get<int64_t>());
    }
  }
  SortPoints(&out);
  return out;
}

absl::StatusOr<LivePoints> ParseCarbonAwareEmissions(absl::string_view json,
                                                     absl::string_view location) {
  auto root = ParseJson("carbon-aware-sdk", json);
  if (!root.ok()) return root.status();
  if (!root->is_array()) return Bad("carbon-aware-sdk", "$", "not an array of emissions data");
  LivePoints out;
  out.zone = std::string(location);
  out.units = "gCO2e/kWh";
  for (size_t i = 0; i < root->size(); ++i) {
    const Json& e = (*root)[i];
    std::string p = absl::StrCat("[", i, "]");
    if (!location.empty() && StringField(e, "location") != location) continue;
    SeriesPoint pt;
    auto t = TimeField("carbon-aware-sdk", e, "time", p);
    if (!t.ok()) return t.status();
    pt.t = *t;
    bool present = false;
    absl::Status s = NumberField("carbon-aware-sdk", e, "rating", p, &pt.value, &present);
    if (!s.ok()) return s;
    if (present) out.points.push_back(pt);
  }
  SortPoints(&out);
  return out;
}

}  // namespace greenlight::providers
