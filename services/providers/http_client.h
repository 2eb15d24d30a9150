// HTTPS GET for the live carbon sources, behind an interface so tests and the
// simulator never touch the network; plus API keys that are never logged.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace greenlight::providers {

struct HttpRequest {
  std::string url;
  // Header lines as (name, value). Values may hold secrets: they are sent,
  // never logged, never put in a Status message.
  std::vector<std::pair<std::string, std::string>> headers;
  absl::Duration timeout = absl::Seconds(10);
};

struct HttpResponse {
  int status = 0;  // HTTP status code
  std::string body;
};

class HttpClient {
 public:
  virtual ~HttpClient() = default;
  // A transport failure is an error (UNAVAILABLE / DEADLINE_EXCEEDED); any
  // HTTP status, 4xx and 5xx included, is a response.
  virtual absl::StatusOr<HttpResponse> Get(const HttpRequest& request) = 0;
};

struct CurlOptions {
  int64_t max_body_bytes = 8 << 20;
  // PEM file of the CAs to trust instead of the system store (a private CA
  // or a TLS-inspecting proxy); empty = the system store.
  std::string ca_file;
  // Allows plain http:// to any host. Off by default; turned on only by an
  // explicit config opt-in (data.live_carbon.allow_insecure_http).
  bool allow_insecure_http = false;
};

// libcurl. Certificates and host names are always verified (TLS 1.2 or
// newer); plain http:// is refused except to a loopback host (127.0.0.1,
// localhost, [::1]) so that keys never travel in clear text. Bodies above
// max_body_bytes are an error. Thread-safe: one easy handle per call.
class CurlHttpClient final : public HttpClient {
 public:
  explicit CurlHttpClient(int64_t max_body_bytes = 8 << 20);
  explicit CurlHttpClient(CurlOptions options);
  absl::StatusOr<HttpResponse> Get(const HttpRequest& request) override;
  // Aborts the transfers in flight (within about a second) and refuses new
  // ones with CANCELLED: lets a daemon stop without waiting out a timeout.
  void Cancel() { cancelled_.store(true); }

 private:
  CurlOptions options_;
  std::atomic<bool> cancelled_{false};
};

// True for http://127.0.0.1..., http://localhost..., http://[::1]...
bool IsLoopbackHttpUrl(absl::string_view url);

// A secret (API token, password). Read from an environment variable, else
// from a file (first line, whitespace trimmed). It has no operator<< and its
// messages name where it came from, never what it is.
class ApiKey {
 public:
  ApiKey() = default;
  static ApiKey FromValue(std::string value, std::string origin) {
    return ApiKey(std::move(value), std::move(origin));
  }
  // NOT_FOUND naming the variable and the file when neither has a value.
  static absl::StatusOr<ApiKey> FromEnvOrFile(const std::string& env_var, const std::string& file);
  bool empty() const { return value_.empty(); }
  const std::string& value() const { return value_; }
  // "env GREENLIGHT_EMAPS_TOKEN" or "file /etc/greenlight/emaps.key".
  const std::string& origin() const { return origin_; }

 private:
  ApiKey(std::string v, std::string o) : value_(std::move(v)), origin_(std::move(o)) {}
  std::string value_;
  std::string origin_;
};

}  // namespace greenlight::providers
