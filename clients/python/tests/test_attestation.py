"""moss_client.attestation against the real SGX/TDX quotes in tests/data/attestation (the same
files the C++ DcapVerifier tests use), each check's refusal, the policy rules, simulated evidence,
and agreement with `moss attest verify` when the CLI is built."""
import hashlib
import json
import os
import struct
import unittest
from datetime import datetime, timedelta, timezone

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID

from support import ATTESTATION_DATA, TempDirCase, binary, need_binaries, run
from moss_client import attestation as A
from moss_client.errors import AttestationError, InvalidArgument, Unimplemented

EXPECTED = json.loads((ATTESTATION_DATA / "expected.json").read_text())["quotes"]
QUOTES = sorted(EXPECTED)


def when(name):
    t = ((EXPECTED[name].get("collateral") or {}).get("suggested_verification_time"))
    return int(datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp()) if t else None


def load(name):
    return (ATTESTATION_DATA / name).read_bytes()


def check_of(fn, *a, **kw):
    try:
        fn(*a, **kw)
    except AttestationError as e:
        return e.check
    return None


class RealQuotes(unittest.TestCase):
    def test_every_quote_verifies_with_expected_claims(self):
        self.assertEqual(len(QUOTES), 10)
        for name in QUOTES:
            e = EXPECTED[name]
            with self.subTest(quote=name):
                self.assertTrue(all(e["expected_checks"].values()))
                c = A.verify_dcap_quote(load(name), at=when(name))
                r = e["report"]
                self.assertEqual(c.quote_version, e["version"])
                self.assertEqual(c.report_data.hex(), r["reportdata"])
                if e["tee"] == "SGX":
                    self.assertEqual((c.tee, c.measurement, c.mrsigner, c.product_id, c.svn),
                                     ("sgx", r["mrenclave"], r["mrsigner"], r["isvprodid"], r["isvsvn"]))
                    self.assertEqual(c.debug, bool(bytes.fromhex(r["attributes"])[0] & 2))
                else:
                    self.assertEqual((c.tee, c.measurement), ("tdx", r["mrtd"]))
                    self.assertEqual(c.rtmr, [r[f"rtmr{i}"] for i in range(4)])
                    if "td_attributes" in r:
                        self.assertEqual(c.debug, bool(bytes.fromhex(r["td_attributes"])[0] & 1))

    def test_quote_signature(self):
        q = bytearray(load("sgx-v3-phala-1.quote"))
        q[48 + 64] ^= 1  # MRENCLAVE
        self.assertEqual(check_of(A.verify_dcap_quote, bytes(q), at=when("sgx-v3-phala-1.quote")),
                         "quote-signature")

    def test_qe_report_data(self):
        q = A.parse_quote(load("sgx-v3-phala-1.quote"))
        raw = bytearray(load("sgx-v3-phala-1.quote"))
        pos = raw.find(q.qe_auth_data) if q.qe_auth_data else raw.find(q.qe_report) + 320
        raw[pos] ^= 1
        self.assertEqual(check_of(A.verify_dcap_quote, bytes(raw), at=when("sgx-v3-phala-1.quote")),
                         "qe-report-data")

    def test_qe_report_signature(self):
        for name in ("sgx-v3-phala-1.quote", "tdx-v4-phala-1.quote"):
            q = A.parse_quote(load(name))
            raw = bytearray(load(name))
            raw[raw.find(q.qe_report) + 2] ^= 1  # QE CPUSVN: signed by the PCK, not in REPORTDATA
            with self.subTest(quote=name):
                self.assertEqual(check_of(A.verify_dcap_quote, bytes(raw), at=when(name)),
                                 "qe-report-signature")

    def test_pck_chain_forged_and_expired(self):
        name = "sgx-v3-phala-1.quote"
        self.assertEqual(check_of(A.verify_dcap_quote, load(name), at=946684800), "pck-chain")
        forged = _with_chain(load(name), _forged_chain())
        self.assertEqual(check_of(A.verify_dcap_quote, forged, at=when(name)), "pck-chain")

    def test_structure(self):
        q = load("tdx-v4-google-1.quote")
        for bad in (q[:100], q[:1000], struct.pack("<H", 6) + q[2:], q[:2] + struct.pack("<H", 3) + q[4:]):
            with self.subTest(n=len(bad)):
                self.assertIn(check_of(A.verify_evidence, bad), ("quote-structure", "evidence"))


