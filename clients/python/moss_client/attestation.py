"""Verification of MOSS attestation evidence in Python: simulated evidence, Intel SGX/TDX DCAP
quotes, the policy file (docs/attestation.md), and attested TLS certificates.

What the DCAP verifier here checks, in order (names as the C++ ``DcapVerifier``):

1. ``quote-structure``: quote version 3 (SGX), 4 or 5 (TDX), attestation key type 2, certification
   data type 5 (inside type 6 for v4/v5), every length bounded.
2. ``quote-signature``: ECDSA P-256 (raw r||s) by the attestation key over header and body (v5:
   also body type and size).
3. ``qe-report-data``: SHA-256(attestation key || QE authentication data) equals the first 32 bytes
   of the QE report's REPORTDATA, and the other 32 are zero.
4. ``pck-chain``: leaf -> intermediate signatures, the intermediate signed by the **pinned** Intel
   SGX Root CA (SHA-256 fingerprint ``44a0196b...74d3``, shipped in this package; the root carried
   by the quote is never trusted), and every certificate valid at the verification time.
5. ``qe-report-signature``: the QE report is signed by the PCK leaf's key.

What it does **not** check: collateral (TCB info, QE identity, CRLs). Claims therefore carry
``tcb.status = "Unknown"`` and no collateral, and a policy that requires collateral (the default,
``tcb.require_collateral: true``) refuses DCAP evidence with the ``collateral`` rule, exactly as the
C++ verifier does without collateral. Use the C++ ``moss attest verify --collateral`` for a full
TCB evaluation. Simulated evidence is verified completely (it is only an Ed25519 signature).
"""
from __future__ import annotations

import hashlib
import json
import os
import struct
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import (Ed25519PrivateKey,
                                                                 Ed25519PublicKey)
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from .errors import AttestationError, InvalidArgument, NotFound, PermissionDenied, Unimplemented

ATTESTED_TLS_OID = "2.25.73943003643445851295599434248433295863.1"
INTEL_ROOT_SHA256 = "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3"
SIM_MAGIC = b"MOSSSIM1"
_SIM_FIXED = 8 + 2 + 32 + 64 + 2 + 32 + 64
_MAX_QUOTE = 64 * 1024


@dataclass
class Claims:
    """What verified evidence says (the JSON claims of ``moss attest verify``, in part)."""
    tee: str                       # "sgx" | "tdx" | "simulated"
    measurement: str               # MRENCLAVE, MRTD or the simulated measurement (hex)
    report_data: bytes
    quote_version: int = 1
    debug: bool = False
    mrsigner: str = ""
    product_id: int = 0
    svn: int = 0
    rtmr: List[str] = field(default_factory=list)
    identity: str = ""             # simulated identity
    tcb_status: str = "Unknown"
    advisory_ids: List[str] = field(default_factory=list)
    collateral_checked: bool = False
    verified_at: int = 0

    @property
    def simulated(self) -> bool:
        return self.tee == "simulated"

    def to_json(self) -> Dict[str, Any]:
        j: Dict[str, Any] = {"tee": self.tee, "simulated": self.simulated,
                             "measurement": self.measurement, "debug": self.debug,
                             "report_data": self.report_data.hex(),
                             "tcb": {"status": self.tcb_status}}
        if self.tee == "sgx":
            j.update(mrenclave=self.measurement, mrsigner=self.mrsigner,
                     product_id=self.product_id, svn=self.svn)
        if self.tee == "tdx":
            j.update(mrtd=self.measurement, **{f"rtmr{i}": r for i, r in enumerate(self.rtmr)})
        if self.simulated:
            j["identity"] = self.identity
            j["warning"] = "simulated TEE: no hardware protection"
        return j


