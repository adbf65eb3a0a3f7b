"""Principal identities: Ed25519 keys in the files ``moss identity new --out DIR`` writes
(``DIR/identity.pem``: unencrypted PKCS#8 PEM, 0600; ``DIR/identity.pub.pem``: SPKI PEM)."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Union

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from .errors import InvalidArgument, NotFound

MAX_IDENTITY_FILE_BYTES = 16 * 1024


def principal_id_of(raw_public_key: bytes) -> str:
    """Lowercase hex of the first 16 bytes of SHA-256 of the raw 32-byte public key."""
    if len(raw_public_key) != 32:
        raise InvalidArgument("an Ed25519 public key is 32 bytes")
    return hashlib.sha256(raw_public_key).digest()[:16].hex()


class Identity:
    """An Ed25519 principal: signs KeyService requests; ``principal_id`` names it."""

    def __init__(self, private_key: Ed25519PrivateKey):
        self._key = private_key
        self.public_key_raw: bytes = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.principal_id: str = principal_id_of(self.public_key_raw)

    @classmethod
    def generate(cls) -> "Identity":
        """A fresh identity (not yet saved)."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def new(cls, directory: Union[str, os.PathLike]) -> "Identity":
        """Creates an identity and writes ``identity.pem`` (0600) and ``identity.pub.pem`` in
        ``directory`` (created 0700); refuses to overwrite an existing identity."""
        d = Path(directory)
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
        ident = cls.generate()
        ident.save(d / "identity.pem")
        return ident

    @classmethod
    def load(cls, path: Union[str, os.PathLike]) -> "Identity":
        """Loads ``identity.pem`` (or a directory holding it)."""
        p = Path(path)
        if p.is_dir():
            p = p / "identity.pem"
        try:
            data = p.read_bytes()
        except FileNotFoundError:
            raise NotFound(f"no identity at {p}") from None
        if len(data) > MAX_IDENTITY_FILE_BYTES:
            raise InvalidArgument(f"identity {p}: file too large")
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as e:
            raise InvalidArgument(f"identity {p}: not an unencrypted PKCS#8 PEM key ({e})") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise InvalidArgument(f"identity {p}: not an Ed25519 key")
        return cls(key)

    def save(self, path: Union[str, os.PathLike]) -> None:
        """Writes the private key (PKCS#8 PEM, 0600, exclusive create) and, beside it,
        ``<stem>.pub.pem`` (SPKI PEM)."""
        p = Path(path)
        pem = self._key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        pub = self._key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo)
        p.with_name(p.name[:-len(".pem")] + ".pub.pem" if p.name.endswith(".pem")
                    else p.name + ".pub.pem").write_bytes(pub)

    def sign(self, message: bytes) -> bytes:
        """Ed25519 signature (64 bytes) of ``message``."""
        return self._key.sign(message)
