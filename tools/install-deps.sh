#!/usr/bin/env bash
# Installs the Debian packages MOSS needs. Idempotent: does nothing when all are present,
# otherwise runs `apt-get update` once (a fresh machine has stale lists) and installs what is missing.
#   tools/install-deps.sh            build + test dependencies
#   tools/install-deps.sh --models   also the Python packages used by tools/ and bench/ scripts
set -euo pipefail

pkgs=(
  build-essential cmake pkg-config git
  libssl-dev libsqlite3-dev libboost-dev
  nlohmann-json3-dev libcli11-dev libspdlog-dev libfmt-dev
  libdnnl-dev libonnx-dev libprotobuf-dev protobuf-compiler
  libgtest-dev libgmock-dev libbenchmark-dev
  libonnx-testdata
  # the Python client (clients/python) and its tests, the dashboard check, bench plots
  python3-cryptography python3-numpy python3-setuptools python3-pip
  python3-matplotlib python3-yaml prometheus
  # the KeyService's etcd state store (src/store/etcd_*) and its tests, which start a real etcd
  etcd-server etcd-client
)
if [[ "${1:-}" == "--models" ]]; then
  pkgs+=(python3-torch python3-torchvision python3-onnx python3-numpy python3-sklearn
        python3-matplotlib)
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
