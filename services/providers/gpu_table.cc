// GpuTable: mlco2 board power joined with the override file's canonical
// names, aliases and relative training speeds.
#include "services/providers/gpu_table.h"

#include <algorithm>
#include <cmath>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/csv.h"
#include "common/status_macros.h"
#include "services/providers/csv_text.h"

namespace greenlight::providers {
namespace {

struct Mlco2Row {
  double power_w = 0;
  std::string source;
};

// mlco2 gpus.csv has one short row upstream (A10G: 8 fields for a 9-field
// header). Only name, type and tdp_watts are read, which come first, so short
// rows are padded with empty trailing fields rather than rejected. Longer rows
// are left alone and still fail in CsvTable with file:line:column.
std::string PadShortRows(absl::string_view text) {
  std::vector<std::string> lines = absl::StrSplit(text, '\n');
  size_t want = 0;
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string& line = lines[i];
    size_t fields = 1;
    bool quoted = false;
    for (char c : line) {
      if (c == '"') quoted = !quoted;
      if (c == ',' && !quoted) ++fields;
    }
    if (i == 0) want = fields;
    bool blank = absl::StripAsciiWhitespace(line).empty();
    if (!blank && !quoted && fields < want) line.append(want - fields, ',');
    absl::StrAppend(&out, line, i + 1 < lines.size() ? "\n" : "");
  }
  return out;
}

absl::StatusOr<absl::flat_hash_map<std::string, Mlco2Row>> LoadMlco2(const std::string& path) {
  absl::flat_hash_map<std::string, Mlco2Row> out;
  ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  ASSIGN_OR_RETURN(CsvTable t, CsvTable::Parse(PadShortRows(text), path));
  ASSIGN_OR_RETURN(int c_name, t.Column("name"));
  ASSIGN_OR_RETURN(int c_type, t.Column("type"));
  ASSIGN_OR_RETURN(int c_tdp, t.Column("tdp_watts"));
  int c_src = t.HasColumn("source") ? *t.Column("source") : -1;
  for (size_t r = 0; r < t.rows(); ++r) {
    std::string name(absl::StripAsciiWhitespace(t.Cell(r, c_name)));
    if (name.empty())
      return absl::InvalidArgumentError(absl::StrCat(t.Where(r, c_name), ": empty name"));
    // CPUs and TPUs are not GPU pools; TPU rows are average power, not TDP.
    if (absl::AsciiStrToLower(absl::StripAsciiWhitespace(t.Cell(r, c_type))) != "gpu") continue;
    ASSIGN_OR_RETURN(double w, t.Double(r, c_tdp));
    if (w <= 0 || w > 5000) {
      return absl::InvalidArgumentError(
          absl::StrCat(t.Where(r, c_tdp), ": power must be in (0, 5000] W, got ", w));
    }
    std::string src = c_src >= 0 ? std::string(absl::StripAsciiWhitespace(t.Cell(r, c_src))) : "";
    out[name] = Mlco2Row{
        w, absl::StrCat("mlco2/impact gpus.csv '", name, "'", src.empty() ? "" : ": ", src)};
  }
  return out;
}

}  // namespace

