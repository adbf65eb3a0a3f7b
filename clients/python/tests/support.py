"""Shared test helpers: where the source tree and the C++ binaries are, temp dirs, the local
stack (``moss up``) and free ports."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path
from typing import Any, Dict, List

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "clients" / "python"))
# ctest passes the build tree's bin dir; by hand, build/bin.
BIN = Path(os.environ.get("MOSS_BIN_DIR", ROOT / "build" / "bin"))
ATTESTATION_DATA = Path(os.environ.get("MOSS_ATTESTATION_DATA", ROOT / "tests" / "data" / "attestation"))
DIGITS = ROOT / "examples" / "digits"


def binary(name: str) -> Path:
    return BIN / name


def need_binaries(*names: str) -> None:
    """Skips the test (visibly, in the summary) when a C++ binary is not built."""
    missing = [n for n in names if not os.access(binary(n), os.X_OK)]
    if missing:
        msg = f"not built in {BIN}: {', '.join(missing)}"
        if os.environ.get("MOSS_REQUIRE_BINARIES"):  # set by ctest: a missing binary is a failure
            raise AssertionError(msg)
        raise unittest.SkipTest(msg)


def run(*args: Any, check: bool = True, **kw: Any) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, check=check,
                          timeout=120, **kw)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TempDirCase(unittest.TestCase):
    def setUp(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="moss-py-"))
        self.addCleanup(shutil.rmtree, self.tmp, True)


class LocalStack:
    """``moss up`` on free ports (or the given KeyService port) in a state dir under ``root``
    (an existing one is started again with its state); ``stop()`` runs ``moss down``."""

    def __init__(self, root: Path, port_keyservice: int = 0):
        self.dir = root / "stack"
        run(binary("moss"), "up", "--state-dir", self.dir, "--port-keyservice", port_keyservice,
            "--port-packer", 0)
        self.info: Dict[str, Any] = json.loads((self.dir / "stack.json").read_text())
        self.token = Path(self.info["token_file"]).read_text().strip()
        self.invoke_url: str = self.info["invoke_url"]
        self.worker_measurement: str = self.info["worker_measurement"]
        self.client_config = Path(self.info["client_config"])

    def principal_dir(self, root: Path, name: str) -> Path:
        """A principal's directory with a copy of the stack's client config."""
        d = root / name
        d.mkdir(mode=0o700, exist_ok=True)
        shutil.copy(self.client_config, d / "client.json")
        return d

    def pool_status(self) -> Dict[str, Any]:
        import urllib.request
        url = self.invoke_url.rsplit("/invoke", 1)[0] + "/status"
        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def logs(self) -> str:
        out: List[str] = []
        for f in sorted((self.dir / "logs").glob("*.log")):
            out.append(f"--- {f.name}\n" + "\n".join(f.read_text(errors="replace").splitlines()[-20:]))
        return "\n".join(out)

    def principal(self, root: Path, name: str):
        """A new registered principal (identity in ``root/name``) and its KeyService client."""
        from moss_client import ClientConfig, Identity, KeyServiceClient
        d = self.principal_dir(root, name)
        ks = KeyServiceClient(ClientConfig.load(d / "client.json"), Identity.new(d))
        ks.register()
        return ks, d

    def publish_digits(self, root: Path):
        """An owner encrypts examples/digits into the stack's model store and uploads the key.
        Returns (owner client, model id, model key)."""
        from moss_client import encrypt_model_file
        owner, _ = self.principal(root, "owner")
        model_id = f"{owner.principal_id}/digits"
        store = self.dir / "models" / owner.principal_id
        store.mkdir(parents=True, exist_ok=True)
        key = encrypt_model_file(DIGITS / "digits.onnx", store / "digits.moss", model_id)
        owner.upload_key(model_id, key)
        return owner, model_id, key

    def stop(self) -> None:
        run(binary("moss"), "down", "--state-dir", self.dir, check=False)
