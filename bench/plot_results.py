#!/usr/bin/python3
"""Turns the benchmarks' JSON output into SVG plots for docs/benchmarks.md, docs/performance.md
and docs/worker.md.

    plot_results.py [--in bench/out] [--engine-summary IN/engine/summary.json] [--out docs/img]

Reads what the benches write with `--json FILE` (bench/common/json_output.h; bench/run_all.sh,
run by `make bench`, puts them in bench/out/) and bench/engine/compare_ort.py's summary.json.
Writes, for whatever is present (and says what is missing):
  packer_policies.svg        packer_trace_bench.json: FnPacker policies on one trace (failures,
                             cold starts, p99, instance-seconds)
  packer_sim.svg             packer_sim_bench.json: cold starts and p99 per simulated minute, per
                             policy, one column per pool size
  keyservice_throughput.svg  keyservice_bench.json: requests/s per thread count, release vs the
                             no-op anchor
  worker_cold_start.svg      worker_bench.json: a worker's cold start per model (and plan-cache
                             mode: none, miss, hit), stacked by phase
                             (start+attestation, key fetch, model fetch, decrypt, compile,
                             inference, the rest of the first request)
  engine_vs_ort.svg          summary.json: MOSS engine p50 vs ONNX Runtime p50 per model and
                             thread count
Debian's python3-matplotlib; SVGs are deterministic (no date, fixed ids) so reruns diff cleanly.
Exit 1 when no plot could be drawn, 2 when an input is malformed."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

FORMAT = 1


class BadInput(Exception):
    """A benchmark JSON file that is not what its bench writes."""


def load_bench(path: Path, bench: str) -> Dict[str, Any]:
    """The document ``bench`` wrote with ``--json``; BadInput when it is another bench's, another
    format version, or not JSON."""
    try:
        doc = json.loads(path.read_text())
    except ValueError as e:
        raise BadInput(f"{path}: not JSON ({e})") from None
    if not isinstance(doc, dict) or doc.get("bench") != bench:
        raise BadInput(f"{path}: not {bench} output")
    if doc.get("format") != FORMAT:
        raise BadInput(f"{path}: format {doc.get('format')!r}, this script reads {FORMAT}")
    return doc


def _rows(doc: Dict[str, Any], key: str, fields: Tuple[str, ...], path: str) -> List[Dict[str, Any]]:
    rows = doc.get(key)
    if not isinstance(rows, list) or not all(isinstance(r, dict) and all(f in r for f in fields)
                                             for r in rows):
        raise BadInput(f"{path}: '{key}' must be a list of objects with {', '.join(fields)}")
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


def plot_packer(doc: Dict[str, Any], out: Path) -> None:
    rows = _rows(doc, "policies", ("policy", "requests", "failed", "cold", "p99_ms", "instance_s"),
                 "packer_trace_bench")
    plt = _plt()
    metrics = [("failed", "failed requests"), ("cold", "cold starts"),
               ("p99_ms", "p99 latency (ms)"), ("instance_s", "instance-seconds")]
    fig, axes = plt.subplots(1, 4, figsize=(10, 2.8))
    names = [r["policy"] for r in rows]
    for ax, (key, label) in zip(axes, metrics):
        ax.bar(range(len(rows)), [r[key] for r in rows],
               color=["#2a7", "#c84", "#68b", "#999"][:len(rows)])
        ax.set_title(label)
        ax.set_xticks(range(len(rows)), names, rotation=20, ha="right")
    fig.suptitle(f"FnPacker policies on one trace ({rows[0]['requests']} requests; lower is better)")
    _save(fig, out / "packer_policies.svg")
    plt.close(fig)


def plot_packer_sim(doc: Dict[str, Any], out: Path) -> None:
    runs = _rows(doc, "runs", ("pool", "policy", "cold_per_min", "p99_per_min"), "packer_sim_bench")
    plt = _plt()
    pools = sorted({r["pool"] for r in runs})
    fig, axes = plt.subplots(2, len(pools), figsize=(4.2 * len(pools), 5.5), sharex=True,
                             squeeze=False)
    for col, pool in enumerate(pools):
        for r in (r for r in runs if r["pool"] == pool):
            minutes = range(len(r["cold_per_min"]))
            axes[0][col].plot(minutes, r["cold_per_min"], label=r["policy"], drawstyle="steps-post")
            # A minute with no finished request (the trace's last, partial one) has no p99.
            pts = [(m, v) for m, v in enumerate(r["p99_per_min"]) if v > 0]
            axes[1][col].plot([m for m, _ in pts], [v for _, v in pts], label=r["policy"])
        axes[0][col].set_title(f"pool of {pool} instances")
        axes[1][col].set_yscale("log")
        axes[1][col].set_xlabel("simulated minute")
    axes[0][0].set_ylabel("cold starts per minute")
    axes[1][0].set_ylabel("p99 latency, ms\n(a failure counts as the deadline)")
    axes[0][0].legend(fontsize=7)
    t = doc.get("trace", {})
    backend = f", {t['backend']} backend" if "backend" in t else ""
    fig.suptitle(f"FnPacker policies over time (simulated: {t.get('models', '?')} models, "
                 f"{t.get('requests', '?')} requests{backend})")
    _save(fig, out / "packer_sim.svg")
    plt.close(fig)


def plot_keyservice(doc: Dict[str, Any], out: Path) -> None:
    rows = _rows(doc, "rows", ("threads", "endpoint", "rps"), "keyservice_bench")
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3))
    for ep, style, label in (("noop", "o--", "no-op anchor"),
                             ("release", "s-", "release (attested mTLS, audit commit)"),
                             ("rel+poll", "^:", "release while the audit log is polled")):
        pts = sorted((r["threads"], r["rps"]) for r in rows if r["endpoint"] == ep)
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], style, label=label)
    ax.set_xticks(sorted({r["threads"] for r in rows}))
    ax.set_xlabel("client threads")
    ax.set_ylabel("requests/s")
    ax.set_title(f"KeyService throughput ({doc.get('seconds', '?')} s per point)")
    ax.legend(fontsize=7)
    ax.set_ylim(bottom=0)
    _save(fig, out / "keyservice_throughput.svg")
    plt.close(fig)


# The cold start's stacked segments: (label, value of a worker_bench cold_start row).
_COLD_PHASES = ("key_fetch", "model_fetch", "decrypt", "compile", "inference")


def cold_start_segments(row: Dict[str, Any]) -> List[Tuple[str, float]]:
    """Process start + attestation, the first request's phases as the worker timed them, and
    what is left of the client's first round trip (transport, sealing, encrypt)."""
    phases = row["phases_ms"]
    seg = [("process start + attestation", float(row["start_attest_ms"]))]
    seg += [(p.replace("_", " "), float(phases.get(p, 0.0))) for p in _COLD_PHASES]
    rest = float(row["first_request_ms"]) - sum(v for _, v in seg[1:])
    seg.append(("rest of the first request", max(rest, 0.0)))
    return seg


