"""The audit trail for a compliance officer: a session's events, and exports of a window as
NDJSON or CSV; the auditor role reads them and nothing else."""

import csv
import io
import json
import tracemalloc
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.roles import Role
from domain.status import SessionStatus
from starter.services.audit import AuditService, ExportFormat
from starter.services.keys import KeyService
from store.audit import AuditQuery, AuditRepository
from store.sessions import SessionRepository
from tests.fixtures.factories import session_values

Sessionmaker = async_sessionmaker[AsyncSession]


async def _session_with_events(sessionmaker: Sessionmaker, actor: str, count: int = 3) -> str:
    account = f"acc-{uuid.uuid4().hex[:8]}"
    values = session_values(status=SessionStatus.ACTIVE, account_id=account)
    async with sessionmaker.begin() as db:
        await SessionRepository(db).insert_if_absent(values)
        await AuditRepository(db).append_many(
            [
                {
                    "session_id": values["id"],
                    "action": "session.paused",
                    "actor": actor,
                    "reason": f"r{n}",
                    "details": {"n": n},
                }
                for n in range(count)
            ]
        )
    return str(values["id"])


async def _headers(
    sessionmaker: Sessionmaker, role: Role, account: str | None = None
) -> dict[str, str]:
    key = await KeyService(sessionmaker).create(role, account_id=account)
    return {"Authorization": f"Bearer {key.api_key}"}


async def test_an_auditor_reads_the_audit_and_nothing_else(
    api: httpx.AsyncClient, sessionmaker: Sessionmaker
) -> None:
    actor = f"op-{uuid.uuid4().hex[:8]}"
    session_id = await _session_with_events(sessionmaker, actor)
    auditor = await _headers(sessionmaker, Role.AUDITOR)

    trail = await api.get(f"/sessions/{session_id}/audit", headers=auditor)
    export = await api.get("/audit", params={"actor": actor}, headers=auditor)

    assert trail.status_code == 200
    assert [e["reason"] for e in trail.json()] == ["r0", "r1", "r2"]
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("application/x-ndjson")
    assert [json.loads(line)["details"]["n"] for line in export.text.splitlines()] == [0, 1, 2]
    for method, path in (
        ("GET", f"/sessions/{session_id}"),
        ("GET", "/sessions"),
        ("GET", "/alerts"),
        ("GET", "/jobs/stats"),
        ("GET", "/notifications"),
        ("GET", f"/sessions/{session_id}/orders"),
        ("POST", f"/sessions/{session_id}/terminate"),
        ("GET", "/keys"),
    ):
        response = await api.request(method, path, headers=auditor, json={"reason": "x"})
        assert response.status_code == 403, (method, path, response.status_code)


async def test_a_trader_reads_its_own_sessions_audit_but_exports_nothing(
    api: httpx.AsyncClient, sessionmaker: Sessionmaker
) -> None:
    session_id = await _session_with_events(sessionmaker, "op-x")
    async with sessionmaker() as db:
        account = await SessionRepository(db).get(session_id)
    own = await _headers(sessionmaker, Role.TRADER, account.account_id)
    other = await _headers(sessionmaker, Role.TRADER, "acc-someone-else")

    assert (await api.get(f"/sessions/{session_id}/audit", headers=own)).status_code == 200
    assert (await api.get(f"/sessions/{session_id}/audit", headers=other)).status_code == 403
    assert (await api.get("/audit", headers=own)).status_code == 403
    assert (await api.get("/sessions/nope-404/audit")).status_code == 404


async def test_export_filters_by_window_account_and_action_in_csv(
    api: httpx.AsyncClient, sessionmaker: Sessionmaker
) -> None:
    actor = f"op-{uuid.uuid4().hex[:8]}"
    session_id = await _session_with_events(sessionmaker, actor, count=2)
    async with sessionmaker() as db:
        row = await SessionRepository(db).get(session_id)
    now = datetime.now(UTC)

    inside = await api.get(
        "/audit",
        params={
            "since": (now - timedelta(minutes=5)).isoformat(),
            "until": (now + timedelta(minutes=5)).isoformat(),
            "account": row.account_id,
            "action": "session.paused",
            "format": "csv",
        },
    )
    before = await api.get(
        "/audit", params={"until": (now - timedelta(hours=1)).isoformat(), "actor": actor}
    )
    backwards = await api.get(
        "/audit", params={"since": now.isoformat(), "until": (now - timedelta(1)).isoformat()}
    )

    assert inside.status_code == 200
    assert inside.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(inside.text)))
    assert [(r["session_id"], r["reason"]) for r in rows] == [
        (session_id, "r0"),
        (session_id, "r1"),
    ]
    assert before.text == ""
    assert backwards.status_code == 422


async def test_a_day_of_a_thousand_sessions_streams_in_bounded_memory(
    sessionmaker: Sessionmaker,
) -> None:
    actor = f"bulk-{uuid.uuid4().hex[:8]}"
    events = [
        {
            "session_id": f"{actor}-{s}",
            "action": action,
            "actor": actor,
            "reason": "bulk",
            "details": {"s": s},
        }
        for s in range(1000)
        for action in ("session.started", "session.activated", "warning.time", "session.ended")
    ]
    async with sessionmaker.begin() as db:
        await AuditRepository(db).append_many(events)
    service = AuditService(sessionmaker)

    tracemalloc.start()
    started = datetime.now(UTC)
    lines = 0
    async for chunk in service.export(AuditQuery(actor=actor), ExportFormat.NDJSON):
        lines += chunk.count(b"\n")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    elapsed = (datetime.now(UTC) - started).total_seconds()

    assert lines == 4000
    # One batch of 500 events at a time, not 4000: well under what the whole export needs.
    assert peak < 8 * 2**20, f"peak {peak / 2**20:.1f} MiB"
    print(f"audit export: 4000 events in {elapsed:.2f} s, peak {peak / 2**20:.1f} MiB")  # noqa: T201
