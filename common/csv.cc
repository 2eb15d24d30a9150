#include "common/csv.h"

#include <cmath>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace greenlight {

absl::StatusOr<std::string> ReadFileToString(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open file"));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat(path, ": read error"));
  return ss.str();
}

absl::StatusOr<CsvTable> CsvTable::ReadFile(const std::string& path) {
  auto text = ReadFileToString(path);
  if (!text.ok()) return text.status();
  return Parse(*text, path);
}

absl::StatusOr<CsvTable> CsvTable::Parse(absl::string_view text, std::string source) {
  CsvTable t;
  t.source_ = std::move(source);
  std::vector<std::string> record;
  std::string field;
  int64_t line = 1, record_line = 1;
  size_t i = 0;
  // Skip a UTF-8 byte order mark.
  if (text.substr(0, 3) == "\xEF\xBB\xBF") i = 3;
  bool in_quotes = false, field_started = false, any = false;
  auto end_record = [&]() -> absl::Status {
    record.push_back(std::move(field));
    field.clear();
    bool blank = record.size() == 1 && record[0].empty();
    if (!blank) {
      if (t.header_.empty()) {
        t.header_ = record;
        for (size_t c = 0; c < record.size(); ++c) {
          std::string name(absl::StripAsciiWhitespace(record[c]));
          t.header_[c] = name;
          t.index_.emplace(name, static_cast<int>(c));
        }
      } else {
        if (record.size() != t.header_.size()) {
          return absl::InvalidArgumentError(absl::StrCat(
              t.source_, ":", record_line, ":", std::min(record.size(), t.header_.size()) + 1,
              ": expected ", t.header_.size(), " fields, found ", record.size()));
        }
        t.rows_.push_back(std::move(record));
        t.lines_.push_back(record_line);
      }
    }
    record.clear();
    field_started = false;
    return absl::OkStatus();
  };
  for (; i < text.size(); ++i) {
    char c = text[i];
    any = true;
    if (in_quotes) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          field.push_back('"');
          ++i;
        } else {
          in_quotes = false;
        }
      } else {
        if (c == '\n') ++line;
        field.push_back(c);
      }
      continue;
    }
    if (c == '"' && !field_started) {
      in_quotes = true;
      field_started = true;
    } else if (c == ',') {
      record.push_back(std::move(field));
      field.clear();
      field_started = false;
    } else if (c == '\r') {
      // tolerate CRLF
    } else if (c == '\n') {
      auto s = end_record();
      if (!s.ok()) return s;
      ++line;
      record_line = line;
    } else {
      field.push_back(c);
      field_started = true;
    }
  }
  if (in_quotes) {
    return absl::InvalidArgumentError(
        absl::StrCat(t.source_, ":", record_line, ": unterminated quoted field"));
  }
  if (!field.empty() || !record.empty()) {
    auto s = end_record();
    if (!s.ok()) return s;
  }
  if (!any || t.header_.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(t.source_, ":1: empty file, expected a header"));
  }
  return t;
}

absl::StatusOr<int> CsvTable::Column(absl::string_view name) const {
  auto it = index_.find(name);
  if (it == index_.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source_, ":1: missing column '", name, "'"));
  }
  return it->second;
}

std::string CsvTable::Where(size_t row, int col) const {
  return absl::StrCat(source_, ":", lines_[row], ":", col + 1, " '", header_[col], "'");
}

absl::StatusOr<double> CsvTable::Double(size_t row, int col) const {
  const std::string& s = rows_[row][col];
  double v;
  if (!absl::SimpleAtod(absl::StripAsciiWhitespace(s), &v) || !std::isfinite(v)) {
    return absl::InvalidArgumentError(
        absl::StrCat(Where(row, col), ": not a number: \"", s.substr(0, 40), "\""));
  }
  return v;
}

absl::StatusOr<int64_t> CsvTable::Int(size_t row, int col) const {
  const std::string& s = rows_[row][col];
  int64_t v;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(s), &v)) {
    return absl::InvalidArgumentError(
        absl::StrCat(Where(row, col), ": not an integer: \"", s.substr(0, 40), "\""));
  }
  return v;
}

}  // namespace greenlight