# ------------------------------------------------------------------------------------- simulated
def sim_platform_public_key(path: Union[str, os.PathLike]) -> bytes:
    """The public half of a simulated platform key file (32-byte Ed25519 seed, which must not be
    readable by group or others, as the C++ loader requires)."""
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise NotFound(f"no simulated platform key at {p}") from None
    if st.st_mode & 0o077:
        raise PermissionDenied(f"simulated platform key {p} is readable by others; chmod 600")
    seed = p.read_bytes()
    if len(seed) != 32:
        raise InvalidArgument("simulated platform key must be 32 bytes")
    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def verify_simulated_evidence(ev: bytes, platform_key: Optional[bytes], allow: bool,
                              at: Optional[int] = None) -> Claims:
    """Verifies ``MOSSSIM1`` evidence against the platform public key. Refused unless ``allow``."""
    if not allow:
        raise AttestationError("simulated", "simulated evidence refused (not allowed by configuration)")
    if platform_key is None:
        raise AttestationError("simulated", "no simulated platform key to verify with")
    if ev[:8] != SIM_MAGIC or len(ev) < _SIM_FIXED:
        raise AttestationError("simulated", "evidence too short or wrong magic")
    if ev[8] != 1 or ev[9] != 0:
        raise AttestationError("simulated", f"evidence version {ev[8]} unknown")
    id_len = ev[106] | ev[107] << 8
    if id_len > 256 or len(ev) != _SIM_FIXED + id_len:
        raise AttestationError("simulated", "evidence size does not match its identity length")
    key = ev[108 + id_len:140 + id_len]
    if key != platform_key:
        raise AttestationError("simulated", f"signed by platform key {key.hex()}, expected "
                               f"{platform_key.hex()}")
    try:
        Ed25519PublicKey.from_public_bytes(platform_key).verify(
            ev[140 + id_len:], b"moss simulated evidence v1\x00" + ev[:140 + id_len])
    except InvalidSignature:
        raise AttestationError("simulated", "evidence signature does not verify") from None
    return Claims(tee="simulated", measurement=ev[10:42].hex(), report_data=bytes(ev[42:106]),
                  identity=ev[108:108 + id_len].decode("utf-8", "replace"),
                  tcb_status="Simulated", verified_at=int(at if at is not None else time.time()))


def simulated_measurement(binary: Union[str, os.PathLike], identity: str) -> str:
    """``SHA-256("moss-sim-measurement-v1" || 0 || SHA-256(binary) || identity)``, hex."""
    h = hashlib.sha256(Path(binary).read_bytes()).digest()
    return hashlib.sha256(b"moss-sim-measurement-v1\x00" + h + identity.encode()).hexdigest()


# ------------------------------------------------------------------------------------------ DCAP
class _Reader:
    def __init__(self, b: bytes):
        self.b, self.pos = b, 0

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > len(self.b):
            raise AttestationError("quote-structure", f"quote truncated: {what} needs {n} bytes "
                                   f"at offset {self.pos}, {len(self.b) - self.pos} left")
        out = self.b[self.pos:self.pos + n]
        self.pos += n
        return out

    def u16(self, what: str) -> int:
        return struct.unpack("<H", self.take(2, what))[0]

    def u32(self, what: str) -> int:
        return struct.unpack("<I", self.take(4, what))[0]


@dataclass
class Quote:
    """A parsed (not yet verified) DCAP quote."""
    version: int
    tee_type: int
    body: bytes
    signed_region: bytes
    quote_signature: bytes
    attestation_key: bytes
    qe_report: bytes
    qe_report_signature: bytes
    qe_auth_data: bytes
    pck_chain_pem: bytes

    @property
    def is_tdx(self) -> bool:
        return self.tee_type == 0x81


