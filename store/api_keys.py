"""API keys: create, find by public id, list, revoke. The caller owns the transaction."""

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import ApiKey


class ApiKeyRepository:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def add(
        self,
        *,
        key_id: str,
        secret_hash: str,
        role: str,
        account_id: str | None,
        description: str | None = None,
    ) -> ApiKey:
        row = ApiKey(
            key_id=key_id,
            secret_hash=secret_hash,
            role=role,
            account_id=account_id,
            description=description,
        )
        self.db.add(row)
        await self.db.flush()
        await self.db.refresh(row)
        return row

    async def by_key_id(self, key_id: str) -> ApiKey | None:
        stmt = select(ApiKey).where(ApiKey.key_id == key_id)
        return (await self.db.execute(stmt)).scalar_one_or_none()

    async def list(self, *, include_revoked: bool = True) -> list[ApiKey]:
        stmt = select(ApiKey).order_by(ApiKey.id)
        if not include_revoked:
            stmt = stmt.where(ApiKey.revoked_at.is_(None))
        return list((await self.db.execute(stmt)).scalars())

    async def has_active_admin(self) -> bool:
        stmt = select(ApiKey.id).where(ApiKey.role == "admin", ApiKey.revoked_at.is_(None))
        return (await self.db.execute(stmt.limit(1))).first() is not None

    async def revoke(self, key_id: str) -> ApiKey | None:
        """Mark the key revoked (once: a second revoke keeps the first time)."""
        stmt = select(ApiKey).where(ApiKey.key_id == key_id).with_for_update()
        row = (await self.db.execute(stmt)).scalar_one_or_none()
        if row is not None and row.revoked_at is None:
            row.revoked_at = datetime.now(UTC)
            await self.db.flush()
        return row
