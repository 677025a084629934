"""Repository for trading_sessions rows. Never commits: the caller owns the transaction."""

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from domain.session_messages import SessionSpec
from domain.status import SessionStatus, check_transition
from domain.sweep import CheckSource
from store.models import TradingSession


class SessionNotFoundError(LookupError):
    def __init__(self, session_id: str) -> None:
        super().__init__(f"session {session_id!r} not found")
        self.session_id = session_id


@dataclass(frozen=True)
class NewSession:
    """A session as it is first stored: PENDING, its limits, and how it was asked for."""

    id: str
    account_id: str
    algorithm_id: str
    start_time: datetime
    end_time: datetime
    loss_limit: Decimal
    warning_thresholds: list[float]
    workflow_id: str
    idempotency_key: str | None = None
    status: SessionStatus = SessionStatus.PENDING
    reducing_at: float | None = None
    max_drawdown: Decimal | None = None
    profit_target: Decimal | None = None
    order_limits: dict[str, str] = field(default_factory=dict)


class SessionRepository:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def insert_if_absent(
        self, session: NewSession | Mapping[str, Any]
    ) -> tuple[TradingSession, bool]:
        """Insert a session unless its id or idempotency key exists; return (row, created).

        A mapping of column values seeds any state (tests and the benchmark do).

        Racing identical requests all end here; ON CONFLICT makes exactly one of them win.
        The new row comes back whole from RETURNING: no second read on the start path.
        """
        values = asdict(session) if isinstance(session, NewSession) else dict(session)
        stmt = (
            insert(TradingSession)
            .values(**values)
            .on_conflict_do_nothing()
            .returning(TradingSession)
        )
        created = (await self.db.execute(stmt)).scalar_one_or_none()
        if created is not None:
            return created, True
        existing = await self.find_existing(values["id"], values.get("idempotency_key"))
        return existing, False

    async def find_existing(self, session_id: str, idempotency_key: str | None) -> TradingSession:
        conditions = [TradingSession.id == session_id]
        if idempotency_key is not None:
            conditions.append(TradingSession.idempotency_key == idempotency_key)
        row = (await self.db.execute(select(TradingSession).where(or_(*conditions)))).scalar()
        if row is None:
            raise SessionNotFoundError(session_id)
        return row

    async def find_by_idempotency_key(self, key: str) -> TradingSession | None:
        stmt = select(TradingSession).where(TradingSession.idempotency_key == key)
        return (await self.db.execute(stmt)).scalar_one_or_none()

    async def get(self, session_id: str, *, for_update: bool = False) -> TradingSession:
        stmt = select(TradingSession).where(TradingSession.id == session_id)
        if for_update:
            # Reload under the lock: an identity-mapped copy read earlier may be stale.
            stmt = stmt.with_for_update().execution_options(populate_existing=True)
        row = (await self.db.execute(stmt)).scalar_one_or_none()
        if row is None:
            raise SessionNotFoundError(session_id)
        return row

    async def list(
        self,
        *,
        status: SessionStatus | None = None,
        account_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> Sequence[TradingSession]:
        stmt = select(TradingSession).order_by(TradingSession.created_at.desc(), TradingSession.id)
        if status is not None:
            stmt = stmt.where(TradingSession.status == status)
        if account_id is not None:
            stmt = stmt.where(TradingSession.account_id == account_id)
        return (await self.db.execute(stmt.limit(limit).offset(offset))).scalars().all()

    async def transition(
        self, session_id: str, target: SessionStatus, **fields: Any
    ) -> tuple[TradingSession, bool]:
        """Move a session to ``target`` under a row lock; return (row, changed).

        Re-applying the same target is a no-op, so activities may run twice safely.
        """
        row = await self.get(session_id, for_update=True)
        current = row.status
        if current == target:
            return row, False
        check_transition(current, target)
        await self.db.execute(
            update(TradingSession)
            .where(TradingSession.id == session_id)
            .values(status=target, **fields)
        )
        await self.db.refresh(row)
        return row, True

    async def count_by_status(self) -> dict[SessionStatus, int]:
        stmt = select(TradingSession.status, func.count()).group_by(TradingSession.status)
        return {status: count for status, count in (await self.db.execute(stmt)).all()}

    async def record_check(
        self,
        session_id: str,
        source: CheckSource,
        *,
        published_loss_pct: float | None = None,
        trading_state: str | None = None,
        equity: Decimal | None = None,
    ) -> Decimal | None:
        """Note a loss check of the session (and the LossUsedPct and trading state its
        workflow publishes); with ``equity``, raise the running peak to it and return it."""
        values: dict[str, Any] = {
            "last_checked_at": func.now(),
            "last_checked_by": source.value,
        }
        if published_loss_pct is not None:
            values["published_loss_pct"] = published_loss_pct
        if trading_state is not None:
            values["trading_state"] = trading_state
        if equity is not None:
            values["peak_equity"] = func.greatest(TradingSession.peak_equity, equity)
            raised = (
                update(TradingSession)
                .where(TradingSession.id == session_id)
                .values(**values)
                .returning(TradingSession.peak_equity)
            )
            peak = (await self.db.execute(raised)).scalar_one_or_none()
            if peak is None:
                raise SessionNotFoundError(session_id)
            return peak
        stmt = update(TradingSession).where(TradingSession.id == session_id).values(**values)
        if (await self.db.execute(stmt)).rowcount == 0:  # type: ignore[attr-defined]
            raise SessionNotFoundError(session_id)
        return None

    async def add_loss_warning(
        self, session_id: str, threshold: float, *, drawdown: bool = False
    ) -> None:
        """Remember a loss (or drawdown) threshold as warned about, so the sweep never wakes
        for it again."""
        warned = (
            TradingSession.drawdown_warnings_sent if drawdown else TradingSession.loss_warnings_sent
        )
        await self.db.execute(
            update(TradingSession)
            .where(TradingSession.id == session_id, ~warned.contains([threshold]))
            .values({warned: warned.op("||")(func.jsonb_build_array(threshold))})
        )

    async def change_limits(self, session_id: str, values: dict[str, Any]) -> None:
        """Write a new deadline and/or loss limit; the caller holds the row lock."""
        await self.db.execute(
            update(TradingSession).where(TradingSession.id == session_id).values(**values)
        )

    async def set_gate(self, session_id: str, *, open_: bool, reason: str | None) -> None:
        """Open or close the session's trading gate; the caller holds the row lock."""
        await self.db.execute(
            update(TradingSession)
            .where(TradingSession.id == session_id)
            .values(gate_open=open_, gate_reason=reason)
        )


def spec_of(row: TradingSession) -> SessionSpec:
    """The workflow's view of a stored session: what the API and the reconciler start it with."""
    return SessionSpec(
        session_id=row.id,
        account_id=row.account_id,
        algorithm_id=row.algorithm_id,
        start_time=row.start_time,
        end_time=row.end_time,
        loss_limit=row.loss_limit,
        warning_thresholds=row.warning_thresholds,
        reducing_at=row.reducing_at,
        max_drawdown=row.max_drawdown,
        profit_target=row.profit_target,
    )