def _forged_chain() -> bytes:
    """Leaf and 'Intel SGX PCK Platform CA' made up here: the right names, the wrong keys."""
    now = datetime.now(timezone.utc)
    out = b""
    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Intel SGX Root CA")])
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Intel SGX PCK Platform CA")])
    leaf_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Intel SGX PCK Certificate")])
    for subject, issuer, key, signer in ((leaf_name, ca_name, leaf_key, ca_key),
                                         (ca_name, root_name, ca_key, ca_key)):
        cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=1))
                .sign(signer, hashes.SHA256()))
        out += cert.public_bytes(serialization.Encoding.PEM)
    return out


def _with_chain(quote: bytes, pem: bytes) -> bytes:
    """A v3 quote with its PCK chain replaced (length fields fixed up)."""
    start = quote.index(b"-----BEGIN CERTIFICATE-----")
    old_len = struct.unpack("<I", quote[start - 4:start])[0]
    sig_len = struct.unpack("<I", quote[432:436])[0]
    new = bytearray(quote[:start - 4] + struct.pack("<I", len(pem)) + pem + quote[start + old_len:])
    new[432:436] = struct.pack("<I", sig_len - old_len + len(pem))
    return bytes(new)


def _policy(**kw) -> A.Policy:
    j = {"version": 1, "measurements": []}
    j.update(kw)
    return A.Policy.parse(json.dumps(j))


class Policies(unittest.TestCase):
    def setUp(self):
        self.sgx = A.verify_dcap_quote(load("sgx-v3-phala-1.quote"), at=when("sgx-v3-phala-1.quote"))
        self.dbg = A.verify_dcap_quote(load("sgx-v3-mobilecoin-1.quote"),
                                       at=when("sgx-v3-mobilecoin-1.quote"))
        self.tdx = A.verify_dcap_quote(load("tdx-v4-google-1.quote"), at=when("tdx-v4-google-1.quote"))

    def test_rules_in_order(self):
        no_collateral = {"accept": ["Unknown"], "require_collateral": False}
        ok = _policy(measurements=[{"tee": "sgx", "mrenclave": self.sgx.measurement}], tcb=no_collateral)
        ok.check(self.sgx)
        by_signer = _policy(measurements=[{"tee": "sgx", "mrsigner": self.sgx.mrsigner,
                                           "product_id": self.sgx.product_id,
                                           "min_svn": self.sgx.svn}], tcb=no_collateral)
        by_signer.check(self.sgx)
        too_new = _policy(measurements=[{"tee": "sgx", "mrsigner": self.sgx.mrsigner,
                                         "product_id": self.sgx.product_id,
                                         "min_svn": self.sgx.svn + 1}], tcb=no_collateral)
        self.assertEqual(check_of(too_new.check, self.sgx), "measurement")
        self.assertEqual(check_of(_policy(tcb=no_collateral).check, self.sgx), "measurement")
        dbg = _policy(measurements=[{"tee": "sgx", "mrenclave": self.dbg.measurement}], tcb=no_collateral)
        self.assertEqual(check_of(dbg.check, self.dbg), "debug")
        strict = _policy(measurements=[{"tee": "sgx", "mrenclave": self.sgx.measurement}])
        self.assertEqual(check_of(strict.check, self.sgx), "collateral")
        uptodate = _policy(measurements=[{"tee": "sgx", "mrenclave": self.sgx.measurement}],
                           tcb={"require_collateral": False})
        self.assertEqual(check_of(uptodate.check, self.sgx), "tcb-status")
        tdx = _policy(measurements=[{"tee": "tdx", "mrtd": self.tdx.measurement,
                                     "rtmr0": self.tdx.rtmr[0]}], tcb=no_collateral)
        tdx.check(self.tdx)
        wrong_rtmr = _policy(measurements=[{"tee": "tdx", "mrtd": self.tdx.measurement,
                                            "rtmr1": "00" * 48}], tcb=no_collateral)
        self.assertEqual(check_of(wrong_rtmr.check, self.tdx), "measurement")

    def test_strict_parsing(self):
        for text, exc in (('{"version":1,"allow_simulatd":true}', InvalidArgument),
                          ('{"version":2}', Unimplemented), ('{}', InvalidArgument),
                          ('{"version":1,"measurements":[{"tee":"sgx","mrenclave":"xyz"}]}', InvalidArgument),
                          ('{"version":1,"tcb":{"accept":["Revoked"]}}', InvalidArgument),
                          ('{"version":1,"measurements":[{"tee":"sev"}]}', InvalidArgument)):
            with self.subTest(text=text), self.assertRaises(exc):
                A.Policy.parse(text)

    def test_repository_policies_parse(self):
        """The policy files the C++ services ship with (deploy/policies) parse here too."""
        from support import ROOT
        found = sorted((ROOT / "deploy" / "policies").glob("*.json"))
        self.assertGreaterEqual(len(found), 2)
        for p in found:
            with self.subTest(policy=p.name):
                policy = A.Policy.load(p)
                self.assertTrue(policy.measurements)