def plot_worker_cold(doc: Dict[str, Any], out: Path) -> None:
    rows = _rows(doc, "cold_start", ("model", "start_attest_ms", "first_request_ms", "phases_ms"),
                 "worker_bench")
    # With --cold-rounds, one bar per model and plan-cache mode: the first round's.
    rows = [r for r in rows if r.get("round", 0) == 0]
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 0.55 * len(rows) + 1.9))
    segs = [cold_start_segments(r) for r in rows]
    left = [0.0] * len(rows)
    for i, (label, _) in enumerate(segs[0]):
        vals = [s[i][1] for s in segs]
        ax.barh(range(len(rows)), vals, left=left, label=label, color=f"C{i}")
        left = [a + b for a, b in zip(left, vals)]
    for y, total in enumerate(left):
        ax.annotate(f"{total:.0f} ms", (total, y), xytext=(3, 0), textcoords="offset points",
                    va="center", fontsize=7)
    ax.set_yticks(range(len(rows)), [r["model"] + (f" ({r['plan_cache']})" if "plan_cache" in r else "")
                                     for r in rows])
    ax.invert_yaxis()
    ax.margins(x=0.12)
    ax.set_xlabel("ms from process start to the first answer")
    ax.set_title("Worker cold start by phase")
    ax.legend(fontsize=7, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.3))
    _save(fig, out / "worker_cold_start.svg")
    plt.close(fig)


