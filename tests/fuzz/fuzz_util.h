// Helpers shared by the libFuzzer targets (tests/fuzz/README in
// docs/RELIABILITY.md): a scratch file for loaders that take a path, and
// the repository root for the real data files some targets load once.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"

namespace greenlight::fuzz {

// The repository root: GREENLIGHT_ROOT, else the source tree this was built from.
inline std::string Root() {
  const char* r = std::getenv("GREENLIGHT_ROOT");
  return r && *r ? r : GREENLIGHT_SOURCE_ROOT;
}

// Writes `data` to a per-process scratch file (tmpfs when available) and
// returns its path; loaders that take a path read it back.
inline std::string ScratchFile(const uint8_t* data, size_t size, const char* suffix = ".csv") {
  static const std::string dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  std::string path = absl::StrCat(dir, "/greenlight-fuzz-", getpid(), suffix);
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  if (size > 0 && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
  return path;
}

// A property of the code under test failed: crash so that libFuzzer keeps
// the input.
#define GL_FUZZ_CHECK(cond)                                                                   \
  do {                                                                                        \
    if (!(cond)) {                                                                            \
      std::fprintf(stderr, "GL_FUZZ_CHECK failed: %s at %s:%d\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                           \
    }                                                                                         \
  } while (0)

}  // namespace greenlight::fuzz
