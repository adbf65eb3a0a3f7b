"""The KeyService rollback check (moss_client.state_versions): the seen-versions file in the C++
client's format, and against the real local stack a whole-file rollback of the KeyService's state
(an older copy of its directory put back between restarts) refused by Python and by the C++
`moss` CLI sharing the same state dir, each refusing what the other recorded."""
import base64
import json
import os
import shutil
import stat
import unittest

from support import LocalStack, TempDirCase, binary, free_port, need_binaries, run
from moss_client import (ClientConfig, DataLoss, FailedPrecondition, Identity, KeyServiceClient,
                         KeyServiceForked, KeyServiceRollback, encrypt_model, save_key)
from moss_client import state_versions as sv

URL = "https://127.0.0.1:7443"


H1, H2 = bytes([1]) * 32, bytes([2]) * 32


class SeenVersionsFile(TempDirCase):
    def file(self):
        return self.tmp / sv.SEEN_VERSIONS_FILE

    def test_records_the_state_in_the_cpp_format(self):
        self.assertEqual(sv.seen_state(self.tmp, URL), sv.SeenState())  # no file yet
        sv.record(self.tmp, URL, sv.SeenState(5, 3, H1))
        # byte for byte what src/client/seen_state_versions.cc writes (nlohmann dump(1)), 0600
        self.assertEqual(self.file().read_text(),
                         '{\n "https://127.0.0.1:7443": {\n  "state_version": 5,\n  "audit_seq": 3,\n'
                         '  "audit_hash": "%s"\n }\n}\n' % H1.hex())
        self.assertEqual(stat.S_IMODE(self.file().stat().st_mode), 0o600)
        sv.record(self.tmp, "https://other:1", sv.SeenState(2, 1, H2, "a2V5"))  # per URL
        sv.record(self.tmp, URL, sv.SeenState(4, 3, H1))  # lower than recorded: kept
        self.assertEqual(sv.seen_state(self.tmp, URL), sv.SeenState(5, 3, H1))
        self.assertEqual(sv.seen_state(self.tmp, "https://other:1"), sv.SeenState(2, 1, H2, "a2V5"))
        self.assertEqual(sv.highest_seen(self.tmp, URL), 5)
        self.assertEqual(sv.highest_seen(None, URL), 0)
        sv.record(None, URL, sv.SeenState(1))  # no state dir: nothing written, nothing raised

    def test_the_version_only_format_still_reads(self):
        self.file().write_text('{"%s": 7}' % URL)
        self.assertEqual(sv.seen_state(self.tmp, URL), sv.SeenState(version=7))
        answered = sv.AnsweredState(8, 4, H1)
        self.assertFalse(sv.needs_proof(URL, sv.seen_state(self.tmp, URL), answered, None))
        with self.assertRaises(KeyServiceRollback):
            sv.needs_proof(URL, sv.seen_state(self.tmp, URL), sv.AnsweredState(6, 4, H1), None)

    def test_an_older_answer_is_a_typed_refusal(self):
        with self.assertRaises(KeyServiceRollback) as cm:
            sv.needs_proof(URL, sv.SeenState(9, 3, H1), sv.AnsweredState(8, 3, H1), self.file())
        e = cm.exception
        self.assertIsInstance(e, FailedPrecondition)
        self.assertEqual((e.reason, e.code, e.url, e.seen, e.answered),
                         ("keyservice-rollback", "failed-precondition", URL, 9, 8))
        self.assertTrue(e.message.startswith("keyservice-rollback: "), e.message)
        self.assertIn(str(self.file()), e.message)  # says where to forget a deliberate reset

    def test_judging_heads(self):
        seen = sv.SeenState(9, 3, H1)
        # the same head at a higher version (nonces only): fresh, no proof
        self.assertFalse(sv.needs_proof(URL, seen, sv.AnsweredState(12, 3, H1), None))
        self.assertEqual(sv.remember_fresh(seen, sv.AnsweredState(12, 3, H1)), sv.SeenState(12, 3, H1))
        # a longer log: proof needed, at the remembered sequence
        self.assertTrue(sv.needs_proof(URL, seen, sv.AnsweredState(12, 5, H2), None))
        self.assertEqual(sv.proof_target(seen), "/v1/audit/head?at=3")
        # another head at or before the remembered sequence: forked
        for answered in (sv.AnsweredState(12, 3, H2), sv.AnsweredState(12, 2, H1)):
            with self.subTest(answered=answered), self.assertRaises(KeyServiceForked) as cm:
                sv.needs_proof(URL, seen, answered, None)
            self.assertEqual(cm.exception.reason, "keyservice-forked")

    def test_proofs(self):
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives import serialization
        sk = Ed25519PrivateKey.generate()
        pub = base64.b64encode(sk.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()

        def proof(seq, h, version, at, at_h, key=sk):
            msg = f"moss-audit-head-at-v1\n{seq}\n{h.hex()}\n{version}\n{at}\n{at_h.hex()}"
            return {"seq": seq, "hash": h.hex(), "state_version": version, "at": at,
                    "at_hash": at_h.hex(), "keyservice_key": pub,
                    "signature": base64.b64encode(key.sign(msg.encode())).decode()}
        seen, answered = sv.SeenState(9, 3, H1), sv.AnsweredState(12, 5, H2)
        # a legitimate advance: the chain still holds H1 at 3; the proven head is remembered
        now = sv.verify_proof(URL, seen, answered, proof(5, H2, 13, 3, H1), None)
        self.assertEqual(now, sv.SeenState(13, 5, H2, pub))
        with self.assertRaises(KeyServiceForked):  # another value at 3
            sv.verify_proof(URL, seen, answered, proof(5, H2, 13, 3, H2), None)
        with self.assertRaises(KeyServiceForked):  # another state identity than the pinned one
            sv.verify_proof(URL, sv.SeenState(9, 3, H1, "b3RoZXI="), answered,
                            proof(5, H2, 13, 3, H1), None)
        with self.assertRaises(KeyServiceForked):  # older than the answer it vouches for
            sv.verify_proof(URL, seen, answered, proof(4, H2, 13, 3, H1), None)
        for bad in (proof(5, H2, 13, 3, H1, key=Ed25519PrivateKey.generate()),
                    proof(5, H2, 13, 2, H1), {"seq": 5}, None):
            with self.subTest(bad=bad), self.assertRaises(DataLoss):
                sv.verify_proof(URL, seen, answered, bad, None)

    def test_malformed_files_fail_closed(self):
        for text in ("[1]", "{", '{"a": 1, "a": 2}', "\xff",
                     '{"%s": {"state_version": 1}}' % URL,
                     '{"%s": {"state_version": 1, "audit_seq": 1, "audit_hash": "00"}}' % URL):
            self.file().write_bytes(text.encode("latin-1"))
            with self.subTest(text=text), self.assertRaises(DataLoss):
                sv.seen_state(self.tmp, URL)
        self.file().write_bytes(b" " * ((1 << 20) + 1))
        with self.assertRaises(DataLoss):
            sv.record(self.tmp, URL, sv.SeenState(1))
        # a value that is neither an integer nor a record counts as nothing seen (as in C++)
        self.file().write_text('{"%s": "7", "x": true}' % URL)
        self.assertEqual(sv.highest_seen(self.tmp, URL), 0)

    def test_header_parsing(self):
        for text, want in (("0", 0), ("42", 42), ("9223372036854775807", 2**63 - 1),
                           (None, -1), ("", -1), ("-1", -1), ("+1", -1), (" 1", -1), ("1.0", -1),
                           ("٣", -1), ("9223372036854775808", -1), ("12345678901234567890", -1)):
            with self.subTest(text=text):
                self.assertEqual(sv.parse_state_version(text), want)
        self.assertEqual(sv.parse_answered_state("7", "3 " + H1.hex()), sv.AnsweredState(7, 3, H1))
        for head in (None, "3", "3  " + H1.hex(), "x " + H1.hex(), "3 " + "AB" * 32,
                     "3 " + H1.hex()[:-2], "-3 " + H1.hex()):
            with self.subTest(head=head):
                self.assertIsNone(sv.parse_answered_state("7", head))
        self.assertIsNone(sv.parse_answered_state(None, "3 " + H1.hex()))


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


class RollbackFollowedByWrites(TempDirCase):
    """The KeyService's state put back to a copy from before a revoke and then written to by the
    host (open registration) until its version passes what the clients remember: the version
    check alone passes, but the audit log has forked from the head the clients remember."""

    def up(self):
        return LocalStack(self.root, port_keyservice=self.port)

    def test_python_and_cpp_clients_refuse_a_forked_keyservice(self):
        need_binaries("moss", "moss-keyservice", "moss-worker", "moss-packer")
        self.root, self.port = self.tmp, free_port()
        moss = binary("moss")
        stack = self.up()
        try:
            owner, p = stack.principal(self.root, "owner")
            user, u = stack.principal(self.root, "user")
            model_id = f"{owner.principal_id}/m"
            _, key = encrypt_model(b"not really onnx", model_id)
            owner.upload_key(model_id, key)
            owner.grant(model_id, user.principal_id, stack.worker_measurement)
            owner.close()
            user.close()
        finally:
            stack.stop()
        shutil.copytree(stack.dir / "keyservice", self.root / "keyservice-copy")
        stack = self.up()
        try:
            url = stack.info["keyservice_url"]
            # The owner revokes from Python (Python records in p); the user's `moss` sees it (C++
            # records in u, after proving the log it remembered grew from the same chain).
            with KeyServiceClient(ClientConfig.load(p / "client.json")) as ks:
                ks.revoke(model_id, user.principal_id, stack.worker_measurement)
            run(moss, "audit", "--config", u / "client.json")
            seen = max(sv.highest_seen(p, url), sv.highest_seen(u, url))
            self.assertGreaterEqual(sv.seen_state(u, url).audit_seq, sv.seen_state(p, url).audit_seq)
        finally:
            stack.stop()
        shutil.rmtree(stack.dir / "keyservice")
        shutil.move(self.root / "keyservice-copy", stack.dir / "keyservice")
        stack = self.up()
        try:
            self.assertEqual(stack.info["keyservice_url"], url)
            # The host's own writes carry the old copy past the remembered version.
            version = 0
            for i in range(100):
                host, d = stack.principal(self.root, f"host{i}")
                host.close()
                version = sv.highest_seen(d, url)
                if version > seen + 1:
                    break
            self.assertGreater(version, seen)  # the version alone no longer tells
            # Python refuses, from what Python and what C++ recorded ...
            for d in (p, u):
                with self.subTest(state_dir=d.name), \
                        KeyServiceClient(ClientConfig.load(d / "client.json")) as ks, \
                        self.assertRaises(KeyServiceForked) as cm:
                    ks.list_grants(model_id) if d == p else ks.audit()
                self.assertEqual((cm.exception.reason, cm.exception.url), ("keyservice-forked", url))
                self.assertIn(str(d / sv.SEEN_VERSIONS_FILE), cm.exception.message)
            # ... and so does the C++ client.
            for d in (p, u):
                r = run(moss, "audit", "--config", d / "client.json", check=False)
                self.assertNotEqual(r.returncode, 0, r.stdout)
                self.assertIn("keyservice-forked:", r.stderr)
        finally:
            stack.stop()


if __name__ == "__main__":
    unittest.main()
