#!/usr/bin/env bash
# Runs every libFuzzer target in BIN_DIR (build-fuzz/fuzz), one after the other.
#   tools/run-fuzz.sh BIN_DIR SECONDS
# SECONDS = 0: each target only replays its seed corpus (tests/fuzz/corpus/<target>/) once, a
# regression check of a few seconds. SECONDS > 0: each target fuzzes for that long, starting from
# a copy of its seeds in build-fuzz/corpus/<target>/ (the tree's seeds stay as they are); crash
# reproducers land in build-fuzz/crashes/. Prints executions per target; exits non-zero when a
# target found a crash, a leak or a sanitizer report.
set -u
bin_dir=${1:?bin dir}
seconds=${2:-0}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(dirname "$bin_dir")
mkdir -p "$work/corpus" "$work/crashes" "$work/logs"
failed=0
printf '%-28s %8s %14s %s\n' target seconds executions result
for target in "$bin_dir"/*_fuzz; do
  name=$(basename "$target")
  seeds="$root/tests/fuzz/corpus/$name"
  mkdir -p "$seeds"
  log="$work/logs/$name.log"
  if [ "$seconds" -gt 0 ]; then
    corpus="$work/corpus/$name"
    mkdir -p "$corpus"
    cp -n "$seeds"/* "$corpus"/ 2>/dev/null || true
    "$target" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=4096 \
      -artifact_prefix="$work/crashes/$name-" "$corpus" > "$log" 2>&1
  else
    "$target" -runs=0 -print_final_stats=1 -timeout=10 -artifact_prefix="$work/crashes/$name-" \
      "$seeds" > "$log" 2>&1
  fi
  rc=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  result=ok
  if [ $rc -ne 0 ]; then result="FAILED (see $log)"; failed=1; fi
  printf '%-28s %8s %14s %s\n' "$name" "$seconds" "${execs:-?}" "$result"
done
exit $failed
