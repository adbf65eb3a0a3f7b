"""Quantized and half-precision variants of the whole-model check models (issue 14), imported by
tools/export_models.py (`--only mobilenet_v2_int8` ...). Same seed and inputs as the float models.

- mobilenet_v2_int8, resnet50_int8: torchvision's quantizable models, eager-mode static
  quantization (fuse_model, fbgemm qconfig: uint8 activations per tensor, int8 weights per output
  channel), calibrated on 8 random inputs, exported by torch.onnx in QDQ form
  (QuantizeLinear/DequantizeLinear around float Conv/Gemm/Add, int32 bias through DequantizeLinear).
- bert4_int8: the BERT-style encoder with its Linear layers dynamically quantized the way torch's
  quantize_dynamic does (int8 weights, per-tensor symmetric scale max|W|/127.5; activations
  quantized per request). torch 1.13 cannot export dynamically quantized Linear to ONNX, so the
  graph is built with onnx.helper from the float export: every MatMul with a constant 2-D weight
  becomes DynamicQuantizeLinear(A) -> MatMulInteger(A_q, W_q, A_zp) -> Cast(float) ->
  Mul(A_scale * W_scale), ONNX Runtime's quantize_dynamic form.
- mobilenet_v2_fp16, resnet50_fp16: the float models with float16 weights and computation, inputs
  and outputs kept float32 (a Cast after the input and before the output, like keep_io_types).
"""
import os

import numpy as np
import torch

QUANT_MODELS = ["mobilenet_v2_int8", "resnet50_int8", "bert4_int8", "mobilenet_v2_fp16",
                "resnet50_fp16"]


def _save(d, inputs, out):
    os.makedirs(os.path.join(d, "inputs"), exist_ok=True)
    os.makedirs(os.path.join(d, "torch"), exist_ok=True)
    for k, v in inputs.items():
        np.save(os.path.join(d, "inputs", f"{k}.npy"), v.numpy() if hasattr(v, "numpy") else v)
    if out is not None:
        np.save(os.path.join(d, "torch", "output.npy"), out)


def _report(name, path):
    import onnx
    m = onnx.load(path)
    onnx.checker.check_model(m)
    ops = sorted({n.op_type for n in m.graph.node})
    print(f"{name}: {path} ({os.path.getsize(path) / 1e6:.1f} MB, {len(m.graph.node)} nodes) "
          f"ops: {' '.join(ops)}")


def _save_rewritten(m, name, float_dir, out_dir):
    """Writes a model rewritten from the float export, with the float model's inputs."""
    import onnx
    d = os.path.join(out_dir, name)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "model.onnx")
    onnx.save(m, path)
    inputs = {os.path.splitext(f)[0]: np.load(os.path.join(float_dir, "inputs", f))
              for f in os.listdir(os.path.join(float_dir, "inputs"))}
    _save(d, inputs, None)
    _report(name, path)


def export_static_int8(base, out_dir, opset, seed, randomize_batchnorm):
    """Eager-mode static quantization of a torchvision quantizable model, QDQ export."""
    from torchvision.models import quantization as tq
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = getattr(tq, base)(weights=None, quantize=False)
    randomize_batchnorm(model, gen)
    model.eval()
    x = torch.randn(1, 3, 224, 224, generator=gen)  # the float model's input (same seed)
    model.fuse_model()
    model.qconfig = torch.ao.quantization.get_default_qconfig("fbgemm")
    torch.ao.quantization.prepare(model, inplace=True)
    calib = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        model(x)
        for _ in range(8):
            model(torch.randn(1, 3, 224, 224, generator=calib))
    torch.ao.quantization.convert(model, inplace=True)
    name = f"{base}_int8"
    d = os.path.join(out_dir, name)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "model.onnx")
    with torch.no_grad():
        torch.onnx.export(model, (x,), path, opset_version=max(opset, 13), input_names=["input"],
                          output_names=["output"], do_constant_folding=True)
        out = model(x).numpy()
    _save(d, {"input": x}, out)
    _write_quantized_meta(d, path)
    _report(name, path)


