"""PLACEHOLDER until the fleet repository lands (replaced at merge)."""

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from domain.sweep import WakeReason


@dataclass(frozen=True)
class FleetRow:
    session_id: str

    def wake_reason(self) -> WakeReason | None:
        return None


@dataclass(frozen=True)
class FleetLosses:
    checked: int
    rows: list[FleetRow] = field(default_factory=list)


class FleetRepository:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def sweep_losses(self, shard: int, shards: int) -> FleetLosses:
        return FleetLosses(0)

    async def close_gates(self, session_ids: list[str], reason: str) -> list[str]:
        return []

    async def record_sweep(
        self,
        shard: int,
        shards: int,
        *,
        due_at: datetime,
        swept_at: datetime,
        checked: int,
        signalled: int,
    ) -> None:
        return None
