"""What this client remembers of each KeyService's state, per KeyService URL, so that a
KeyService whose host put back an older copy of its state is refused instead of trusted (its
grants and revocations would silently go back in time; docs/keyservice.md, "Rollback and forks").

For each URL it keeps the highest state version seen and the audit head that went with it, in
``<state_dir>/keyservice-versions.json``: the same file, format and keys (the config's
``keyservice_url`` as written) as the C++ client (src/client/seen_state_versions.*), so a ``moss``
CLI and a Python program configured with the same state dir share it and each refuses what the
other has seen superseded::

    {"https://host:port": {"state_version": 1234, "audit_seq": 42, "audit_hash": "<hex>",
                           "keyservice_key": "<base64, once a fork proof named it>"}}

An entry that is a bare integer (the version-only format before fork checks) still reads, as a
version with no audit head yet. Answers are judged by the rules of src/crypto/keyservice_state.h:
a lower version is a rollback (:class:`KeyServiceRollback`); an audit head other than the
remembered one at or before its sequence, or a log that grew but cannot prove the remembered chain
value (``GET /v1/audit/head?at=<seq>``, signed by the state identity), is a fork
(:class:`KeyServiceForked`). A KeyService that is really reset to a new state has to be forgotten
by hand (delete its entry); the errors say so. Thread-safe within a process; concurrent processes
can at worst lose an update, which only makes the check weaker, never wrong.
"""
from __future__ import annotations

import base64
import binascii
import json
import os
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

from .errors import DataLoss, FailedPrecondition

SEEN_VERSIONS_FILE = "keyservice-versions.json"
HEADER = "X-Moss-State-Version"
AUDIT_HEAD_HEADER = "X-Moss-Audit-Head"
AUDIT_HEAD_PATH = "/v1/audit/head"
_MAX_FILE_BYTES = 1 << 20
_lock = threading.Lock()

PathLike = Union[str, "os.PathLike[str]", None]


def _forget(url: str, file: Optional[Path]) -> str:
    where = f"remove its entry from {file}" if file else "forget it"
    return f"If {url} was deliberately reset, {where}"


class KeyServiceForked(FailedPrecondition):
    """The KeyService's audit log no longer holds the head this client saw (or another state
    identity signs it): an older copy of its state was put back and written to. ``url`` and
    ``why`` say which and how."""

    def __init__(self, url: str, why: str, file: Optional[Path]):
        super().__init__(
            f"keyservice-forked: the KeyService at {url} {why}: its state forked from the one "
            f"seen before (an older copy put back and written to). Refusing it. "
            f"{_forget(url, file)}",
            reason="keyservice-forked")
        self.url, self.why = url, why


