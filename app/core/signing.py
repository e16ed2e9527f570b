"""Signatures others can check: consent receipts (ES256, public JWKS) and one-click unsubscribe links
(HS256)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jose import jwk, jws
from jose.exceptions import JOSEError

from app.core.config import ConfigError


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class ReceiptSigner:
    """Signs consent receipts with a dedicated P-256 key whose public half is published as a JWKS."""

    def __init__(self, private_pem: bytes) -> None:
        private = serialization.load_pem_private_key(private_pem, password=None)
        if not isinstance(private, ec.EllipticCurvePrivateKey) or private.curve.name != "secp256r1":
            raise ConfigError("the receipt key must be an EC P-256 private key (ES256)")
        public = private.public_key().public_numbers()
        self.public_jwk = {
            "kty": "EC",
            "crv": "P-256",
            "x": _b64(public.x.to_bytes(32, "big")),
            "y": _b64(public.y.to_bytes(32, "big")),
        }
        # RFC 7638 thumbprint as key id: stable for the key, different for the next one.
        canonical = json.dumps(
            {k: self.public_jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":")
        )
        self.kid = _b64(hashlib.sha256(canonical.encode()).digest())
        self.public_jwk |= {"kid": self.kid, "use": "sig", "alg": "ES256"}
        self._key = jwk.construct(private_pem.decode(), "ES256")

    @classmethod
    def load(cls, path: Path, *, create: bool) -> ReceiptSigner:
        """The key in `path`; in development, generated there on first use and kept, so that receipts stay
        verifiable across restarts and by every worker (the first process to create the file wins)."""
        if not path.exists():
            if not create:
                raise ConfigError(f"PRIVACY_RECEIPT_KEY_FILE: {path} does not exist")
            pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            _create_whole(path, pem)
        try:
            return cls(path.read_bytes())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"PRIVACY_RECEIPT_KEY_FILE: cannot read an EC private key from {path}") from exc

    def sign(self, claims: dict[str, Any]) -> str:
        token: str = jws.sign(claims, self._key, headers={"kid": self.kid, "typ": "JWT"}, algorithm="ES256")
        return token

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.public_jwk]}


def _create_whole(path: Path, content: bytes) -> None:
    """Create `path` with `content` unless it exists, so that no reader ever sees it partly written: the
    content goes to a temporary file beside it, which is then hard-linked to its name. link() fails when the
    name exists, so the first process to link wins and every other one reads the winner's whole file."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:  # mkstemp: mode 0600
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        os.unlink(temporary)


class LinkSigner:
    """Compact HS256 tokens for links sent by e-mail (one-click unsubscribe), with a key of their own."""

    def __init__(self, key: bytes) -> None:
        self._key = jwk.construct(key, "HS256")

    def sign(self, claims: dict[str, Any]) -> str:
        token: str = jws.sign(claims, self._key, algorithm="HS256")
        return token

    def verify(self, token: str) -> dict[str, Any] | None:
        try:
            payload = jws.verify(token, self._key, algorithms=["HS256"])
            claims = json.loads(payload)
        except (JOSEError, ValueError, TypeError):
            return None
        return claims if isinstance(claims, dict) else None
