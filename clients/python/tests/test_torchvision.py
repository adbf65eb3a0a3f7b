"""examples/python/moss_quickstart.py's torchvision path for real: a torchvision model (random
weights) exported to ONNX, encrypted, published, granted and run through the local stack; the
script checks MOSS's answer against the torch model in its own process. Skipped, saying why,
when Debian's python3-torch, python3-torchvision or python3-onnx is not installed."""
import shutil
import tempfile
import unittest
from pathlib import Path

from support import ROOT, LocalStack, need_binaries, run

# Small (5 MB: export, encryption, compile and inference take seconds) and, without batch norm,
# its random-weight logits are of order 0.1 (mobilenet_v3_small's are ~1e-10: a weak comparison).
MODEL = "squeezenet1_1"


def torch_missing() -> str:
    try:
        import onnx  # noqa: F401 -- torch.onnx.export needs it
        import torch  # noqa: F401
        import torchvision  # noqa: F401
    except ImportError as e:
        return f"torchvision example skipped: {e.name} is not importable (Debian's python3-torch, " \
               f"python3-torchvision, python3-onnx; tools/install-deps.sh --models)"
    return ""


@unittest.skipIf(torch_missing(), torch_missing())
class TorchvisionExample(unittest.TestCase):
    def test_example_matches_torch(self):
        need_binaries("moss", "moss-keyservice", "moss-worker", "moss-packer")
        root = Path(tempfile.mkdtemp(prefix="moss-py-torchvision-"))
        self.addCleanup(shutil.rmtree, root, True)
        stack = LocalStack(root)
        self.addCleanup(stack.stop)
        r = run("/usr/bin/python3", ROOT / "examples" / "python" / "moss_quickstart.py",
                "--stack-dir", stack.dir, "--torchvision", MODEL, check=False)
        print(r.stdout)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr + stack.logs())
        self.assertIn(f"user: {MODEL} top class", r.stdout)
        self.assertIn(": match", r.stdout)


if __name__ == "__main__":
    unittest.main()
