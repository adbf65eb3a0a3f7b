#!/usr/bin/python3
"""Exports the whole-model check models to ONNX with random weights (fixed seed).

Run with Debian's Python (python3-torch, python3-torchvision, python3-onnx):
    /usr/bin/python3 tools/export_models.py [--out models] [--opset 17] [--only resnet50]

Writes, per model, into OUT/<name>/:
    model.onnx                 the exported graph (never commit it; models/ is git-ignored)
    inputs/<input name>.npy    fixed random inputs (same seed every run)
    torch/<output name>.npy    PyTorch's own outputs on those inputs, for a sanity check
    meta.json                  how compare_ort.py compares outputs (elementwise or detection)
Models (batch 1), one per architecture family people deploy:
    mobilenet_v2, resnet50   torchvision classic CNNs, 224x224
    bert4                    BERT-style encoder: 4 layers, hidden 256, 4 heads, FFN 1024, seq 128,
                             Erf GELU, LayerNormalization; input_ids + attention_mask int64
    ssdlite                  torchvision SSDlite320 MobileNetV3 with its post-processing (If,
                             NonMaxSuppression, TopK...); image [3,320,320]; boxes/scores/labels
    gpt4                     GPT-style decoder: 4 pre-norm layers, hidden 256, causal mask from
                             torch.tril (Trilu), tanh GELU, LM head over 8192 tokens; seq 128
    bilstm, gru              taggers: embedding, 2-layer bidirectional LSTM / unidirectional GRU
                             (hidden 256), per-token linear; seq 64
    swin_t                   torchvision Swin-T (shifted windows: Mod, ScatterND, Where), 224x224
    unet                     diffusion-style U-Net: GroupNorm (InstanceNormalization at opset 17),
                             SiLU, ConvTranspose upsampling, sinusoidal timestep; x [1,3,64,64], t [1]
    textcnn                  Kim text CNN: Conv1d widths 3/4/5, max over time (ReduceMax); seq 256
    qresnet18                torchvision quantizable ResNet-18, eager static quantization
                             (QNNPACK), exported as QuantizeLinear/DequantizeLinear around float ops
torch 1.13's exporter stops at opset 17 (opset 18 is refused), so every model is opset 17.
"""
import argparse
import json
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


class DecoderLayer(nn.Module):
    """Pre-norm GPT block: causal self-attention (mask from torch.tril, exported as Trilu) + MLP."""

    def __init__(self, hidden, heads, ffn):
        super().__init__()
        self.heads = heads
        self.head_dim = hidden // heads
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.o = nn.Linear(hidden, hidden)
        self.ln1 = nn.LayerNorm(hidden)
        self.ln2 = nn.LayerNorm(hidden)
        self.ff1 = nn.Linear(hidden, ffn)
        self.ff2 = nn.Linear(ffn, hidden)
        self.act = nn.GELU(approximate="tanh")

    def forward(self, x):
        b, s, h = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(h, dim=-1)
        q, k, v = (t.view(b, s, self.heads, self.head_dim).transpose(1, 2) for t in (q, k, v))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_dim)
        # Built from the scores themselves, so the mask stays a Trilu node instead of a folded
        # constant (what a variable-length export emits).
        causal = torch.ones_like(scores).tril().bool()
        scores = scores.masked_fill(~causal, float("-inf"))
        ctx = torch.matmul(torch.softmax(scores, dim=-1), v).transpose(1, 2).reshape(b, s, h)
        x = x + self.o(ctx)
        return x + self.ff2(self.act(self.ff1(self.ln2(x))))


class Gpt(nn.Module):
    def __init__(self, vocab=8192, hidden=256, heads=4, ffn=1024, layers=4, max_len=512):
        super().__init__()
        self.tok = nn.Embedding(vocab, hidden)
        self.pos = nn.Embedding(max_len, hidden)
        self.layers = nn.ModuleList(DecoderLayer(hidden, heads, ffn) for _ in range(layers))
        self.ln = nn.LayerNorm(hidden)
        self.head = nn.Linear(hidden, vocab, bias=False)

    def forward(self, input_ids):
        pos = torch.arange(input_ids.shape[1], dtype=torch.int64).unsqueeze(0)
        x = self.tok(input_ids) + self.pos(pos)
        for layer in self.layers:
            x = layer(x)
        return self.head(self.ln(x))


class RnnTagger(nn.Module):
    """Embedding, a 2-layer recurrent stack (LSTM bidirectional or GRU), per-token classifier."""

    def __init__(self, cell, vocab=8192, emb=128, hidden=256, tags=32, bidirectional=True):
        super().__init__()
        self.emb = nn.Embedding(vocab, emb)
        rnn = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = rnn(emb, hidden, num_layers=2, batch_first=True, bidirectional=bidirectional)
        self.out = nn.Linear(hidden * (2 if bidirectional else 1), tags)

    def forward(self, input_ids):
        y, _ = self.rnn(self.emb(input_ids))
        return self.out(y)


