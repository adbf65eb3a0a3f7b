#!/usr/bin/python3
"""LSTM, GRU and RNN against ONNX Runtime in every direction and layout.

The ONNX test data covers only forward cells, so this builds one model per (cell, direction,
layout, options) with onnx.helper and random weights (fixed seed), runs it with `moss model run`
and with onnxruntime-node (bench/engine/ort, `npm install --ignore-scripts` there first), and
compares every output (rtol 1e-3, atol 1e-4). Exit 1 on any mismatch. ONNX Runtime's CPU cells
refuse layout 1, so a layout-1 model is compared with ORT running its layout-0 twin (same
weights) on transposed inputs, outputs transposed back.
  /usr/bin/python3 bench/engine/recurrent_vs_ort.py [--moss build/bin/moss] [--keep DIR]
"""
import argparse, itertools, os, subprocess, sys, tempfile
import numpy as np
import onnx
from onnx import TensorProto, helper

HERE = os.path.dirname(os.path.abspath(__file__))


def build(cell, direction, layout, opts, seed):
    rng = np.random.default_rng(seed)
    gates = {"RNN": 1, "GRU": 3, "LSTM": 4}[cell]
    dirs = 2 if direction == "bidirectional" else 1
    seq, batch, inp, hid = 5, 3, 4, 6
    x_shape = [batch, seq, inp] if layout else [seq, batch, inp]
    st_shape = [batch, dirs, hid] if layout else [dirs, batch, hid]
    inits = [helper.make_tensor("W", TensorProto.FLOAT, [dirs, gates * hid, inp],
                                rng.standard_normal((dirs, gates * hid, inp)).astype(np.float32).ravel() * 0.5),
             helper.make_tensor("R", TensorProto.FLOAT, [dirs, gates * hid, hid],
                                rng.standard_normal((dirs, gates * hid, hid)).astype(np.float32).ravel() * 0.5),
             helper.make_tensor("B", TensorProto.FLOAT, [dirs, 2 * gates * hid],
                                rng.standard_normal((dirs, 2 * gates * hid)).astype(np.float32).ravel() * 0.3)]
    node_in = ["X", "W", "R", "B", "lens" if "lens" in opts else "", "h0"]
    graph_in = [helper.make_tensor_value_info("X", TensorProto.FLOAT, x_shape),
                helper.make_tensor_value_info("h0", TensorProto.FLOAT, st_shape)]
    feeds = {"X": rng.standard_normal(x_shape).astype(np.float32),
             "h0": rng.standard_normal(st_shape).astype(np.float32) * 0.5}
    if "lens" in opts:
        graph_in.append(helper.make_tensor_value_info("lens", TensorProto.INT32, [batch]))
        feeds["lens"] = np.array([5, 2, 4], dtype=np.int32)
    outs = ["Y", "Y_h"]
    attrs = {"hidden_size": hid, "direction": direction}
    if layout:
        attrs["layout"] = 1
    if cell == "LSTM":
        node_in += ["c0", "P" if "peep" in opts else ""]
        graph_in.append(helper.make_tensor_value_info("c0", TensorProto.FLOAT, st_shape))
        feeds["c0"] = rng.standard_normal(st_shape).astype(np.float32) * 0.5
        if "peep" in opts:
            inits.append(helper.make_tensor("P", TensorProto.FLOAT, [dirs, 3 * hid],
                                            rng.standard_normal((dirs, 3 * hid)).astype(np.float32).ravel() * 0.3))
        outs.append("Y_c")
    if "clip" in opts:
        attrs["clip"] = 0.8
    if "lbr" in opts:
        attrs["linear_before_reset"] = 1
    if "acts" in opts:
        per = {"RNN": ["LeakyRelu"], "GRU": ["HardSigmoid", "Softsign"],
               "LSTM": ["HardSigmoid", "Tanh", "Softsign"]}[cell]
        attrs["activations"] = per * dirs
        attrs["activation_alpha"] = [0.3] * (len(per) * dirs)
        attrs["activation_beta"] = [0.4] * (len(per) * dirs)
    node = helper.make_node(cell, node_in, outs, **attrs)
    graph = helper.make_graph([node], "rnn", graph_in,
                              [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outs],
                              initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    return model, feeds, outs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--moss", default=os.path.join(HERE, "..", "..", "build", "bin", "moss"))
    ap.add_argument("--keep", default=None)
    args = ap.parse_args()
    work = args.keep or tempfile.mkdtemp(prefix="rnn_ort_")
    cases = []
    for cell, direction, layout in itertools.product(["RNN", "GRU", "LSTM"],
                                                     ["forward", "reverse", "bidirectional"], [0, 1]):
        cases.append((cell, direction, layout, ("lens",)))
    cases += [("LSTM", "bidirectional", 0, ("lens", "peep", "clip")),
              ("GRU", "bidirectional", 1, ("lens", "lbr", "clip")),
              ("LSTM", "forward", 0, ("acts",)), ("GRU", "reverse", 0, ("acts",)),
              ("RNN", "bidirectional", 0, ("acts",))]
    bad = 0
    for cell, direction, layout, opts in cases:
        name = f"{cell}_{direction}_layout{layout}_{'_'.join(opts)}"
        d = os.path.join(work, name)
        os.makedirs(os.path.join(d, "in"), exist_ok=True)
        seed = len(name)
        model, feeds, outs = build(cell, direction, layout, opts, seed)
        onnx.save(model, os.path.join(d, "model.onnx"))
        for k, v in feeds.items():
            np.save(os.path.join(d, "in", k + ".npy"), v)
        ort_model = os.path.join(d, "model.onnx")
        if layout:
            twin, twin_feeds, _ = build(cell, direction, 0, opts, seed)
            ort_model = os.path.join(d, "twin.onnx")
            onnx.save(twin, ort_model)
            os.makedirs(os.path.join(d, "twin_in"), exist_ok=True)
            for k, v in feeds.items():
                v0 = v if v.ndim != 3 else np.ascontiguousarray(v.transpose(1, 0, 2))
                np.save(os.path.join(d, "twin_in", k + ".npy"), v0)
        subprocess.run(["node", os.path.join(HERE, "ort", "run_ort.js"), "--model", ort_model,
                        "--inputs", os.path.join(d, "twin_in" if layout else "in"), "--iters", "1",
                        "--warmup", "0", "--out", os.path.join(d, "ort")], check=True, capture_output=True)
        cmd = [args.moss, "model", "run", "--model", os.path.join(d, "model.onnx"), "--output-dir", os.path.join(d, "moss")]
        for k in feeds:
            cmd += ["--input", f"{k}={os.path.join(d, 'in', k + '.npy')}"]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            print(f"FAIL {name}: moss: {r.stderr.strip()[-300:]}")
            bad += 1
            continue
        worst = 0.0
        ok = True
        for o in outs:
            a = np.load(os.path.join(d, "moss", o + ".npy"))
            b = np.load(os.path.join(d, "ort", o + ".npy"))
            if layout:
                b = b.transpose(2, 0, 1, 3) if o == "Y" else b.transpose(1, 0, 2)
            if a.shape != b.shape or not np.allclose(a, b, rtol=1e-3, atol=1e-4):
                ok = False
            if a.shape == b.shape:
                worst = max(worst, float(np.max(np.abs(a - b))) if a.size else 0.0)
        print(f"{'ok  ' if ok else 'FAIL'} {name}: max abs err {worst:.2e}")
        bad += 0 if ok else 1
    print(f"{len(cases) - bad}/{len(cases)} agree with ONNX Runtime")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
