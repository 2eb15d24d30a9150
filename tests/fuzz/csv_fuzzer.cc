// CsvTable::Parse (common/csv.h) on arbitrary bytes, plus every accessor on
// what it accepts, and the '#'-comment blanking of the hand-written files.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/csv.h"
#include "services/providers/csv_text.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view text(reinterpret_cast<const char*>(data), size);
  for (const std::string& input :
       {std::string(text), greenlight::providers::BlankCommentLines(text)}) {
    auto t = greenlight::CsvTable::Parse(input, "fuzz.csv");
    if (!t.ok()) continue;
    const auto& header = t->header();
    for (const auto& name : header) {
      auto col = t->Column(name);
      GL_FUZZ_CHECK(col.ok() && t->HasColumn(name));
    }
    // A name the input does not hold is refused (the fuzzer did once write
    // this very name as a header: regressions/csv_fuzzer).
    const std::string absent = "\x01no such column";
    if (std::find(header.begin(), header.end(), absent) == header.end()) {
      GL_FUZZ_CHECK(!t->Column(absent).ok() && !t->HasColumn(absent));
    }
    for (size_t r = 0; r < t->rows() && r < 256; ++r) {
      GL_FUZZ_CHECK(t->Line(r) >= 2);
      for (int c = 0; c < static_cast<int>(header.size()); ++c) {
        (void)t->Cell(r, c);
        (void)t->Double(r, c);
        (void)t->Int(r, c);
        (void)t->Where(r, c);
        (void)greenlight::providers::Trimmed(*t, r, c);
      }
    }
  }
  return 0;
}
