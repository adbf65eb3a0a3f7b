#!/usr/bin/python3
"""Turns benchmark output into SVG plots for docs/benchmarks.md and docs/performance.md.

    plot_results.py --log bench/out/run_all.log [--engine-summary bench/out/engine/summary.json]
                    [--out docs/img]

Reads the log of bench/run_all.sh (`make bench` writes it) -- the tables of packer_trace_bench,
keyservice_bench and worker_bench, found by their `== <bench>` headers -- and the JSON summary of
bench/engine/compare_ort.py. Writes, for whatever data is present:
  packer_policies.svg      FnPacker policies on one trace: failures, cold starts, p99, instance-s
  keyservice_throughput.svg  KeyService requests/s per thread count, release vs the no-op anchor
  worker_cold_start.svg    a worker's cold start per model, by phase
  engine_vs_ort.svg        MOSS engine p50 vs ONNX Runtime p50 per model and thread count
Debian's python3-matplotlib; SVGs are deterministic (no date, fixed ids) so reruns diff cleanly."""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Dict, List, Optional

NUM = r"([-+]?\d+(?:\.\d+)?)"


def sections(log: str) -> Dict[str, List[str]]:
    """Lines of each benchmark, keyed by its name in run_all.sh's `== <name> ...` header."""
    out: Dict[str, List[str]] = {}
    cur: Optional[str] = None
    for line in log.splitlines():
        m = re.match(r"^== (\S+)", line)
        if m:
            cur = m.group(1).rstrip(":")
            out.setdefault(cur, [])
        elif cur:
            out[cur].append(line)
    return out


def parse_packer(lines: List[str]) -> List[Dict[str, float]]:
    """packer_trace_bench's policy table (name, then ten numeric columns)."""
    rows, in_table = [], False
    pat = re.compile(r"^(\S.*?)\s+" + r"\s+".join([r"(\d+)"] * 6 + [NUM] * 4) + r"\s*$")
    for line in lines:
        if line.startswith("policy "):
            in_table = True
            continue
        m = pat.match(line) if in_table else None
        if m:
            g = m.groups()
            rows.append({"policy": g[0], "requests": int(g[1]), "served": int(g[2]),
                         "failed": int(g[3]), "cold": int(g[4]), "starts": int(g[5]),
                         "switches": int(g[6]), "p50_ms": float(g[7]), "p99_ms": float(g[8]),
                         "instance_s": float(g[9]), "peak_mib": float(g[10])})
    return rows


def parse_keyservice(lines: List[str]) -> List[Dict[str, float]]:
    """keyservice_bench's rows: threads endpoint requests/s p50_us p99_us errors rps_vs_noop."""
    rows = []
    for line in lines:
        m = re.match(r"^(\d+)\s+(noop|release)\s+" + NUM + r"\s+" + NUM + r"\s+" + NUM, line)
        if m:
            rows.append({"threads": int(m.group(1)), "endpoint": m.group(2),
                         "rps": float(m.group(3)), "p50_us": float(m.group(4)),
                         "p99_us": float(m.group(5))})
    return rows


_PHASES = ("key_fetch", "model_fetch", "decrypt", "compile", "inference", "encrypt")


def parse_worker_cold(lines: List[str]) -> List[Dict[str, float]]:
    """worker_bench's `cold <model> process start+attestation X ms | first request Y ms: ...`."""
    rows = []
    for line in lines:
        m = re.match(r"^cold\s+(\S+)\s+process start\+attestation\s+" + NUM, line)
        if not m:
            continue
        row: Dict[str, float] = {"model": m.group(1), "start": float(m.group(2))}  # type: ignore
        for p in _PHASES:
            pm = re.search(rf"\b{p} {NUM}", line)
            row[p] = float(pm.group(1)) if pm else 0.0
        rows.append(row)
    return rows


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    plt.rcParams.update({"svg.hashsalt": "moss", "font.size": 9, "figure.dpi": 100})
    return plt


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, format="svg", metadata={"Date": None})
    print(f"plot_results: wrote {path}")


