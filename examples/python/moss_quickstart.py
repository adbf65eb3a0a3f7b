#!/usr/bin/python3
"""MOSS from Python, end to end: a model owner encrypts and publishes a model and grants a user;
the user classifies inputs with encrypted inference. Walk-through: examples/python/README.md.

    build/bin/moss up --state-dir /tmp/moss-stack --port-keyservice 0 --port-packer 0
    /usr/bin/python3 examples/python/moss_quickstart.py --stack-dir /tmp/moss-stack
    build/bin/moss down --state-dir /tmp/moss-stack

--torchvision NAME exports a torchvision model (random weights: nothing is downloaded) to ONNX
first (Debian's python3-torch, python3-torchvision, python3-onnx), sends it one random image and
checks MOSS's answer against the same torch model run in this process; without it the example
digit classifier (examples/digits) is used and its eight test digits are checked against their
labels. Exit 1 when an answer is wrong."""
import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "clients" / "python"))  # not needed once `pip install`ed
from moss_client import (ClientConfig, Identity, KeyServiceClient, encrypt_model_file,  # noqa: E402
                         infer, save_key)


def export_torchvision(name: str, out: Path):
    """Exports torchvision's ``name`` (random weights: no download) to ONNX, input ``image``.
    Returns the ONNX path and the torch model (the reference for MOSS's answer)."""
    import torch
    import torchvision
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None).eval()
    torch.onnx.export(model, torch.zeros(1, 3, 224, 224), str(out), input_names=["image"],
                      output_names=["logits"], opset_version=13)
    return out, model


def torch_reference(model, x: np.ndarray) -> np.ndarray:
    import torch
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


def principal(stack: dict, work: Path, name: str) -> KeyServiceClient:
    """A new identity in ``work/name`` with a copy of the stack's client config, registered
    after the client checked the KeyService's attestation."""
    d = work / name
    d.mkdir(mode=0o700)
    shutil.copy(stack["client_config"], d / "client.json")
    ks = KeyServiceClient(ClientConfig.load(d / "client.json"), Identity.new(d))
    ks.register()
    print(f"{name}: {ks.principal_id} registered; KeyService attested as "
          f"{ks.claims.tee} measurement {ks.claims.measurement[:16]}...")
    return ks


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stack-dir", required=True, type=Path, help="state dir of `moss up`")
    ap.add_argument("--torchvision", metavar="NAME", help="e.g. mobilenet_v3_small")
    a = ap.parse_args()
    stack = json.loads((a.stack_dir / "stack.json").read_text())
    token = Path(stack["token_file"]).read_text().strip()
    work = Path(tempfile.mkdtemp(prefix="moss-quickstart-"))

    # 1. The owner: identity, model encryption, publication, key upload.
    owner = principal(stack, work, "owner")
    if a.torchvision:
        onnx, torch_model = export_torchvision(a.torchvision, work / f"{a.torchvision}.onnx")
    else:
        onnx = ROOT / "examples" / "digits" / "digits.onnx"
    model_id = f"{owner.principal_id}/{onnx.stem}"
    store = a.stack_dir / "models" / owner.principal_id  # the local stack's model store
    store.mkdir(parents=True, exist_ok=True)
    key = encrypt_model_file(onnx, store / f"{onnx.stem}.moss", model_id)
    save_key(key, work / "owner" / "model.key", model_id)  # the same file `moss model encrypt` writes
    owner.upload_key(model_id, key)
    print(f"owner: published {model_id} ({onnx.stat().st_size} bytes of ONNX, encrypted)")

    # 2. The user registers; the owner grants it the model on workers with this measurement.
    user = principal(stack, work, "user")
    owner.grant(model_id, user.principal_id, stack["worker_measurement"])
    user.add_request_key(model_id, stack["worker_measurement"])
    print(f"owner: granted {user.principal_id} on worker {stack['worker_measurement'][:16]}...")

    # 3. Encrypted inference through FnPacker.
    cfg = str(work / "user" / "client.json")
    if a.torchvision:
        x = np.random.default_rng(0).random((1, 3, 224, 224), dtype=np.float32)
        r = infer(model_id, {"image": x}, stack["invoke_url"], config=cfg, token=token)
        got, want = r.outputs["logits"], torch_reference(torch_model, x)
        print(f"user: {a.torchvision} top class {int(np.argmax(got))} "
              f"({r.run}, {r.round_trip_ms:.1f} ms)")
        # Same model, same input: MOSS's engine and torch agree to float rounding. Tolerances are
        # relative to the output's scale (some random-weight models answer ~1e-10 everywhere).
        scale = float(np.max(np.abs(want)))
        ok = got.shape == want.shape and bool(np.allclose(got, want, rtol=1e-3, atol=1e-4 * scale))
        diff = float(np.max(np.abs(got - want))) if got.shape == want.shape else float("inf")
        print(f"quickstart: MOSS vs torch in this process: max abs difference {diff:.2e} (largest "
              f"output {scale:.2e}), top class {int(np.argmax(got))} vs {int(np.argmax(want))}: "
              f"{'match' if ok else 'MISMATCH'}")
        return 0 if ok else 1
    labels = json.loads((ROOT / "examples" / "digits" / "labels.json").read_text())["inputs"]
    correct = 0
    for item in labels:
        x = np.load(ROOT / "examples" / "digits" / item["file"])
        r = infer(model_id, {"image": x}, stack["invoke_url"], config=cfg, token=token)
        pred = int(np.argmax(r.outputs["logits"]))
        correct += pred == item["label"]
        print(f"user: {item['file']:<20} label {item['label']} predicted {pred}  "
              f"{r.run:<6} {r.round_trip_ms:7.1f} ms")
    print(f"quickstart: {correct} of {len(labels)} digits classified correctly")
    return 0 if correct == len(labels) else 1


if __name__ == "__main__":
    sys.exit(main())