class TextCnn(nn.Module):
    """Kim-style text CNN: parallel Conv1d widths 3/4/5, max over time (ReduceMax), classifier."""

    def __init__(self, vocab=8192, emb=128, channels=128, classes=8):
        super().__init__()
        self.emb = nn.Embedding(vocab, emb)
        self.convs = nn.ModuleList(nn.Conv1d(emb, channels, k) for k in (3, 4, 5))
        self.fc = nn.Linear(3 * channels, classes)

    def forward(self, input_ids):
        x = self.emb(input_ids).transpose(1, 2)
        pooled = [torch.amax(torch.relu(c(x)), dim=2) for c in self.convs]
        return self.fc(torch.cat(pooled, dim=1))


class ResBlock(nn.Module):
    def __init__(self, cin, cout, tdim, groups=8):
        super().__init__()
        self.n1 = nn.GroupNorm(groups, cin)
        self.c1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.t = nn.Linear(tdim, cout)
        self.n2 = nn.GroupNorm(groups, cout)
        self.c2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, temb):
        h = self.c1(nn.functional.silu(self.n1(x)))
        h = h + self.t(temb)[:, :, None, None]
        h = self.c2(nn.functional.silu(self.n2(h)))
        return h + self.skip(x)


class UNet(nn.Module):
    """Diffusion-style U-Net: GroupNorm + SiLU residual blocks, a sinusoidal timestep embedding,
    strided-conv downsampling and ConvTranspose upsampling with skip concatenation."""

    def __init__(self, ch=(32, 64, 128), tdim=128):
        super().__init__()
        self.tdim = tdim
        self.temb = nn.Sequential(nn.Linear(tdim, tdim), nn.SiLU(), nn.Linear(tdim, tdim))
        self.inc = nn.Conv2d(3, ch[0], 3, padding=1)
        self.down = nn.ModuleList()
        self.pool = nn.ModuleList()
        for i in range(len(ch)):
            self.down.append(ResBlock(ch[max(i - 1, 0)], ch[i], tdim))
            if i + 1 < len(ch):
                self.pool.append(nn.Conv2d(ch[i], ch[i], 3, stride=2, padding=1))
        self.mid = ResBlock(ch[-1], ch[-1], tdim)
        self.upconv = nn.ModuleList()
        self.up = nn.ModuleList()
        for i in reversed(range(len(ch) - 1)):
            self.upconv.append(nn.ConvTranspose2d(ch[i + 1], ch[i], 4, stride=2, padding=1))
            self.up.append(ResBlock(2 * ch[i], ch[i], tdim))
        self.outn = nn.GroupNorm(8, ch[0])
        self.outc = nn.Conv2d(ch[0], 3, 3, padding=1)

    def forward(self, x, t):
        half = self.tdim // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
        args = t[:, None] * freqs[None, :]
        temb = self.temb(torch.cat([torch.sin(args), torch.cos(args)], dim=1))
        h = self.inc(x)
        skips = []
        for i, block in enumerate(self.down):
            h = block(h, temb)
            if i < len(self.pool):
                skips.append(h)
                h = self.pool[i](h)
        h = self.mid(h, temb)
        for upconv, block in zip(self.upconv, self.up):
            h = block(torch.cat([upconv(h), skips.pop()], dim=1), temb)
        return self.outc(nn.functional.silu(self.outn(h)))


def randomize_groupnorm(model, gen):
    for m in model.modules():
        if isinstance(m, nn.GroupNorm):
            m.weight.data.copy_(torch.rand(m.num_channels, generator=gen) * 0.5 + 0.75)
            m.bias.data.copy_(torch.randn(m.num_channels, generator=gen) * 0.1)


def quantized_resnet18(gen):
    """torchvision's quantizable ResNet-18, eager-mode static quantization (qnnpack): BN folded,
    observers calibrated on fixed random images, converted to quantized ops; torch exports those
    as QuantizeLinear/DequantizeLinear around float Conv/Gemm (the QDQ form)."""
    from torchvision.models.quantization import resnet18
    model = resnet18(weights=None, quantize=False).eval()
    randomize_batchnorm(model, gen)
    model.fuse_model()
    # Debian's torch is built without FBGEMM; QNNPACK quantizes the same way for export (per-tensor
    # weights, uint8 activations), which is also what ONNX Runtime's quantizer writes by default.
    torch.backends.quantized.engine = "qnnpack"
    model.qconfig = torch.ao.quantization.get_default_qconfig("qnnpack")
    torch.ao.quantization.prepare(model, inplace=True)
    with torch.no_grad():
        for _ in range(4):
            model(torch.randn(1, 3, 224, 224, generator=gen))
    torch.ao.quantization.convert(model, inplace=True)
    return model


