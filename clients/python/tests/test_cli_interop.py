"""moss_client and the C++ `moss` CLI read each other's files: identities, encrypted models,
model key files."""
import unittest

from support import DIGITS, TempDirCase, binary, need_binaries, run
from moss_client import Identity, decrypt_model_file, encrypt_model_file, load_key, save_key
from moss_client.errors import Unauthenticated


class CliInterop(TempDirCase):
    def setUp(self):
        super().setUp()
        need_binaries("moss")
        self.moss = binary("moss")
        self.onnx = DIGITS / "digits.onnx"

    def test_identity_made_by_cli_loads_with_same_principal(self):
        printed = run(self.moss, "identity", "new", "--out", self.tmp / "id").stdout.strip()
        ident = Identity.load(self.tmp / "id")
        self.assertEqual(ident.principal_id, printed.splitlines()[-1].strip())

    def test_python_encrypts_cli_decrypts(self):
        mid = "0123456789abcdef0123456789abcdef/digits"
        key = encrypt_model_file(self.onnx, self.tmp / "m.moss", mid, chunk_size=4096)
        save_key(key, self.tmp / "m.key", mid)
        run(self.moss, "model", "decrypt", "--in", self.tmp / "m.moss", "--key", self.tmp / "m.key",
            "--model-id", mid, "--out", self.tmp / "out.onnx")
        self.assertEqual((self.tmp / "out.onnx").read_bytes(), self.onnx.read_bytes())
        # and the CLI refuses what Python tampered with
        data = bytearray((self.tmp / "m.moss").read_bytes())
        data[len(data) // 2] ^= 1
        (self.tmp / "bad.moss").write_bytes(bytes(data))
        r = run(self.moss, "model", "decrypt", "--in", self.tmp / "bad.moss", "--key",
                self.tmp / "m.key", "--model-id", mid, "--out", self.tmp / "bad.onnx", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertFalse((self.tmp / "bad.onnx").exists())

    def test_cli_encrypts_python_decrypts(self):
        mid = "owner/digits"
        run(self.moss, "model", "encrypt", "--in", self.onnx, "--out", self.tmp / "m.moss",
            "--model-id", mid, "--key-out", self.tmp / "m.key")
        key, key_mid = load_key(self.tmp / "m.key")
        self.assertEqual(key_mid, mid)
        n = decrypt_model_file(self.tmp / "m.moss", self.tmp / "out.onnx", key, mid)
        self.assertEqual(n, self.onnx.stat().st_size)
        self.assertEqual((self.tmp / "out.onnx").read_bytes(), self.onnx.read_bytes())
        with self.assertRaises(Unauthenticated):
            decrypt_model_file(self.tmp / "m.moss", self.tmp / "x.onnx", key, "owner/other")
        with self.assertRaises(Unauthenticated):
            decrypt_model_file(self.tmp / "m.moss", self.tmp / "x.onnx", bytes(32), mid)


if __name__ == "__main__":
    unittest.main()
