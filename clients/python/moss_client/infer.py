"""Encrypted inference: named numpy arrays in, named numpy arrays out.

The inputs are packed as safetensors, sealed under the user's request key in a request envelope
(binary wire by default) and posted to a worker (``/v1/infer``) or to FnPacker's invoke URL; the
answer is opened in :func:`open_infer_response` -- the one place that turns an HTTP answer into
outputs or a typed exception (results and the worker's sealed errors alike).
"""
from __future__ import annotations

import http.client
import json
import os
import ssl
import time
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Union
from urllib.parse import urlsplit

import numpy as np

from . import safetensors
from .config import ClientConfig
from .errors import (InvalidArgument, MossError, Unavailable, error_for_code,
                     error_from_response)
from .formats import ENVELOPE_MEDIA_TYPE, EnvelopeHeader, open_envelope, seal_envelope
from .identity import Identity

MAX_RESPONSE_BYTES = 256 << 20
PACKER_TOKEN_ENV = "MOSS_PACKER_TOKEN"


@dataclass
class InferResult:
    """Outputs plus what the worker and FnPacker reported about the run."""
    outputs: Dict[str, np.ndarray]
    request_id: str
    run: str = ""
    timing_ms: Dict[str, float] = field(default_factory=dict)
    packer: Optional[Dict[str, Any]] = None
    round_trip_ms: float = 0.0


def infer_target(endpoint: str) -> str:
    """The request path for ``endpoint``: itself when it ends in ``/invoke``, else ``/v1/infer``
    under it (as ``moss infer``)."""
    path = urlsplit(endpoint).path.rstrip("/")
    return path if path.endswith("/invoke") else path + "/v1/infer"


def _json_header(value: Optional[str]) -> Any:
    if not value:
        return None
    try:
        return json.loads(value)
    except ValueError:
        return None


ERROR_CATEGORY_KEY = "moss.error.category"
ERROR_HEADER = "Moss-Error-Category"


def _sealed_error_envelope(status: int, ctype: str, headers: Mapping[str, str],
                           body: bytes) -> Optional[bytes]:
    """The response envelope of a failed request the worker had opened, else None: a binary
    body with ``Moss-Error-Category``, or a JSON error (``/v1/infer`` or ``/run`` shape) that
    carries ``"envelope"`` (docs/worker-api.md, "Errors")."""
    if status == 200:
        return None
    if ctype == ENVELOPE_MEDIA_TYPE and headers.get(ERROR_HEADER):
        return body
    try:
        j = json.loads(body)
    except ValueError:
        return None
    if isinstance(j, dict) and isinstance(j.get("envelope"), str):
        return j["envelope"].encode()
    return None


def _raise_sealed_error(plain: bytes, status: int, where: str) -> None:
    """Raises the error a sealed error plaintext holds (docs/formats.md, "Response plaintext")."""
    meta = safetensors.metadata(plain)
    if set(meta) != {ERROR_CATEGORY_KEY, "moss.error.code", "moss.error.message"} or \
            safetensors.decode(plain):
        raise InvalidArgument(f"{where}: malformed sealed error in the response envelope")
    category = meta[ERROR_CATEGORY_KEY]
    cls = error_for_code(meta["moss.error.code"])
    raise cls(f"the worker refused the request ({category}): {meta['moss.error.message']}",
              http_status=status, detail={"category": category})


