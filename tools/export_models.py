#!/usr/bin/python3
"""Exports the whole-model check models to ONNX with random weights (fixed seed).

Run with Debian's Python (python3-torch, python3-torchvision, python3-onnx):
    /usr/bin/python3 tools/export_models.py [--out models] [--opset 17] [--only resnet50]

Writes, per model, into OUT/<name>/:
    model.onnx                 the exported graph (never commit it; models/ is git-ignored)
    inputs/<input name>.npy    fixed random inputs (same seed every run)
    torch/<output name>.npy    PyTorch's own outputs on those inputs, for a sanity check
Models: mobilenet_v2, resnet50 (torchvision, 224x224, batch 1) and bert4 (a BERT-style encoder:
4 layers, hidden 256, 4 heads, FFN 1024, sequence 128, Erf-based GELU and LayerNormalization as
torch exports them at opset 17; inputs input_ids [1,128] int64 and attention_mask [1,128] int64).
"""
import argparse
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torchvision

from export_quant import QUANT_MODELS, export_quant

SEED = 20261128


def randomize_batchnorm(model, gen):
    """Untrained BN stats are mean 0 / var 1; give them plausible values so the folded convs and
    activations look like a trained network's (and errors are not hidden by trivial statistics)."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(c, generator=gen) * 0.5 + 0.75)
            m.weight.data.copy_(torch.rand(c, generator=gen) * 0.5 + 0.75)
            m.bias.data.copy_(torch.randn(c, generator=gen) * 0.1)


class EncoderLayer(nn.Module):
    """Post-norm BERT layer written out so the export shows the usual MatMul/Softmax pattern."""

    def __init__(self, hidden, heads, ffn):
        super().__init__()
        self.heads = heads
        self.head_dim = hidden // heads
        self.q = nn.Linear(hidden, hidden)
        self.k = nn.Linear(hidden, hidden)
        self.v = nn.Linear(hidden, hidden)
        self.o = nn.Linear(hidden, hidden)
        self.ln1 = nn.LayerNorm(hidden, eps=1e-12)
        self.ff1 = nn.Linear(hidden, ffn)
        self.ff2 = nn.Linear(ffn, hidden)
        self.ln2 = nn.LayerNorm(hidden, eps=1e-12)
        self.act = nn.GELU()

    def split(self, x):
        b, s, _ = x.shape
        return x.view(b, s, self.heads, self.head_dim).transpose(1, 2)

    def forward(self, x, mask_bias):
        q, k, v = self.split(self.q(x)), self.split(self.k(x)), self.split(self.v(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_dim) + mask_bias
        ctx = torch.matmul(torch.softmax(scores, dim=-1), v)
        b, h, s, d = ctx.shape
        ctx = ctx.transpose(1, 2).reshape(b, s, h * d)
        x = self.ln1(x + self.o(ctx))
        return self.ln2(x + self.ff2(self.act(self.ff1(x))))


class Bert(nn.Module):
    def __init__(self, vocab=8192, hidden=256, heads=4, ffn=1024, layers=4, max_len=512):
        super().__init__()
        self.tok = nn.Embedding(vocab, hidden)
        self.pos = nn.Embedding(max_len, hidden)
        self.ln = nn.LayerNorm(hidden, eps=1e-12)
        self.layers = nn.ModuleList(EncoderLayer(hidden, heads, ffn) for _ in range(layers))

    def forward(self, input_ids, attention_mask):
        seq = input_ids.shape[1]
        pos = torch.arange(seq, dtype=torch.int64).unsqueeze(0)
        x = self.ln(self.tok(input_ids) + self.pos(pos))
        mask_bias = (1.0 - attention_mask[:, None, None, :].to(torch.float32)) * -10000.0
        for layer in self.layers:
            x = layer(x, mask_bias)
        return x


def build(name, gen):
    torch.manual_seed(SEED)
    if name == "mobilenet_v2":
        model = torchvision.models.mobilenet_v2(weights=None)
        randomize_batchnorm(model, gen)
        inputs = {"input": torch.randn(1, 3, 224, 224, generator=gen)}
    elif name == "resnet50":
        model = torchvision.models.resnet50(weights=None)
        randomize_batchnorm(model, gen)
        inputs = {"input": torch.randn(1, 3, 224, 224, generator=gen)}
    elif name == "bert4":
        model = Bert()
        ids = torch.randint(0, 8192, (1, 128), generator=gen, dtype=torch.int64)
        mask = torch.ones(1, 128, dtype=torch.int64)
        mask[:, 120:] = 0  # padded tail, so the mask path is exercised
        inputs = {"input_ids": ids, "attention_mask": mask}
    else:
        raise ValueError(f"unknown model {name}")
    return model.eval(), inputs


def export(name, out_dir, opset):
    gen = torch.Generator().manual_seed(SEED)
    model, inputs = build(name, gen)
    d = os.path.join(out_dir, name)
    os.makedirs(os.path.join(d, "inputs"), exist_ok=True)
    os.makedirs(os.path.join(d, "torch"), exist_ok=True)
    path = os.path.join(d, "model.onnx")
    with torch.no_grad():
        torch.onnx.export(model, tuple(inputs.values()), path, opset_version=opset,
                          input_names=list(inputs.keys()), output_names=["output"],
                          do_constant_folding=True)
        out = model(*inputs.values())
    for k, v in inputs.items():
        np.save(os.path.join(d, "inputs", f"{k}.npy"), v.numpy())
    np.save(os.path.join(d, "torch", "output.npy"), out.numpy())
    import onnx
    m = onnx.load(path)
    onnx.checker.check_model(m)
    ops = sorted({n.op_type for n in m.graph.node})
    print(f"{name}: {path} ({os.path.getsize(path) / 1e6:.1f} MB, opset {opset}, "
          f"{len(m.graph.node)} nodes) ops: {' '.join(ops)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="models")
    ap.add_argument("--opset", type=int, default=17)
    ap.add_argument("--only", action="append",
                    choices=["mobilenet_v2", "resnet50", "bert4"] + QUANT_MODELS)
    args = ap.parse_args()
    torch.set_num_threads(1)
    for name in args.only or ["mobilenet_v2", "resnet50", "bert4"]:
        if name in QUANT_MODELS:
            export_quant(name, args.out, args.opset, SEED, randomize_batchnorm,
                         lambda base: export(base, args.out, args.opset))
        else:
            export(name, args.out, args.opset)
    return 0


if __name__ == "__main__":
    sys.exit(main())
