"""Secrets at rest: API keys are hashed, provider and webhook secrets are encrypted (AES-256-GCM).

Every key derives from the one master secret (GATEWAY_SECRET_KEY) with HKDF, one key per purpose, so a
database dump reveals nothing and one compromised purpose key does not unlock the others.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import string

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_ALPHABET = string.ascii_letters + string.digits
_CIPHER_VERSION = "v1"


def random_token(length: int = 32) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def hash_api_key(secret: str) -> str:
    # API keys carry ~190 bits of randomness, so a fast hash is safe; lookups stay one index probe.
    return hashlib.sha256(secret.encode()).hexdigest()


class SecretBox:
    def __init__(self, master_secret: str) -> None:
        self._master = master_secret.encode()
        self._aead = AESGCM(self.derive_key("stored-secrets"))
        self._tokens: dict[tuple[str, int], str] = {}

    def derive_key(self, purpose: str, length: int = 32) -> bytes:
        return HKDF(algorithm=hashes.SHA256(), length=length, salt=b"gateway-v1", info=purpose.encode()).derive(
            self._master
        )

    def derive_token(self, purpose: str, length: int = 32) -> str:
        """A stable printable secret for a purpose (the sandbox's shared secrets, the demo key); derived once."""
        token = self._tokens.get((purpose, length))
        if token is None:
            raw = self.derive_key(purpose, 64)
            token = self._tokens[(purpose, length)] = "".join(_ALPHABET[b % len(_ALPHABET)] for b in raw[:length])
        return token

    def encrypt(self, plaintext: str, *, context: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        return f"{_CIPHER_VERSION}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def decrypt(self, token: str, *, context: str) -> str:
        version, _, payload = token.partition(":")
        if version != _CIPHER_VERSION:
            raise ValueError("unknown ciphertext version")
        raw = base64.urlsafe_b64decode(payload)
        try:
            return self._aead.decrypt(raw[:12], raw[12:], context.encode()).decode()
        except InvalidTag as exc:
            raise ValueError("stored secret cannot be decrypted with this GATEWAY_SECRET_KEY") from exc


def constant_time_equals(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
