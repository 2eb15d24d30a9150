// A minimal HTTPS (and plain HTTP) client for TLS tests, on OpenSSL directly
// so that a test controls everything a scraper would: the CA it trusts, the
// client certificate it presents (or not), and sees what a client sees: the
// server certificate's serial, the client CAs the server asks for, the raw
// HTTP response. One connection per call, "Connection: close", 5 s timeouts.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <map>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace greenlight::testing {

struct HttpsRequest {
  int port = 0;  // on 127.0.0.1
  std::string path = "/metrics";
  std::string ca_file;    // verify the server against this CA; empty = no verification
  std::string cert_file;  // client certificate and key (mutual TLS); empty = none
  std::string key_file;
  std::vector<std::string> headers;  // extra request header lines, e.g. "Accept-Encoding: gzip"

  // Presents <leaf>.pem / <leaf>.key from `dir` as the client certificate
  // ("" = none).
  HttpsRequest& WithClient(const std::string& dir, const std::string& leaf) {
    if (!leaf.empty()) {
      cert_file = dir + "/" + leaf + ".pem";
      key_file = dir + "/" + leaf + ".key";
    }
    return *this;
  }
};

struct HttpResponse {
  int status = 0;                              // 0 = no HTTP response at all
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

struct HttpsResult {
  bool handshake = false;  // the client completed the handshake (and verified the server)
  std::string error;       // OpenSSL's reason when it did not
  long peer_serial = -1;   // the server certificate's serial
  std::vector<std::string> client_ca_names;  // CNs of the CAs the server asked client certs of
  HttpResponse response;
};

namespace tls_client_internal {

inline int Connect(int port) {
  signal(SIGPIPE, SIG_IGN);  // a server closing mid-write must fail the call, not the test
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

inline std::string Request(const std::string& path, const std::vector<std::string>& headers) {
  std::string r =
      absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
  for (const auto& h : headers) absl::StrAppend(&r, h, "\r\n");
  absl::StrAppend(&r, "\r\n");
  return r;
}

inline std::string CommonName(const X509_NAME* name) {
  char buf[256] = {0};
  X509_NAME_get_text_by_NID(const_cast<X509_NAME*>(name), NID_commonName, buf, sizeof(buf));
  return buf;
}

}  // namespace tls_client_internal

// Parses a raw HTTP/1.1 response with a Content-Length or read to EOF.
inline HttpResponse ParseHttpResponse(const std::string& raw) {
  HttpResponse out;
  const size_t end = raw.find("\r\n\r\n");
  if (end == std::string::npos || raw.rfind("HTTP/1.", 0) != 0) return out;
  std::vector<std::string> lines = absl::StrSplit(raw.substr(0, end), "\r\n");
  std::vector<std::string> status_line = absl::StrSplit(lines[0], ' ');
  if (status_line.size() < 2 || !absl::SimpleAtoi(status_line[1], &out.status)) return {};
  for (size_t i = 1; i < lines.size(); ++i) {
    const size_t colon = lines[i].find(':');
    if (colon == std::string::npos) continue;
    out.headers[absl::AsciiStrToLower(lines[i].substr(0, colon))] =
        std::string(absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
  }
  out.body = raw.substr(end + 4);
  return out;
}

// GET over TLS; see HttpsRequest / HttpsResult.
inline HttpsResult HttpsGet(const HttpsRequest& req) {
  HttpsResult out;
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (!req.ca_file.empty()) {
    SSL_CTX_load_verify_locations(ctx, req.ca_file.c_str(), nullptr);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  }
  if (!req.cert_file.empty()) {
    SSL_CTX_use_certificate_chain_file(ctx, req.cert_file.c_str());
    SSL_CTX_use_PrivateKey_file(ctx, req.key_file.c_str(), SSL_FILETYPE_PEM);
  }
  const int fd = tls_client_internal::Connect(req.port);
  if (fd < 0) {
    SSL_CTX_free(ctx);
    out.error = "connect failed";
    return out;
  }
  SSL* ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  SSL_set_tlsext_host_name(ssl, "localhost");
  if (SSL_connect(ssl) == 1) {
    out.handshake = true;
    if (X509* peer = SSL_get1_peer_certificate(ssl)) {
      out.peer_serial = ASN1_INTEGER_get(X509_get_serialNumber(peer));
      X509_free(peer);
    }
    if (const STACK_OF(X509_NAME)* cas = SSL_get_client_CA_list(ssl)) {
      for (int i = 0; i < sk_X509_NAME_num(cas); ++i)
        out.client_ca_names.push_back(tls_client_internal::CommonName(sk_X509_NAME_value(cas, i)));
    }
    const std::string request = tls_client_internal::Request(req.path, req.headers);
    std::string raw;
    if (SSL_write(ssl, request.data(), static_cast<int>(request.size())) > 0) {
      char buf[16384];
      int n;
      while ((n = SSL_read(ssl, buf, sizeof(buf))) > 0) raw.append(buf, static_cast<size_t>(n));
    }
    // With TLS 1.3 the server checks the client certificate after the
    // client finished its handshake: a refusal shows up here, as an alert.
    out.response = ParseHttpResponse(raw);
    if (out.response.status == 0) {
      char err[256] = {0};
      ERR_error_string_n(ERR_get_error(), err, sizeof(err));
      out.error = err;
    }
    SSL_shutdown(ssl);
  } else {
    char err[256] = {0};
    ERR_error_string_n(ERR_get_error(), err, sizeof(err));
    out.error = err;
  }
  ERR_clear_error();
  SSL_free(ssl);
  close(fd);
  SSL_CTX_free(ctx);
  return out;
}

// GET over plain TCP: what an http:// scraper would get ("" when the
// server closed without answering).
inline std::string PlainHttpGet(int port, const std::string& path = "/metrics") {
  const int fd = tls_client_internal::Connect(port);
  if (fd < 0) return "";
  const std::string request = tls_client_internal::Request(path, {});
  std::string raw;
  if (write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size())) {
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0) raw.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return raw;
}

}  // namespace greenlight::testing
