"""docs/formats.md test vectors against moss_client, and the same values recomputed by the
independent tests/unit/crypto/formats_vectors.py; plus tamper, truncation and key-file cases."""
import hashlib
import json
import re
import struct
import subprocess
import unittest

import numpy as np

from support import ROOT, TempDirCase
from moss_client import errors, formats, safetensors
from moss_client.formats import EnvelopeHeader

DOC = (ROOT / "docs" / "formats.md").read_text()
KEY = bytes(range(32))
FILE_RANDOM = bytes(range(0x20, 0x40))
NONCE = bytes(range(12))
USER = "fedcba9876543210fedcba9876543210"
PLAIN2 = bytes(i % 251 for i in range(2500))


def doc_section(title: str) -> str:
    start = DOC.index(title)
    end = DOC.find("\n### ", start + 1)
    nxt = DOC.find("\n## ", start + 1)
    ends = [e for e in (end, nxt) if e > 0]
    return DOC[start:min(ends) if ends else len(DOC)]


def hex_after(text: str, label: str) -> str:
    """The hex (possibly over several lines, in runs of hex words) following ``label``."""
    m = re.search(re.escape(label) + r"\s+((?:[0-9a-f]+\s*)+)", text)
    assert m, label
    return re.sub(r"\s+", "", m.group(1))


class DocVectors(unittest.TestCase):
    """Each test is one vector (or one value of a vector) of docs/formats.md."""

    def test_vector1_empty_model(self):
        sec = doc_section("### Vector 1")
        block = re.search(r"```\n(.*?)```", sec, re.S).group(1)
        want = "".join(re.findall(r"^([0-9a-f ]+?)\s*(?:\(|$)", block, re.M)).replace(" ", "")
        enc, _ = formats.encrypt_model(b"", "owner/empty", key=KEY, chunk_size=1024,
                                       file_random=FILE_RANDOM)
        self.assertEqual(enc.hex(), want)
        self.assertEqual(len(enc), 59 + 16)
        self.assertEqual(formats.decrypt_model(enc, KEY, "owner/empty"), b"")

    def test_vector2_three_chunks(self):
        sec = doc_section("### Vector 2")
        enc, _ = formats.encrypt_model(PLAIN2, "owner/demo", key=KEY, chunk_size=1024,
                                       file_random=FILE_RANDOM)
        header = hex_after(sec, "header ")
        self.assertEqual(enc[:58].hex(), header)
        okm = formats._hkdf(KEY, FILE_RANDOM, b"moss model file v1\x00" + enc[:58], 36)
        self.assertEqual(okm[:32].hex(), hex_after(sec, "subkey"))
        self.assertEqual(okm[32:].hex(), hex_after(sec, "prefix"))
        tags = re.findall(r"tag_\d\s+([0-9a-f]{32})", sec)
        self.assertEqual(len(tags), 3)
        chunk_ends = [58 + 1040, 58 + 2080, len(enc)]
        self.assertEqual([enc[e - 16:e].hex() for e in chunk_ends], tags)
        m = re.search(r"file\s+(\d+) bytes, SHA-256 ([0-9a-f]{64})", sec)
        self.assertEqual(len(enc), int(m.group(1)))
        self.assertEqual(hashlib.sha256(enc).hexdigest(), m.group(2))
        self.assertEqual(formats.encrypted_model_size(2500, "owner/demo", 1024), len(enc))
        self.assertEqual(formats.decrypt_model(enc, KEY, "owner/demo"), PLAIN2)

    def _vector3(self):
        sec = doc_section("### Vector 3")
        lines = [l for l in sec.splitlines() if l.startswith('{"v":1')]
        binary = hex_after(sec, "The request in the binary form (hex):\n\n```")
        return lines, binary

    def test_vector3_request_json(self):
        lines, _ = self._vector3()
        h = EnvelopeHeader("owner/demo", USER, "req-1", "request")
        self.assertEqual(formats.seal_envelope(KEY, h, b"hello", binary=False, nonce=NONCE).decode(),
                         lines[0])
        self.assertEqual(formats.open_envelope(KEY, h, lines[0].encode()), b"hello")

    def test_vector3_response_json(self):
        lines, _ = self._vector3()
        h = EnvelopeHeader("owner/demo", USER, "req-1", "response")
        self.assertEqual(formats.seal_envelope(KEY, h, b"world", binary=False, nonce=NONCE).decode(),
                         lines[1])
        self.assertEqual(formats.open_envelope(KEY, h, lines[1].encode()), b"world")

    def test_vector3_request_binary(self):
        _, binary = self._vector3()
        h = EnvelopeHeader("owner/demo", USER, "req-1", "request")
        self.assertEqual(formats.seal_envelope(KEY, h, b"hello", nonce=NONCE).hex(), binary)
        self.assertEqual(formats.open_envelope(KEY, h, bytes.fromhex(binary)), b"hello")

    def test_independent_script_agrees(self):
        """tests/unit/crypto/formats_vectors.py (a second Python implementation, the one the
        vectors came from) prints the same values moss_client computes."""
        out = subprocess.run(["/usr/bin/python3", str(ROOT / "tests/unit/crypto/formats_vectors.py")],
                             capture_output=True, text=True, check=True, timeout=60).stdout
        empty, _ = formats.encrypt_model(b"", "owner/empty", key=KEY, chunk_size=1024,
                                         file_random=FILE_RANDOM)
        self.assertIn("file: " + empty.hex(), out)
        enc, _ = formats.encrypt_model(PLAIN2, "owner/demo", key=KEY, chunk_size=1024,
                                       file_random=FILE_RANDOM)
        self.assertIn("sha256: " + hashlib.sha256(enc).hexdigest(), out)
        h = EnvelopeHeader("owner/demo", USER, "req-1", "request")
        self.assertIn(formats.seal_envelope(KEY, h, b"hello", binary=False, nonce=NONCE).decode(), out)
        self.assertIn(formats.seal_envelope(KEY, h, b"hello", nonce=NONCE).hex(), out)


