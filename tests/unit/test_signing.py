"""Webhook signatures: the values receivers compute must match ours byte for byte."""

import pytest

from domain.signing import sign, verify

BODY = b'{"id":1,"kind":"warning.loss"}'
SECRET = "0123456789abcdef-secret"


def test_signature_is_the_rfc_4231_hmac_sha256_in_hex() -> None:
    # RFC 4231, test case 2.
    assert sign("Jefe", b"what do ya want for nothing?") == (
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )


def test_signature_of_the_body_verifies() -> None:
    assert verify(SECRET, BODY, sign(SECRET, BODY))


def test_surrounding_whitespace_in_the_header_is_tolerated() -> None:
    assert verify(SECRET, BODY, f" {sign(SECRET, BODY)}\r\n")


@pytest.mark.parametrize(
    ("secret", "body", "signature"),
    [
        (SECRET, BODY + b" ", sign(SECRET, BODY)),  # body changed after signing
        ("another-secret-of-16+", BODY, sign(SECRET, BODY)),  # wrong secret
        (SECRET, BODY, sign(SECRET, BODY).removeprefix("sha256=")),  # scheme missing
        (SECRET, BODY, sign(SECRET, BODY).upper()),  # not our hex
        (SECRET, BODY, ""),
        (SECRET, BODY, None),
        (SECRET, BODY, "sha256=é"),
    ],
)
def test_anything_but_the_exact_signature_is_refused(
    secret: str, body: bytes, signature: str | None
) -> None:
    assert not verify(secret, body, signature)
