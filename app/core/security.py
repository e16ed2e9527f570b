"""JWT: verifying bearer tokens (HS256 secret, RS/ES public keys) and minting our own. What a verified token
means (its principal) is auth's to say: the verifier is given that function."""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.x509 import load_pem_x509_certificate
from jose import jwk, jwt
from jose.exceptions import JOSEError

from app.core.config import ConfigError, Settings


class InvalidToken(Exception):
    """The bearer token is not acceptable; the message is safe to show."""


# --- key material ------------------------------------------------------------------------------------------


def _looks_like_public_key(secret: str) -> bool:
    """python-jose accepts a DER-encoded public key as an HMAC secret (key confusion), and a public key is
    public: refuse any secret that is one, as PEM, OpenSSH, raw DER or base64 DER."""
    if secret.lstrip().startswith(("-----BEGIN", "ssh-", "ecdsa-sha2-")):
        return True
    candidates = [secret.encode()]
    with contextlib.suppress(UnicodeEncodeError):
        candidates.append(secret.encode("latin-1"))
    with contextlib.suppress(binascii.Error, ValueError):
        candidates.append(base64.b64decode("".join(secret.split()), validate=True))
    for candidate in candidates:
        try:
            serialization.load_der_public_key(candidate)
        except (ValueError, TypeError):
            continue
        return True
    return False


@dataclass(frozen=True)
class PublicKey:
    family: str  # "RS" or "ES"
    kid: str | None
    material: Any  # PEM text or a JWK dict, as python-jose takes them


def _pem_blocks(text: str) -> list[str]:
    blocks, current = [], []
    for line in text.splitlines():
        if line.startswith("-----BEGIN"):
            current = [line]
        elif line.startswith("-----END") and current:
            current.append(line)
            blocks.append("\n".join(current) + "\n")
            current = []
        elif current:
            current.append(line)
    return blocks


def _family(key: Any) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        return "RS"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "ES"
    raise ConfigError("PRIVACY_JWT_PUBLIC_KEYS holds a key that is neither RSA nor EC")