class KeyServiceRollback(FailedPrecondition):
    """The KeyService answered with a state version older than one this client saw before: its
    state was rolled back. ``url``, ``seen`` and ``answered`` say which and by how much."""

    def __init__(self, url: str, seen: int, answered: int, file: Optional[Path]):
        super().__init__(
            f"keyservice-rollback: the KeyService at {url} answered with state version {answered}, "
            f"older than version {seen} seen before: its state was rolled back (an older copy put "
            f"back). Refusing it. {_forget(url, file)}",
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


@dataclass(frozen=True)
class SeenState:
    """What is remembered of one KeyService (``audit_seq`` -1: no audit head yet)."""
    version: int = 0
    audit_seq: int = -1
    audit_hash: bytes = bytes(32)
    keyservice_key: str = ""


@dataclass(frozen=True)
class AnsweredState:
    """A KeyService's state as one answer shows it (its two headers)."""
    version: int
    audit_seq: int
    audit_hash: bytes


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _hash(text: Any) -> Optional[bytes]:
    if not isinstance(text, str) or len(text) != 64 or text != text.lower():
        return None
    try:
        return bytes.fromhex(text)
    except ValueError:
        return None


def parse_answered_state(version: Optional[str], head: Optional[str]) -> Optional[AnsweredState]:
    """Both headers of an answer (``X-Moss-State-Version``, ``X-Moss-Audit-Head``: "<seq> <hex>"),
    or None when either is absent or malformed (as crypto::parse_keyservice_state)."""
    v = parse_state_version(version)
    if v < 0 or head is None or head.count(" ") != 1:
        return None
    seq_text, hash_text = head.split(" ")
    seq, h = parse_state_version(seq_text), _hash(hash_text)
    if seq < 0 or h is None:
        return None
    return AnsweredState(v, seq, h)


def _entry(j: Dict[str, Any], url: str, file: Path) -> SeenState:
    e = j.get(url)
    if _is_int(e):
        return SeenState(version=max(0, e))
    if not isinstance(e, dict):
        return SeenState()  # anything else counts as nothing seen (as in C++)
    h = _hash(e.get("audit_hash"))
    key = e.get("keyservice_key", "")
    if (not _is_int(e.get("state_version")) or not _is_int(e.get("audit_seq")) or h is None
            or e["state_version"] < 0 or e["audit_seq"] < 0 or not isinstance(key, str)):
        raise DataLoss(f"{file}: malformed entry for {url}")
    return SeenState(e["state_version"], e["audit_seq"], h, key)


def seen_state(state_dir: PathLike, url: str) -> SeenState:
    """The record for ``url`` (nothing seen when none, or when ``state_dir`` is unset)."""
    if not state_dir:
        return SeenState()
    file = Path(state_dir) / SEEN_VERSIONS_FILE
    with _lock:
        return _entry(_load(file), url, file)


def highest_seen(state_dir: PathLike, url: str) -> int:
    """The highest version recorded for ``url`` (0 when none, or when ``state_dir`` is unset)."""
    return seen_state(state_dir, url).version


def record(state_dir: PathLike, url: str, seen: SeenState) -> None:
    """Records ``seen`` for ``url`` unless the file holds a higher version for it already."""
    if not state_dir:
        return
    file = Path(state_dir) / SEEN_VERSIONS_FILE
    with _lock:
        j = _load(file)
        try:
            old: Optional[SeenState] = _entry(j, url, file)
        except DataLoss:
            old = None
        if old is not None and (old.version > seen.version or old == seen):
            return
        if seen.audit_seq >= 0:
            e: Dict[str, Any] = {"state_version": seen.version, "audit_seq": seen.audit_seq,
                                 "audit_hash": seen.audit_hash.hex()}
            if seen.keyservice_key:
                e["keyservice_key"] = seen.keyservice_key
            j[url] = e
        else:
            j[url] = seen.version  # no head known: the version-only form
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


def needs_proof(url: str, seen: SeenState, answered: AnsweredState, file: Optional[Path]) -> bool:
    """Judges an answer against what was seen before its request left. Raises
    :class:`KeyServiceRollback` or :class:`KeyServiceForked`; True when the audit log grew and the
    KeyService must prove the remembered chain value first (:func:`proof_target`)."""
    if answered.version < seen.version:
        raise KeyServiceRollback(url, seen.version, answered.version, file)
    if seen.audit_seq < 0:
        return False
    if (answered.audit_seq, answered.audit_hash) == (seen.audit_seq, seen.audit_hash):
        return False
    if answered.audit_seq <= seen.audit_seq:
        raise KeyServiceForked(url, f"shows audit head {answered.audit_seq} at state version "
                               f"{answered.version}, not the head {seen.audit_seq} seen at version "
                               f"{seen.version}", file)
    return True


def remember_fresh(seen: SeenState, answered: AnsweredState) -> SeenState:
    """What to remember after an answer judged fresh."""
    return replace(seen, version=max(seen.version, answered.version),
                   audit_seq=answered.audit_seq, audit_hash=answered.audit_hash)


def proof_target(seen: SeenState) -> str:
    return f"{AUDIT_HEAD_PATH}?at={seen.audit_seq}"


def verify_proof(url: str, seen: SeenState, answered: AnsweredState, proof: Any,
                 file: Optional[Path]) -> SeenState:
    """Checks the answer to :func:`proof_target` (its JSON) and returns what to remember (as
    crypto::verify_audit_proof). DataLoss when malformed or wrongly signed; KeyServiceForked when
    the chain value at the remembered sequence differs, another state identity signed it, or it
    shows an older state than the answer it vouches for."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    bad = DataLoss(f"audit-head-signature-invalid: the KeyService at {url} sent a malformed or "
                   f"wrongly signed audit head proof")
    if not isinstance(proof, dict):
        raise bad
    ints = [proof.get(f) for f in ("seq", "state_version", "at")]
    h, at_h = _hash(proof.get("hash")), _hash(proof.get("at_hash"))
    key_b64, sig_b64 = proof.get("keyservice_key"), proof.get("signature")
    if (not all(_is_int(v) and v >= 0 for v in ints) or h is None or at_h is None
            or not isinstance(key_b64, str) or not isinstance(sig_b64, str)):
        raise bad
    seq, version, at = ints
    message = (f"moss-audit-head-at-v1\n{seq}\n{h.hex()}\n{version}\n{at}\n{at_h.hex()}")
    try:
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(key_b64, validate=True))
        key.verify(base64.b64decode(sig_b64, validate=True), message.encode())
    except (ValueError, binascii.Error, InvalidSignature):
        raise bad from None
    if seen.keyservice_key and seen.keyservice_key != key_b64:
        raise KeyServiceForked(url, "signed its audit head with another state identity", file)
    if at != seen.audit_seq:
        raise bad
    if at_h != seen.audit_hash:
        raise KeyServiceForked(url, f"has another audit event {at} than the one seen before", file)
    if version < answered.version or seq < answered.audit_seq:
        raise KeyServiceForked(url, f"proved audit head {seq} at version {version}, older than its "
                               f"answer (head {answered.audit_seq} at version {answered.version})",
                               file)
    return replace(remember_fresh(seen, AnsweredState(version, seq, h)), keyservice_key=key_b64)
