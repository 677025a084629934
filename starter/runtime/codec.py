"""AES-GCM payload encryption for Temporal: what the server stores is ciphertext.

Keys come from ``TRADING_PAYLOAD_KEYS``: ``id:base64key`` entries (a comma list or a JSON
list), newest first. The first encrypts; every one decrypts, so a key can be rotated by
putting the new one in front and removing the old one once no history needs it. The
worker, the API and the CLI use the codec through their client; workflows never see it.
"""

import base64
import binascii
import json
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"
_NONCE_BYTES = 12


class CodecError(ValueError):
    """A payload or key that cannot be used: unknown key id, wrong key, damaged data."""


def parse_keys(raw: str) -> list[tuple[str, bytes]]:
    """``id:base64key`` entries from a comma list or a JSON list, in the given order."""
    raw = raw.strip()
    entries: list[str] = json.loads(raw) if raw.startswith("[") else raw.split(",")
    keys: list[tuple[str, bytes]] = []
    for entry in (e.strip() for e in entries):
        key_id, sep, encoded = entry.partition(":")
        if not sep or not key_id:
            raise CodecError("each payload key must read id:base64key")
        try:
            key = base64.b64decode(encoded, validate=True)
        except binascii.Error as err:
            raise CodecError(f"payload key {key_id!r} is not valid base64") from err
        if len(key) not in (16, 24, 32):
            raise CodecError(f"payload key {key_id!r} must be 16, 24 or 32 bytes")
        keys.append((key_id, key))
    if not keys:
        raise CodecError("no payload keys given")
    return keys


class EncryptionCodec(PayloadCodec):
    """Encrypts every payload with the newest key; decrypts with the key its metadata names."""

    def __init__(self, keys: Sequence[tuple[str, bytes]]) -> None:
        if not keys:
            raise CodecError("no payload keys given")
        self._current_id = keys[0][0]
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(payload) for payload in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        nonce = os.urandom(_NONCE_BYTES)
        key_id = self._current_id.encode()
        sealed = self._ciphers[self._current_id].encrypt(nonce, payload.SerializeToString(), key_id)
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID_METADATA: key_id}, data=nonce + sealed
        )

    def decrypt(self, payload: Payload) -> Payload:
        """The original payload; one that is not encrypted passes through unchanged."""
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        key_id = payload.metadata.get(KEY_ID_METADATA, b"").decode()
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise CodecError(f"payload was encrypted with unknown key {key_id!r}")
        nonce, sealed = payload.data[:_NONCE_BYTES], payload.data[_NONCE_BYTES:]
        try:
            return Payload.FromString(cipher.decrypt(nonce, sealed, key_id.encode()))
        except InvalidTag as err:
            raise CodecError(f"payload does not decrypt with key {key_id!r}") from err


def codec_from(raw_keys: str | None) -> EncryptionCodec | None:
    """The codec for the configured keys, or None when encryption is not configured."""
    return EncryptionCodec(parse_keys(raw_keys)) if raw_keys else None
