"""The client config (``client.json``, contract C2) shared with the ``moss`` CLI, and the local
request-key files ``moss request-key add`` writes and ``moss infer`` reads."""
from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple, Union

from .errors import InvalidArgument, NotFound
from .formats import KEY_BYTES, strict_b64decode, validate_model_id

CONFIG_ENV = "MOSS_CLIENT_CONFIG"
_KEYS = {"keyservice_url", "keyservice_policy", "identity", "state_dir", "allow_simulated",
         "sim_key_file"}


@dataclass(frozen=True)
class ClientConfig:
    """Where the KeyService is, what it must attest to, and the principal's files. Relative paths
    in the file resolve against the file's directory; unknown keys are errors (as in C++)."""
    keyservice_url: str
    keyservice_policy: Path
    identity: Path
    state_dir: Path
    allow_simulated: bool = False
    sim_key_file: Optional[Path] = None

    @classmethod
    def load(cls, path: Union[str, os.PathLike, None] = None) -> "ClientConfig":
        """Loads ``path``, else ``$MOSS_CLIENT_CONFIG``, else ``~/.config/moss/client.json``."""
        if path is None:
            path = os.environ.get(CONFIG_ENV) or Path.home() / ".config" / "moss" / "client.json"
        p = Path(path).absolute()
        if not p.exists():
            raise NotFound(f"client config {p} does not exist")
        try:
            j = json.loads(p.read_bytes()[:64 * 1024])
        except ValueError:
            raise InvalidArgument(f"client config {p}: not JSON") from None
        if not isinstance(j, dict):
            raise InvalidArgument(f"client config {p}: not an object")
        unknown = set(j) - _KEYS
        if unknown:
            raise InvalidArgument(f"client config {p}: unknown key(s) {sorted(unknown)}")
        for k in ("keyservice_url", "keyservice_policy", "identity", "state_dir"):
            if not isinstance(j.get(k), str) or not j[k]:
                raise InvalidArgument(f"client config {p}: '{k}' is required")
        base = p.parent
        sim = j.get("sim_key_file")
        return cls(keyservice_url=j["keyservice_url"],
                   keyservice_policy=base / j["keyservice_policy"],
                   identity=base / j["identity"], state_dir=base / j["state_dir"],
                   allow_simulated=bool(j.get("allow_simulated", False)),
                   sim_key_file=base / sim if sim else None)

    def effective_sim_key_file(self) -> Path:
        """``sim_key_file``, else ``$MOSS_SIM_KEY``, else ``~/.moss/sim-platform.key``."""
        if self.sim_key_file:
            return self.sim_key_file
        env = os.environ.get("MOSS_SIM_KEY")
        return Path(env) if env else Path.home() / ".moss" / "sim-platform.key"

    def request_key_path(self, model_id: str) -> Path:
        validate_model_id(model_id)
        return self.state_dir / "request-keys" / (model_id.replace("/", "__") + ".json")

    def save_request_key(self, model_id: str, measurement: str, key: bytes, version: int) -> Path:
        """Writes the request-key file (0600, directory 0700) ``moss infer`` also reads."""
        path = self.request_key_path(model_id)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        text = json.dumps({"kind": "moss-request-key", "version": 1, "model_id": model_id,
                           "measurement": measurement, "key_version": version,
                           "key": base64.b64encode(key).decode()}, separators=(",", ":")) + "\n"
        tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
        return path

    def load_request_key(self, model_id: str) -> Tuple[bytes, str, int]:
        """``(key, measurement, key_version)`` of the request key for ``model_id``."""
        path = self.request_key_path(model_id)
        if not path.exists():
            raise NotFound(f"no request key for model {model_id} ({path}); add one first")
        try:
            j = json.loads(path.read_bytes()[:4096])
        except ValueError:
            raise InvalidArgument(f"request key file {path}: not JSON") from None
        if (not isinstance(j, dict) or j.get("kind") != "moss-request-key"
                or j.get("model_id") != model_id):
            raise InvalidArgument(f"request key file {path}: malformed or for another model")
        return (strict_b64decode(j.get("key"), KEY_BYTES, f"{path}: key"),
                str(j.get("measurement", "")), int(j.get("key_version", 0)))