def plot_packer(rows, out: Path) -> None:
    plt = _plt()
    metrics = [("failed", "failed requests"), ("cold", "cold starts"),
               ("p99_ms", "p99 latency (ms)"), ("instance_s", "instance-seconds")]
    fig, axes = plt.subplots(1, 4, figsize=(10, 2.8))
    names = [r["policy"] for r in rows]
    for ax, (key, label) in zip(axes, metrics):
        ax.bar(range(len(rows)), [r[key] for r in rows], color=["#2a7", "#c84", "#68b", "#999"][:len(rows)])
        ax.set_title(label)
        ax.set_xticks(range(len(rows)), names, rotation=20, ha="right")
    fig.suptitle(f"FnPacker policies on one trace ({rows[0]['requests']} requests; lower is better)")
    _save(fig, out / "packer_policies.svg")
    plt.close(fig)


def plot_keyservice(rows, out: Path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3))
    for ep, style in (("noop", "o--"), ("release", "s-")):
        pts = sorted((r["threads"], r["rps"]) for r in rows if r["endpoint"] == ep)
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], style,
                    label="release (attested mTLS, audit commit)" if ep == "release" else "no-op anchor")
    ax.set_xticks(sorted({r["threads"] for r in rows}))
    ax.set_xlabel("client threads")
    ax.set_ylabel("requests/s")
    ax.set_title("KeyService throughput")
    ax.legend()
    ax.set_ylim(bottom=0)
    _save(fig, out / "keyservice_throughput.svg")
    plt.close(fig)


def plot_worker_cold(rows, out: Path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 0.6 * len(rows) + 1.5))
    parts = ("start",) + _PHASES
    labels = {"start": "process start + attestation"}
    left = [0.0] * len(rows)
    for p in parts:
        vals = [r[p] for r in rows]
        ax.barh(range(len(rows)), vals, left=left, label=labels.get(p, p))
        left = [a + b for a, b in zip(left, vals)]
    ax.set_yticks(range(len(rows)), [r["model"] for r in rows])
    ax.set_xlabel("ms")
    ax.set_title("Worker cold start by phase")
    ax.legend(fontsize=7, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.25))
    _save(fig, out / "worker_cold_start.svg")
    plt.close(fig)


def plot_engine(summary, out: Path) -> None:
    plt = _plt()
    threads = sorted({int(k.rsplit("_t", 1)[1]) for r in summary for k in r
                      if k.startswith("moss_p50_ms_t")})
    rows = [r for r in summary if "error" not in r]
    if not threads or not rows:
        return
    fig, axes = plt.subplots(1, len(threads), figsize=(4.5 * len(threads), 3), squeeze=False)
    for ax, t in zip(axes[0], threads):
        xs = range(len(rows))
        ax.bar([x - 0.2 for x in xs], [r.get(f"moss_p50_ms_t{t}", 0) for r in rows], 0.4, label="MOSS engine")
        ax.bar([x + 0.2 for x in xs], [r.get(f"ort_p50_ms_t{t}", 0) for r in rows], 0.4, label="ONNX Runtime")
        for x, r in zip(xs, rows):
            if f"ratio_t{t}" in r:
                ax.annotate(f"x{r[f'ratio_t{t}']:.2f}", (x, max(r[f"moss_p50_ms_t{t}"], r[f"ort_p50_ms_t{t}"])),
                            ha="center", va="bottom", fontsize=7)
        ax.set_xticks(list(xs), [r["model"] for r in rows])
        ax.margins(y=0.12)
        ax.set_ylabel("p50 latency (ms)")
        ax.set_title(f"{t} thread{'s' if t > 1 else ''}")
        ax.legend(fontsize=7)
    fig.suptitle("Engine vs ONNX Runtime (lower is better; xN = MOSS / ORT)")
    _save(fig, out / "engine_vs_ort.svg")
    plt.close(fig)


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--log", type=Path, help="output of bench/run_all.sh")
    ap.add_argument("--engine-summary", type=Path, help="bench/engine/compare_ort.py summary.json")
    ap.add_argument("--out", type=Path, default=Path("docs/img"))
    a = ap.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    made = 0
    if a.log and a.log.exists():
        sec = sections(a.log.read_text(errors="replace"))
        for name, parse, plot in (("packer_trace_bench", parse_packer, plot_packer),
                                  ("keyservice_bench", parse_keyservice, plot_keyservice),
                                  ("worker_bench", parse_worker_cold, plot_worker_cold)):
            rows = parse(sec.get(name, []))
            if rows:
                plot(rows, a.out)
                made += 1
            else:
                print(f"plot_results: no {name} figures in {a.log}")
    if a.engine_summary and a.engine_summary.exists():
        plot_engine(json.loads(a.engine_summary.read_text()), a.out)
        made += 1
    return 0 if made else 1


if __name__ == "__main__":
    sys.exit(main())