def parse_quote(q: bytes) -> Quote:
    """Parses an SGX v3 or TDX v4/v5 ECDSA quote (structure only; see :func:`verify_dcap_quote`)."""
    if len(q) > _MAX_QUOTE:
        raise AttestationError("quote-structure", f"quote larger than {_MAX_QUOTE} bytes")
    r = _Reader(q)
    version, key_type, tee_type = r.u16("version"), r.u16("att_key_type"), r.u32("tee_type")
    r.take(40, "header")
    if version not in (3, 4, 5):
        raise AttestationError("quote-structure", f"quote version {version} not supported")
    if key_type != 2:
        raise AttestationError("quote-structure", f"attestation key type {key_type} not supported")
    if tee_type not in (0, 0x81) or (version == 3) != (tee_type == 0) and version != 5:
        raise AttestationError("quote-structure", f"TEE type 0x{tee_type:x} with version {version}")
    body_size = 584 if tee_type == 0x81 else 384
    if version == 5:
        btype, bsize = r.u16("body.type"), r.u32("body.size")
        want = {1: 384, 2: 584, 3: 648}.get(btype)
        if want is None or bsize != want or (btype == 1) != (tee_type == 0):
            raise AttestationError("quote-structure", f"v5 body type {btype} size {bsize}")
        body_size = want
    body = r.take(body_size, "report body")
    signed = q[:r.pos]
    sig_len = r.u32("signature data size")
    s = _Reader(r.take(sig_len, "signature data"))
    quote_sig = s.take(64, "quote signature")
    att_key = s.take(64, "attestation key")
    if version != 3:
        outer_type, outer_len = s.u16("outer cert type"), s.u32("outer cert size")
        if outer_type != 6:
            raise AttestationError("quote-structure", f"outer certification data type {outer_type}")
        inner = _Reader(s.take(outer_len, "QE report certification data"))
    else:
        inner = s
    qe_report = inner.take(384, "QE report")
    qe_sig = inner.take(64, "QE report signature")
    auth = inner.take(inner.u16("QE auth data size"), "QE auth data")
    ctype, clen = inner.u16("cert data type"), inner.u32("cert data size")
    if ctype != 5:
        raise AttestationError("quote-structure", f"certification data type {ctype} (5 is supported)")
    pem = inner.take(clen, "PCK certificate chain").rstrip(b"\0")
    if inner.pos != len(inner.b) or (inner is not s and s.pos != len(s.b)):
        raise AttestationError("quote-structure", "unexplained bytes inside signature data")
    return Quote(version, tee_type, body, signed, quote_sig, att_key, qe_report, qe_sig, auth, pem)


def _ecdsa_verify(pub: ec.EllipticCurvePublicKey, raw_sig: bytes, data: bytes) -> bool:
    sig = encode_dss_signature(int.from_bytes(raw_sig[:32], "big"),
                               int.from_bytes(raw_sig[32:], "big"))
    try:
        pub.verify(sig, data, ec.ECDSA(hashes.SHA256()))
        return True
    except InvalidSignature:
        return False


def _pinned_root() -> x509.Certificate:
    pem = (Path(__file__).with_name("intel-sgx-root-ca.pem")).read_bytes()
    root = x509.load_pem_x509_certificate(pem)
    if root.fingerprint(hashes.SHA256()).hex() != INTEL_ROOT_SHA256:
        raise AttestationError("pck-chain", "the packaged Intel root does not match the pinned fingerprint")
    return root


def _cert_signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    pub = issuer.public_key()
    if not isinstance(pub, ec.EllipticCurvePublicKey) or cert.issuer != issuer.subject:
        return False
    try:
        pub.verify(cert.signature, cert.tbs_certificate_bytes,
                   ec.ECDSA(cert.signature_hash_algorithm))
        return True
    except InvalidSignature:
        return False