def load_public_keys(path: Path) -> list[PublicKey]:
    """Public keys from a PEM file (keys or certificates) or a JWKS file. Never HMAC material."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"PRIVACY_JWT_PUBLIC_KEYS: cannot read {path}: {exc.strerror}") from exc
    keys: list[PublicKey] = []
    if text.lstrip().startswith("{"):
        try:
            document = json.loads(text)
            entries = document["keys"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError('PRIVACY_JWT_PUBLIC_KEYS: not a JWKS document ({"keys": [...]})') from exc
        for entry in entries:
            kty = entry.get("kty")
            if kty not in ("RSA", "EC") or "d" in entry:
                raise ConfigError(
                    "PRIVACY_JWT_PUBLIC_KEYS: only RSA and EC public keys are accepted in the JWKS"
                )
            jwk.construct(entry, "RS256" if kty == "RSA" else "ES256")  # validates the key
            keys.append(PublicKey("RS" if kty == "RSA" else "ES", entry.get("kid"), entry))
    else:
        for block in _pem_blocks(text):
            key: PublicKeyTypes
            try:
                if "CERTIFICATE" in block.splitlines()[0]:
                    key = load_pem_x509_certificate(block.encode()).public_key()
                else:
                    key = serialization.load_pem_public_key(block.encode())
            except ValueError as exc:
                raise ConfigError(
                    "PRIVACY_JWT_PUBLIC_KEYS: a PEM block is not a public key or certificate"
                ) from exc
            pem = key.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            keys.append(PublicKey(_family(key), None, pem.decode()))
    if not keys:
        raise ConfigError(f"PRIVACY_JWT_PUBLIC_KEYS: no public key found in {path}")
    return keys


# --- verification ------------------------------------------------------------------------------------------

_REQUIRED = ("iss", "aud", "exp", "iat", "sub")
_CACHE_SIZE = 10_000


P = TypeVar("P")


class TokenVerifier(Generic[P]):
    """Verifies tokens and turns their claims into principals (`to_principal`, which may refuse them too)."""

    def __init__(self, settings: Settings, to_principal: Callable[[dict[str, Any]], P]) -> None:
        self._to_principal = to_principal
        secret = settings.jwt_secret.get_secret_value()
        if _looks_like_public_key(secret):
            raise ConfigError(
                "PRIVACY_JWT_SECRET looks like a public key; HMAC secrets and public keys are kept apart"
            )
        # Key objects, not raw bytes: python-jose would otherwise try to read a JSON-looking secret as a JWK.
        self._hmac_keys = {
            alg: jwk.construct(secret, alg) for alg in settings.jwt_algorithms if alg.startswith("HS")
        }
        self._algorithms = set(settings.jwt_algorithms)
        self._public_keys = load_public_keys(settings.jwt_public_keys) if settings.jwt_public_keys else []
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._options = {f"require_{claim}": True for claim in _REQUIRED} | {
            "leeway": settings.jwt_leeway_seconds
        }
        self._leeway = settings.jwt_leeway_seconds
        self._verified: dict[str, tuple[P, float]] = {}

    def _keys_for(self, header: dict[str, Any]) -> Any:
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self._algorithms:
            raise InvalidToken("token algorithm not accepted")
        # The key is chosen by the configured family of the algorithm, never by what the token offers:
        # an HS token is checked against the secret only, an RS/ES token against public keys only.
        if alg.startswith("HS"):
            return self._hmac_keys[alg]
        kid = header.get("kid")
        keys = [
            k.material
            for k in self._public_keys
            if k.family == alg[:2] and (kid is None or k.kid in (None, kid))
        ]
        if not keys:
            raise InvalidToken("no key to verify this token")
        return keys

    def verify(self, token: str) -> P:
        """The principal a token stands for. Verified tokens are remembered until they expire: integrators
        reuse one token for many calls, and checking a signature costs more than the cheapest endpoints."""
        cached = self._verified.get(token)
        if cached is not None:
            principal, expires = cached
            if time.time() < expires + self._leeway:
                return principal
            del self._verified[token]
        principal, expires = self._verify(token)
        if len(self._verified) >= _CACHE_SIZE:
            self._verified.clear()
        self._verified[token] = (principal, expires)
        return principal

    def _verify(self, token: str) -> tuple[P, float]:
        try:
            header = jwt.get_unverified_header(token)
            key = self._keys_for(header)
            claims = jwt.decode(
                token,
                key,
                algorithms=[header["alg"]],
                audience=self._audience,
                issuer=self._issuer,
                options=self._options,
            )
        except InvalidToken:
            raise
        except JOSEError as exc:
            raise InvalidToken("token is invalid or expired") from exc
        except (
            Exception
        ) as exc:  # python-jose lets some malformed inputs escape as ValueError, TypeError, ...
            raise InvalidToken("token is malformed") from exc
        # python-jose checks only that `iat` is a number: a token "issued" later than now (beyond the clock
        # leeway) comes from a wrong clock or a forger planning ahead, and is refused.
        if float(claims["iat"]) > time.time() + self._leeway:
            raise InvalidToken("token is issued in the future")
        return self._to_principal(claims), float(claims["exp"])


def mint_token(
    settings: Settings,
    *,
    role: str,
    sub: str,
    scopes: list[str] | tuple[str, ...] = (),
    ttl_seconds: int | None = None,
    extra: dict[str, Any] | None = None,
) -> str:
    """An HS256 token signed with the configured secret (operators, API clients, tests)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": sub,
        "role": role,
        "iat": now,
        "exp": now + (ttl_seconds or settings.access_token_ttl_seconds),
        "jti": uuid.uuid4().hex,
    }
    if scopes:
        claims["scope"] = " ".join(scopes)
    claims.update(extra or {})
    token: str = jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm="HS256")
    return token
