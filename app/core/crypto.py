"""Field encryption (AES-GCM with key ids), keyed hashes of contacts, and API secret hashing."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from app.core.config import Settings
from app.core.contacts import normalize_email, normalize_phone
from app.core.signing import LinkSigner, ReceiptSigner

NONCE_BYTES = 12


class DecryptionError(RuntimeError):
    """A ciphertext could not be decrypted: unknown key id, or tampered data."""


class FieldCipher:
    """Encrypts single values; the key id is stored beside the ciphertext so keys can rotate."""

    def __init__(self, keyring: dict[str, bytes]) -> None:
        if not keyring:
            raise ValueError("at least one encryption key is required")
        self._keys = {kid: AESGCM(key) for kid, key in keyring.items()}
        self.active_key_id = next(iter(keyring))

    def encrypt(self, plaintext: str, *, context: bytes) -> tuple[str, bytes]:
        """(key id, nonce + ciphertext). `context` is bound as associated data: a ciphertext moved
        to another row does not decrypt."""
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = self._keys[self.active_key_id].encrypt(nonce, plaintext.encode(), context)
        return self.active_key_id, nonce + ciphertext

    def decrypt(self, key_id: str, blob: bytes, *, context: bytes) -> str:
        aead = self._keys.get(key_id)
        if aead is None:
            raise DecryptionError(f"unknown encryption key id {key_id!r}")
        try:
            return aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], context).decode()
        except InvalidTag as exc:
            raise DecryptionError("ciphertext failed authentication") from exc


class ContactHasher:
    """HMAC-SHA256 of a normalized contact: lookups and suppression without keeping the contact."""

    def __init__(self, key: bytes) -> None:
        self._prototype = hmac.new(key, digestmod=hashlib.sha256)

    def hash(self, normalized: str) -> str:
        mac = (
            self._prototype.copy()
        )  # cheaper than keying a new HMAC: batch checks hash thousands of contacts
        mac.update(normalized.encode())
        return mac.hexdigest()

    def email(self, address: str) -> str:
        return self.hash(normalize_email(address))

    def phone(self, number: str) -> str | None:
        """None when the number cannot be normalized to E.164."""
        normalized = normalize_phone(number)
        return None if normalized is None else self.hash(normalized)


def new_client_secret() -> str:
    return "wsp_" + secrets.token_urlsafe(32)


def hash_client_secret(secret: str) -> str:
    # The secret carries 256 bits of randomness, so a fast hash is enough (no password stretching needed).
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, stored_hash: str) -> bool:
    return secret_matches_hash(hash_client_secret(secret), stored_hash)


def secret_matches_hash(computed: str, stored: str) -> bool:
    return hmac.compare_digest(computed, stored)


class Keys:
    """The service's key material, built once from configuration and handed to the services that need it."""

    def __init__(self, settings: Settings) -> None:
        hash_key = settings.hash_key.get_secret_value().encode()
        self.cipher = FieldCipher(settings.encryption_keyring)
        self.contacts = ContactHasher(hash_key)
        self.receipts = ReceiptSigner.load(settings.receipt_key_file, create=settings.env != "production")
        # Derived, so that a link token can never pass for anything else signed by the service.
        self.links = LinkSigner(hmac.new(hash_key, b"one-click-unsubscribe", hashlib.sha256).digest())
