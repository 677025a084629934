"""Alerts: raised once by what saw the problem, listed and acknowledged by operators.

Raising an alert queues its notification for the operator channel in the same transaction,
so an alert that exists is always announced and one rolled back never is.
"""

from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from domain.alerts import AlertState, Audience, alert_notification_key, alert_notification_kind
from store.models import Alert, TradingSession
from store.notifications import NotificationRepository


@dataclass(frozen=True)
class AlertFilter:
    """What ``GET /alerts`` and ``sessionctl alerts`` ask for; None means any."""

    kind: str | None = None
    session_id: str | None = None
    state: AlertState | None = None


class AlertRepository:
    """The ``alerts`` table; the caller owns the transaction."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def raise_alert(
        self,
        *,
        kind: str,
        message: str,
        session_id: str | None,
        dedupe_key: str | None,
        notify: bool = True,
    ) -> bool:
        """Record the alert once (by ``dedupe_key``) and queue its operator notification.

        ``notify=False`` only where announcing would feed itself: a failed delivery of an
        operator notification. True if the alert is new.
        """
        account = (
            select(TradingSession.account_id)
            .where(TradingSession.id == session_id)
            .scalar_subquery()
        )
        stmt = (
            insert(Alert)
            .values(
                kind=kind,
                message=message,
                session_id=session_id,
                account_id=account if session_id is not None else None,
                dedupe_key=dedupe_key,
            )
            .on_conflict_do_nothing(index_elements=["dedupe_key"])
            .returning(Alert)
        )
        alert = (await self.db.execute(stmt)).scalar_one_or_none()
        if alert is None:
            return False
        if notify:
            await NotificationRepository(self.db).enqueue(
                session_id=session_id,
                account_id=alert.account_id,
                audience=Audience.OPERATORS,
                kind=alert_notification_kind(kind),
                payload={
                    "alert_id": alert.id,
                    "kind": kind,
                    "message": message,
                    "session_id": session_id,
                    "account_id": alert.account_id,
                    "created_at": alert.created_at.isoformat(),
                },
                dedupe_key=alert_notification_key(alert.id),
            )
        return True

    async def notification_id(self, dedupe_key: str) -> int | None:
        """The outbox id of the notification of the alert raised under ``dedupe_key``."""
        alert_id = (
            await self.db.execute(select(Alert.id).where(Alert.dedupe_key == dedupe_key))
        ).scalar_one_or_none()
        if alert_id is None:
            return None
        return await NotificationRepository(self.db).id_for(alert_notification_key(alert_id))

    async def for_session(self, session_id: str) -> list[Alert]:
        stmt = select(Alert).where(Alert.session_id == session_id).order_by(Alert.id)
        return list((await self.db.execute(stmt)).scalars())

    async def get(self, alert_id: int) -> Alert | None:
        return await self.db.get(Alert, alert_id, populate_existing=True)

    async def page(self, where: AlertFilter, *, before_id: int | None, limit: int) -> list[Alert]:
        """Alerts matching ``where``, newest first, with ids below ``before_id`` (paging)."""
        conditions = _conditions(where)
        if before_id is not None:
            conditions.append(Alert.id < before_id)
        stmt = select(Alert).where(*conditions).order_by(Alert.id.desc()).limit(limit)
        return list((await self.db.execute(stmt)).scalars())

    async def acknowledge(self, alert_id: int, actor: str) -> tuple[Alert | None, bool]:
        """Acknowledge an open alert: the alert, and whether this call acknowledged it
        (False when it was acknowledged before: the first acknowledgement stays)."""
        stmt = (
            update(Alert)
            .where(Alert.id == alert_id, Alert.acknowledged_at.is_(None))
            .values(acknowledged_at=func.now(), acknowledged_by=actor)
            .returning(Alert.id)
        )
        changed = (await self.db.execute(stmt)).scalar_one_or_none() is not None
        return await self.get(alert_id), changed

    async def counts_by_kind(self) -> tuple[dict[str, int], dict[str, int]]:
        """How many alerts were raised, and how many are open (not acknowledged), by kind."""
        open_ = func.count().filter(Alert.acknowledged_at.is_(None))
        stmt = select(Alert.kind, func.count(), open_).group_by(Alert.kind)
        rows = (await self.db.execute(stmt)).all()
        return {k: n for k, n, _ in rows}, {k: o for k, _, o in rows}

    async def latest(self, limit: int) -> list[Alert]:
        """The newest open alerts (for ``sessionctl top``)."""
        stmt = (
            select(Alert)
            .where(Alert.acknowledged_at.is_(None))
            .order_by(Alert.id.desc())
            .limit(limit)
        )
        return list((await self.db.execute(stmt)).scalars())


def _conditions(where: AlertFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if where.kind is not None:
        conditions.append(Alert.kind == where.kind)
    if where.session_id is not None:
        conditions.append(Alert.session_id == where.session_id)
    if where.state is AlertState.OPEN:
        conditions.append(Alert.acknowledged_at.is_(None))
    elif where.state is AlertState.ACKNOWLEDGED:
        conditions.append(Alert.acknowledged_at.is_not(None))
    return conditions
