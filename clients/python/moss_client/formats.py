"""docs/formats.md in Python: identifiers, the encrypted model file (``.moss``, streaming), the
request/response envelope (JSON and binary form) and the model key file.

Byte for byte the format of the C++ implementation (``src/crypto``); the docs' test vectors are
checked by ``clients/python/tests/test_formats.py``. Every parser is bounded and fails closed with
the error category the C++ code uses (``Unauthenticated`` for a bad tag, ``DataLoss`` for a
truncated file, ``InvalidArgument`` for a malformed header, ``Unimplemented`` for another version).
"""
from __future__ import annotations

import base64
import binascii
import json
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Optional, Tuple, Union

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import DataLoss, InvalidArgument, ResourceExhausted, Unauthenticated, Unimplemented

KEY_BYTES = 32
TAG_BYTES = 16

# ----------------------------------------------------------------------------------- identifiers
_MODEL_SEGMENT = re.compile(r"[A-Za-z0-9._-]+")
_USER_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def validate_model_id(model_id: str) -> None:
    """Raises InvalidArgument unless ``model_id`` follows docs/formats.md: 1..256 bytes of
    ``[A-Za-z0-9._-]`` in ``/``-separated segments, none empty, ``.`` or ``..``."""
    if not isinstance(model_id, str) or not 1 <= len(model_id.encode()) <= 256:
        raise InvalidArgument(f"model id must be 1..256 bytes: {model_id!r}")
    for seg in model_id.split("/"):
        if not _MODEL_SEGMENT.fullmatch(seg) or seg in (".", ".."):
            raise InvalidArgument(f"invalid model id {model_id!r}")


def validate_user_id(value: str, what: str = "user id") -> None:
    """Raises InvalidArgument unless ``value`` is a user or request id (1..128 of
    ``[A-Za-z0-9._:-]``)."""
    if not isinstance(value, str) or not _USER_ID.fullmatch(value):
        raise InvalidArgument(f"invalid {what} {value!r}")


def _hkdf(ikm: bytes, salt: Optional[bytes], info: bytes, length: int) -> bytes:
    return HKDF(hashes.SHA256(), length, salt or None, info).derive(ikm)


def _check_key(key: bytes, what: str) -> bytes:
    key = bytes(key)
    if len(key) != KEY_BYTES:
        raise InvalidArgument(f"{what} must be {KEY_BYTES} bytes, not {len(key)}")
    return key


# ----------------------------------------------------------------------------- model file (.moss)
MODEL_MAGIC = b"MOSSMODL"
MODEL_VERSION = 1
MODEL_HEADER_FIXED = 48
DEFAULT_CHUNK = 1 << 20
MIN_CHUNK = 1 << 10
MAX_CHUNK = 64 << 20
_MODEL_INFO = b"moss model file v1\x00"


def _model_header(model_id: str, chunk_size: int, file_random: bytes) -> bytes:
    mid = model_id.encode()
    return MODEL_MAGIC + struct.pack(">HHI", MODEL_VERSION, len(mid), chunk_size) + file_random + mid


def _model_cipher(key: bytes, header: bytes, file_random: bytes) -> Tuple[AESGCM, bytes]:
    okm = _hkdf(key, file_random, _MODEL_INFO + header, 36)
    return AESGCM(okm[:32]), okm[32:]


def _chunk_nonce(prefix: bytes, index: int, last: bool) -> bytes:
    if index >= 1 << 56:
        raise ResourceExhausted("model file: more than 2^56 chunks")
    return prefix + index.to_bytes(7, "big") + (b"\x01" if last else b"\x00")


