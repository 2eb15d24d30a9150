// Comment-aware CSV reading for the hand-written data files.
#include "services/providers/csv_text.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"

namespace greenlight::providers {

std::string BlankCommentLines(absl::string_view text) {
  std::vector<std::string> lines = absl::StrSplit(text, '\n');
  for (std::string& line : lines) {
    absl::string_view s = absl::StripLeadingAsciiWhitespace(line);
    if (!s.empty() && s[0] == '#') line.clear();
  }
  return absl::StrJoin(lines, "\n");
}

absl::StatusOr<CsvTable> ReadCommentedCsv(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  return CsvTable::Parse(BlankCommentLines(text), path);
}

std::string Trimmed(const CsvTable& t, size_t row, int col) {
  return std::string(absl::StripAsciiWhitespace(t.Cell(row, col)));
}

}  // namespace greenlight::providers