def sim_evidence(seed: bytes, measurement: bytes, report_data: bytes, identity: str = "x") -> bytes:
    key = Ed25519PrivateKey.from_private_bytes(seed)
    pub = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    body = (b"MOSSSIM1" + b"\x01\x00" + measurement + report_data
            + struct.pack("<H", len(identity)) + identity.encode() + pub)
    return body + key.sign(b"moss simulated evidence v1\x00" + body)


class Simulated(TempDirCase):
    def setUp(self):
        super().setUp()
        self.seed = os.urandom(32)
        self.keyfile = self.tmp / "platform.key"
        fd = os.open(self.keyfile, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, self.seed)
        os.close(fd)
        self.pub = A.sim_platform_public_key(self.keyfile)
        self.m = os.urandom(32)
        self.ev = sim_evidence(self.seed, self.m, bytes(64))

    def test_verifies_and_policy(self):
        c = A.verify_evidence(self.ev, allow_simulated=True, sim_platform_key=self.pub)
        self.assertEqual((c.tee, c.measurement, c.identity, c.tcb_status),
                         ("simulated", self.m.hex(), "x", "Simulated"))
        _policy(allow_simulated=True, measurements=[{"tee": "simulated", "measurement": self.m.hex()}]).check(c)
        self.assertEqual(check_of(_policy(measurements=[{"tee": "simulated", "measurement": self.m.hex()}]).check, c),
                         "simulated")

    def test_refusals(self):
        self.assertEqual(check_of(A.verify_evidence, self.ev, sim_platform_key=self.pub), "simulated")
        other = sim_evidence(os.urandom(32), self.m, bytes(64))
        self.assertEqual(check_of(A.verify_evidence, other, allow_simulated=True,
                                  sim_platform_key=self.pub), "simulated")
        bad = bytearray(self.ev)
        bad[20] ^= 1
        self.assertEqual(check_of(A.verify_evidence, bytes(bad), allow_simulated=True,
                                  sim_platform_key=self.pub), "simulated")
        os.chmod(self.keyfile, 0o644)
        with self.assertRaises(Exception):
            A.sim_platform_public_key(self.keyfile)

    def test_attested_tls_report_data(self):
        spki = b"\x30\x03abc"
        rd = A.attested_tls_report_data(spki, "moss-keyservice")
        self.assertEqual(rd[:32], hashlib.sha256(spki).digest())
        self.assertEqual(rd[32:], hashlib.sha256(b"moss-attested-tls-v1\x00moss-keyservice").digest())


class AgreesWithCli(TempDirCase):
    """`moss attest verify` (C++ DcapVerifier) and moss_client extract the same claims."""

    def test_claims_match_cpp(self):
        need_binaries("moss")
        for name in QUOTES:
            with self.subTest(quote=name):
                r = run(binary("moss"), "attest", "verify", "--quote", ATTESTATION_DATA / name, check=False)
                self.assertEqual(r.returncode, 0, r.stderr)
                cpp = json.loads(r.stdout)
                py = A.verify_dcap_quote(load(name))
                self.assertEqual(cpp["measurement"], py.measurement)
                self.assertEqual(cpp["report_data"], py.report_data.hex())
                self.assertEqual(cpp["debug"], py.debug)
                self.assertEqual(cpp["tee"], py.tee)

    def test_simulated_measurement_matches_cpp(self):
        need_binaries("moss", "moss-worker")
        r = run(binary("moss"), "attest", "measure", "--binary", binary("moss-worker"),
                "--identity", "moss-worker")
        self.assertIn(A.simulated_measurement(binary("moss-worker"), "moss-worker"), r.stdout)


if __name__ == "__main__":
    unittest.main()
