#!/usr/bin/env bash
# Runs every benchmark program; `make bench` calls it with the binary directory.
# Usage: bench/run_all.sh BIN_DIR. Parts append their own line below (keep it additive).
set -euo pipefail
BIN_DIR=${1:?usage: bench/run_all.sh BIN_DIR}

run() {
  local name=$1
  shift
  if [[ -x "$BIN_DIR/$name" ]]; then
    echo "== $name $*"
    "$BIN_DIR/$name" "$@"
  else
    echo "== $name: not built, skipped"
  fi
}

run model_crypt_bench
run attest_bench
run packer_trace_bench --quick
run keyservice_bench --seconds 2 --threads 1,4
OMP_WAIT_POLICY=passive run onednn_chain_bench --threads 1 --ms 300
OMP_WAIT_POLICY=passive run worker_bench --bin-dir "$BIN_DIR" --models "$(dirname "$0")/../models"
