"""The owner's and user's side of the KeyService API (docs/keyservice-api.md).

Before any request byte is sent, the TLS 1.3 handshake's peer certificate is checked: its
attestation evidence (purpose ``moss-keyservice``) must verify and satisfy the policy named in the
client config (simulated evidence only when both the config and the policy allow it). Every
request is then signed with the principal's Ed25519 identity. A KeyService that fails these checks
raises :class:`~moss_client.errors.AttestationError` and receives nothing. Every answer's state
version and audit head (``X-Moss-State-Version``, ``X-Moss-Audit-Head``) are judged against what
this client has seen of the KeyService (:mod:`moss_client.state_versions`, a file shared with the
``moss`` CLI): an older version raises :class:`~moss_client.state_versions.KeyServiceRollback`, a
forked audit log :class:`~moss_client.state_versions.KeyServiceForked`.
"""
from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import ssl
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import quote, urlsplit

from .attestation import Claims, Policy, sim_platform_public_key, verify_attested_certificate
from .config import ClientConfig
from .errors import (AttestationError, FailedPrecondition, InvalidArgument, Unavailable,
                     error_from_response)
from .formats import KEY_BYTES, validate_model_id
from .identity import Identity
from . import state_versions as sv

PURPOSE = "moss-keyservice"
MAX_RESPONSE_BYTES = 16 << 20


def signing_message(method: str, target: str, body_sha256_hex: str, timestamp: int, nonce: str,
                    principal_id: str) -> bytes:
    """The exact bytes a request signature covers (docs/keyservice-api.md, "Signed requests")."""
    return "\n".join(["moss-request-v1", method, target, body_sha256_hex, str(timestamp), nonce,
                      principal_id]).encode()


def sign_request(identity: Identity, method: str, target: str, body: bytes,
                 timestamp: Optional[int] = None, nonce: Optional[str] = None) -> Dict[str, str]:
    """The ``X-Moss-*`` headers that authenticate one request."""
    ts = int(time.time()) if timestamp is None else timestamp
    nonce = os.urandom(16).hex() if nonce is None else nonce
    body_hash = hashlib.sha256(body).hexdigest()
    sig = identity.sign(signing_message(method, target, body_hash, ts, nonce,
                                        identity.principal_id))
    return {"X-Moss-Principal": identity.principal_id, "X-Moss-Timestamp": str(ts),
            "X-Moss-Nonce": nonce, "X-Moss-Body-Sha256": body_hash,
            "X-Moss-Signature": base64.b64encode(sig).decode()}


