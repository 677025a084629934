"""Sessions with fills, marks, positions and audit rows, for the retention tests."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.positions import Side
from domain.status import SessionStatus, is_terminal
from store.audit import AuditRepository
from store.ledger import LedgerRepository, NewFill
from store.models import AuditEvent, Fill, Mark, Position
from store.sessions import SessionRepository
from tests.factories import session_values


async def seed_session(db: AsyncSession, status: SessionStatus, ended_at: datetime | None) -> str:
    """A session in ``status`` with two fills, an open position, a mark and an audit event."""
    start = (ended_at or datetime.now(UTC)) - timedelta(hours=8)
    values = session_values(start=start, status=status)
    if is_terminal(status) or status is SessionStatus.CLEANUP_FAILED:
        values.update(end_reason="EXPIRED", ended_at=ended_at)
    row, _ = await SessionRepository(db).insert_if_absent(values)
    ledger = LedgerRepository(db)
    for fill_id, side, price in (("f1", Side.BUY, "100"), ("f2", Side.SELL, "101")):
        await ledger.apply_fill(
            row.id,
            NewFill(
                fill_id,
                "ACME",
                side,
                Decimal(3 if side is Side.SELL else 5),
                Decimal(price),
                Decimal(0),
                start,
            ),
        )
    await ledger.add_mark(row.id, "ACME", Decimal("102"), start + timedelta(minutes=5))
    await AuditRepository(db).append(session_id=row.id, action="session.activated", actor="system")
    return row.id


async def data_counts(db: AsyncSession, session_id: str) -> dict[str, int]:
    """Rows the session holds per table."""
    counts = {}
    for name, model in (
        ("fills", Fill),
        ("marks", Mark),
        ("positions", Position),
        ("audit", AuditEvent),
    ):
        stmt = select(func.count()).select_from(model).where(model.session_id == session_id)
        counts[name] = (await db.execute(stmt)).scalar_one()
    return counts
