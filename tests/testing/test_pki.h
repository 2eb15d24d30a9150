// Certificates for TLS tests, made with the openssl CLI in a test's temp
// directory: self-signed CAs and leaves (server: SAN localhost and
// 127.0.0.1; client: clientAuth) with chosen serial numbers, and an atomic
// install the way cert-manager and the kubelet replace served files.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"

namespace greenlight::testing {

inline bool HaveOpensslCli() { return std::system("openssl version >/dev/null 2>&1") == 0; }

class TestPki {
 public:
  explicit TestPki(std::string dir) : dir_(std::move(dir)) {}

  // name.pem / name.key: a self-signed CA (CN = name).
  bool Ca(const std::string& name) {
    return Run(
        absl::StrCat("req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ",
                     name, ".key -out ", name, ".pem -days 2 -subj /CN=", name));
  }
  // name.pem / name.key signed by `ca` with `serial`: a server certificate
  // for localhost and 127.0.0.1, or a client certificate.
  bool Leaf(const std::string& name, const std::string& ca, bool server, int serial) {
    std::ofstream(File(name + ".ext"))
        << (server ? "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
                   : "extendedKeyUsage=clientAuth\n");
    return Run(absl::StrCat("req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ",
                            name, ".key -out ", name, ".csr -subj /CN=", name)) &&
           Run(absl::StrCat("x509 -req -in ", name, ".csr -CA ", ca, ".pem -CAkey ", ca,
                            ".key -set_serial ", serial, " -days 2 -out ", name, ".pem -extfile ",
                            name, ".ext"));
  }
  // The set the TLS tests share: server leaves gen1 (CA ca1, serial 1001) and
  // gen2 (CA ca2, serial 2002) for rotation, client leaf alice from clientca
  // (3003) and mallory from rogueca (4004). False if openssl failed (Log()).
  bool MakeRotationSet() {
    return Ca("ca1") && Ca("ca2") && Ca("clientca") && Ca("rogueca") &&
           Leaf("gen1", "ca1", true, 1001) && Leaf("gen2", "ca2", true, 2002) &&
           Leaf("alice", "clientca", false, 3003) && Leaf("mallory", "rogueca", false, 4004);
  }
  // Copies `from` over `to` atomically: written aside, then renamed.
  void Replace(const std::string& from, const std::string& to) const {
    std::filesystem::copy_file(File(from), File(to + ".new"),
                               std::filesystem::copy_options::overwrite_existing);
    std::filesystem::rename(File(to + ".new"), File(to));
  }
  // Serves leaf `name` as cert.pem / key.pem: the key first, then the
  // certificate, each renamed into place.
  void Install(const std::string& name) const {
    Replace(name + ".key", "key.pem");
    Replace(name + ".pem", "cert.pem");
  }

  std::string File(const std::string& name) const { return dir_ + "/" + name; }
  // PEM text of name.pem / name.key.
  std::string Pem(const std::string& name) const { return Read(File(name + ".pem")); }
  std::string Key(const std::string& name) const { return Read(File(name + ".key")); }
  // The openssl CLI's output so far (for failure messages).
  std::string Log() const { return Read(File("openssl.log")); }

 private:
  bool Run(const std::string& args) {
    std::string cmd = absl::StrCat("cd '", dir_, "' && openssl ", args, " >>openssl.log 2>&1");
    return std::system(cmd.c_str()) == 0;
  }
  static std::string Read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  std::string dir_;
};

}  // namespace greenlight::testing