class KeyServiceClient:
    """One principal's attested, signed connection to the KeyService. Not thread-safe."""

    def __init__(self, config: ClientConfig, identity: Optional[Identity] = None, *,
                 timeout: float = 30.0):
        self.config = config
        self.identity = identity or Identity.load(config.identity)
        self.policy = Policy.load(config.keyservice_policy)
        self.allow_simulated = config.allow_simulated and self.policy.allow_simulated
        self._sim_key = (sim_platform_public_key(config.effective_sim_key_file())
                         if self.allow_simulated else None)
        u = urlsplit(config.keyservice_url)
        if u.scheme != "https" or not u.hostname:
            raise InvalidArgument(f"keyservice_url must be https://host:port: {config.keyservice_url}")
        self._host, self._port = u.hostname, u.port or 443
        self._timeout = timeout
        self._conn: Optional[http.client.HTTPSConnection] = None
        self.claims: Optional[Claims] = None
        self._seen = sv.SeenState()  # also kept here: a state_dir-less use still checks its own answers

    @classmethod
    def from_config(cls, path: Optional[str] = None) -> "KeyServiceClient":
        """A client for the config at ``path`` (or the default locations)."""
        return cls(ClientConfig.load(path))

    @property
    def principal_id(self) -> str:
        return self.identity.principal_id

    # ------------------------------------------------------------------------------ connection
    def connect(self) -> Claims:
        """Connects and verifies the KeyService's attested certificate; returns its claims."""
        if self._conn is not None and self.claims is not None:
            return self.claims
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        # The evidence, not a CA-issued name, identifies the KeyService (as in C++); the
        # handshake still proves possession of the certificate's key (CertificateVerify).
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection(self._host, self._port, timeout=self._timeout,
                                           context=ctx)
        try:
            conn.connect()
        except OSError as e:
            raise Unavailable(f"KeyService {self.config.keyservice_url}: {e}") from None
        assert conn.sock is not None
        der = conn.sock.getpeercert(binary_form=True)
        try:
            if not der:
                raise AttestationError("evidence", "the KeyService presented no certificate")
            self.claims = verify_attested_certificate(der, PURPOSE, self.policy,
                                                      allow_simulated=self.allow_simulated,
                                                      sim_platform_key=self._sim_key)
        except AttestationError as e:
            conn.close()
            raise AttestationError(e.check, f"KeyService {self.config.keyservice_url} is not "
                                   f"trusted: {e.message.split(': ', 1)[-1]}") from None
        self._conn = conn
        return self.claims

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn, self.claims = None, None

    def __enter__(self) -> "KeyServiceClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _send(self, method: str, target: str, data: bytes) -> Tuple[http.client.HTTPResponse, bytes]:
        """Signs and sends one request on the kept-alive connection."""
        for attempt in (0, 1):
            reused = self._conn is not None
            self.connect()
            assert self._conn is not None
            headers = sign_request(self.identity, method, target, data)
            headers["Content-Type"] = "application/json"
            try:
                self._conn.request(method, target, body=data, headers=headers)
                resp = self._conn.getresponse()
                payload = resp.read(MAX_RESPONSE_BYTES + 1)
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as e:
                # Retry once, on a fresh connection, only when a kept-alive connection turned out
                # closed by the server (idle timeout): the request never reached it.
                self.close()
                if attempt or not reused:
                    raise Unavailable(f"KeyService {self.config.keyservice_url}: {e}") from None
            except (http.client.HTTPException, OSError) as e:
                self.close()
                raise Unavailable(f"KeyService {self.config.keyservice_url}: {e}") from None
        if len(payload) > MAX_RESPONSE_BYTES:
            raise InvalidArgument("KeyService answer larger than 16 MiB")
        return resp, payload

    def _judge(self, seen: sv.SeenState, answered: sv.AnsweredState) -> sv.SeenState:
        """What to remember after this answer; asks for the fork proof when the log grew."""
        url, sd = self.config.keyservice_url, self.config.state_dir
        file = Path(sd) / sv.SEEN_VERSIONS_FILE if sd else None
        if not sv.needs_proof(url, seen, answered, file):
            return sv.remember_fresh(seen, answered)
        resp, payload = self._send("GET", sv.proof_target(seen), b"")
        if not 200 <= resp.status < 300:
            raise error_from_response(resp.status, payload, "KeyService fork check")
        try:
            proof = json.loads(payload)
        except ValueError:
            proof = None
        return sv.verify_proof(url, seen, answered, proof, file)

    def call(self, method: str, target: str, body: Optional[Dict[str, Any]] = None) -> Any:
        """A signed request; the JSON answer of a 2xx response, else the typed error.
        KeyServiceRollback when the answer's state version is older than one seen before,
        KeyServiceForked when its audit log does not hold the head seen before."""
        data = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        url = self.config.keyservice_url
        # What was seen before the request left: any answer to it reflects at least that state.
        seen = sv.seen_state(self.config.state_dir, url)
        if self._seen.version > seen.version:
            seen = self._seen
        resp, payload = self._send(method, target, data)
        answered = sv.parse_answered_state(resp.getheader(sv.HEADER),
                                           resp.getheader(sv.AUDIT_HEAD_HEADER))
        # Answers of the HTTP layer itself (413, unknown route) carry none; they are errors anyway.
        if answered is None:
            if not 200 <= resp.status < 300:
                raise error_from_response(resp.status, payload, "KeyService")
            raise FailedPrecondition(f"keyservice-version-missing: the KeyService answer has no "
                                     f"valid {sv.HEADER} and {sv.AUDIT_HEAD_HEADER} headers",
                                     reason="keyservice-version-missing")
        now = self._judge(seen, answered)
        sv.record(self.config.state_dir, url, now)
        self._seen = now
        if not 200 <= resp.status < 300:
            raise error_from_response(resp.status, payload, "KeyService")
        try:
            return json.loads(payload)
        except ValueError:
            raise InvalidArgument("KeyService answered with invalid JSON") from None

    # ------------------------------------------------------------------------------- endpoints
    def register(self) -> Dict[str, Any]:
        """Registers this principal (proof of possession); idempotent."""
        return self.call("POST", "/v1/principals",
                         {"public_key": base64.b64encode(self.identity.public_key_raw).decode()})

    def upload_key(self, model_id: str, key: bytes) -> Dict[str, Any]:
        """Stores the model key as version 1 (same key again: no-op; another: AlreadyExists)."""
        return self._put_key(model_id, key, False)

    def rotate_key(self, model_id: str, key: bytes) -> Dict[str, Any]:
        """Adds a new model key version; older versions stay released until retired."""
        return self._put_key(model_id, key, True)

    def _put_key(self, model_id: str, key: bytes, rotate: bool) -> Dict[str, Any]:
        validate_model_id(model_id)
        if len(key) != KEY_BYTES:
            raise InvalidArgument("a model key is 32 bytes")
        return self.call("POST", f"/v1/models/{model_id}/keys",
                         {"rotate": rotate, "key": base64.b64encode(key).decode()})

    def retire_key(self, model_id: str, version: int) -> Dict[str, Any]:
        validate_model_id(model_id)
        return self.call("POST", f"/v1/models/{model_id}/keys/{int(version)}/retire", {})

    def list_keys(self, model_id: str) -> Dict[str, Any]:
        validate_model_id(model_id)
        return self.call("GET", f"/v1/models/{model_id}/keys")

    def delete_model(self, model_id: str) -> Dict[str, Any]:
        validate_model_id(model_id)
        return self.call("DELETE", f"/v1/models/{model_id}")

    def grant(self, model_id: str, user_id: str, measurement: str) -> Dict[str, Any]:
        """Lets ``user_id`` use ``model_id`` on workers with ``measurement``."""
        validate_model_id(model_id)
        return self.call("POST", f"/v1/models/{model_id}/grants",
                         {"user_id": user_id, "measurement": measurement})

    def revoke(self, model_id: str, user_id: str, measurement: str) -> Dict[str, Any]:
        validate_model_id(model_id)
        return self.call("POST", f"/v1/models/{model_id}/grants/revoke",
                         {"user_id": user_id, "measurement": measurement})

    def list_grants(self, model_id: str) -> List[Dict[str, Any]]:
        validate_model_id(model_id)
        return self.call("GET", f"/v1/models/{model_id}/grants")["grants"]

    def add_request_key(self, model_id: str, measurement: str,
                        key: Optional[bytes] = None, save: bool = True) -> bytes:
        """Registers a request key for (model, worker measurement), fresh unless given, and (by
        default) saves it where ``moss infer`` and :func:`moss_client.infer` find it."""
        validate_model_id(model_id)
        key = os.urandom(KEY_BYTES) if key is None else bytes(key)
        r = self.call("POST", "/v1/request-keys",
                      {"model_id": model_id, "measurement": measurement,
                       "key": base64.b64encode(key).decode()})
        if save:
            self.config.save_request_key(model_id, measurement, key, int(r.get("version", 1)))
        return key

    def delete_request_key(self, model_id: str, measurement: str) -> Dict[str, Any]:
        validate_model_id(model_id)
        return self.call("POST", "/v1/request-keys/delete",
                         {"model_id": model_id, "measurement": measurement})

    def audit(self, model_id: Optional[str] = None, after: int = 0,
              limit: int = 100) -> Dict[str, Any]:
        """Audit events visible to this principal: ``{"events": [...], "head": {...}}``."""
        target = f"/v1/audit?after={int(after)}&limit={int(limit)}"
        if model_id:
            validate_model_id(model_id)
            target += "&model_id=" + quote(model_id, safe="/")
        return self.call("GET", target)

    def audit_head(self) -> Dict[str, Any]:
        """The audit head signed by the KeyService's state identity (``GET /v1/audit/head``),
        signature checked: ``{"seq", "hash", "state_version", "keyservice_key", "signature"}``.
        Keep it to prove later what the log said (:func:`verify_audit_events`). DataLoss when
        the signature does not verify."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
        from .errors import DataLoss
        h = self.call("GET", "/v1/audit/head")
        try:
            key = Ed25519PublicKey.from_public_bytes(base64.b64decode(h["keyservice_key"], validate=True))
            message = f"moss-audit-head-v1\n{int(h['seq'])}\n{h['hash']}\n{int(h['state_version'])}"
            key.verify(base64.b64decode(h["signature"], validate=True), message.encode())
        except (KeyError, TypeError, ValueError, InvalidSignature):
            raise DataLoss("the KeyService's audit head is malformed or its signature does not "
                           "verify") from None
        # The state identity a fork proof pinned is the one this state signs with.
        if self._seen.keyservice_key and self._seen.keyservice_key != h["keyservice_key"]:
            sd = self.config.state_dir
            raise sv.KeyServiceForked(self.config.keyservice_url,
                                      "signed its audit head with another state identity",
                                      Path(sd) / sv.SEEN_VERSIONS_FILE if sd else None)
        return h


def verify_audit_events(events: List[Dict[str, Any]],
                        head: Optional[Dict[str, Any]] = None) -> None:
    """Checks the links between events with consecutive sequence numbers (a principal sees a
    filtered view of the chain, so gaps are expected) and, given a head from
    :meth:`KeyServiceClient.audit_head`, that an event at the head's sequence number carries the
    head's hash. The chain hash itself is an HMAC under a key only the KeyService holds
    (docs/keyservice-api.md), so a client checks links and signed heads, not each hash. Raises
    DataLoss naming the first event that does not verify."""
    from .errors import DataLoss
    prev: Optional[Dict[str, Any]] = None
    for e in events:
        if prev is not None and e["seq"] == prev["seq"] + 1 and e["prev_hash"] != prev["hash"]:
            raise DataLoss(f"audit event {e['seq']}: does not chain to event {prev['seq']}")
        if head is not None and e["seq"] == head["seq"] and e["hash"] != head["hash"]:
            raise DataLoss(f"audit event {e['seq']}: differs from the signed audit head")
        prev = e
