"""Alerts for operators: the list, the acknowledgement (audited), and the counts the
open-alerts gauge and ``sessionctl top`` show."""

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.alerts import FLEET_AUDIT_ID, KNOWN_KINDS
from starter.api.schemas_operations import AlertOut, AlertPage
from starter.services.errors import NotFoundError
from store.alerts import AlertFilter, AlertRepository
from store.audit import AuditRepository


class AlertService:
    """Reads and acknowledges the ``alerts`` table."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker

    async def page(self, where: AlertFilter, *, before_id: int | None, limit: int) -> AlertPage:
        """Alerts matching ``where``, newest first."""
        async with self.sessionmaker() as db:
            rows = await AlertRepository(db).page(where, before_id=before_id, limit=limit)
        alerts = [AlertOut.model_validate(row, from_attributes=True) for row in rows]
        next_before = alerts[-1].id if len(alerts) == limit else None
        return AlertPage(alerts=alerts, next_before_id=next_before)

    async def acknowledge(self, alert_id: int, actor: str, reason: str | None) -> AlertOut:
        """Acknowledge the alert and audit it; acknowledging it again changes nothing."""
        async with self.sessionmaker.begin() as db:
            alert, changed = await AlertRepository(db).acknowledge(alert_id, actor)
            if alert is None:
                raise NotFoundError(f"alert {alert_id} not found")
            if changed:
                await AuditRepository(db).append(
                    session_id=alert.session_id or FLEET_AUDIT_ID,
                    action="alert.acknowledged",
                    actor=actor,
                    reason=reason,
                    details={"alert_id": alert.id, "kind": alert.kind},
                    dedupe_key=f"alert:{alert.id}:acknowledged",
                )
            return AlertOut.model_validate(alert, from_attributes=True)

    async def counts_by_kind(self) -> tuple[dict[str, int], dict[str, int]]:
        """Alerts ever raised, and those open, by kind; every known kind is there (at 0 if
        need be) so the series exist before the first alert."""
        async with self.sessionmaker() as db:
            raised, open_ = await AlertRepository(db).counts_by_kind()
        zero = dict.fromkeys(KNOWN_KINDS, 0)
        return zero | raised, zero | open_

    async def latest_open(self, limit: int) -> list[AlertOut]:
        """The newest open alerts."""
        async with self.sessionmaker() as db:
            rows = await AlertRepository(db).latest(limit)
        return [AlertOut.model_validate(row, from_attributes=True) for row in rows]