def encrypted_model_size(plain_size: int, model_id: str, chunk_size: int = DEFAULT_CHUNK) -> int:
    """The size of the encrypted file (docs/formats.md)."""
    chunks = max(1, -(-plain_size // chunk_size))
    return MODEL_HEADER_FIXED + len(model_id.encode()) + plain_size + TAG_BYTES * chunks


def encrypt_model_stream(src: BinaryIO, dst: BinaryIO, key: bytes, model_id: str, *,
                         chunk_size: int = DEFAULT_CHUNK,
                         file_random: Optional[bytes] = None) -> int:
    """Encrypts ``src`` into ``dst`` chunk by chunk (memory: two chunks). Returns bytes written.
    ``file_random`` is fresh per file; pass it only to reproduce test vectors."""
    key = _check_key(key, "model key")
    validate_model_id(model_id)
    if not MIN_CHUNK <= chunk_size <= MAX_CHUNK:
        raise InvalidArgument(f"chunk size {chunk_size} outside {MIN_CHUNK}..{MAX_CHUNK}")
    file_random = os.urandom(32) if file_random is None else bytes(file_random)
    if len(file_random) != 32:
        raise InvalidArgument("file_random must be 32 bytes")
    header = _model_header(model_id, chunk_size, file_random)
    aead, prefix = _model_cipher(key, header, file_random)
    dst.write(header)
    written = len(header)
    index = 0
    cur = _read_full(src, chunk_size)
    while True:
        nxt = _read_full(src, chunk_size) if len(cur) == chunk_size else b""
        last = not nxt
        sealed = aead.encrypt(_chunk_nonce(prefix, index, last), cur, None)
        dst.write(sealed)
        written += len(sealed)
        if last:
            return written
        cur, index = nxt, index + 1


def _read_full(f: BinaryIO, n: int) -> bytes:
    out = bytearray()
    while len(out) < n:
        b = f.read(n - len(out))
        if not b:
            break
        out += b
    return bytes(out)


@dataclass(frozen=True)
class ModelHeader:
    """The parsed (not yet authenticated) header of a ``.moss`` file."""
    model_id: str
    chunk_size: int
    file_random: bytes
    raw: bytes


def parse_model_header(data: bytes) -> ModelHeader:
    """Parses the header at the start of ``data`` (at least its first 48 + 256 bytes or the whole
    file). Raises DataLoss (truncated), InvalidArgument (malformed), Unimplemented (version)."""
    if len(data) < MODEL_HEADER_FIXED:
        raise DataLoss("model file: truncated header")
    if data[:8] != MODEL_MAGIC:
        raise InvalidArgument("model file: bad magic (not a MOSS encrypted model)")
    version, id_len, chunk = struct.unpack(">HHI", data[8:16])
    if version != MODEL_VERSION:
        raise Unimplemented(f"model file: version {version} not supported")
    if id_len == 0 or id_len > 256:
        raise InvalidArgument(f"model file: model id length {id_len}")
    if not MIN_CHUNK <= chunk <= MAX_CHUNK:
        raise InvalidArgument(f"model file: chunk size {chunk} out of bounds")
    if len(data) < MODEL_HEADER_FIXED + id_len:
        raise DataLoss("model file: truncated header")
    try:
        model_id = data[48:48 + id_len].decode("ascii")
    except UnicodeDecodeError:
        raise InvalidArgument("model file: model id is not ASCII") from None
    validate_model_id(model_id)
    return ModelHeader(model_id, chunk, bytes(data[16:48]), bytes(data[:48 + id_len]))


def decrypt_model_stream(src: BinaryIO, dst: BinaryIO, key: bytes,
                         expected_model_id: Optional[str] = None) -> int:
    """Decrypts a ``.moss`` stream, writing each chunk only after it authenticated. Returns the
    plaintext size. A caller writing to disk must discard ``dst`` on any exception (the CLI's
    temporary-file-and-rename). Raises Unauthenticated on a wrong key, another model id, or any
    altered byte; DataLoss on truncation."""
    key = _check_key(key, "model key")
    head = _read_full(src, MODEL_HEADER_FIXED)
    if len(head) == MODEL_HEADER_FIXED and head[:8] == MODEL_MAGIC:
        id_len = struct.unpack(">H", head[10:12])[0]
        head += _read_full(src, min(id_len, 256))
    h = parse_model_header(head)
    if expected_model_id is not None and h.model_id != expected_model_id:
        raise Unauthenticated(
            f"model file is for model {h.model_id!r}, expected {expected_model_id!r}")
    aead, prefix = _model_cipher(key, h.raw, h.file_random)
    step = h.chunk_size + TAG_BYTES
    index, total = 0, 0
    cur = _read_full(src, step)
    while True:
        if len(cur) < TAG_BYTES:
            raise DataLoss("model file: truncated (chunk shorter than its tag)")
        nxt = _read_full(src, step) if len(cur) == step else b""
        last = not nxt
        try:
            plain = aead.decrypt(_chunk_nonce(prefix, index, last), cur, None)
        except InvalidTag:
            raise Unauthenticated(
                f"model file: chunk {index} fails authentication (wrong key, other model, "
                "or altered/truncated file)") from None
        dst.write(plain)
        total += len(plain)
        if last:
            return total
        cur, index = nxt, index + 1


def encrypt_model(model: Union[bytes, str, os.PathLike], model_id: str, *,
                  key: Optional[bytes] = None, chunk_size: int = DEFAULT_CHUNK,
                  file_random: Optional[bytes] = None) -> Tuple[bytes, bytes]:
    """Encrypts an ONNX model (bytes, or a path) for ``model_id``. Returns ``(encrypted file
    bytes, model key)``; the key is fresh unless given. For large models prefer
    :func:`encrypt_model_file` (streams, constant memory)."""
    import io
    key = os.urandom(KEY_BYTES) if key is None else _check_key(key, "model key")
    out = io.BytesIO()
    if isinstance(model, (bytes, bytearray, memoryview)):
        encrypt_model_stream(io.BytesIO(bytes(model)), out, key, model_id,
                             chunk_size=chunk_size, file_random=file_random)
    else:
        with open(model, "rb") as f:
            encrypt_model_stream(f, out, key, model_id, chunk_size=chunk_size,
                                 file_random=file_random)
    return out.getvalue(), key


def encrypt_model_file(src: Union[str, os.PathLike], dst: Union[str, os.PathLike], model_id: str,
                       *, key: Optional[bytes] = None,
                       chunk_size: int = DEFAULT_CHUNK) -> bytes:
    """Streams ``src`` (ONNX) to ``dst`` (``.moss``); returns the model key (fresh unless given)."""
    key = os.urandom(KEY_BYTES) if key is None else _check_key(key, "model key")
    with open(src, "rb") as fin, _AtomicWriter(dst, 0o644) as fout:
        encrypt_model_stream(fin, fout, key, model_id, chunk_size=chunk_size)
    return key


def decrypt_model(data: bytes, key: bytes, expected_model_id: Optional[str] = None) -> bytes:
    """Decrypts a whole ``.moss`` file held in memory; returns the ONNX bytes."""
    import io
    out = io.BytesIO()
    decrypt_model_stream(io.BytesIO(bytes(data)), out, key, expected_model_id)
    return out.getvalue()


def decrypt_model_file(src: Union[str, os.PathLike], dst: Union[str, os.PathLike], key: bytes,
                       expected_model_id: Optional[str] = None) -> int:
    """Decrypts ``src`` into ``dst`` (mode 0600); ``dst`` appears only if every chunk
    authenticated. Returns the plaintext size."""
    with open(src, "rb") as fin, _AtomicWriter(dst, 0o600) as fout:
        return decrypt_model_stream(fin, fout, key, expected_model_id)


class _AtomicWriter:
    """A temporary file in the destination's directory, renamed into place on success only."""

    def __init__(self, path: Union[str, os.PathLike], mode: int):
        self.path = Path(path)
        self.tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}-{os.urandom(4).hex()}")
        self.mode = mode
        self.f: Optional[BinaryIO] = None

    def __enter__(self) -> BinaryIO:
        fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self.f = os.fdopen(fd, "wb")
        return self.f

    def __exit__(self, exc_type, exc, tb) -> None:
        assert self.f is not None
        self.f.close()
        if exc_type is None:
            os.chmod(self.tmp, self.mode)
            os.replace(self.tmp, self.path)
        else:
            os.unlink(self.tmp)


# -------------------------------------------------------------------------------- model key file
MAX_KEY_FILE_BYTES = 4096


def model_key_json(key: bytes, model_id: str) -> str:
    """The one-line key-file text ``moss model encrypt --key-out`` writes."""
    key = _check_key(key, "model key")
    validate_model_id(model_id)
    return json.dumps({"kind": "moss-model-key", "version": 1, "model_id": model_id,
                       "key": base64.b64encode(key).decode()}, separators=(",", ":"))


def save_key(key: bytes, path: Union[str, os.PathLike], model_id: str) -> None:
    """Writes a model key file (mode 0600) that ``moss model decrypt --key`` and
    ``moss model upload-key --key`` read."""
    text = model_key_json(key, model_id) + "\n"
    with _AtomicWriter(path, 0o600) as f:
        f.write(text.encode())


def load_key(path: Union[str, os.PathLike]) -> Tuple[bytes, str]:
    """Reads a model key file; returns ``(key, model_id)``. Exactly the four fields of
    docs/formats.md; InvalidArgument otherwise."""
    with open(path, "rb") as f:
        data = f.read(MAX_KEY_FILE_BYTES + 1)
    if len(data) > MAX_KEY_FILE_BYTES:
        raise InvalidArgument(f"key file {path}: larger than {MAX_KEY_FILE_BYTES} bytes")
    try:
        j = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise InvalidArgument(f"key file {path}: not JSON") from None
    if not isinstance(j, dict) or set(j) != {"kind", "version", "model_id", "key"}:
        raise InvalidArgument(f"key file {path}: needs exactly kind, version, model_id, key")
    if j["kind"] != "moss-model-key" or j["version"] != 1:
        raise InvalidArgument(f"key file {path}: not a moss-model-key version 1")
    validate_model_id(j["model_id"])
    return strict_b64decode(j["key"], KEY_BYTES, f"key file {path}: key"), j["model_id"]


def strict_b64decode(text: object, length: Optional[int], what: str) -> bytes:
    """Standard padded canonical base64 (as the C++ decoder), optionally of exact length."""
    if not isinstance(text, str):
        raise InvalidArgument(f"{what}: not a string")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidArgument(f"{what}: invalid base64") from None
    if base64.b64encode(raw).decode() != text:
        raise InvalidArgument(f"{what}: non-canonical base64")
    if length is not None and len(raw) != length:
        raise InvalidArgument(f"{what}: {len(raw)} bytes, expected {length}")
    return raw


# -------------------------------------------------------------------------------------- envelope
ENVELOPE_MEDIA_TYPE = "application/vnd.moss.envelope"
ENVELOPE_MAGIC = b"\x89MOSSENV"
MAX_ENVELOPE_BYTES = 64 << 20
NONCE_BYTES = 12
_DIRECTIONS = {"request": 1, "response": 2}


@dataclass(frozen=True)
class EnvelopeHeader:
    """What an envelope is bound to (its AAD)."""
    model_id: str
    user_id: str
    request_id: str
    direction: str  # "request" | "response"

    def validate(self) -> None:
        validate_model_id(self.model_id)
        validate_user_id(self.user_id)
        validate_user_id(self.request_id, "request id")
        if self.direction not in _DIRECTIONS:
            raise InvalidArgument(f"direction must be request or response: {self.direction!r}")

    def response(self) -> "EnvelopeHeader":
        """The header a response to this request carries."""
        return EnvelopeHeader(self.model_id, self.user_id, self.request_id, "response")

    def _fields(self) -> bytes:
        out = b""
        for f in (self.model_id, self.user_id, self.request_id):
            b = f.encode()
            out += struct.pack(">H", len(b)) + b
        return out

    def aad(self) -> bytes:
        return b"moss envelope v1\x00" + self._fields() + bytes([_DIRECTIONS[self.direction]])


def _envelope_aead(key: bytes, direction: str) -> AESGCM:
    return AESGCM(_hkdf(_check_key(key, "request key"), None,
                        b"moss envelope v1 " + direction.encode(), 32))


def seal_envelope(key: bytes, header: EnvelopeHeader, plaintext: bytes, *, binary: bool = True,
                  nonce: Optional[bytes] = None) -> bytes:
    """Seals ``plaintext`` under the request key. Returns the binary form (default) or the JSON
    text as UTF-8 bytes. ``nonce`` (12 bytes) only to reproduce test vectors."""
    header.validate()
    nonce = os.urandom(NONCE_BYTES) if nonce is None else bytes(nonce)
    if len(nonce) != NONCE_BYTES:
        raise InvalidArgument("nonce must be 12 bytes")
    ct = _envelope_aead(key, header.direction).encrypt(nonce, bytes(plaintext), header.aad())
    if binary:
        return (ENVELOPE_MAGIC + bytes([1, _DIRECTIONS[header.direction]]) + header._fields()
                + nonce + ct)
    return json.dumps({"v": 1, "model_id": header.model_id, "user_id": header.user_id,
                       "request_id": header.request_id, "direction": header.direction,
                       "nonce": base64.b64encode(nonce).decode(),
                       "ciphertext": base64.b64encode(ct).decode()},
                      separators=(",", ":")).encode()


def peek_envelope_header(data: bytes) -> Tuple[EnvelopeHeader, bytes, bytes]:
    """Parses either form without authenticating: ``(header, nonce, ciphertext|tag)``."""
    if len(data) > MAX_ENVELOPE_BYTES:
        raise ResourceExhausted(f"envelope larger than {MAX_ENVELOPE_BYTES} bytes")
    if data[:1] == ENVELOPE_MAGIC[:1]:
        return _peek_binary(bytes(data))
    return _peek_json(bytes(data))


def _peek_binary(d: bytes) -> Tuple[EnvelopeHeader, bytes, bytes]:
    if len(d) < 10 or d[:8] != ENVELOPE_MAGIC:
        raise InvalidArgument("envelope: bad binary magic or truncated")
    if d[8] != 1:
        raise Unimplemented(f"envelope: version {d[8]} not supported")
    dirs = {v: k for k, v in _DIRECTIONS.items()}
    if d[9] not in dirs:
        raise InvalidArgument(f"envelope: direction byte {d[9]}")
    pos, fields = 10, []
    for _ in range(3):
        if pos + 2 > len(d):
            raise InvalidArgument("envelope: truncated framing")
        n = struct.unpack(">H", d[pos:pos + 2])[0]
        pos += 2
        if pos + n > len(d):
            raise InvalidArgument("envelope: truncated framing")
        try:
            fields.append(d[pos:pos + n].decode("ascii"))
        except UnicodeDecodeError:
            raise InvalidArgument("envelope: id is not ASCII") from None
        pos += n
    if pos + NONCE_BYTES + TAG_BYTES > len(d):
        raise InvalidArgument("envelope: truncated nonce or ciphertext")
    h = EnvelopeHeader(fields[0], fields[1], fields[2], dirs[d[9]])
    h.validate()
    return h, d[pos:pos + NONCE_BYTES], d[pos + NONCE_BYTES:]


def _peek_json(d: bytes) -> Tuple[EnvelopeHeader, bytes, bytes]:
    def no_dups(pairs):
        keys = [k for k, _ in pairs]
        if len(keys) != len(set(keys)):
            raise InvalidArgument("envelope: duplicate JSON key")
        return dict(pairs)
    try:
        j = json.loads(d.decode("utf-8"), object_pairs_hook=no_dups)
    except (UnicodeDecodeError, ValueError):
        raise InvalidArgument("envelope: not JSON") from None
    want = {"v", "model_id", "user_id", "request_id", "direction", "nonce", "ciphertext"}
    if not isinstance(j, dict) or set(j) != want:
        raise InvalidArgument("envelope: needs exactly the fields " + ", ".join(sorted(want)))
    if j["v"] != 1 or isinstance(j["v"], bool):
        raise Unimplemented(f"envelope: version {j['v']!r} not supported")
    for k in ("model_id", "user_id", "request_id", "direction"):
        if not isinstance(j[k], str):
            raise InvalidArgument(f"envelope: {k} is not a string")
    h = EnvelopeHeader(j["model_id"], j["user_id"], j["request_id"], j["direction"])
    h.validate()
    nonce = strict_b64decode(j["nonce"], NONCE_BYTES, "envelope: nonce")
    ct = strict_b64decode(j["ciphertext"], None, "envelope: ciphertext")
    if len(ct) < TAG_BYTES:
        raise InvalidArgument("envelope: ciphertext shorter than its tag")
    return h, nonce, ct


def open_envelope(key: bytes, expected: EnvelopeHeader, data: bytes) -> bytes:
    """Opens either form, checking that it is bound to ``expected`` (model, user, request id and
    direction). Raises Unauthenticated on any mismatch, wrong key or altered byte."""
    expected.validate()
    header, nonce, ct = peek_envelope_header(data)
    if header != expected:
        raise Unauthenticated(
            f"envelope is for ({header.model_id}, {header.user_id}, {header.request_id}, "
            f"{header.direction}), expected ({expected.model_id}, {expected.user_id}, "
            f"{expected.request_id}, {expected.direction})")
    try:
        return _envelope_aead(key, expected.direction).decrypt(nonce, ct, expected.aad())
    except InvalidTag:
        raise Unauthenticated("envelope fails authentication (wrong key or altered)") from None

