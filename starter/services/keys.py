"""API keys and roles: issue, verify, list and revoke keys. The API and the CLI share it.

A key reads ``tsk_<key id>.<secret>``. The key id is public (lists, audit actor
``key:<key id>``); only the SHA-256 of the whole key is stored, so a database dump gives
no usable key.
"""

import hmac
import re
import secrets

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.roles import Role
from starter.api.schemas import ApiKeyOut, IssuedKey
from starter.services.errors import InvalidRequestError, NotFoundError
from starter.services.key_cache import KeyCache
from starter.services.principals import Principal, hash_key
from store.api_keys import ApiKeyRepository

KEY_PREFIX = "tsk_"
_KEY_FORMAT = re.compile(r"^tsk_([0-9a-f]{12})\.([A-Za-z0-9_-]{43})$")


def new_key() -> tuple[str, str]:
    """A fresh (key id, full key) pair from the OS's CSPRNG."""
    key_id = secrets.token_hex(6)
    return key_id, f"{KEY_PREFIX}{key_id}.{secrets.token_urlsafe(32)}"


class KeyService:
    """Keys in the database; with a cache (the API's), verified keys are remembered a while."""

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], cache: KeyCache | None = None
    ) -> None:
        self.sessionmaker = sessionmaker
        self.cache = cache

    async def create(
        self, role: Role, account_id: str | None = None, description: str | None = None
    ) -> IssuedKey:
        """Issue a key; a trader key needs an account, the others must not have one."""
        if (role is Role.TRADER) != (account_id is not None):
            raise InvalidRequestError(
                "a trader key needs an account; other roles act on every account",
                field="account_id",
            )
        key_id, api_key = new_key()
        async with self.sessionmaker.begin() as db:
            row = await ApiKeyRepository(db).add(
                key_id=key_id,
                secret_hash=hash_key(api_key),
                role=role,
                account_id=account_id,
                description=description,
            )
            out = ApiKeyOut.model_validate(row)
        return IssuedKey(**out.model_dump(), api_key=api_key)

    async def list_keys(self) -> list[ApiKeyOut]:
        async with self.sessionmaker() as db:
            rows = await ApiKeyRepository(db).list()
        return [ApiKeyOut.model_validate(row) for row in rows]

    async def revoke(self, key_id: str) -> ApiKeyOut:
        async with self.sessionmaker.begin() as db:
            row = await ApiKeyRepository(db).revoke(key_id)
            if row is None:
                raise NotFoundError(f"no API key {key_id!r}", field="key_id")
            revoked = ApiKeyOut.model_validate(row)
        if self.cache is not None:
            self.cache.evict(key_id)
        return revoked

    async def bootstrap_admin(self) -> IssuedKey | None:
        """An admin key when none is active yet (first start of the dev stack), else None."""
        async with self.sessionmaker() as db:
            if await ApiKeyRepository(db).has_active_admin():
                return None
        return await self.create(Role.ADMIN, description="bootstrap admin")

    async def authenticate(self, api_key: str) -> Principal | None:
        """The key's principal, or None when it is malformed, unknown or revoked."""
        if self.cache is None:
            return await self._lookup(api_key)
        return await self.cache.get_or_load(api_key, self._lookup)

    async def _lookup(self, api_key: str) -> Principal | None:
        match = _KEY_FORMAT.match(api_key)
        if match is None:
            return None
        async with self.sessionmaker() as db:
            row = await ApiKeyRepository(db).by_key_id(match.group(1))
        if row is None or row.revoked_at is not None:
            return None
        if not hmac.compare_digest(row.secret_hash, hash_key(api_key)):
            return None
        return Principal(role=Role(row.role), key_id=row.key_id, account_id=row.account_id)
