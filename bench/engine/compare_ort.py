#!/usr/bin/python3
"""Whole-model check: MOSS against ONNX Runtime on the same models and inputs.

Prerequisites:
    /usr/bin/python3 tools/export_models.py                     # models/<name>/{model.onnx,inputs/}
    (cd bench/engine/ort && npm install --ignore-scripts)       # onnxruntime-node@1.30.0
    build/bin/moss                                              # `make build` (engine lead's CLI)
Run:
    /usr/bin/python3 bench/engine/compare_ort.py [--models models] [--moss build/bin/moss]
        [--threads 1,2] [--iters 50] [--rounds 3] [--out bench/out/engine] [--ort-only] [--no-spin]

For each model: ONNX Runtime (CPU, intra-op threads T, sequential) writes its outputs (threads 1)
and p50 latency; MOSS runs `moss model run` on the same inputs and `moss model bench --threads T
--input ...` on the same input files.
Prints max abs error per model (pass: |moss - ort| <= 1e-4 + 1e-3 * |ort| everywhere; a model
whose meta.json says "detection" is compared as a set of boxes, see compare_detection; "quantized"
widens atol by `steps` output quantization steps: the scale of the DequantizeLinear writing the
output for a statically quantized model, or for a dynamically quantized one (float outputs,
"step": "dynamic") the step DynamicQuantizeLinear would give ORT's output,
(max(y,0)-min(y,0))/255) and
MOSS p50 / ORT p50 per thread count; writes OUT/summary.json. Exit 1 if any model fails or errors.
Runs are interleaved per model and thread count so both see the same machine load; with
--rounds N each pair (ORT, then MOSS) is repeated N times and the best p50 of each side is kept
(the ratio is best MOSS p50 / best ORT p50 of the same run; per-round ratios are in the JSON). --no-spin runs
both without spin-waiting threads (MOSS: OMP_WAIT_POLICY=passive; ORT: allow_spinning=0), which is
what a shared or loaded host needs (see docs/performance.md).
"""
import argparse
import glob
import json
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
RTOL, ATOL = 1e-3, 1e-4


def last_json_line(text):
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise ValueError("no JSON line in output")


def run(cmd, timeout=1800):
    env = dict(os.environ)
    if not SPIN:
        env["OMP_WAIT_POLICY"] = "passive"
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr.strip()[-500:]}")
    return p.stdout


SPIN = True


def ort_run(model_dir, threads, iters, out_dir=None):
    cmd = ["node", os.path.join(HERE, "ort", "run_ort.js"), "--spin", "1" if SPIN else "0", "--model",
           os.path.join(model_dir, "model.onnx"), "--inputs", os.path.join(model_dir, "inputs"),
           "--threads", str(threads), "--iters", str(iters)]
    if out_dir:
        cmd += ["--out", out_dir]
    return last_json_line(run(cmd))


def moss_run(moss, model_dir, out_dir):
    run([moss, "model", "run", "--model", os.path.join(model_dir, "model.onnx"),
         "--output-dir", out_dir] + input_flags(model_dir))


def input_flags(model_dir):
    flags = []
    for f in sorted(glob.glob(os.path.join(model_dir, "inputs", "*.npy"))):
        flags += ["--input", f"{os.path.splitext(os.path.basename(f))[0]}={f}"]
    return flags


def moss_bench(moss, model_dir, threads, iters):
    # The same input files ORT times (detection post-processing and token ids depend on them).
    return last_json_line(run([moss, "model", "bench", "--model",
                               os.path.join(model_dir, "model.onnx"), "--threads", str(threads),
                               "--iters", str(iters)] + input_flags(model_dir)))


def dynamic_step(want):
    """The step DynamicQuantizeLinear would give this output: (max(x, 0) - min(x, 0)) / 255."""
    w = want.astype(np.float64)
    return (max(float(w.max()), 0.0) - min(float(w.min()), 0.0)) / 255.0 if w.size else 0.0


