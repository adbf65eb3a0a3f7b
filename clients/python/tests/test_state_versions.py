"""The KeyService rollback check (moss_client.state_versions): the seen-versions file in the C++
client's format, and against the real local stack a whole-file rollback of the KeyService's state
(an older copy of its directory put back between restarts) refused by Python and by the C++
`moss` CLI sharing the same state dir, each refusing what the other recorded."""
import json
import os
import shutil
import stat
import unittest

from support import LocalStack, TempDirCase, binary, free_port, need_binaries, run
from moss_client import (ClientConfig, DataLoss, FailedPrecondition, Identity, KeyServiceClient,
                         KeyServiceRollback, encrypt_model, save_key)
from moss_client import state_versions as sv

URL = "https://127.0.0.1:7443"


class SeenVersionsFile(TempDirCase):
    def file(self):
        return self.tmp / sv.SEEN_VERSIONS_FILE

    def test_records_the_highest_in_the_cpp_format(self):
        self.assertEqual(sv.highest_seen(self.tmp, URL), 0)  # no file yet
        sv.check_and_record(self.tmp, URL, 0, 5)
        # byte for byte what src/client/seen_state_versions.cc writes (nlohmann dump(1)), 0600
        self.assertEqual(self.file().read_text(), '{\n "https://127.0.0.1:7443": 5\n}\n')
        self.assertEqual(stat.S_IMODE(self.file().stat().st_mode), 0o600)
        sv.check_and_record(self.tmp, URL, 5, 5)  # the same state again: fine
        sv.check_and_record(self.tmp, "https://other:1", 0, 2)  # per URL
        sv.check_and_record(self.tmp, URL, 0, 3)  # lower than recorded but not than the floor
        self.assertEqual(sv.highest_seen(self.tmp, URL), 5)
        sv.check_and_record(self.tmp, URL, 5, 9)
        self.assertEqual(json.loads(self.file().read_text()), {URL: 9, "https://other:1": 2})
        self.assertEqual(sv.highest_seen(None, URL), 0)
        sv.check_and_record(None, URL, 0, 1)  # no state dir: nothing written, nothing raised

    def test_an_older_answer_is_a_typed_refusal(self):
        with self.assertRaises(KeyServiceRollback) as cm:
            sv.check_and_record(self.tmp, URL, 9, 8)
        e = cm.exception
        self.assertIsInstance(e, FailedPrecondition)
        self.assertEqual((e.reason, e.code, e.url, e.seen, e.answered),
                         ("keyservice-rollback", "failed-precondition", URL, 9, 8))
        self.assertTrue(e.message.startswith("keyservice-rollback: "), e.message)
        self.assertIn(str(self.file()), e.message)  # says where to forget a deliberate reset
        self.assertFalse(self.file().exists())  # a refused answer records nothing

    def test_malformed_files_fail_closed(self):
        for text in ("[1]", "{", '{"a": 1, "a": 2}', "\xff"):
            self.file().write_bytes(text.encode("latin-1"))
            with self.subTest(text=text), self.assertRaises(DataLoss):
                sv.highest_seen(self.tmp, URL)
        self.file().write_bytes(b" " * ((1 << 20) + 1))
        with self.assertRaises(DataLoss):
            sv.check_and_record(self.tmp, URL, 0, 1)
        # a value that is no integer counts as nothing seen (as in C++)
        self.file().write_text('{"%s": "7", "x": true}' % URL)
        self.assertEqual(sv.highest_seen(self.tmp, URL), 0)

    def test_header_parsing(self):
        for text, want in (("0", 0), ("42", 42), ("9223372036854775807", 2**63 - 1),
                           (None, -1), ("", -1), ("-1", -1), ("+1", -1), (" 1", -1), ("1.0", -1),
                           ("٣", -1), ("9223372036854775808", -1), ("12345678901234567890", -1)):
            with self.subTest(text=text):
                self.assertEqual(sv.parse_state_version(text), want)


class WholeFileRollback(TempDirCase):
    """KeyService state rolled back between restarts of `moss up` on a fixed port (the URL, so
    the key in the seen-versions file, stays the same)."""

    def up(self):
        return LocalStack(self.root, port_keyservice=self.port)

    def test_python_and_cpp_clients_refuse_a_rolled_back_keyservice(self):
        need_binaries("moss", "moss-keyservice", "moss-worker", "moss-packer")
        self.root, self.port = self.tmp, free_port()
        moss = binary("moss")
        stack = self.up()
        try:
            # 1. Two principals register from Python; each directory is its own client state dir.
            owner, p = stack.principal(self.root, "owner")
            user, u = stack.principal(self.root, "user")
            owner.close()
            user.close()
            seen_before = sv.highest_seen(u, stack.info["keyservice_url"])
            self.assertGreater(seen_before, 0)
        finally:
            stack.stop()
        shutil.copytree(stack.dir / "keyservice", self.root / "keyservice-copy")
        stack = self.up()
        try:
            # 2. The state moves on: the owner uploads a key with the C++ CLI (C++ records in p),
            #    the user adds a request key from Python (Python records in u).
            model_id = f"{owner.principal_id}/m"
            _, key = encrypt_model(b"not really onnx", model_id)
            save_key(key, p / "m.key", model_id)
            run(moss, "model", "upload-key", "--config", p / "client.json", "--key", p / "m.key")
            with KeyServiceClient(ClientConfig.load(u / "client.json")) as ks:
                ks.add_request_key(model_id, stack.worker_measurement)
            url = stack.info["keyservice_url"]
            seen_owner, seen_user = sv.highest_seen(p, url), sv.highest_seen(u, url)
            self.assertGreater(seen_user, seen_owner)
            self.assertGreater(seen_owner, seen_before)
        finally:
            stack.stop()
        # 3. The host puts the older copy back and restarts the KeyService.
        shutil.rmtree(stack.dir / "keyservice")
        shutil.move(self.root / "keyservice-copy", stack.dir / "keyservice")
        stack = self.up()
        try:
            self.assertEqual(stack.info["keyservice_url"], url)
            # Python refuses what the C++ client recorded ...
            with KeyServiceClient(ClientConfig.load(p / "client.json")) as ks, \
                    self.assertRaises(KeyServiceRollback) as cm:
                ks.list_keys(model_id)
            self.assertEqual((cm.exception.seen, cm.exception.url), (seen_owner, url))
            self.assertLess(cm.exception.answered, seen_owner)
            # ... and the C++ client refuses what Python recorded.
            r = run(moss, "audit", "--config", u / "client.json", check=False)
            self.assertNotEqual(r.returncode, 0, r.stdout)
            self.assertIn("keyservice-rollback:", r.stderr)
            # After a deliberate reset, forgetting the line is the way (the error says so).
            self.assertIn(str(p / sv.SEEN_VERSIONS_FILE), cm.exception.message)
            (p / sv.SEEN_VERSIONS_FILE).unlink()
            with KeyServiceClient(ClientConfig.load(p / "client.json")) as ks:
                ks.register()
            self.assertGreater(sv.highest_seen(p, url), 0)
        finally:
            stack.stop()


if __name__ == "__main__":
    unittest.main()
