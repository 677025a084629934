"""HMAC-SHA256 signatures of webhook bodies; the sender and every receiver use this code.

The signature covers the raw body bytes exactly as sent, so a receiver must verify the bytes
it read from the wire, before parsing them as JSON.
"""

import hashlib
import hmac

SCHEME = "sha256="


def sign(secret: str, body: bytes) -> str:
    """The ``X-Trading-Signature`` value of ``body``: ``sha256=<hex HMAC-SHA256>``."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return SCHEME + digest


def verify(secret: str, body: bytes, signature: str | None) -> bool:
    """True when ``signature`` is the signature of ``body`` under ``secret``."""
    if not signature:
        return False
    # Constant-time comparison: a timing difference would let an attacker guess byte by byte.
    return hmac.compare_digest(sign(secret, body).encode(), signature.strip().encode())
