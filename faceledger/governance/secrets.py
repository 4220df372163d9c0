"""What the server must be able to read back but never keep in clear (AWS SigV4 secrets, face
crops kept for review), sealed with AES-256-GCM under a key kept in the data directory
(mode 0600), apart from the database; each sealed value is bound to its context (its key id,
its face id) as associated data."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from faceledger.errors import FaceledgerError


class SecretBox:
    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    @classmethod
    def load_or_create(cls, path: Path) -> SecretBox:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(AESGCM.generate_key(bit_length=256))
        return cls(path.read_bytes())

    def seal(self, plaintext: str, context: str) -> bytes:
        return self.seal_bytes(plaintext.encode(), context)

    def open(self, sealed: bytes, context: str) -> str:
        return self.open_bytes(sealed, context).decode()

    def seal_bytes(self, plaintext: bytes, context: str) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, plaintext, context.encode())

    def open_bytes(self, sealed: bytes, context: str) -> bytes:
        try:
            return self._aead.decrypt(sealed[:12], sealed[12:], context.encode())
        except (InvalidTag, ValueError):
            raise FaceledgerError(
                "a stored secret cannot be decrypted with this server's key",
                code="SECRET_UNREADABLE",
            ) from None
