// A small RFC 4180 CSV reader that addresses columns by header name and
// reports errors as "file:line:column: what".
#pragma once

#include <cstdint>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace greenlight {

class CsvTable {
 public:
  // Parses `text`; `source` names the file in error messages. The first
  // record is the header. Rows with a different field count are an error.
  static absl::StatusOr<CsvTable> Parse(absl::string_view text, std::string source);
  // Reads and parses a file (NOT_FOUND if it cannot be opened).
  static absl::StatusOr<CsvTable> ReadFile(const std::string& path);

  const std::vector<std::string>& header() const { return header_; }
  size_t rows() const { return rows_.size(); }
  const std::string& source() const { return source_; }

  // Index of a column, or NOT_FOUND naming the file and the column.
  absl::StatusOr<int> Column(absl::string_view name) const;
  bool HasColumn(absl::string_view name) const { return index_.contains(name); }
  // Raw cell text.
  const std::string& Cell(size_t row, int col) const { return rows_[row][col]; }
  // 1-based line number of a row in the source (for messages).
  int64_t Line(size_t row) const { return lines_[row]; }

  // Typed accessors; errors read "file:line:column 'name': ...".
  absl::StatusOr<double> Double(size_t row, int col) const;
  absl::StatusOr<int64_t> Int(size_t row, int col) const;
  // "file:line:column 'name'" for messages of callers.
  std::string Where(size_t row, int col) const;

 private:
  std::string source_;
  std::vector<std::string> header_;
  absl::flat_hash_map<std::string, int> index_;
  std::vector<std::vector<std::string>> rows_;
  std::vector<int64_t> lines_;
};

// Reads a whole file into a string.
absl::StatusOr<std::string> ReadFileToString(const std::string& path);

}  // namespace greenlight
