"""Who is calling: a key's role and account, and the hash under which keys are stored.

The key service issues and verifies keys; the key cache remembers verified principals; the
API's auth checks them. All three need these names, so they sit here, below all three.
"""

import hashlib
from dataclasses import dataclass

from domain.roles import Role


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's role and, for a trader, the one account it may act on."""

    role: Role
    key_id: str | None = None
    account_id: str | None = None

    @property
    def actor(self) -> str:
        """The identity recorded in the audit trail and in the workflow's history."""
        return f"key:{self.key_id}" if self.key_id else "anonymous"

    def recorded_actor(self, display: str | None) -> str:
        """The key's identity, with the caller's display name after it when one is given."""
        if self.key_id is None:  # auth switched off: the caller's word is all there is
            return display or self.actor
        if display in (None, "", "api"):
            return self.actor
        return f"{self.actor}:{display}"[:64]


# Auth switched off (dev only): everything is allowed, as an operator without a key.
ANONYMOUS_OPERATOR = Principal(role=Role.OPERATOR)


def hash_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()
