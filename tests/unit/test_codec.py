"""The AES-GCM payload codec: ciphertext in, original out, and key rotation."""

import base64
import os

import pytest
from temporalio.api.common.v1 import Payload

from starter.runtime.codec import ENCODING, KEY_ID_METADATA, CodecError, EncryptionCodec, parse_keys


def _key() -> bytes:
    return os.urandom(32)


def _plain(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=f'"{text}"'.encode())


async def test_encoded_payload_hides_its_data_and_names_its_key() -> None:
    codec = EncryptionCodec([("k1", _key())])
    [sealed] = await codec.encode([_plain("session-secret-id")])
    assert sealed.metadata["encoding"] == ENCODING
    assert sealed.metadata[KEY_ID_METADATA] == b"k1"
    assert b"session-secret-id" not in sealed.SerializeToString()
    assert await codec.decode([sealed]) == [_plain("session-secret-id")]


async def test_rotated_keys_encrypt_with_the_newest_and_still_decrypt_the_old() -> None:
    old, new = _key(), _key()
    [written_before] = await EncryptionCodec([("old", old)]).encode([_plain("before")])
    rotated = EncryptionCodec([("new", new), ("old", old)])
    [written_after] = await rotated.encode([_plain("after")])
    assert written_after.metadata[KEY_ID_METADATA] == b"new"
    decoded = await rotated.decode([written_before, written_after])
    assert decoded == [_plain("before"), _plain("after")]


async def test_unknown_key_and_tampered_data_are_refused() -> None:
    [sealed] = await EncryptionCodec([("k1", _key())]).encode([_plain("x")])
    with pytest.raises(CodecError, match="unknown key"):
        await EncryptionCodec([("k2", _key())]).decode([sealed])
    with pytest.raises(CodecError, match="does not decrypt"):
        await EncryptionCodec([("k1", _key())]).decode([sealed])


async def test_unencrypted_payloads_pass_through_decode() -> None:
    assert await EncryptionCodec([("k1", _key())]).decode([_plain("x")]) == [_plain("x")]


def test_keys_parse_from_a_comma_list_or_json_in_order() -> None:
    a, b = (base64.b64encode(_key()).decode() for _ in range(2))
    assert [k for k, _ in parse_keys(f"new:{a}, old:{b}")] == ["new", "old"]
    assert [k for k, _ in parse_keys(f'["new:{a}", "old:{b}"]')] == ["new", "old"]
    for bad in ("nokey", f"k:{base64.b64encode(b'short').decode()}", "k:***"):
        with pytest.raises(CodecError):
            parse_keys(bad)