def compare(got_dir, want_dir, extra_atol=0.0):
    """Max abs error over every output ORT wrote, and whether all are within tolerance (widened by
    extra_atol for a quantized output: a number, or a function of ORT's output array)."""
    worst, ok = 0.0, True
    for want_file in sorted(glob.glob(os.path.join(want_dir, "*.npy"))):
        got_file = os.path.join(got_dir, os.path.basename(want_file))
        if not os.path.exists(got_file):
            return float("inf"), False
        want, got = np.load(want_file), np.load(got_file)
        if got.shape != want.shape:
            return float("inf"), False
        diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
        worst = max(worst, float(diff.max()) if diff.size else 0.0)
        extra = extra_atol(want) if callable(extra_atol) else extra_atol
        ok &= bool(np.all(diff <= ATOL + extra + RTOL * np.abs(want.astype(np.float64))))
    return worst, ok


def iou(a, b):
    """IoU of every box in a [N,4] with every box in b [M,4] (x1, y1, x2, y2)."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area = lambda x: np.prod(np.clip(x[:, 2:] - x[:, :2], 0, None), axis=1)
    return inter / np.maximum(area(a)[:, None] + area(b)[None, :] - inter, 1e-12)


def compare_detection(got_dir, want_dir, meta):
    """Detections as a set: each ORT detection (highest score first) is matched to an unused MOSS
    detection of the same label whose box and score agree within tolerance (IoU >= 0.99 as well).
    Order is free, and a detection whose score is within tolerance of the lowest kept score may be
    missing on either side (the cut-off of a top-k or score threshold is a tie at that precision).
    Returns (worst box/score error of matched pairs, pass)."""
    def load(d):
        try:
            return tuple(np.load(os.path.join(d, f"{meta[k]}.npy")) for k in ("boxes", "scores", "labels"))
        except (OSError, ValueError):
            return None
    got, want = load(got_dir), load(want_dir)
    if got is None or want is None:
        return float("inf"), False
    (gb, gs, gl), (wb, ws, wl) = got, want
    gb, gs, wb, ws = (x.astype(np.float64) for x in (gb, gs, wb, ws))
    cut = min(ws.min() if ws.size else np.inf, gs.min() if gs.size else np.inf)
    near_cut = lambda s: s <= cut + ATOL + RTOL * abs(cut)
    used = np.zeros(len(gs), dtype=bool)
    overlap = iou(wb, gb) if len(wb) and len(gb) else np.zeros((len(wb), len(gb)))
    worst, ok = 0.0, True
    for i in np.argsort(-ws, kind="stable"):
        box_ok = np.all(np.abs(gb - wb[i]) <= ATOL + RTOL * np.abs(wb[i]), axis=1) if len(gb) else []
        cand = [j for j in range(len(gs)) if not used[j] and gl[j] == wl[i] and box_ok[j] and
                overlap[i, j] >= 0.99 and abs(gs[j] - ws[i]) <= ATOL + RTOL * abs(ws[i])]
        if not cand:
            ok &= bool(near_cut(ws[i]))
            continue
        j = min(cand, key=lambda j: abs(gs[j] - ws[i]))
        used[j] = True
        worst = max(worst, float(np.abs(gb[j] - wb[i]).max()), float(abs(gs[j] - ws[i])))
    ok &= all(near_cut(gs[j]) for j in np.flatnonzero(~used))
    return worst, ok


def compare_dirs(got_dir, want_dir, model_dir):
    meta_path = os.path.join(model_dir, "meta.json")
    meta = json.load(open(meta_path)) if os.path.exists(meta_path) else {}
    if meta.get("compare") == "detection":
        return compare_detection(got_dir, want_dir, meta)
    if meta.get("compare") == "quantized":
        # "step": "dynamic" (a dynamically quantized model, float outputs): the step of the
        # output's own dynamic quantization, the resolution of the model's int8 activations.
        widen = (lambda w: dynamic_step(w) * meta["steps"] * (1 + RTOL)) \
            if meta["step"] == "dynamic" else meta["step"] * meta["steps"] * (1 + RTOL)
        worst, ok = compare(got_dir, want_dir, widen)
        if meta.get("top1"):  # a classifier: the same class as well (issue 14's criterion)
            for want_file in sorted(glob.glob(os.path.join(want_dir, "*.npy"))):
                got = np.load(os.path.join(got_dir, os.path.basename(want_file)))
                want = np.load(want_file)
                ok &= bool(np.array_equal(got.argmax(axis=-1), want.argmax(axis=-1)))
        return worst, ok
    return compare(got_dir, want_dir)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=os.path.join(ROOT, "models"))
    ap.add_argument("--moss", default=os.path.join(ROOT, "build", "bin", "moss"))
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=1, help="interleaved ORT/MOSS pairs; best p50 kept")
    ap.add_argument("--only", action="append", help="model name (repeatable)")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "out", "engine"))
    ap.add_argument("--ort-only", action="store_true", help="measure ONNX Runtime only")
    ap.add_argument("--no-spin", action="store_true", help="no spin-waiting threads in either")
    args = ap.parse_args()
    global SPIN
    SPIN = not args.no_spin
    threads = [int(t) for t in args.threads.split(",")]
    have_moss = not args.ort_only and os.access(args.moss, os.X_OK)
    if not args.ort_only and not have_moss:
        print(f"note: {args.moss} not found; measuring ONNX Runtime only", file=sys.stderr)
    models = sorted(d for d in glob.glob(os.path.join(args.models, "*"))
                    if os.path.exists(os.path.join(d, "model.onnx")))
    if not models:
        print(f"no models under {args.models}; run tools/export_models.py first", file=sys.stderr)
        return 1
    if args.only:
        models = [d for d in models if os.path.basename(d) in args.only]
    summary, failed = [], False
    for model_dir in models:
        name = os.path.basename(model_dir)
        out = os.path.join(args.out, name)
        row = {"model": name}
        try:
            ort_out = os.path.join(out, "ort")
            for i, t in enumerate(threads):
                ort_p50, moss_p50, rounds = [], [], []
                for k in range(max(1, args.rounds)):
                    r = ort_run(model_dir, t, args.iters, ort_out if i == 0 and k == 0 else None)
                    ort_p50.append(r["p50_ms"])
                    if have_moss:
                        m = moss_bench(args.moss, model_dir, t, args.iters)
                        moss_p50.append(m["p50_ms"])
                        rounds.append(round(m["p50_ms"] / r["p50_ms"], 3))
                        row.update({k2: m[k2] for k2 in ("weights_mb", "arena_mb", "peak_rss_mb")
                                    if k2 in m})
                row[f"ort_p50_ms_t{t}"] = min(ort_p50)
                if have_moss:
                    row[f"moss_p50_ms_t{t}"] = min(moss_p50)
                    row[f"ratio_t{t}"] = round(min(moss_p50) / min(ort_p50), 3)
                    row[f"round_ratios_t{t}"] = rounds
            torch_err, _ = compare_dirs(ort_out, os.path.join(model_dir, "torch"), model_dir)
            row["ort_vs_torch_max_abs"] = torch_err
            if have_moss:
                moss_out = os.path.join(out, "moss")
                os.makedirs(moss_out, exist_ok=True)
                moss_run(args.moss, model_dir, moss_out)
                err, ok = compare_dirs(moss_out, ort_out, model_dir)
                row["max_abs_err"], row["pass"] = err, ok
                failed |= not ok
        except (RuntimeError, ValueError, subprocess.TimeoutExpired) as e:
            row["error"] = str(e)
            failed = True
        summary.append(row)
        print(json.dumps(row), flush=True)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print(f"\n{'model':<14}" + "".join(f"  ORT p50 t{t:<3}" for t in threads) +
          ("".join(f"  MOSS p50 t{t:<2} ratio" for t in threads) + "  max abs err  pass"
           if have_moss else ""))
    for r in summary:
        line = f"{r['model']:<14}" + "".join(f"  {r.get(f'ort_p50_ms_t{t}', float('nan')):>10.2f} ms"
                                             for t in threads)
        if have_moss:
            line += "".join(f"  {r.get(f'moss_p50_ms_t{t}', float('nan')):>8.2f} ms "
                            f"{r.get(f'ratio_t{t}', float('nan')):5.2f}" for t in threads)
            line += f"  {r.get('max_abs_err', float('nan')):11.2e}  {r.get('pass', False)}"
        if "error" in r:
            line += f"  ERROR {r['error'][:200]}"
        print(line)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
