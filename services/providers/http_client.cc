// libcurl GET with verified TLS, size and time limits; API keys from env or file.
#include "services/providers/http_client.h"

#include <curl/curl.h>

#include <cstdlib>
#include <mutex>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/csv.h"

namespace greenlight::providers {
namespace {

struct Sink {
  std::string* body;
  int64_t limit;
  bool overflow = false;
};

size_t Write(char* data, size_t size, size_t n, void* user) {
  Sink* sink = static_cast<Sink*>(user);
  size_t bytes = size * n;
  if (static_cast<int64_t>(sink->body->size() + bytes) > sink->limit) {
    sink->overflow = true;
    return 0;  // makes curl stop with CURLE_WRITE_ERROR
  }
  sink->body->append(data, bytes);
  return bytes;
}

// The URL without its query string: queries can carry keys in some APIs.
std::string Redacted(absl::string_view url) {
  size_t q = url.find('?');
  return std::string(q == absl::string_view::npos ? url : url.substr(0, q));
}

// Called by libcurl about once a second (and on progress): non-zero aborts.
int Progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<const std::atomic<bool>*>(user)->load() ? 1 : 0;
}

}  // namespace

bool IsLoopbackHttpUrl(absl::string_view url) {
  for (absl::string_view prefix : {"http://127.0.0.1", "http://localhost", "http://[::1]"}) {
    if (absl::StartsWith(url, prefix)) {
      absl::string_view rest = url.substr(prefix.size());
      if (rest.empty() || rest[0] == ':' || rest[0] == '/') return true;
    }
  }
  return false;
}

CurlHttpClient::CurlHttpClient(int64_t max_body_bytes)
    : CurlHttpClient(CurlOptions{.max_body_bytes = max_body_bytes}) {}

CurlHttpClient::CurlHttpClient(CurlOptions options) : options_(std::move(options)) {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

absl::StatusOr<HttpResponse> CurlHttpClient::Get(const HttpRequest& request) {
  const std::string where = Redacted(request.url);
  const bool https = absl::StartsWith(request.url, "https://");
  const bool http = absl::StartsWith(request.url, "http://");
  if (!https && !(http && (options_.allow_insecure_http || IsLoopbackHttpUrl(request.url)))) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": only https:// URLs (or http:// to loopback) are allowed"));
  }
  if (cancelled_.load()) return absl::CancelledError(absl::StrCat(where, ": client stopped"));
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return absl::InternalError("curl_easy_init failed");
  HttpResponse response;
  Sink sink{&response.body, options_.max_body_bytes};
  curl_slist* headers = nullptr;
  for (const auto& [name, value] : request.headers) {
    headers = curl_slist_append(headers, absl::StrCat(name, ": ", value).c_str());
  }
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &Write);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS,
                   static_cast<long>(absl::ToInt64Milliseconds(request.timeout)));
  curl_easy_setopt(
      curl, CURLOPT_CONNECTTIMEOUT_MS,
      static_cast<long>(absl::ToInt64Milliseconds(std::min(request.timeout, absl::Seconds(5)))));
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);  // thread-safe timeouts
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(curl, CURLOPT_SSLVERSION, static_cast<long>(CURL_SSLVERSION_TLSv1_2));
  if (!options_.ca_file.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, options_.ca_file.c_str());
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, &Progress);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &cancelled_);
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION,
                   0L);  // a redirect must not carry our headers elsewhere
  curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "greenlight/1");
  CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  if (sink.overflow) {
    return absl::ResourceExhaustedError(
        absl::StrCat(where, ": response larger than ", options_.max_body_bytes, " bytes"));
  }
  if (rc == CURLE_ABORTED_BY_CALLBACK)
    return absl::CancelledError(absl::StrCat(where, ": client stopped"));
  if (rc == CURLE_OPERATION_TIMEDOUT) {
    return absl::DeadlineExceededError(
        absl::StrCat(where, ": timed out after ", absl::FormatDuration(request.timeout)));
  }
  if (rc != CURLE_OK) {
    return absl::UnavailableError(absl::StrCat(
        where, ": ",
        errbuf[0] != '\0' ? std::string(errbuf) : std::string(curl_easy_strerror(rc))));
  }
  response.status = static_cast<int>(status);
  return response;
}

absl::StatusOr<ApiKey> ApiKey::FromEnvOrFile(const std::string& env_var, const std::string& file) {
  if (!env_var.empty()) {
    const char* v = std::getenv(env_var.c_str());
    if (v != nullptr) {
      std::string value(absl::StripAsciiWhitespace(v));
      if (!value.empty()) return ApiKey(std::move(value), absl::StrCat("env ", env_var));
    }
  }
  if (!file.empty()) {
    auto text = ReadFileToString(file);
    if (text.ok()) {
      std::string first = text->substr(0, text->find('\n'));
      std::string value(absl::StripAsciiWhitespace(first));
      if (!value.empty()) return ApiKey(std::move(value), absl::StrCat("file ", file));
      return absl::InvalidArgumentError(absl::StrCat("file ", file, ": empty key"));
    }
  }
  return absl::NotFoundError(
      absl::StrCat("no API key: environment variable ", env_var.empty() ? "(none)" : env_var,
                   " is unset and file ", file.empty() ? "(none)" : file, " is not readable"));
}

}  // namespace greenlight::providers