def open_infer_response(key: bytes, request: EnvelopeHeader, status: int,
                        headers: Mapping[str, str], body: bytes, where: str) -> InferResult:
    """Turns a worker/FnPacker answer into an :class:`InferResult`, or raises.

    - 200: the response envelope (binary body, or ``"envelope"`` in the JSON result) must be
      bound to ``request`` with direction ``response`` and open under ``key``; otherwise
      Unauthenticated (a replayed, redirected or altered answer).
    - a failure after the worker opened the request: the sealed error form; raised as the typed
      exception of its code, with the sealed detail in the message and the category in
      ``detail["category"]``.
    - otherwise: the server's category as a typed exception (net's error shape or OpenWhisk's).
    """
    ctype = headers.get("Content-Type", "").split(";")[0].strip()
    sealed = _sealed_error_envelope(status, ctype, headers, body)
    if status != 200 and sealed is None:
        raise error_from_response(status, body, where)
    result = InferResult(outputs={}, request_id=request.request_id)
    if sealed is not None:
        envelope = sealed
    elif ctype == ENVELOPE_MEDIA_TYPE:
        envelope = body
        result.run = headers.get("Moss-Run", "")
        result.timing_ms = _json_header(headers.get("Moss-Timing-Ms")) or {}
        result.packer = _json_header(headers.get("Moss-Packer"))
    else:
        try:
            j = json.loads(body)
        except ValueError:
            j = None
        if not isinstance(j, dict) or not isinstance(j.get("envelope"), str):
            raise InvalidArgument(f"{where}: the answer is not a worker result (no 'envelope')")
        envelope = j["envelope"].encode()
        result.run = j.get("run", "") if isinstance(j.get("run"), str) else ""
        result.timing_ms = j.get("timing_ms") if isinstance(j.get("timing_ms"), dict) else {}
        result.packer = j.get("packer") if isinstance(j.get("packer"), dict) else None
    try:
        plain = open_envelope(key, request.response(), envelope)
    except MossError as e:
        raise type(e)("the response does not answer this request (replayed, redirected or "
                      f"altered): {e.message}") from None
    if ERROR_CATEGORY_KEY in safetensors.metadata(plain):
        _raise_sealed_error(plain, status, where)
    if sealed is not None:
        raise InvalidArgument(f"{where}: HTTP {status} carried a result, not a sealed error")
    result.outputs = safetensors.decode(plain)
    return result


def infer(model_id: str, inputs: Mapping[str, np.ndarray], endpoint: str, *,
          config: Union[ClientConfig, str, None] = None, identity: Optional[Identity] = None,
          request_key: Optional[bytes] = None, token: Optional[str] = None,
          binary: bool = True, timeout: float = 120.0,
          ca_file: str = "/etc/ssl/certs/ca-certificates.crt") -> InferResult:
    """Runs ``model_id`` on ``inputs`` through ``endpoint`` (a worker URL, or FnPacker's
    ``.../v1/pools/<pool>/invoke``). The request key and identity come from the client config
    (the files ``moss request-key add`` / :meth:`KeyServiceClient.add_request_key` wrote) unless
    given. ``token``: FnPacker's bearer token (default ``$MOSS_PACKER_TOKEN``)."""
    if not isinstance(config, ClientConfig) and (identity is None or request_key is None):
        config = ClientConfig.load(config)
    if identity is None:
        assert isinstance(config, ClientConfig)
        identity = Identity.load(config.identity)
    if request_key is None:
        assert isinstance(config, ClientConfig)
        request_key = config.load_request_key(model_id)[0]
    header = EnvelopeHeader(model_id, identity.principal_id, os.urandom(16).hex(), "request")
    sealed = seal_envelope(request_key, header, safetensors.encode(inputs), binary=binary)
    if binary:
        body, ctype = sealed, ENVELOPE_MEDIA_TYPE
    else:
        body = json.dumps({"model_id": model_id, "envelope": sealed.decode()}).encode()
        ctype = "application/json"
    u = urlsplit(endpoint)
    if u.scheme not in ("http", "https") or not u.hostname:
        raise InvalidArgument(f"endpoint must be an http(s) URL: {endpoint}")
    if u.scheme == "https":
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            u.hostname, u.port or 443, timeout=timeout,
            context=ssl.create_default_context(cafile=ca_file))
    else:
        conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=timeout)
    headers = {"Content-Type": ctype}
    token = token if token is not None else os.environ.get(PACKER_TOKEN_ENV)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    start = time.perf_counter()
    try:
        conn.request("POST", infer_target(endpoint), body=body, headers=headers)
        resp = conn.getresponse()
        payload = resp.read(MAX_RESPONSE_BYTES + 1)
    except (http.client.HTTPException, OSError) as e:
        raise Unavailable(f"{endpoint}: {e}") from None
    finally:
        conn.close()
    if len(payload) > MAX_RESPONSE_BYTES:
        raise InvalidArgument(f"{endpoint}: answer larger than {MAX_RESPONSE_BYTES} bytes")
    result = open_infer_response(request_key, header, resp.status,
                                 {k: v for k, v in resp.getheaders()}, payload, endpoint)
    result.round_trip_ms = (time.perf_counter() - start) * 1000
    return result
