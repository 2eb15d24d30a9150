// Shared helpers for the providers tests: repo paths and temp files.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/config.h"
#include "gtest/gtest.h"
#include "tests/testing/shipped_data.h"

namespace greenlight::providers::testing {

inline std::string Root() { return ::greenlight::testing::RepoRoot(); }
inline std::string DataPath(const std::string& rel) {
  return ::greenlight::testing::ShippedDataPath(rel);
}

// A fresh directory under the test temp dir, removed by the destructor.
class TempDir {
 public:
  TempDir() {
    const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = std::filesystem::temp_directory_path() /
            absl::StrCat("gl_providers_", info ? info->name() : "x", "_", ::getpid());
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string Write(const std::string& name, const std::string& text) const {
    std::string p = (path_ / name).string();
    std::ofstream(p, std::ios::binary) << text;
    return p;
  }
  std::string path() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

inline std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The shipped data, as a demo config would name it.
inline Config RealDataConfig() { return ::greenlight::testing::ShippedDataConfig(); }

}  // namespace greenlight::providers::testing
