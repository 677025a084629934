"""Repository for algorithm control: halt announcements and per-algorithm settings.

Never commits: a halt is announced inside the transaction that closes the gate, and
PostgreSQL delivers the NOTIFY only when that transaction commits.
"""

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import Algorithm

HALT_CHANNEL = "algorithm_halt"


class AlgorithmRepository:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def announce_halt(self, payload: str) -> None:
        """NOTIFY every algorithm process LISTENing on the halt channel, on commit."""
        await self.db.execute(
            text("SELECT pg_notify(:channel, :payload)"),
            {"channel": HALT_CHANNEL, "payload": payload},
        )

    async def halt_webhook_url(self, algorithm_id: str) -> str | None:
        """Where the algorithm wants halts pushed besides LISTEN/NOTIFY, if anywhere."""
        row = await self.db.get(Algorithm, algorithm_id)
        return None if row is None else row.halt_webhook_url

    async def halt_webhook(self, algorithm_id: str) -> tuple[str, str | None] | None:
        """The halt webhook's URL and signing secret, or None when it has none."""
        row = await self.db.get(Algorithm, algorithm_id)
        if row is None or not row.halt_webhook_url:
            return None
        return row.halt_webhook_url, row.halt_webhook_secret