class ModelFileRefusals(unittest.TestCase):
    def setUp(self):
        self.enc, self.key = formats.encrypt_model(PLAIN2, "owner/demo", chunk_size=1024)

    def assertRaisesCode(self, cls, fn, *a):
        with self.assertRaises(cls) as cm:
            fn(*a)
        return cm.exception

    def test_round_trip_streaming_multiple_of_chunk(self):
        plain = bytes(2048)
        enc, key = formats.encrypt_model(plain, "o/m", chunk_size=1024)
        self.assertEqual(len(enc), formats.encrypted_model_size(2048, "o/m", 1024))
        self.assertEqual(formats.decrypt_model(enc, key), plain)

    def test_wrong_key(self):
        self.assertRaisesCode(errors.Unauthenticated, formats.decrypt_model, self.enc, bytes(32))

    def test_other_model_id(self):
        self.assertRaisesCode(errors.Unauthenticated, formats.decrypt_model, self.enc, self.key,
                              "owner/other")

    def test_every_region_tampered(self):
        for pos in (12, 20, 50, 60, 58 + 1040 + 5, len(self.enc) - 1):
            bad = bytearray(self.enc)
            bad[pos] ^= 1
            with self.subTest(pos=pos), self.assertRaises((errors.Unauthenticated,
                                                            errors.InvalidArgument)):
                formats.decrypt_model(bytes(bad), self.key)

    def test_cut_at_chunk_boundary_and_appended(self):
        self.assertRaisesCode(errors.Unauthenticated, formats.decrypt_model,
                              self.enc[:58 + 1040], self.key)
        self.assertRaisesCode(errors.Unauthenticated, formats.decrypt_model,
                              self.enc + bytes(20), self.key)

    def test_truncated(self):
        self.assertRaisesCode(errors.DataLoss, formats.decrypt_model, self.enc[:30], self.key)
        self.assertRaisesCode(errors.DataLoss, formats.decrypt_model, self.enc[:58 + 10], self.key)

    def test_bad_header(self):
        bad = bytearray(self.enc)
        bad[9] = 2
        self.assertRaisesCode(errors.Unimplemented, formats.decrypt_model, bytes(bad), self.key)
        self.assertRaisesCode(errors.InvalidArgument, formats.decrypt_model, b"X" + self.enc[1:], self.key)

    def test_chunk_bounds(self):
        with self.assertRaises(errors.InvalidArgument):
            formats.encrypt_model(b"x", "o/m", chunk_size=512)

    def test_invalid_model_ids(self):
        for mid in ("", "a//b", "a/../b", "a/./b", "x" * 257, "a b/c", "/a"):
            with self.subTest(mid=mid), self.assertRaises(errors.InvalidArgument):
                formats.encrypt_model(b"x", mid)


