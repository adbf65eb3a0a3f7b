"""A Python owner and a Python user against the real local stack (`moss up`: KeyService,
FnPacker, workers on demand; simulated TEE): publish the example digit classifier, grant,
classify the committed test digits, and the refusals a client must see as typed exceptions."""
import json
import os
import shutil
import unittest

import numpy as np

from support import DIGITS, LocalStack, TempDirCase, binary, need_binaries, run
from moss_client import (AttestationError, ClientConfig, EnvelopeHeader, Identity, InvalidArgument,
                         KeyServiceClient, NotFound, PermissionDenied, Unauthenticated,
                         infer, save_key)
from moss_client import formats
from moss_client.errors import DataLoss
from moss_client.infer import open_infer_response
from moss_client.keyservice import verify_audit_events

LABELS = json.loads((DIGITS / "labels.json").read_text())


class LocalStackFlows(TempDirCase):
    """One stack for the whole class (each test still gets its own principals where it matters)."""

    @classmethod
    def setUpClass(cls):
        need_binaries("moss", "moss-keyservice", "moss-worker", "moss-packer")
        import tempfile
        from pathlib import Path
        cls.root = Path(tempfile.mkdtemp(prefix="moss-py-stack-"))
        cls.stack = LocalStack(cls.root)
        # The owner publishes the model once; its key file is the one `moss model encrypt` writes.
        cls.owner, cls.model_id, cls.model_key = cls.stack.publish_digits(cls.root)
        save_key(cls.model_key, cls.root / "owner" / "digits.key", cls.model_id)

    @classmethod
    def tearDownClass(cls):
        cls.owner.close()
        cls.stack.stop()
        shutil.rmtree(cls.root, True)

    def user(self, name):
        ks, d = self.stack.principal(self.root, name)
        self.addCleanup(ks.close)
        return ks, d

    def digits(self):
        for item in LABELS["inputs"]:
            yield item["label"], np.load(DIGITS / item["file"])

    def fail_with_logs(self, e):
        self.fail(f"{e}\n{self.stack.logs()}")

    def test_owner_and_user_classify_the_digits(self):
        ks, d = self.user("user")
        self.assertEqual(ks.claims.tee, "simulated")
        self.owner.grant(self.model_id, ks.principal_id, self.stack.worker_measurement)
        self.assertIn(ks.principal_id, [g["user_id"] for g in self.owner.list_grants(self.model_id)])
        ks.add_request_key(self.model_id, self.stack.worker_measurement)
        correct, runs = 0, []
        try:
            for i, (label, x) in enumerate(self.digits()):
                r = infer(self.model_id, {"image": x}, self.stack.invoke_url,
                          config=str(d / "client.json"), token=self.stack.token, binary=i % 2 == 0)
                logits = r.outputs["logits"]
                self.assertEqual(logits.dtype, np.float32)
                correct += int(np.argmax(logits)) == label
                runs.append(r.run)
                self.assertIn("inference", r.timing_ms)
                self.assertIsNotNone(r.packer)
        except Exception as e:  # noqa: BLE001 -- show the stack's logs
            self.fail_with_logs(e)
        self.assertEqual(correct, len(LABELS["inputs"]), runs)
        self.assertIn(runs[0], ("cold", "switch"))  # switch: another test's model came first
        self.assertIn("warm", runs[1:])
        # Straight to the worker FnPacker started (its /v1/infer), both wires.
        endpoint = next(i["endpoint"] for i in self.stack.pool_status()["instances"]
                        if i["state"] == "ready")
        first = LABELS["inputs"][0]
        for binary_wire in (True, False):
            r = infer(self.model_id, {"image": np.load(DIGITS / first["file"])},
                      f"http://{endpoint}", config=str(d / "client.json"), binary=binary_wire)
            self.assertEqual(int(np.argmax(r.outputs["logits"])), first["label"])
            self.assertEqual(r.run, "warm")
            self.assertIsNone(r.packer)
        # The C++ client reads the request-key file Python wrote and gets the same answer.
        out = self.tmp / "cpp"
        run(binary("moss"), "infer", "--config", d / "client.json", "--model", self.model_id,
            "--input", f"image={DIGITS / first['file']}", "--output-dir", out,
            "--endpoint", self.stack.invoke_url, "--token", self.stack.token)
        self.assertEqual(int(np.argmax(np.load(out / "logits.npy"))), first["label"])
        # ... and signs with the identity file Python wrote (the KeyService accepts it).
        r = run(binary("moss"), "audit", "--config", d / "client.json", "--model", self.model_id)
        self.assertIn("request-key.set", r.stdout)
        # The owner's audit shows the releases to the worker; its events chain and agree with
        # the signed audit head.
        head = self.owner.audit_head()
        events = self.owner.audit(self.model_id)["events"]
        verify_audit_events(events, head)
        # A broken link between consecutive events, and an event that differs from the signed head.
        e1 = {"seq": 1, "hash": "aa" * 32, "prev_hash": "00" * 32}
        e2 = {"seq": 2, "hash": "bb" * 32, "prev_hash": "aa" * 32}
        verify_audit_events([e1, e2])
        with self.assertRaises(DataLoss):
            verify_audit_events([e1, dict(e2, prev_hash="cc" * 32)])
        with self.assertRaises(DataLoss):
            verify_audit_events([dict(e1, seq=head["seq"], hash="11" * 32)], head)
        types = [e["type"] for e in events]
        self.assertIn("key.release", types)
        self.assertIn("grant.add", types)

    def test_wrong_request_key_is_unauthenticated(self):
        ks, d = self.user("wrongkey")
        self.owner.grant(self.model_id, ks.principal_id, self.stack.worker_measurement)
        ks.add_request_key(self.model_id, self.stack.worker_measurement)
        label, x = next(self.digits())
        with self.assertRaises(Unauthenticated) as cm:
            infer(self.model_id, {"image": x}, self.stack.invoke_url, identity=ks.identity,
                  request_key=os.urandom(32), token=self.stack.token)
        self.assertEqual(cm.exception.http_status, 401)

    def test_sealed_error_after_the_worker_opened_the_request(self):
        # The input's name is request data: the worker's error names it only inside the sealed
        # response; the cleartext carries the fixed category alone (docs/worker-api.md, "Errors").
        ks, d = self.user("sealed")
        self.owner.grant(self.model_id, ks.principal_id, self.stack.worker_measurement)
        key = ks.add_request_key(self.model_id, self.stack.worker_measurement)
        _, x = next(self.digits())
        for use_binary in (True, False):
            with self.assertRaises(InvalidArgument) as cm:
                infer(self.model_id, {"secret_input_name": x}, self.stack.invoke_url,
                      identity=ks.identity, request_key=key, token=self.stack.token, binary=use_binary)
            self.assertEqual(cm.exception.http_status, 400)
            self.assertEqual(cm.exception.detail.get("category"), "bad-input")
            self.assertIn("secret_input_name", cm.exception.message)

    def test_tampered_envelope_is_unauthenticated(self):
        ks, d = self.user("tamper")
        self.owner.grant(self.model_id, ks.principal_id, self.stack.worker_measurement)
        key = ks.add_request_key(self.model_id, self.stack.worker_measurement)
        _, x = next(self.digits())
        from moss_client import safetensors
        import http.client
        from urllib.parse import urlsplit
        h = EnvelopeHeader(self.model_id, ks.principal_id, "tamper-1", "request")
        env = bytearray(formats.seal_envelope(key, h, safetensors.encode({"image": x})))
        env[-30] ^= 1
        u = urlsplit(self.stack.invoke_url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        conn.request("POST", u.path, body=bytes(env), headers={
            "Content-Type": formats.ENVELOPE_MEDIA_TYPE, "Authorization": f"Bearer {self.stack.token}"})
        resp = conn.getresponse()
        with self.assertRaises(Unauthenticated):
            open_infer_response(key, h, resp.status, dict(resp.getheaders()), resp.read(), "packer")
        # and a response altered on its way back fails to open on the client
        good = formats.seal_envelope(key, h.response(), safetensors.encode({"logits": x}))
        bad = bytearray(good)
        bad[-1] ^= 1
        with self.assertRaises(Unauthenticated):
            open_infer_response(key, h, 200, {"Content-Type": formats.ENVELOPE_MEDIA_TYPE}, bytes(bad), "t")
        with self.assertRaises(Unauthenticated):  # a response to another request
            other = EnvelopeHeader(self.model_id, ks.principal_id, "tamper-2", "request")
            open_infer_response(key, other, 200, {"Content-Type": formats.ENVELOPE_MEDIA_TYPE}, good, "t")

    def test_revoked_grant_is_permission_denied(self):
        ks, d = self.user("revoked")
        self.owner.grant(self.model_id, ks.principal_id, self.stack.worker_measurement)
        ks.add_request_key(self.model_id, self.stack.worker_measurement)
        self.owner.revoke(self.model_id, ks.principal_id, self.stack.worker_measurement)
        with self.assertRaises(NotFound) as cm:  # revoking twice: the grant is gone
            self.owner.revoke(self.model_id, ks.principal_id, self.stack.worker_measurement)
        self.assertEqual(cm.exception.reason, "unknown-grant")
        _, x = next(self.digits())
        with self.assertRaises(PermissionDenied) as cm:
            infer(self.model_id, {"image": x}, self.stack.invoke_url,
                  config=str(d / "client.json"), token=self.stack.token)
        self.assertEqual(cm.exception.http_status, 403)
        self.assertIn("key.release.denied", [e["type"] for e in self.owner.audit(self.model_id)["events"]])

    def test_not_owner_and_unknown_model(self):
        ks, _ = self.user("intruder")
        with self.assertRaises(PermissionDenied) as cm:
            ks.grant(self.model_id, ks.principal_id, self.stack.worker_measurement)
        self.assertEqual(cm.exception.reason, "not-owner")
        # A request key for a model that does not exist is accepted like one for a model that does:
        # the KeyService is no oracle for which models exist (docs/keyservice-api.md).
        ks.add_request_key(f"{ks.principal_id}/nothing", self.stack.worker_measurement)

    def test_example_script(self):
        """examples/python/moss_quickstart.py works against this stack."""
        from support import ROOT
        r = run("/usr/bin/python3", ROOT / "examples" / "python" / "moss_quickstart.py",
                "--stack-dir", self.stack.dir, check=False)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("8 of 8 digits classified correctly", r.stdout)

    def test_attested_certificate_checks(self):
        """The real KeyService certificate: verifies for its purpose and now; refused for another
        purpose (report data), after its lifetime, and with its evidence copied into another cert
        (report data binds the key)."""
        import socket
        import ssl
        from urllib.parse import urlsplit
        from moss_client import attestation as A
        u = urlsplit(self.stack.info["keyservice_url"])
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        with socket.create_connection((u.hostname, u.port), timeout=10) as raw, \
                ctx.wrap_socket(raw) as tls:
            der = tls.getpeercert(binary_form=True)
        policy = A.Policy.load(self.stack.dir / "policies" / "trust-keyservice.json")
        key = A.sim_platform_public_key(self.stack.dir / "sim" / "platform.key")
        kw = dict(allow_simulated=True, sim_platform_key=key)
        claims = A.verify_attested_certificate(der, "moss-keyservice", policy, **kw)
        self.assertEqual(claims.tee, "simulated")
        cert = A.parse_attested_certificate(der)
        self.assertLess(cert.not_before, cert.not_after)
        with self.assertRaises(AttestationError) as cm:
            A.verify_attested_certificate(der, "moss-worker", policy, **kw)
        self.assertEqual(cm.exception.check, "report-data")
        with self.assertRaises(AttestationError) as cm:
            A.verify_attested_certificate(der, "moss-keyservice", policy, at=cert.not_after + 1, **kw)
        self.assertEqual(cm.exception.check, "certificate-validity")
        # the same evidence under another key: a byte of the SPKI's key bits changed
        spki_at = der.find(cert.spki_der)
        forged = bytearray(der)
        forged[spki_at + len(cert.spki_der) - 1] ^= 1
        with self.assertRaises(AttestationError) as cm:
            A.verify_attested_certificate(bytes(forged), "moss-keyservice", policy, **kw)
        self.assertEqual(cm.exception.check, "report-data")

    def test_untrusted_keyservice_gets_nothing(self):
        d = self.stack.principal_dir(self.root, "wary")
        Identity.new(d)
        cfg = json.loads((d / "client.json").read_text())
        policy = json.loads((self.stack.dir / "policies" / "trust-keyservice.json").read_text())
        # 1. a policy naming another measurement
        policy["measurements"] = [{"tee": "simulated", "measurement": "00" * 32}]
        (d / "other-policy.json").write_text(json.dumps(policy))
        cfg1 = dict(cfg, keyservice_policy=str(d / "other-policy.json"))
        (d / "c1.json").write_text(json.dumps(cfg1))
        # 2. a client that does not allow simulated evidence
        cfg2 = dict(cfg, allow_simulated=False)
        (d / "c2.json").write_text(json.dumps(cfg2))
        # 3. another simulated platform key
        fd = os.open(d / "other.key", os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, os.urandom(32))
        os.close(fd)
        cfg3 = dict(cfg, sim_key_file=str(d / "other.key"))
        (d / "c3.json").write_text(json.dumps(cfg3))
        for name, check in (("c1.json", "measurement"), ("c2.json", "simulated"), ("c3.json", "simulated")):
            ks = KeyServiceClient(ClientConfig.load(d / name))
            with self.subTest(config=name), self.assertRaises(AttestationError) as cm:
                ks.register()
            self.assertEqual(cm.exception.check, check)
            self.assertIsNone(ks.claims)
        # none of those requests was sent: registering with the right config creates the principal
        ks = KeyServiceClient(ClientConfig.load(d / "client.json"))
        self.addCleanup(ks.close)
        self.assertTrue(ks.register()["created"])

if __name__ == "__main__":
    unittest.main()