def _write_quantized_meta(d, path):
    """meta.json for bench/engine/compare_ort.py: outputs compared within one step of the output
    quantization (the scale of the DequantizeLinear that writes the graph output), the issue's
    agreement criterion; `top1` asks for the same arg-max class as well."""
    import json
    import onnx
    from onnx import numpy_helper
    m = onnx.load(path)
    consts = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    for n in m.graph.node:
        if n.op_type == "Constant":
            consts[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
    out = m.graph.output[0].name
    dq = next(n for n in m.graph.node if out in n.output and n.op_type == "DequantizeLinear")
    step = float(consts[dq.input[1]].reshape(-1)[0])
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump({"compare": "quantized", "step": step, "steps": 1, "top1": True}, f)


def export_dynamic_bert(float_dir, out_dir):
    """Rewrites the float encoder's constant-weight MatMuls into ORT's dynamic int8 form."""
    import onnx
    from onnx import helper, numpy_helper, TensorProto
    m = onnx.load(os.path.join(float_dir, "model.onnx"))
    g = m.graph
    inits = {t.name: t for t in g.initializer}
    nodes = []
    count = 0
    for n in g.node:
        w = inits.get(n.input[1]) if n.op_type == "MatMul" else None
        if w is None or len(w.dims) != 2 or w.data_type != TensorProto.FLOAT:
            nodes.append(n)
            continue
        count += 1
        wf = numpy_helper.to_array(w)
        scale = np.float32(max(np.abs(wf).max(), 1e-8) / 127.5)
        wq = np.clip(np.round(wf / scale), -128, 127).astype(np.int8)
        p = f"{n.name or n.output[0]}_dq"
        g.initializer.extend([numpy_helper.from_array(wq, p + "_W"),
                              numpy_helper.from_array(np.array(scale, np.float32), p + "_Ws"),
                              numpy_helper.from_array(np.array(0, np.int8), p + "_Wzp")])
        nodes += [
            helper.make_node("DynamicQuantizeLinear", [n.input[0]], [p + "_A", p + "_As", p + "_Azp"]),
            helper.make_node("MatMulInteger", [p + "_A", p + "_W", p + "_Azp", p + "_Wzp"], [p + "_Y32"]),
            helper.make_node("Cast", [p + "_Y32"], [p + "_Yf"], to=TensorProto.FLOAT),
            helper.make_node("Mul", [p + "_As", p + "_Ws"], [p + "_S"]),
            helper.make_node("Mul", [p + "_Yf", p + "_S"], [n.output[0]]),
        ]
    del g.node[:]
    g.node.extend(nodes)
    used = {i for n in g.node for i in n.input}
    keep = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(keep)
    del g.value_info[:]
    if not any(o.domain in ("", "ai.onnx") and o.version >= 11 for o in m.opset_import):
        raise RuntimeError("bert4 export: opset below 11")
    print(f"bert4_int8: {count} MatMuls quantized dynamically")
    _save_rewritten(m, "bert4_int8", float_dir, out_dir)
    # Float outputs: compared within one step of their own dynamic quantization (compare_ort.py).
    import json
    with open(os.path.join(out_dir, "bert4_int8", "meta.json"), "w") as f:
        json.dump({"compare": "quantized", "step": "dynamic", "steps": 1}, f)


def export_fp16(base, float_dir, out_dir):
    """Float16 weights and computation, float32 inputs and outputs (Casts at the edges)."""
    import onnx
    from onnx import helper, numpy_helper, TensorProto
    m = onnx.load(os.path.join(float_dir, "model.onnx"))
    g = m.graph
    for t in g.initializer:
        if t.data_type == TensorProto.FLOAT:
            t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float16), t.name))
    for n in g.node:
        for a in n.attribute:
            if a.name == "value" and a.t.data_type == TensorProto.FLOAT:
                a.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(a.t).astype(np.float16)))
        if n.op_type == "Cast":
            for a in n.attribute:
                if a.name == "to" and a.i == TensorProto.FLOAT:
                    a.i = TensorProto.FLOAT16
    def rename(values, field):
        """Float32 graph inputs/outputs get a float16 twin that the nodes use instead."""
        renamed = []
        for v in values:
            if v.type.tensor_type.elem_type != TensorProto.FLOAT:
                continue
            for n in g.node:
                names = getattr(n, field)
                for k, x in enumerate(names):
                    if x == v.name:
                        names[k] = v.name + "_fp16"
            renamed.append(v.name)
        return renamed
    edge = [helper.make_node("Cast", [v], [v + "_fp16"], to=TensorProto.FLOAT16)
            for v in rename(g.input, "input")]
    tail = [helper.make_node("Cast", [v + "_fp16"], [v], to=TensorProto.FLOAT)
            for v in rename(g.output, "output")]
    nodes = edge + list(g.node) + tail
    del g.node[:]
    g.node.extend(nodes)
    del g.value_info[:]
    _save_rewritten(m, f"{base}_fp16", float_dir, out_dir)


def export_quant(name, out_dir, opset, seed, randomize_batchnorm, export_float):
    """export_float(base): writes OUT/<base>/ (the float model the rewrites start from)."""
    if name.endswith("_int8") and name != "bert4_int8":
        export_static_int8(name[: -len("_int8")], out_dir, opset, seed, randomize_batchnorm)
        return
    base = name.rsplit("_", 1)[0]
    float_dir = os.path.join(out_dir, base)
    if not os.path.exists(os.path.join(float_dir, "model.onnx")):
        export_float(base)
    if name == "bert4_int8":
        export_dynamic_bert(float_dir, out_dir)
    else:
        export_fp16(base, float_dir, out_dir)
