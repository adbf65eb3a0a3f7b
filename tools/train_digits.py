#!/usr/bin/python3
"""Trains the demo's example model: a tiny CNN on scikit-learn's bundled 8x8 digits.

Run with Debian's Python (python3-sklearn, python3-torch, python3-onnx, python3-numpy):
    /usr/bin/python3 tools/train_digits.py [--out examples/digits] [--epochs 40] [--tests 8]

Deterministic (fixed seed, single thread): the same files every run on the same library versions.
Writes into OUT/:
    digits.onnx           input "image" float32 [N,1,8,8] (pixels 0..16 scaled to 0..1),
                          output "logits" float32 [N,10]; opset 13, well under 1 MB
    inputs/digit_K.npy    K = 0..tests-1: held-out test images, float32 [1,1,8,8]
    labels.json           {"input":"image","output":"logits","accuracy":A,"test_size":N,
                           "inputs":[{"file":"inputs/digit_0.npy","label":L,"torch_logits":[..]},..]}
and prints the held-out accuracy (the README states it).
"""
import argparse
import json
import os
import sys

import numpy as np
import onnx
import torch
import torch.nn as nn
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

SEED = 20261129
OPSET = 13


class DigitsCnn(nn.Module):
    """Two 3x3 convolutions, one max-pool and two fully connected layers: ~38k parameters."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2))
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(32 * 4 * 4, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, image):
        return self.classifier(self.features(image))


def load_split():
    digits = load_digits()
    x = (digits.images.astype(np.float32) / 16.0)[:, None, :, :]
    y = digits.target.astype(np.int64)
    return train_test_split(x, y, test_size=0.25, random_state=SEED, stratify=y)


def train(model, x, y, epochs):
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(SEED)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(xt), 64):
            idx = order[i:i + 64]
            opt.zero_grad()
            loss = loss_fn(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
    model.eval()


def accuracy(model, x, y):
    with torch.no_grad():
        pred = model(torch.from_numpy(x)).argmax(dim=1).numpy()
    return float((pred == y).mean())


def export(model, path):
    dummy = torch.zeros(1, 1, 8, 8)
    torch.onnx.export(model, dummy, path, input_names=["image"], output_names=["logits"],
                      dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
                      opset_version=OPSET, do_constant_folding=True)
    onnx.checker.check_model(onnx.load(path))


def pick_tests(x, y, count):
    """One held-out image per digit class 0..count-1 (so the demo shows different digits)."""
    chosen = []
    for label in range(count):
        chosen.append(int(np.flatnonzero(y == label % 10)[label // 10]))
    return chosen


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="examples/digits")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--tests", type=int, default=8)
    args = ap.parse_args()

    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    x_train, x_test, y_train, y_test = load_split()
    model = DigitsCnn()
    train(model, x_train, y_train, args.epochs)
    acc = accuracy(model, x_test, y_test)

    os.makedirs(os.path.join(args.out, "inputs"), exist_ok=True)
    onnx_path = os.path.join(args.out, "digits.onnx")
    export(model, onnx_path)
    size = os.path.getsize(onnx_path)
    if size >= 1 << 20:
        sys.exit(f"train_digits: {onnx_path} is {size} bytes, over 1 MB")

    entries = []
    for k, idx in enumerate(pick_tests(x_test, y_test, args.tests)):
        image = x_test[idx:idx + 1]
        rel = f"inputs/digit_{k}.npy"
        np.save(os.path.join(args.out, rel), image)
        with torch.no_grad():
            logits = model(torch.from_numpy(image))[0].numpy()
        entries.append({"file": rel, "label": int(y_test[idx]),
                        "torch_logits": [round(float(v), 6) for v in logits]})
    meta = {"input": "image", "output": "logits", "accuracy": round(acc, 4),
            "test_size": int(len(y_test)), "train_size": int(len(y_train)),
            "seed": SEED, "opset": OPSET, "inputs": entries}
    with open(os.path.join(args.out, "labels.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    print(f"held-out accuracy: {acc:.4f} on {len(y_test)} digits "
          f"(trained on {len(y_train)}); {onnx_path}: {size} bytes")


if __name__ == "__main__":
    main()
