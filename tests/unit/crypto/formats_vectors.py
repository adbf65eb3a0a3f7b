#!/usr/bin/python3
"""Independent reimplementation of docs/formats.md in Python (pyca/cryptography), printing the
test vectors that the doc lists and formats_vector_test.cc checks. Run: /usr/bin/python3 THIS."""
import hashlib
import json
import base64
import struct
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def hkdf(ikm, salt, info, n):
    return HKDF(hashes.SHA256(), n, salt if salt else None, info).derive(ikm)


def model_file(key, model_id, chunk, file_random, plain):
    mid = model_id.encode()
    header = b"MOSSMODL" + struct.pack(">HHI", 1, len(mid), chunk) + file_random + mid
    okm = hkdf(key, file_random, b"moss model file v1\x00" + header, 36)
    aead, prefix = AESGCM(okm[:32]), okm[32:]
    chunks = [plain[i:i + chunk] for i in range(0, len(plain), chunk)] or [b""]
    out, tags = header, []
    for i, c in enumerate(chunks):
        last = i == len(chunks) - 1
        nonce = prefix + i.to_bytes(7, "big") + (b"\x01" if last else b"\x00")
        sealed = aead.encrypt(nonce, c, None)
        tags.append(sealed[-16:].hex())
        out += sealed
    return header, okm, tags, out


def envelope(key, model_id, user_id, request_id, direction, nonce, plain):
    sub = hkdf(key, b"", ("moss envelope v1 " + direction).encode(), 32)
    aad = b"moss envelope v1\x00"
    for f in (model_id, user_id, request_id):
        aad += struct.pack(">H", len(f)) + f.encode()
    aad += bytes([1 if direction == "request" else 2])
    ct = AESGCM(sub).encrypt(nonce, plain, aad)
    return json.dumps({"v": 1, "model_id": model_id, "user_id": user_id,
                       "request_id": request_id, "direction": direction,
                       "nonce": base64.b64encode(nonce).decode(),
                       "ciphertext": base64.b64encode(ct).decode()}, separators=(",", ":"))


def envelope_binary(key, model_id, user_id, request_id, direction, nonce, plain):
    sub = hkdf(key, b"", ("moss envelope v1 " + direction).encode(), 32)
    fields = b""
    for f in (model_id, user_id, request_id):
        fields += struct.pack(">H", len(f)) + f.encode()
    d = 1 if direction == "request" else 2
    ct = AESGCM(sub).encrypt(nonce, plain, b"moss envelope v1\x00" + fields + bytes([d]))
    return b"\x89MOSSENV" + bytes([1, d]) + fields + nonce + ct


key = bytes(range(32))
file_random = bytes(range(0x20, 0x40))
print("== model file, empty model")
h, okm, tags, f = model_file(key, "owner/empty", 1024, file_random, b"")
print("file:", f.hex())
print("== model file, 2500-byte model (byte i = i mod 251), chunk 1024")
h, okm, tags, f = model_file(key, "owner/demo", 1024, file_random, bytes(i % 251 for i in range(2500)))
print("header:", h.hex())
print("subkey:", okm[:32].hex(), "prefix:", okm[32:].hex())
print("tags:", tags)
print("size:", len(f), "sha256:", hashlib.sha256(f).hexdigest())
print("== envelope")
print(envelope(key, "owner/demo", "fedcba9876543210fedcba9876543210", "req-1", "request",
               bytes(range(12)), b"hello"))
print(envelope(key, "owner/demo", "fedcba9876543210fedcba9876543210", "req-1", "response",
               bytes(range(12)), b"world"))
print("== envelope, binary form")
print(envelope_binary(key, "owner/demo", "fedcba9876543210fedcba9876543210", "req-1", "request",
                      bytes(range(12)), b"hello").hex())
