#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into tests/fuzz/corpus/<target>/ (run from the
repository root; the files are committed, this script documents where they came from). Seeds are
small valid inputs, a few near-misses, and the regression inputs of fixed findings."""
import json
import os
import shutil
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def u16(s):
    return struct.pack(">H", len(s)) + s.encode()


def binary_envelope(model, user, rid, direction=1, sealed=b"\x00" * 16 + b"payload"):
    return (b"\x89MOSSENV" + bytes([1, direction]) + u16(model) + u16(user) + u16(rid) +
            b"\x11" * 12 + sealed)


def json_envelope(model, user, rid, direction="request", ct="AAAAAAAAAAAAAAAAAAAAAHBheWxvYWQ="):
    return json.dumps({"v": 1, "model_id": model, "user_id": user, "request_id": rid,
                       "direction": direction, "nonce": "EREREREREREREREREQ==", "ciphertext": ct},
                      separators=(",", ":"))


M, U = "0123456789abcdef0123456789abcdef/bert", "fedcba9876543210fedcba9876543210"

# Envelopes, both forms. short-ciphertext.bin is issue 20 item 15: 15 bytes of ciphertext (less
# than the 16-byte tag) passed peek and failed conversion.
put("crypto_envelope_fuzz", "binary-request.bin", binary_envelope(M, U, "req-1"))
put("crypto_envelope_fuzz", "binary-response-empty.bin", binary_envelope(M, U, "r", 2, b"\x00" * 16))
put("crypto_envelope_fuzz", "short-ciphertext.bin", binary_envelope(M, U, "req-1", 1, b"\x00" * 15))
put("crypto_envelope_fuzz", "json-request.json", json_envelope(M, U, "req-1"))
put("crypto_envelope_fuzz", "json-response.json", json_envelope(M, U, "req-2", "response"))
put("crypto_envelope_fuzz", "json-short-ciphertext.json", json_envelope(M, U, "x", ct="AAAA"))

# safetensors: 8-byte little-endian header length, JSON header, data.
def safetensors(header, data):
    h = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(h)) + h + data

put("common_safetensors_fuzz", "f32-2x2.safetensors",
    safetensors({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}, b"\x00" * 16))
put("common_safetensors_fuzz", "two-with-metadata.safetensors",
    safetensors({"__metadata__": {"format": "pt"},
                 "a": {"dtype": "I64", "shape": [1], "data_offsets": [0, 8]},
                 "b": {"dtype": "U8", "shape": [3], "data_offsets": [8, 11]}}, b"\x01" * 11))
put("common_safetensors_fuzz", "scalar-bf16.safetensors",
    safetensors({"s": {"dtype": "BF16", "shape": [], "data_offsets": [0, 2]}}, b"\x80\x3f"))

# Attestation policies.
with open(os.path.join(ROOT, "docs", "attestation.md")) as f:
    doc = f.read()
start = doc.index('```json\n{\n  "version": 1,')
put("attest_policy_fuzz", "docs-example.json", doc[start + 8:doc.index("```", start + 8)])
put("attest_policy_fuzz", "minimal.json", '{"version":1}')
put("attest_policy_fuzz", "simulated.json",
    '{"version":1,"allow_simulated":true,"measurements":[{"tee":"simulated","measurement":"' + "ab" * 32 + '"}]}')

# HTTP requests as a server reads them.
for name, text in {
    "get.http": "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    "post-json.http": "POST /v1/models/o/m/keys?x=1&y=%20z HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      "Content-Length: 11\r\n\r\n{\"key\":\"a\"}",
    "chunked.http": "POST /static/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    "delete-http10.http": "DELETE /v1/models/o/m HTTP/1.0\r\n\r\n",
}.items():
    put("net_http_request_fuzz", name, text)

# FnPacker: first byte 0 pool spec, 1 binary request envelope, 2 worker binary answer, 3 result.
put("packer_wire_fuzz", "pool-local.json", b"\x00" + json.dumps(
    {"name": "p1", "backend": "local", "worker_binary": "/usr/bin/moss-worker",
     "worker_config": {"keyservice_url": "https://127.0.0.1:8443"}, "max_instances": 2}).encode())
put("packer_wire_fuzz", "pool-openwhisk.json", b"\x00" + json.dumps(
    {"name": "ow", "backend": "openwhisk", "policy": "original",
     "openwhisk": {"api_host": "https://ow.example:443", "auth": "u:k", "image": "moss/worker"}}).encode())
put("packer_wire_fuzz", "binary-request.bin", b"\x01" + binary_envelope(M, U, "req-1"))
put("packer_wire_fuzz", "binary-answer.bin", b"\x02" + b"moss-run: warm\nmoss-timing-ms: {\"total\":1.5}\n"
    b"moss-instance: {\"id\":\"i\"}\n\n" + binary_envelope(M, U, "req-1", 2))
put("packer_wire_fuzz", "json-result.json", b"\x03" + json.dumps(
    {"envelope": json_envelope(M, U, "req-1", "response"), "run": "warm", "timing_ms": {"total": 1.0},
     "instance": {"id": "i"}, "packer": {"pool": "p1"}}).encode())

# KeyService: first byte picks the endpoint (keyservice_request_fuzz.cc), the rest is the body.
KEY = "A" * 43 + "="
for i, body in enumerate([
        {"public_key": KEY}, {"model_id": "o/m", "user_id": U}, {"key": KEY},
        {}, {}, {}, {"user_id": U, "measurement": "ab" * 32}, {},
        {"user_id": U, "measurement": "ab" * 32},
        {"model_id": M, "measurement": "ab" * 32, "key": KEY}, {"model_id": M, "measurement": "ab" * 32},
        {}, {"key": KEY, "rotate": True}]):
    put("keyservice_request_fuzz", "endpoint-%02d.json" % i, bytes([i]) + json.dumps(body).encode())
put("keyservice_request_fuzz", "signed-odd-target.txt", b"\x0dGET /v1/audit?model=a%2Fb&limit=5\n")
# The fork proof: signed (mode 13) and from the attested worker (mode 15, the query only).
put("keyservice_request_fuzz", "audit-head-at.txt", b"\x0dGET /v1/audit/head?at=1\n")
put("keyservice_request_fuzz", "audit-head-at-beyond.txt", b"\x0dGET /v1/audit/head?at=9223372036854775807\n")
put("keyservice_request_fuzz", "audit-head-worker-at.txt", b"\x0fat=0")
put("keyservice_request_fuzz", "audit-head-worker-at-bad.txt", b"\x0fat=1&at=-2")
put("keyservice_request_fuzz", "raw-forged.http", b"\x0e" + (
    "POST /v1/request-keys HTTP/1.1\r\nHost: k\r\nX-Moss-Principal: " + U + "\r\nX-Moss-Timestamp: 1\r\n"
    "X-Moss-Nonce: " + "0" * 32 + "\r\nX-Moss-Body-Sha256: " + "0" * 64 + "\r\nX-Moss-Signature: " + "A" * 86 + "==\r\n"
    "Content-Length: 2\r\n\r\n{}").encode())

# Worker: first byte 0 /init, 1 /run, 2 /v1/infer JSON, 3 /v1/infer binary.
put("worker_body_fuzz", "init.json", b"\x00" + json.dumps(
    {"value": {"name": "moss", "main": "main", "keyservice_url": "https://127.0.0.1:1",
               "keyservice_policy": "{\"version\":1}", "model_store": "/nonexistent", "max_concurrency": 4}}).encode())
put("worker_body_fuzz", "run.json", b"\x01" + json.dumps(
    {"value": {"model_id": M, "envelope": json_envelope(M, U, "req-1")}}).encode())
put("worker_body_fuzz", "infer.json", b"\x02" + json.dumps(
    {"model_id": M, "envelope": json_envelope(M, U, "req-1")}).encode())
put("worker_body_fuzz", "infer-binary.bin", b"\x03" + binary_envelope(M, U, "req-1"))
put("worker_body_fuzz", "infer-binary-short.bin", b"\x03" + binary_envelope(M, U, "req-1", 1, b"\x00" * 15))

# The three older targets: copies of the test data they were meant for.
data = os.path.join(ROOT, "tests", "data")
os.makedirs(os.path.join(CORPUS, "attest_quote_fuzz"), exist_ok=True)
for f in ("sgx-v3-mobilecoin-1.quote", "tdx-v4-google-1.quote"):
    shutil.copy(os.path.join(data, "attestation", f), os.path.join(CORPUS, "attest_quote_fuzz", f))
for f in ("c_f4_2x3.npy", "bool_3.npy", "scalar_i8.npy"):
    os.makedirs(os.path.join(CORPUS, "common_tensor_io_fuzz"), exist_ok=True)
    shutil.copy(os.path.join(data, "common", f), os.path.join(CORPUS, "common_tensor_io_fuzz", f))
for f in ("linear.onnx", "mlp.onnx"):
    os.makedirs(os.path.join(CORPUS, "engine_loader_fuzz"), exist_ok=True)
    shutil.copy(os.path.join(data, "worker", f), os.path.join(CORPUS, "engine_loader_fuzz", f))
