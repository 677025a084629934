"""AuditRepository against real PostgreSQL: append-only, deduplicated; rolled back by ``db``."""

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from store.audit import AuditRepository
from store.models import AuditEvent
from tests.fixtures.factories import new_session_id


async def test_audit_append_with_same_dedupe_key_writes_once(db: AsyncSession) -> None:
    audit = AuditRepository(db)
    session_id = new_session_id()

    first = await audit.append(
        session_id=session_id,
        action="session.ended",
        actor="op-jane",
        reason="end of test",
        dedupe_key=f"{session_id}:ended",
    )
    second = await audit.append(
        session_id=session_id,
        action="session.ended",
        actor="op-john",
        reason="retried",
        dedupe_key=f"{session_id}:ended",
    )

    assert first
    assert not second
    [event] = await audit.for_session(session_id)
    assert (event.action, event.actor, event.reason) == ("session.ended", "op-jane", "end of test")


async def test_audit_append_without_dedupe_key_writes_every_event(db: AsyncSession) -> None:
    audit = AuditRepository(db)
    session_id = new_session_id()

    await audit.append(session_id=session_id, action="note", actor="op-jane")
    await audit.append(session_id=session_id, action="note", actor="op-jane")

    assert len(await audit.for_session(session_id)) == 2


async def test_audit_event_keeps_details_and_workflow_ids(db: AsyncSession) -> None:
    audit = AuditRepository(db)
    session_id = new_session_id()

    await audit.append(
        session_id=session_id,
        action="session.ended",
        actor="system",
        details={"end_reason": "EXPIRED", "realized_pnl": "-12.5"},
        workflow_id="wf-1",
        run_id="run-1",
    )

    [event] = await audit.for_session(session_id)
    assert event.details == {"end_reason": "EXPIRED", "realized_pnl": "-12.5"}
    assert (event.workflow_id, event.run_id) == ("wf-1", "run-1")
    assert event.occurred_at is not None


async def audit_event_id(db: AsyncSession, session_id: str) -> int:
    await AuditRepository(db).append(session_id=session_id, action="session.created", actor="api")
    stmt = select(AuditEvent.id).where(AuditEvent.session_id == session_id)
    return (await db.execute(stmt)).scalar_one()


async def test_audit_event_cannot_be_updated(db: AsyncSession) -> None:
    session_id = new_session_id()
    event_id = await audit_event_id(db, session_id)

    with pytest.raises(DBAPIError, match="append-only"):
        async with db.begin_nested():
            await db.execute(
                text("UPDATE audit_events SET actor = 'mallory' WHERE id = :id"), {"id": event_id}
            )

    [event] = await AuditRepository(db).for_session(session_id)
    assert event.actor == "api"


async def test_audit_event_cannot_be_deleted(db: AsyncSession) -> None:
    session_id = new_session_id()
    event_id = await audit_event_id(db, session_id)

    with pytest.raises(DBAPIError, match="append-only"):
        async with db.begin_nested():
            await db.execute(text("DELETE FROM audit_events WHERE id = :id"), {"id": event_id})

    assert len(await AuditRepository(db).for_session(session_id)) == 1


async def test_audit_trail_cannot_be_truncated(db: AsyncSession) -> None:
    session_id = new_session_id()
    await audit_event_id(db, session_id)

    with pytest.raises(DBAPIError, match="append-only"):
        async with db.begin_nested():
            await db.execute(text("TRUNCATE audit_events"))

    assert len(await AuditRepository(db).for_session(session_id)) == 1