class EnvelopeRefusals(unittest.TestCase):
    def setUp(self):
        self.h = EnvelopeHeader("owner/demo", USER, "req-1", "request")
        self.bin = formats.seal_envelope(KEY, self.h, b"payload")
        self.js = formats.seal_envelope(KEY, self.h, b"payload", binary=False)

    def test_wrong_key(self):
        for env in (self.bin, self.js):
            with self.assertRaises(errors.Unauthenticated):
                formats.open_envelope(bytes(32), self.h, env)

    def test_tampered_ciphertext(self):
        bad = bytearray(self.bin)
        bad[-20] ^= 1
        with self.assertRaises(errors.Unauthenticated):
            formats.open_envelope(KEY, self.h, bytes(bad))

    def test_other_header(self):
        for other in (EnvelopeHeader("owner/demo", USER, "req-2", "request"),
                      EnvelopeHeader("owner/x", USER, "req-1", "request"),
                      self.h.response()):
            with self.subTest(other=other), self.assertRaises(errors.Unauthenticated):
                formats.open_envelope(KEY, other, self.bin)

    def test_header_rewritten_in_transit(self):
        """Rewriting the clear request id in the framing still fails: it is in the AAD."""
        bad = self.bin.replace(b"req-1", b"req-2")
        h2 = EnvelopeHeader("owner/demo", USER, "req-2", "request")
        with self.assertRaises(errors.Unauthenticated):
            formats.open_envelope(KEY, h2, bad)

    def test_malformed(self):
        with self.assertRaises(errors.InvalidArgument):
            formats.open_envelope(KEY, self.h, self.bin[:30])
        j = json.loads(self.js)
        j["extra"] = 1
        with self.assertRaises(errors.InvalidArgument):
            formats.open_envelope(KEY, self.h, json.dumps(j).encode())
        j = json.loads(self.js)
        j["v"] = 2
        with self.assertRaises(errors.Unimplemented):
            formats.open_envelope(KEY, self.h, json.dumps(j).encode())
        bad = bytearray(self.bin)
        bad[8] = 2
        with self.assertRaises(errors.Unimplemented):
            formats.open_envelope(KEY, self.h, bytes(bad))


class KeyFiles(TempDirCase):
    def test_round_trip_and_mode(self):
        p = self.tmp / "m.key"
        formats.save_key(KEY, p, "owner/demo")
        self.assertEqual(p.stat().st_mode & 0o777, 0o600)
        self.assertEqual(p.read_text(), '{"kind":"moss-model-key","version":1,"model_id":"owner/demo",'
                         '"key":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}\n')
        self.assertEqual(formats.load_key(p), (KEY, "owner/demo"))

    def test_refusals(self):
        p = self.tmp / "bad.key"
        for text in ('{"kind":"moss-model-key","version":1,"model_id":"o/m","key":"AAEC"}',
                     '{"kind":"moss-model-key","version":1,"model_id":"o/m","key":"'
                     + "A" * 43 + '=","x":1}',
                     '{"kind":"other","version":1,"model_id":"o/m","key":"' + "A" * 43 + '="}',
                     "not json", "x" * 5000):
            p.write_text(text)
            with self.subTest(text=text[:40]), self.assertRaises(errors.InvalidArgument):
                formats.load_key(p)

    def test_file_functions_stream(self):
        src, enc, out = self.tmp / "m.onnx", self.tmp / "m.moss", self.tmp / "out.onnx"
        src.write_bytes(PLAIN2 * 3)
        key = formats.encrypt_model_file(src, enc, "o/m", chunk_size=1024)
        self.assertEqual(formats.decrypt_model_file(enc, out, key, "o/m"), len(PLAIN2) * 3)
        self.assertEqual(out.read_bytes(), src.read_bytes())
        bad = bytearray(enc.read_bytes())
        bad[-1] ^= 1
        enc.write_bytes(bytes(bad))
        out.unlink()
        with self.assertRaises(errors.Unauthenticated):
            formats.decrypt_model_file(enc, out, key)
        self.assertFalse(out.exists())
        self.assertEqual([p.name for p in self.tmp.iterdir() if p.name.startswith(".")], [])