def plot_engine(summary: Any, out: Path) -> None:
    if not isinstance(summary, list) or not all(isinstance(r, dict) and "model" in r for r in summary):
        raise BadInput("engine summary: must be a list of objects with 'model'")
    threads = sorted({int(k.rsplit("_t", 1)[1]) for r in summary for k in r
                      if k.startswith("moss_p50_ms_t")})
    rows = [r for r in summary if "error" not in r]
    if not threads or not rows:
        raise BadInput("engine summary: no model with p50 figures")
    plt = _plt()
    fig, axes = plt.subplots(1, len(threads), figsize=(4.5 * len(threads), 3), squeeze=False)
    for ax, t in zip(axes[0], threads):
        xs = range(len(rows))
        ax.bar([x - 0.2 for x in xs], [r.get(f"moss_p50_ms_t{t}", 0) for r in rows], 0.4,
               label="MOSS engine")
        ax.bar([x + 0.2 for x in xs], [r.get(f"ort_p50_ms_t{t}", 0) for r in rows], 0.4,
               label="ONNX Runtime")
        for x, r in zip(xs, rows):
            if f"ratio_t{t}" in r:
                top = max(r.get(f"moss_p50_ms_t{t}", 0), r.get(f"ort_p50_ms_t{t}", 0))
                ax.annotate(f"x{r[f'ratio_t{t}']:.2f}", (x, top), ha="center", va="bottom",
                            fontsize=7)
        ax.set_xticks(list(xs), [r["model"] for r in rows])
        ax.margins(y=0.12)
        ax.set_ylabel("p50 latency (ms)")
        ax.set_title(f"{t} thread{'s' if t > 1 else ''}")
        ax.legend(fontsize=7)
    fig.suptitle("Engine vs ONNX Runtime (lower is better; xN = MOSS / ORT)")
    _save(fig, out / "engine_vs_ort.svg")
    plt.close(fig)


# (bench name = file stem in --in, plot)
BENCH_PLOTS: List[Tuple[str, Callable[[Dict[str, Any], Path], None]]] = [
    ("packer_trace_bench", plot_packer),
    ("packer_sim_bench", plot_packer_sim),
    ("keyservice_bench", plot_keyservice),
    ("worker_bench", plot_worker_cold),
]


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--in", dest="indir", type=Path, default=Path("bench/out"),
                    help="where the benches' --json files are (<bench>.json)")
    ap.add_argument("--engine-summary", type=Path,
                    help="bench/engine/compare_ort.py summary.json (default IN/engine/summary.json)")
    ap.add_argument("--out", type=Path, default=Path("docs/img"))
    a = ap.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    made = 0
    try:
        for bench, plot in BENCH_PLOTS:
            path = a.indir / f"{bench}.json"
            if not path.exists():
                print(f"plot_results: no {path}; its plot is not redrawn")
                continue
            plot(load_bench(path, bench), a.out)
            made += 1
        engine = a.engine_summary or a.indir / "engine" / "summary.json"
        if engine.exists():
            try:
                summary = json.loads(engine.read_text())
            except ValueError as e:
                raise BadInput(f"{engine}: not JSON ({e})") from None
            plot_engine(summary, a.out)
            made += 1
        else:
            print(f"plot_results: no {engine} (bench/engine/compare_ort.py); its plot is not redrawn")
    except BadInput as e:
        print(f"plot_results: {e}", file=sys.stderr)
        return 2
    return 0 if made else 1


if __name__ == "__main__":
    sys.exit(main())
