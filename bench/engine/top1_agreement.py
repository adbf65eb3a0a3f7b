#!/usr/bin/python3
"""Top-1 agreement of MOSS with ONNX Runtime on many random inputs (issue 14's classifier
criterion: the same class on at least 99 % of 1,000 random inputs).

    /usr/bin/python3 bench/engine/top1_agreement.py --model models/resnet50_int8 [--n 1000]
        [--chunk 100] [--seed 7] [--moss build/bin/moss]

Random standard-normal inputs (the distribution the models were calibrated and exported with),
in chunks of --chunk requests stacked on dimension 0: `moss model run --split-batch` and
`run_ort.js --split-batch 1` run each slice as one batch-1 request. Prints per chunk and in total
the top-1 agreement, the largest |MOSS - ORT| and, for a model whose meta.json gives the output
quantization step, the share of outputs within one step; ends with one JSON line. Exit 1 below
--min (default 0.99).
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def run(cmd):
    env = dict(os.environ, OMP_WAIT_POLICY="passive")
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr.strip()[-500:]}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="model directory (model.onnx, inputs/)")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--chunk", type=int, default=100)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--min", type=float, default=0.99)
    ap.add_argument("--moss", default=os.path.join(ROOT, "build", "bin", "moss"))
    args = ap.parse_args()
    onnx_path = os.path.join(args.model, "model.onnx")
    templates = {os.path.splitext(os.path.basename(f))[0]: np.load(f)
                 for f in sorted(glob.glob(os.path.join(args.model, "inputs", "*.npy")))}
    meta_path = os.path.join(args.model, "meta.json")
    meta = json.load(open(meta_path)) if os.path.exists(meta_path) else {}
    step = meta.get("step") if isinstance(meta.get("step"), float) else None
    rng = np.random.default_rng(args.seed)
    agree = total = within = elements = 0
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        done = 0
        while done < args.n:
            n = min(args.chunk, args.n - done)
            in_dir = os.path.join(tmp, "in")
            os.makedirs(in_dir, exist_ok=True)
            flags = []
            for name, t in templates.items():
                if t.dtype != np.float32 or t.shape[0] != 1:
                    raise SystemExit(f"input '{name}': only batch-1 float32 inputs are drawn")
                x = rng.standard_normal((n,) + t.shape[1:]).astype(np.float32)
                np.save(os.path.join(in_dir, f"{name}.npy"), x)
                flags += ["--input", f"{name}={os.path.join(in_dir, name + '.npy')}"]
            moss_dir, ort_dir = os.path.join(tmp, "moss"), os.path.join(tmp, "ort")
            run([args.moss, "model", "run", "--model", onnx_path, "--output-dir", moss_dir,
                 "--split-batch"] + flags)
            run(["node", os.path.join(HERE, "ort", "run_ort.js"), "--model", onnx_path, "--inputs",
                 in_dir, "--threads", "1", "--spin", "0", "--split-batch", "1", "--out", ort_dir])
            chunk_agree = 0
            for f in sorted(glob.glob(os.path.join(ort_dir, "*.npy"))):
                want = np.load(f)
                got = np.load(os.path.join(moss_dir, os.path.basename(f)))
                want2, got2 = want.reshape(n, -1), got.reshape(n, -1)
                chunk_agree += int((want2.argmax(axis=1) == got2.argmax(axis=1)).sum())
                diff = np.abs(got2.astype(np.float64) - want2.astype(np.float64))
                worst = max(worst, float(diff.max()))
                if step:
                    within += int((diff <= step * 1.001).sum())
                    elements += diff.size
                break  # the classifier's first output
            agree += chunk_agree
            total += n
            done += n
            print(f"{done:5d}: top-1 agree {chunk_agree}/{n}, max |MOSS - ORT| so far {worst:.4g}",
                  flush=True)
    rate = agree / max(total, 1)
    summary = {"model": args.model, "inputs": total, "top1_agree": agree, "rate": rate,
               "max_abs_diff": worst}
    if step:
        summary["step"] = step
        summary["within_one_step"] = within / max(elements, 1)
    print(json.dumps(summary))
    return 0 if rate >= args.min else 1


if __name__ == "__main__":
    sys.exit(main())
