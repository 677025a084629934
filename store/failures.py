"""Sessions that need an operator: those whose wind-down failed, with their last error."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, true
from sqlalchemy.ext.asyncio import AsyncSession

from domain.status import SessionStatus
from store.models import AuditEvent, TradingSession


@dataclass(frozen=True)
class FailedSession:
    session_id: str
    account_id: str
    workflow_id: str
    status: str
    updated_at: datetime
    last_error: str | None


async def cleanup_failed_sessions(db: AsyncSession, limit: int) -> list[FailedSession]:
    """Sessions in CLEANUP_FAILED, latest first, each with the error last recorded for it.

    The error is the reason (or ``details.error``) of the session's latest audit event,
    else the row's ``end_detail``.
    """
    latest = (
        select(AuditEvent.reason, AuditEvent.details["error"].astext.label("detail_error"))
        .where(AuditEvent.session_id == TradingSession.id)
        .order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc())
        .limit(1)
        .lateral("latest")
    )
    stmt = (
        select(TradingSession, latest.c.reason, latest.c.detail_error)
        .outerjoin(latest, true())
        .where(TradingSession.status == SessionStatus.CLEANUP_FAILED)
        .order_by(TradingSession.updated_at.desc(), TradingSession.id)
        .limit(limit)
    )
    return [
        FailedSession(
            session_id=row.id,
            account_id=row.account_id,
            workflow_id=row.workflow_id,
            status=row.status,
            updated_at=row.updated_at,
            last_error=detail_error or reason or row.end_detail,
        )
        for row, reason, detail_error in (await db.execute(stmt)).all()
    ]