std::string NormalizeGpuName(absl::string_view name) {
  std::string out;
  for (char c : name) {
    if (absl::ascii_isalnum(static_cast<unsigned char>(c)))
      out.push_back(absl::ascii_tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

absl::StatusOr<GpuTable> GpuTable::Load(const std::string& mlco2_gpus_csv,
                                        const std::string& overrides_csv) {
  GpuTable table;
  absl::flat_hash_map<std::string, Mlco2Row> mlco2;
  if (!mlco2_gpus_csv.empty()) {
    ASSIGN_OR_RETURN(mlco2, LoadMlco2(mlco2_gpus_csv));
  }
  if (overrides_csv.empty()) {
    // No mapping file: every mlco2 GPU is its own model with an unknown
    // (reference) speed, so power still works for what it names.
    for (const auto& [name, row] : mlco2) {
      table.Add(GpuModel{name, row.power_w, 1.0, row.source, "unknown (no override file): 1.0"},
                {});
    }
    return table;
  }
  ASSIGN_OR_RETURN(CsvTable t, ReadCommentedCsv(overrides_csv));
  ASSIGN_OR_RETURN(int c_name, t.Column("name"));
  ASSIGN_OR_RETURN(int c_aliases, t.Column("aliases"));
  ASSIGN_OR_RETURN(int c_mlco2, t.Column("mlco2_name"));
  ASSIGN_OR_RETURN(int c_power, t.Column("power_w"));
  ASSIGN_OR_RETURN(int c_power_src, t.Column("power_source"));
  ASSIGN_OR_RETURN(int c_speed, t.Column("speed"));
  ASSIGN_OR_RETURN(int c_speed_src, t.Column("speed_source"));
  for (size_t r = 0; r < t.rows(); ++r) {
    GpuModel m;
    m.name = std::string(absl::StripAsciiWhitespace(t.Cell(r, c_name)));
    if (m.name.empty())
      return absl::InvalidArgumentError(absl::StrCat(t.Where(r, c_name), ": empty name"));
    if (table.models_.contains(m.name)) {
      return absl::InvalidArgumentError(
          absl::StrCat(t.Where(r, c_name), ": duplicate GPU '", m.name, "'"));
    }
    std::string mlco2_name(absl::StripAsciiWhitespace(t.Cell(r, c_mlco2)));
    std::string power_text(absl::StripAsciiWhitespace(t.Cell(r, c_power)));
    if (!power_text.empty()) {
      ASSIGN_OR_RETURN(m.power_w, t.Double(r, c_power));
      m.power_source = std::string(absl::StripAsciiWhitespace(t.Cell(r, c_power_src)));
      if (m.power_source.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat(t.Where(r, c_power_src), ": a power figure needs its source"));
      }
    } else if (!mlco2_name.empty()) {
      auto it = mlco2.find(mlco2_name);
      if (it == mlco2.end()) {
        return absl::InvalidArgumentError(absl::StrCat(
            t.Where(r, c_mlco2), ": unknown GPU '", mlco2_name, "' (not a gpu row of ",
            mlco2_gpus_csv.empty() ? "the mlco2 file, which is not configured" : mlco2_gpus_csv,
            ")"));
      }
      m.power_w = it->second.power_w;
      m.power_source = it->second.source;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat(t.Where(r, c_power), ": no power_w and no mlco2_name for '", m.name, "'"));
    }
    if (m.power_w <= 0 || m.power_w > 5000) {
      return absl::InvalidArgumentError(
          absl::StrCat(t.Where(r, c_power), ": power must be in (0, 5000] W, got ", m.power_w));
    }
    ASSIGN_OR_RETURN(m.speed, t.Double(r, c_speed));
    if (m.speed <= 0 || m.speed > 100) {
      return absl::InvalidArgumentError(
          absl::StrCat(t.Where(r, c_speed), ": speed must be in (0, 100], got ", m.speed));
    }
    m.speed_source = std::string(absl::StripAsciiWhitespace(t.Cell(r, c_speed_src)));
    if (m.speed_source.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(t.Where(r, c_speed_src), ": a speed figure needs its source"));
    }
    std::vector<std::string> aliases;
    for (absl::string_view a : absl::StrSplit(t.Cell(r, c_aliases), '|', absl::SkipWhitespace())) {
      aliases.emplace_back(absl::StripAsciiWhitespace(a));
    }
    if (!mlco2_name.empty()) aliases.push_back(mlco2_name);
    for (const std::string& a : aliases) {
      auto it = table.alias_.find(NormalizeGpuName(a));
      if (it != table.alias_.end() && it->second != m.name) {
        return absl::InvalidArgumentError(absl::StrCat(t.Where(r, c_aliases), ": alias '", a,
                                                       "' already names '", it->second, "'"));
      }
    }
    table.Add(std::move(m), aliases);
  }
  return table;
}

const GpuModel* GpuTable::Find(absl::string_view name) const {
  auto it = alias_.find(NormalizeGpuName(name));
  if (it == alias_.end()) return nullptr;
  auto m = models_.find(it->second);
  return m == models_.end() ? nullptr : &m->second;
}

std::string GpuTable::Canonical(absl::string_view name) const {
  const GpuModel* m = Find(name);
  return m ? m->name : std::string();
}

std::vector<std::string> GpuTable::Names() const {
  std::vector<std::string> out;
  out.reserve(models_.size());
  for (const auto& [name, m] : models_) out.push_back(name);
  std::sort(out.begin(), out.end());
  return out;
}

void GpuTable::Add(GpuModel model, const std::vector<std::string>& aliases) {
  std::string name = model.name;
  alias_[NormalizeGpuName(name)] = name;
  for (const std::string& a : aliases) {
    std::string key = NormalizeGpuName(a);
    if (!key.empty()) alias_[key] = name;
  }
  models_[name] = std::move(model);
}

}  // namespace greenlight::providers