def verify_dcap_quote(quote: bytes, at: Optional[int] = None) -> Claims:
    """Checks 1-5 of the module docstring; returns the claims (``tcb_status`` "Unknown").
    Raises AttestationError naming the failed check."""
    now = int(at if at is not None else time.time())
    q = parse_quote(quote)
    att_pub = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(),
                                                           b"\x04" + q.attestation_key)
    if not _ecdsa_verify(att_pub, q.quote_signature, q.signed_region):
        raise AttestationError("quote-signature", "the attestation key's signature does not verify")
    rd = q.qe_report[320:384]
    if (hashlib.sha256(q.attestation_key + q.qe_auth_data).digest() != rd[:32]
            or rd[32:] != bytes(32)):
        raise AttestationError("qe-report-data", "the QE report does not bind the attestation key")
    try:
        chain = [x509.load_pem_x509_certificate(b"-----BEGIN CERTIFICATE-----" + part)
                 for part in q.pck_chain_pem.split(b"-----BEGIN CERTIFICATE-----")[1:]]
    except ValueError as e:
        raise AttestationError("pck-chain", f"unreadable PCK chain ({e})") from None
    if len(chain) < 2:
        raise AttestationError("pck-chain", "the PCK chain needs a leaf and an intermediate")
    root = _pinned_root()
    leaf, inter = chain[0], chain[1]
    if not _cert_signed_by(leaf, inter):
        raise AttestationError("pck-chain", "the PCK leaf is not signed by the intermediate CA")
    if not _cert_signed_by(inter, root):
        raise AttestationError("pck-chain", "the intermediate CA is not signed by the pinned Intel SGX Root CA")
    t = datetime.fromtimestamp(now, timezone.utc).replace(tzinfo=None)
    for c in (leaf, inter, root):
        if not c.not_valid_before <= t <= c.not_valid_after:
            raise AttestationError("pck-chain", f"certificate {c.subject.rfc4514_string()} not valid at "
                                   f"{t.isoformat()}Z")
    leaf_pub = leaf.public_key()
    if (not isinstance(leaf_pub, ec.EllipticCurvePublicKey)
            or not _ecdsa_verify(leaf_pub, q.qe_report_signature, q.qe_report)):
        raise AttestationError("qe-report-signature", "the QE report is not signed by the PCK key")
    b = q.body
    if q.is_tdx:
        return Claims(tee="tdx", measurement=b[136:184].hex(), report_data=bytes(b[520:584]),
                      quote_version=q.version, debug=bool(b[120] & 0x01),
                      rtmr=[b[328 + 48 * i:376 + 48 * i].hex() for i in range(4)], verified_at=now)
    return Claims(tee="sgx", measurement=b[64:96].hex(), report_data=bytes(b[320:384]),
                  quote_version=q.version, debug=bool(b[48] & 0x02), mrsigner=b[128:160].hex(),
                  product_id=struct.unpack("<H", b[256:258])[0],
                  svn=struct.unpack("<H", b[258:260])[0], verified_at=now)


def verify_evidence(evidence: bytes, *, allow_simulated: bool = False,
                    sim_platform_key: Optional[bytes] = None, at: Optional[int] = None) -> Claims:
    """Detects the evidence type from its bytes and verifies it (no policy)."""
    if evidence[:8] == SIM_MAGIC:
        return verify_simulated_evidence(evidence, sim_platform_key, allow_simulated, at)
    if len(evidence) >= 4 and struct.unpack("<H", evidence[:2])[0] in (3, 4, 5) \
            and struct.unpack("<H", evidence[2:4])[0] == 2:
        return verify_dcap_quote(evidence, at)
    raise AttestationError("evidence", "neither simulated evidence nor a DCAP ECDSA quote")


# ---------------------------------------------------------------------------------------- policy
_TCB_KNOWN = {"UpToDate", "SWHardeningNeeded", "ConfigurationNeeded",
              "ConfigurationAndSWHardeningNeeded", "OutOfDate", "OutOfDateConfigurationNeeded",
              "Unknown"}


def _hex(j: Dict[str, Any], key: str, n: int) -> str:
    v = j[key]
    if not isinstance(v, str) or len(v) != 2 * n or any(c not in "0123456789abcdef" for c in v.lower()):
        raise InvalidArgument(f"policy: '{key}' must be {2 * n} hex characters")
    return v.lower()


