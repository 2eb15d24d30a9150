// Structured logs in logfmt ("ts=... level=info msg=\"...\" key=value") on
// stderr. Quiet by default: per-request lines are debug; startup, warnings and
// errors are info and above.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace greenlight {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
// Parses "debug|info|warn|error".
bool ParseLogLevel(std::string_view s, LogLevel* out);

using LogField = std::pair<std::string_view, std::string>;

void LogLine(LogLevel level, std::string_view msg, std::initializer_list<LogField> fields);

// Log(level, "msg", {F("key", value), ...}) and Log(level, "msg", F(..), F(..)).
inline void Log(LogLevel level, std::string_view msg, std::initializer_list<LogField> fields) {
  LogLine(level, msg, fields);
}
// Log(level, "msg", F("key", value), ...).
template <typename... Fields>
void Log(LogLevel level, std::string_view msg, Fields... fields) {
  LogLine(level, msg, {fields...});
}

inline LogField F(std::string_view k, std::string_view v) { return {k, std::string(v)}; }
inline LogField F(std::string_view k, absl::string_view v) { return {k, std::string(v)}; }
inline LogField F(std::string_view k, const char* v) { return {k, std::string(v)}; }
inline LogField F(std::string_view k, const std::string& v) { return {k, v}; }
template <typename T>
LogField F(std::string_view k, T v) {
  return {k, absl::StrCat(v)};
}

}  // namespace greenlight

#define GL_LOG_DEBUG(...)                                              \
  do {                                                                 \
    if (::greenlight::GetLogLevel() <= ::greenlight::LogLevel::kDebug) \
      ::greenlight::Log(::greenlight::LogLevel::kDebug, __VA_ARGS__);  \
  } while (0)
#define GL_LOG_INFO(...) ::greenlight::Log(::greenlight::LogLevel::kInfo, __VA_ARGS__)
#define GL_LOG_WARN(...) ::greenlight::Log(::greenlight::LogLevel::kWarn, __VA_ARGS__)
#define GL_LOG_ERROR(...) ::greenlight::Log(::greenlight::LogLevel::kError, __VA_ARGS__)
