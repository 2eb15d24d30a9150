#!/usr/bin/env bash
# Installs the Debian 12 packages greenlight needs to build, run and test.
# As root it runs apt-get; otherwise it prints the one command to run and fails.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config ccache
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev prometheus-cpp-dev libsqlite3-dev sqlite3
  libgtest-dev libgmock-dev libbenchmark-dev
  nlohmann-json3-dev libyaml-cpp-dev libcurl4-openssl-dev libssl-dev openssl libcpp-httplib-dev
  python3-grpcio python3-protobuf python3-pytest python3-venv python3-matplotlib python3-yaml
  libgoogle-perftools-dev
  prometheus clang libclang-rt-14-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# kubectl renders deploy/k8s in the tests; Debian's is in kubernetes-client.
if ! command -v kubectl >/dev/null 2>&1; then
  missing+=(kubernetes-client)
fi
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "greenlight: missing Debian packages: ${missing[*]}"
if [ "$(id -u)" != 0 ]; then
  echo "greenlight: run as root, then retry:"
  echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}"
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