def _only(j: Any, allowed: Sequence[str], where: str) -> None:
    if not isinstance(j, dict):
        raise InvalidArgument(f"policy: {where} is not an object")
    for k in j:
        if k not in allowed:
            raise InvalidArgument(f"policy: unknown key '{k}' in {where}")


@dataclass
class Policy:
    """A version-1 policy file (docs/attestation.md), parsed as strictly as the C++ parser: an
    unknown key, another version or malformed hex is an error."""
    name: str = ""
    allow_simulated: bool = False
    allow_debug: bool = False
    measurements: List[Dict[str, Any]] = field(default_factory=list)
    accept_tcb: List[Dict[str, Any]] = field(default_factory=lambda: [{"status": "UpToDate", "advisory_ids": []}])
    require_collateral: bool = True

    @classmethod
    def parse(cls, text: Union[str, bytes]) -> "Policy":
        try:
            j = json.loads(text)
        except ValueError:
            raise InvalidArgument("policy: not a JSON object") from None
        _only(j, ("version", "name", "allow_simulated", "allow_debug", "measurements", "tcb"), "policy")
        if "version" not in j:
            raise InvalidArgument("policy: 'version' missing")
        if j["version"] != 1:
            raise Unimplemented(f"policy: version {j['version']} not supported (1 is)")
        p = cls(name=j.get("name", ""), allow_simulated=bool(j.get("allow_simulated", False)),
                allow_debug=bool(j.get("allow_debug", False)))
        for m in j.get("measurements", []):
            tee = m.get("tee") if isinstance(m, dict) else None
            if tee == "sgx":
                _only(m, ("tee", "mrenclave", "mrsigner", "product_id", "min_svn"), "sgx measurement")
                r: Dict[str, Any] = {"tee": "sgx"}
                if "mrenclave" in m:
                    r["mrenclave"] = _hex(m, "mrenclave", 32)
                if "mrsigner" in m:
                    r["mrsigner"] = _hex(m, "mrsigner", 32)
                    if "product_id" not in m:
                        raise InvalidArgument("policy: mrsigner needs product_id")
                    r["product_id"], r["min_svn"] = int(m["product_id"]), int(m.get("min_svn", 0))
                if ("mrenclave" in r) == ("mrsigner" in r):
                    raise InvalidArgument("policy: an sgx entry needs exactly one of mrenclave or mrsigner")
            elif tee == "tdx":
                _only(m, ("tee", "mrtd", "rtmr0", "rtmr1", "rtmr2", "rtmr3"), "tdx measurement")
                r = {"tee": "tdx", "mrtd": _hex(m, "mrtd", 48)}
                for i in range(4):
                    if f"rtmr{i}" in m:
                        r[f"rtmr{i}"] = _hex(m, f"rtmr{i}", 48)
            elif tee == "simulated":
                _only(m, ("tee", "measurement"), "simulated measurement")
                r = {"tee": "simulated", "measurement": _hex(m, "measurement", 32)}
            else:
                raise InvalidArgument(f"policy: unknown tee '{tee}' (sgx, tdx, simulated)")
            p.measurements.append(r)
        if "tcb" in j:
            t = j["tcb"]
            _only(t, ("accept", "require_collateral", "max_collateral_age_hours"), "tcb")
            if "accept" in t:
                p.accept_tcb = []
                for a in t["accept"]:
                    rule = {"status": a, "advisory_ids": []} if isinstance(a, str) else None
                    if rule is None:
                        _only(a, ("status", "advisory_ids"), "tcb.accept")
                        rule = {"status": a["status"], "advisory_ids": list(a.get("advisory_ids", []))}
                    if rule["status"] not in _TCB_KNOWN:
                        raise InvalidArgument(f"policy: TCB status '{rule['status']}' unknown "
                                              "(Revoked is never accepted)")
                    p.accept_tcb.append(rule)
            p.require_collateral = bool(t.get("require_collateral", True))
        return p

    @classmethod
    def load(cls, path: Union[str, os.PathLike]) -> "Policy":
        try:
            data = Path(path).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"no policy file at {path}") from None
        if len(data) > 1 << 20:
            raise InvalidArgument(f"policy {path}: larger than 1 MiB")
        return cls.parse(data)

    def _matches(self, r: Dict[str, Any], c: Claims) -> bool:
        if r["tee"] != c.tee:
            return False
        if c.tee == "sgx":
            if "mrenclave" in r:
                return r["mrenclave"] == c.measurement
            return (r["mrsigner"] == c.mrsigner and r["product_id"] == c.product_id
                    and c.svn >= r["min_svn"])
        if c.tee == "tdx":
            return r["mrtd"] == c.measurement and all(
                r.get(f"rtmr{i}", c.rtmr[i]) == c.rtmr[i] for i in range(4))
        return r["measurement"] == c.measurement

    def check(self, c: Claims) -> None:
        """Raises AttestationError naming the first rule the claims break (the C++ order:
        simulated, measurement, debug, collateral, tcb-status)."""
        if c.simulated and not self.allow_simulated:
            raise AttestationError("simulated", "simulated evidence not allowed by policy")
        if not any(self._matches(r, c) for r in self.measurements):
            if c.tee == "sgx":
                what = (f"sgx mrenclave {c.measurement} (mrsigner {c.mrsigner}, product "
                        f"{c.product_id}, svn {c.svn})")
            else:
                what = f"{'tdx mrtd' if c.tee == 'tdx' else 'simulated measurement'} {c.measurement}"
            raise AttestationError("measurement", f"{what} not allowed")
        if c.debug and not self.allow_debug:
            raise AttestationError("debug", f"debug {'TD' if c.tee == 'tdx' else 'enclave'} refused")
        if c.simulated:
            return
        if self.require_collateral and not c.collateral_checked:
            raise AttestationError("collateral", "TCB info, QE identity and CRLs are required "
                                   "(the Python verifier checks no collateral)")
        for rule in self.accept_tcb:
            if rule["status"] == c.tcb_status and all(
                    not rule["advisory_ids"] or a in rule["advisory_ids"] for a in c.advisory_ids):
                return
        raise AttestationError("tcb-status", f"{c.tcb_status} not accepted")