class SignedRequests(unittest.TestCase):
    """docs/keyservice-api.md, "Signed requests" (the real KeyService accepting these signatures
    is tested in test_stack.py)."""

    def test_message_and_headers(self):
        from moss_client.identity import Identity
        from moss_client.keyservice import sign_request, signing_message
        import base64
        self.assertEqual(signing_message("GET", "/v1/audit?after=0", "ab", 17, "cd", "ef"),
                         b"moss-request-v1\nGET\n/v1/audit?after=0\nab\n17\ncd\nef")
        ident = Identity.generate()
        h = sign_request(ident, "POST", "/v1/principals", b"{}", timestamp=1700000000)
        self.assertEqual(h["X-Moss-Principal"], ident.principal_id)
        self.assertEqual(h["X-Moss-Body-Sha256"], hashlib.sha256(b"{}").hexdigest())
        self.assertRegex(h["X-Moss-Nonce"], r"^[0-9a-f]{32}$")
        self.assertEqual(h["X-Moss-Timestamp"], "1700000000")
        msg = signing_message("POST", "/v1/principals", h["X-Moss-Body-Sha256"], 1700000000,
                              h["X-Moss-Nonce"], ident.principal_id)
        ident._key.public_key().verify(base64.b64decode(h["X-Moss-Signature"]), msg)
        self.assertNotEqual(sign_request(ident, "POST", "/x", b"")["X-Moss-Nonce"],
                            sign_request(ident, "POST", "/x", b"")["X-Moss-Nonce"])
        self.assertEqual(ident.principal_id, hashlib.sha256(ident.public_key_raw).hexdigest()[:32])


class Safetensors(unittest.TestCase):
    def test_round_trip(self):
        t = {"image": np.arange(784, dtype=np.float32).reshape(1, 1, 28, 28),
             "ids": np.array([[1, 2, 3]], dtype=np.int64), "mask": np.array([True, False])}
        data = safetensors.encode(t)
        n = int.from_bytes(data[:8], "little")
        self.assertEqual((8 + n) % 8, 0)
        back = safetensors.decode(data)
        for k in t:
            np.testing.assert_array_equal(back[k], t[k])
            self.assertEqual(back[k].dtype, t[k].dtype)

    def test_refusals(self):
        data = safetensors.encode({"x": np.zeros(4, np.float32)})
        for bad in (data[:-1], data + b"\0", data[:5], b"\xff" * 8 + data[8:]):
            with self.assertRaises(errors.InvalidArgument):
                safetensors.decode(bad)
        with self.assertRaises(errors.InvalidArgument):
            safetensors.encode({"x": np.zeros(2, np.complex64)})


class SealedErrorForm(unittest.TestCase):
    """The error form of the response plaintext (docs/formats.md, "Response plaintext")."""

    DOC_EXAMPLE = (struct.pack("<Q", 120) + b'{"__metadata__":{"moss.error.category":"bad-input",'
                   b'"moss.error.code":"invalid-argument","moss.error.message":"m"}}' + b" " * 6)

    def test_doc_example_raises_its_code_with_category_and_detail(self):
        from moss_client.errors import InvalidArgument
        from moss_client.infer import _raise_sealed_error
        self.assertEqual(len(self.DOC_EXAMPLE), 128)
        with self.assertRaises(InvalidArgument) as cm:
            _raise_sealed_error(self.DOC_EXAMPLE, 400, "worker")
        self.assertEqual(cm.exception.detail["category"], "bad-input")
        self.assertTrue(cm.exception.message.endswith("(bad-input): m"))

    def test_error_form_with_a_missing_key_is_malformed(self):
        from moss_client.errors import InvalidArgument
        from moss_client.infer import _raise_sealed_error
        text = b'{"__metadata__":{"moss.error.category":"x"}}'
        plain = struct.pack("<Q", len(text)) + text
        with self.assertRaises(InvalidArgument) as cm:
            _raise_sealed_error(plain, 400, "worker")
        self.assertIn("malformed sealed error", cm.exception.message)


if __name__ == "__main__":
    unittest.main()
