// Helpers for the hand-written data files (region_zones.csv,
// gpu_overrides.csv): '#' comment lines, blanked so line numbers stay true.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/csv.h"

namespace greenlight::providers {

// Replaces every line whose first non-blank character is '#' by an empty line
// (CsvTable skips blank lines, so file:line in errors still matches the file).
std::string BlankCommentLines(absl::string_view text);

// Reads `path`, blanks comment lines and parses it as CSV.
absl::StatusOr<CsvTable> ReadCommentedCsv(const std::string& path);

// Cell text with surrounding whitespace removed.
std::string Trimmed(const CsvTable& t, size_t row, int col);

}  // namespace greenlight::providers
