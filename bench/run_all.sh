#!/usr/bin/env bash
# Runs every benchmark program; `make bench` calls it with the binary directory.
# Usage: bench/run_all.sh BIN_DIR [OUT_DIR]. Parts append their own line below (keep it additive).
# The text goes to stdout; the benches that have a machine-readable output also write
# OUT_DIR/<bench>.json (`--json`, bench/common/json_output.h), which bench/plot_results.py draws.
set -euo pipefail
BIN_DIR=${1:?usage: bench/run_all.sh BIN_DIR [OUT_DIR]}
OUT_DIR=${2:-$(dirname "$0")/out}
mkdir -p "$OUT_DIR"
rm -f "$OUT_DIR"/*_bench.json  # a bench not built this time leaves no stale figures behind

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
run packer_trace_bench --quick --json "$OUT_DIR/packer_trace_bench.json"
run packer_sim_bench --rate 60 --json "$OUT_DIR/packer_sim_bench.json"
run keyservice_bench --seconds 2 --threads 1,4 --json "$OUT_DIR/keyservice_bench.json"
OMP_WAIT_POLICY=passive run onednn_chain_bench --threads 1 --ms 300
OMP_WAIT_POLICY=passive run worker_bench --bin-dir "$BIN_DIR" --models "$(dirname "$0")/../models" \
  --json "$OUT_DIR/worker_bench.json"
