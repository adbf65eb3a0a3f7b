"""Typed exceptions for MOSS errors.

Every MOSS service answers errors as ``{"error": {"code": ..., "reason": ..., "message": ...}}``
(docs/net.md, docs/keyservice-api.md). ``code`` is the error class (the categories of
``src/common/status.h``); :func:`error_for_code` maps it to one exception class here, so a program
can ``except PermissionDenied`` and read ``err.reason`` (e.g. ``"no-grant"``). Local failures
(a tampered envelope, a wrong key, a malformed file) raise the same classes with the category the
C++ implementation uses for them.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Type


class MossError(Exception):
    """Base class. ``code`` is the category ("permission-denied", ...), ``reason`` the stable
    refusal reason when the server gave one, ``http_status`` the HTTP status when the error came
    from a server, ``detail`` any further fields of the server's answer."""

    code = "unknown"

    def __init__(self, message: str, *, reason: Optional[str] = None,
                 http_status: Optional[int] = None, detail: Optional[Dict[str, Any]] = None):
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.http_status = http_status
        self.detail = detail or {}

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class InvalidArgument(MossError):
    code = "invalid-argument"


class NotFound(MossError):
    code = "not-found"


class AlreadyExists(MossError):
    code = "already-exists"


class PermissionDenied(MossError):
    code = "permission-denied"


class Unauthenticated(MossError):
    code = "unauthenticated"


class FailedPrecondition(MossError):
    code = "failed-precondition"


class OutOfRange(MossError):
    code = "out-of-range"


class ResourceExhausted(MossError):
    code = "resource-exhausted"


class Unimplemented(MossError):
    code = "unimplemented"


class Unavailable(MossError):
    code = "unavailable"


class DeadlineExceeded(MossError):
    code = "deadline-exceeded"


class DataLoss(MossError):
    code = "data-loss"


class Internal(MossError):
    code = "internal"


class AttestationError(PermissionDenied):
    """The peer's attestation evidence failed verification or the policy. ``check`` names the
    failed check or policy rule ("quote-signature", "pck-chain", "measurement", "simulated",
    "report-data", ...), as the C++ verifier names them (docs/attestation.md)."""

    def __init__(self, check: str, message: str):
        super().__init__(f"{check}: {message}", reason=check)
        self.check = check


_BY_CODE: Dict[str, Type[MossError]] = {
    cls.code: cls for cls in (InvalidArgument, NotFound, AlreadyExists, PermissionDenied,
                              Unauthenticated, FailedPrecondition, OutOfRange, ResourceExhausted,
                              Unimplemented, Unavailable, DeadlineExceeded, DataLoss, Internal)
}

# Used when an answer carries no code (OpenWhisk's {"error": "..."} or a bare status).
_BY_HTTP: Dict[int, Type[MossError]] = {
    400: InvalidArgument, 401: Unauthenticated, 403: PermissionDenied, 404: NotFound,
    409: AlreadyExists, 413: ResourceExhausted, 429: ResourceExhausted, 500: Internal,
    501: Unimplemented, 503: Unavailable, 504: DeadlineExceeded,
}


def error_for_code(code: str) -> Type[MossError]:
    """The exception class for a MOSS error code (``Internal`` for an unknown one)."""
    return _BY_CODE.get(code, Internal)


def error_from_response(http_status: int, body: bytes, where: str) -> MossError:
    """The exception for a non-2xx answer: net's error shape, OpenWhisk's ``{"error": "..."}``
    (``"<code>: <message>"``), or, failing both, the HTTP status alone. ``where`` names the
    server (e.g. ``"KeyService"``) in the message."""
    import json

    code: Optional[str] = None
    reason: Optional[str] = None
    message = ""
    detail: Dict[str, Any] = {}
    try:
        j = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        j = None
    if isinstance(j, dict) and isinstance(j.get("error"), dict):
        e = j["error"]
        code = e.get("code") if isinstance(e.get("code"), str) else None
        reason = e.get("reason") if isinstance(e.get("reason"), str) else None
        message = e.get("message") if isinstance(e.get("message"), str) else ""
        detail = {k: v for k, v in e.items() if k not in ("code", "reason", "message")}
    elif isinstance(j, dict) and isinstance(j.get("error"), str):
        text = j["error"]
        head, sep, rest = text.partition(": ")
        if sep and head in _BY_CODE:
            code, message = head, rest
        else:
            message = text
    else:
        message = body[:200].decode("utf-8", "replace")
    cls = error_for_code(code) if code else _BY_HTTP.get(http_status, Internal)
    return cls(f"{where} answered HTTP {http_status}: {message}", reason=reason,
               http_status=http_status, detail=detail)