class Detector(nn.Module):
    """One image in, (boxes, scores, labels) out: the list-of-dicts API flattened for export."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, image):
        d = self.model([image])[0]
        return d["boxes"], d["scores"], d["labels"]


# name -> output names (a model with one output writes "output")
MODELS = {
    "mobilenet_v2": ["output"],
    "resnet50": ["output"],
    "bert4": ["output"],
    "ssdlite": ["boxes", "scores", "labels"],
    "gpt4": ["output"],
    "bilstm": ["output"],
    "gru": ["output"],
    "swin_t": ["output"],
    "unet": ["output"],
    "textcnn": ["output"],
    "qresnet18": ["output"],
}


DETECTION = {"ssdlite"}


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
    elif name == "ssdlite":
        from torchvision.models.detection import ssdlite320_mobilenet_v3_large
        det = ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None)
        randomize_batchnorm(det, gen)
        model = Detector(det)
        inputs = {"image": torch.rand(3, 320, 320, generator=gen)}
    elif name == "gpt4":
        model = Gpt()
        inputs = {"input_ids": torch.randint(0, 8192, (1, 128), generator=gen, dtype=torch.int64)}
    elif name in ("bilstm", "gru"):
        model = RnnTagger("lstm" if name == "bilstm" else "gru", bidirectional=name == "bilstm")
        inputs = {"input_ids": torch.randint(0, 8192, (1, 64), generator=gen, dtype=torch.int64)}
    elif name == "swin_t":
        model = torchvision.models.swin_t(weights=None)
        inputs = {"input": torch.randn(1, 3, 224, 224, generator=gen)}
    elif name == "unet":
        model = UNet()
        randomize_groupnorm(model, gen)
        inputs = {"x": torch.randn(1, 3, 64, 64, generator=gen),
                  "t": torch.tensor([417.0], dtype=torch.float32)}
    elif name == "textcnn":
        model = TextCnn()
        inputs = {"input_ids": torch.randint(0, 8192, (1, 256), generator=gen, dtype=torch.int64)}
    elif name == "qresnet18":
        model = quantized_resnet18(gen)
        inputs = {"input": torch.randn(1, 3, 224, 224, generator=gen)}
    else:
        raise ValueError(f"unknown model {name}")
    return model.eval(), inputs


def export(name, out_dir, opset):
    gen = torch.Generator().manual_seed(SEED)
    model, inputs = build(name, gen)
    output_names = MODELS[name]
    d = os.path.join(out_dir, name)
    os.makedirs(os.path.join(d, "inputs"), exist_ok=True)
    os.makedirs(os.path.join(d, "torch"), exist_ok=True)
    path = os.path.join(d, "model.onnx")
    with torch.no_grad():
        torch.onnx.export(model, tuple(inputs.values()), path, opset_version=opset,
                          input_names=list(inputs.keys()), output_names=output_names,
                          do_constant_folding=True)
        out = model(*inputs.values())
    outs = out if isinstance(out, (tuple, list)) else (out,)
    for k, v in inputs.items():
        np.save(os.path.join(d, "inputs", f"{k}.npy"), v.numpy())
    for k, v in zip(output_names, outs):
        np.save(os.path.join(d, "torch", f"{k}.npy"), v.numpy())
    # How bench/engine/compare_ort.py compares outputs: detection outputs are a set of boxes whose
    # order (and, at the score cut-off, membership) may legitimately differ between runtimes.
    # A quantized model's output moves in steps of its output scale; runtimes that round an
    # intermediate value differently (float accumulation order at a .5 tie, fused integer kernels)
    # land one or two steps apart, as ONNX Runtime does against itself across optimization levels.
    if name in DETECTION:
        meta = {"compare": "detection", "boxes": "boxes", "scores": "scores", "labels": "labels"}
    elif name == "qresnet18":
        meta = {"compare": "quantized", "step": float(model.fc.scale), "steps": 2}
    else:
        meta = {"compare": "elementwise"}
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump(meta, f)
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
    ap.add_argument("--only", action="append", choices=list(MODELS) + QUANT_MODELS)
    args = ap.parse_args()
    torch.set_num_threads(1)
    # Default: every family; the int8/fp16 variants (issue 14) only when named with --only.
    for name in args.only or list(MODELS):
        if name in QUANT_MODELS:
            export_quant(name, args.out, args.opset, SEED, randomize_batchnorm,
                         lambda base: export(base, args.out, args.opset))
        else:
            export(name, args.out, args.opset)
    return 0


if __name__ == "__main__":
    sys.exit(main())
