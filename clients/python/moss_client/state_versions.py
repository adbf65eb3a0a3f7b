"""The highest KeyService state version this client has seen, per KeyService URL, so that a
KeyService whose host put back an older copy of its state is refused instead of trusted (its
grants and revocations would silently go back in time; docs/keyservice.md, "Rollback").

Kept in ``<state_dir>/keyservice-versions.json`` as ``{"https://host:port": 1234, ...}``: the same
file, format and keys (the config's ``keyservice_url`` as written) as the C++ client
(src/client/seen_state_versions.*), so a ``moss`` CLI and a Python program configured with the
same state dir share it and each refuses what the other has seen superseded. A KeyService that is
really reset to a new state has to be forgotten by hand (delete its line); the error says so.
Thread-safe within a process; concurrent processes can at worst lose an update, which only makes
the check weaker, never wrong.
"""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

from .errors import DataLoss, FailedPrecondition

SEEN_VERSIONS_FILE = "keyservice-versions.json"
HEADER = "X-Moss-State-Version"
_MAX_FILE_BYTES = 1 << 20
_lock = threading.Lock()

PathLike = Union[str, "os.PathLike[str]", None]


class KeyServiceRollback(FailedPrecondition):
    """The KeyService answered with a state version older than one this client saw before: its
    state was rolled back. ``url``, ``seen`` and ``answered`` say which and by how much."""

    def __init__(self, url: str, seen: int, answered: int, file: Optional[Path]):
        where = f"remove its entry from {file}" if file else "forget it"
        super().__init__(
            f"keyservice-rollback: the KeyService at {url} answered with state version {answered}, "
            f"older than version {seen} seen before: its state was rolled back (an older copy put "
            f"back). Refusing it. If it was deliberately reset, {where}",
            reason="keyservice-rollback")
        self.url, self.seen, self.answered = url, seen, answered


def parse_state_version(value: Optional[str]) -> int:
    """The header's version, or -1 when absent or not a non-negative decimal integer that fits in
    int64 (as crypto::parse_state_version)."""
    if not value or len(value) > 19 or not value.isascii() or not value.isdigit():
        return -1
    v = int(value)
    return v if v < 1 << 63 else -1


def _no_duplicates(pairs: List[Tuple[str, Any]]) -> Dict[str, Any]:
    d: Dict[str, Any] = {}
    for k, v in pairs:
        if k in d:
            raise ValueError(f"duplicate key {k!r}")
        d[k] = v
    return d


def _load(file: Path) -> Dict[str, Any]:
    if not file.exists():
        return {}
    with open(file, "rb") as f:
        data = f.read(_MAX_FILE_BYTES + 1)
    if len(data) > _MAX_FILE_BYTES:
        raise DataLoss(f"{file}: larger than 1 MiB")
    try:
        j = json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError) as e:
        raise DataLoss(f"{file}: not valid JSON ({e})") from None
    if not isinstance(j, dict):
        raise DataLoss(f"{file}: not a JSON object")
    return j


def _version_in(j: Dict[str, Any], url: str) -> int:
    v = j.get(url)
    return v if isinstance(v, int) and not isinstance(v, bool) else 0


def highest_seen(state_dir: PathLike, url: str) -> int:
    """The highest version recorded for ``url`` (0 when none, or when ``state_dir`` is unset)."""
    if not state_dir:
        return 0
    with _lock:
        return _version_in(_load(Path(state_dir) / SEEN_VERSIONS_FILE), url)


def check_and_record(state_dir: PathLike, url: str, floor: int, answered: int) -> None:
    """Checks an answer's version against ``floor`` (the highest seen before the request was
    sent: any answer to a later request reflects at least that state) and records it when higher.
    Raises :class:`KeyServiceRollback` when the answer is older."""
    file = Path(state_dir) / SEEN_VERSIONS_FILE if state_dir else None
    if answered < floor:
        raise KeyServiceRollback(url, floor, answered, file)
    if file is None:
        return
    with _lock:
        j = _load(file)
        if _version_in(j, url) >= answered:
            return
        j[url] = answered
        file.parent.mkdir(parents=True, exist_ok=True)
        # Same text as the C++ writer (nlohmann dump(1)); written whole, then renamed over.
        text = json.dumps(j, indent=1, ensure_ascii=False) + "\n"
        tmp = file.with_name(f".{file.name}.tmp{os.getpid()}-{threading.get_ident()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, file)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