# ---------------------------------------------------------------------------------- attested TLS
def attested_tls_report_data(spki_der: bytes, purpose: str) -> bytes:
    """``SHA-256(SubjectPublicKeyInfo DER) || SHA-256("moss-attested-tls-v1" || 0 || purpose)``."""
    return (hashlib.sha256(spki_der).digest()
            + hashlib.sha256(b"moss-attested-tls-v1\x00" + purpose.encode()).digest())


def _encode_oid(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    out = bytearray([40 * arcs[0] + arcs[1]]) if arcs[1] < 40 else bytearray()
    rest = arcs[2:] if arcs[1] < 40 else [40 * arcs[0] + arcs[1]] + arcs[2:]
    for a in rest:
        chunk = [a & 0x7F]
        a >>= 7
        while a:
            chunk.append(0x80 | (a & 0x7F))
            a >>= 7
        out += bytes(reversed(chunk))
    return bytes([0x06, len(out)]) + bytes(out)


def _der_items(b: bytes) -> List[tuple]:
    """The top-level TLVs of ``b``: (tag, whole TLV bytes, content bytes). Definite lengths only."""
    items, pos = [], 0
    while pos < len(b):
        if pos + 2 > len(b):
            raise AttestationError("evidence", "malformed certificate DER")
        tag, ln, hdr = b[pos], b[pos + 1], 2
        if ln & 0x80:
            n = ln & 0x7F
            if n == 0 or n > 4 or pos + 2 + n > len(b):
                raise AttestationError("evidence", "malformed certificate DER")
            ln, hdr = int.from_bytes(b[pos + 2:pos + 2 + n], "big"), 2 + n
        end = pos + hdr + ln
        if end > len(b):
            raise AttestationError("evidence", "malformed certificate DER")
        items.append((tag, b[pos:end], b[pos + hdr:end]))
        pos = end
    return items


def _der_time(tag: int, value: bytes) -> int:
    text = value.decode("ascii")
    if tag == 0x17:  # UTCTime YYMMDDHHMMSSZ
        year = int(text[:2])
        text = str(1900 + year if year >= 50 else 2000 + year) + text[2:]
    return int(datetime.strptime(text, "%Y%m%d%H%M%SZ").replace(tzinfo=timezone.utc).timestamp())


@dataclass(frozen=True)
class AttestedCertificate:
    """What an attested TLS certificate carries: the evidence, the key it is bound to, and the
    certificate's validity window (its lifetime is the evidence's freshness)."""
    evidence: bytes
    spki_der: bytes
    not_before: int
    not_after: int


def parse_attested_certificate(cert_der: bytes) -> AttestedCertificate:
    """Parses an attested certificate with a small DER walker: the evidence OID has a 128-bit
    UUID arc that older pyca/cryptography (and Go) cannot parse."""
    try:
        (tag, _, cert), = _der_items(cert_der)[:1] or [(0, b"", b"")]
        if tag != 0x30:
            raise AttestationError("evidence", "the peer certificate is not a DER SEQUENCE")
        tbs = _der_items(cert)[0]
        fields = _der_items(tbs[2])
        idx = 1 if fields and fields[0][0] == 0xA0 else 0  # [0] version
        validity = _der_items(fields[idx + 3][2])
        not_before = _der_time(validity[0][0], validity[0][2])
        not_after = _der_time(validity[1][0], validity[1][2])
        spki = fields[idx + 5][1]
        exts = [f for f in fields[idx + 6:] if f[0] == 0xA3]  # [3] extensions
    except (IndexError, ValueError, UnicodeDecodeError):
        raise AttestationError("evidence", "malformed peer certificate") from None
    oid = _encode_oid(ATTESTED_TLS_OID)
    for f in exts:
        for ext in _der_items(_der_items(f[2])[0][2]):
            parts = _der_items(ext[2])
            if parts and parts[0][1] == oid and parts[-1][0] == 0x04:
                return AttestedCertificate(bytes(parts[-1][2]), bytes(spki), not_before, not_after)
    raise AttestationError("evidence", "the peer certificate carries no attestation evidence")


def verify_attested_certificate(cert_der: bytes, purpose: str, policy: Policy, *,
                                allow_simulated: bool = False,
                                sim_platform_key: Optional[bytes] = None,
                                at: Optional[int] = None) -> Claims:
    """Verifies the evidence inside an attested TLS certificate: the evidence itself, that its
    report data binds this certificate's key and ``purpose``, and the policy. The TLS handshake
    (TLS 1.3 CertificateVerify) is what proves the peer holds that key."""
    cert = parse_attested_certificate(cert_der)
    now = int(at if at is not None else time.time())
    if not cert.not_before <= now <= cert.not_after:
        raise AttestationError("certificate-validity", "the attested certificate is not valid now "
                               f"(valid {cert.not_before}..{cert.not_after} Unix time)")
    evidence, spki = cert.evidence, cert.spki_der
    claims = verify_evidence(evidence, allow_simulated=allow_simulated and policy.allow_simulated,
                             sim_platform_key=sim_platform_key, at=at)
    if claims.report_data != attested_tls_report_data(spki, purpose):
        raise AttestationError("report-data", f"the evidence is not bound to this certificate's "
                               f"key and purpose '{purpose}'")
    policy.check(claims)
    return claims
