"""Late fills over HTTP on the real stack: after the end a fill of an order placed before
the halt is recorded, marked late and flattened again; anything else is refused."""

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import ActivityEnvironment

from activities.broker import PaperBroker
from activities.late_fills import LateFillActivities
from domain.late_fills import LateFillsInput
from tests.integration.api_helpers import fill_body, session_body, wait_for_status
from tests.integration.polling import eventually


async def ended_with_an_order(api: httpx.AsyncClient) -> tuple[str, datetime]:
    """A session that placed order o-1 (BUY 10 ACME), had 5 filled at 100, was marked at
    110 and was terminated: flattened SELL 5 @ 110 with a 0.275 fee, realized 49.725."""
    body = session_body(account_id=f"acc-{uuid.uuid4().hex[:10]}")
    session_id = str(body["session_id"])
    await api.post("/sessions", json=body)
    await wait_for_status(api, session_id, {"ACTIVE"})
    order = {"order_id": "o-1", "symbol": "ACME", "side": "BUY", "quantity": "10"}
    assert (await api.post(f"/sessions/{session_id}/orders", json=order)).status_code == 201
    first = datetime.now(UTC)
    filled = fill_body("f-1", "BUY", "5", "100", executed_at=first.isoformat(), order_id="o-1")
    assert (await api.post(f"/sessions/{session_id}/fills", json=filled)).status_code == 201
    mark = {"symbol": "ACME", "price": "110"}
    assert (await api.post(f"/sessions/{session_id}/marks", json=mark)).status_code == 201
    await api.post(f"/sessions/{session_id}/terminate", json={"reason": "desk closes"})
    ended = await wait_for_status(api, session_id, {"TERMINATED"})
    assert ended["realized_pnl"] == "49.725"
    return session_id, first


async def rows(sm: async_sessionmaker[AsyncSession], sql: str, **params: Any) -> list[Any]:
    async with sm() as db:
        return list((await db.execute(text(sql), params)).all())


async def test_late_fill_after_the_end_is_recorded_flattened_again_and_settled(
    api: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    session_id, first = await ended_with_an_order(api)
    # The broker reports the other half of o-1, executed before the halt.
    late = fill_body(
        "f-2",
        "BUY",
        "5",
        "101",
        order_id="o-1",
        executed_at=(first + timedelta(milliseconds=1)).isoformat(),
    )

    response = await api.post(f"/sessions/{session_id}/fills", json=late)

    assert response.status_code == 201
    assert (response.json()["late"], response.json()["order_id"]) == (True, "o-1")

    async def settled() -> bool | None:
        flat = await rows(
            sessionmaker,
            "SELECT 1 FROM positions WHERE session_id = :s AND quantity <> 0",
            s=session_id,
        )
        announced = await rows(
            sessionmaker,
            "SELECT payload->>'realized_pnl' FROM notifications "
            "WHERE session_id = :s AND kind = 'session.late_fill'",
            s=session_id,
        )
        return True if not flat and announced else None

    await eventually(settled, timeout=20)
    # Bought 10 at an average of 100.5, sold 10 at 110, two fees of 0.275: 94.45.
    session = (await api.get(f"/sessions/{session_id}")).json()
    assert session["realized_pnl"] == "94.45"
    [(portfolio,)] = await rows(
        sessionmaker,
        "SELECT p.realized_pnl FROM portfolios p JOIN trading_sessions s "
        "ON s.account_id = p.account_id WHERE s.id = :s",
        s=session_id,
    )
    assert portfolio == Decimal("94.45")
    [(final_pnl,)] = await rows(
        sessionmaker,
        "SELECT realized_pnl FROM performance_snapshots WHERE session_id = :s AND kind = 'final'",
        s=session_id,
    )
    assert final_pnl == Decimal("94.45")
    closing = await rows(
        sessionmaker,
        "SELECT fill_id, side, quantity, late FROM fills WHERE session_id = :s ORDER BY id",
        s=session_id,
    )
    assert [(c[0], c[1], c[2], c[3]) for c in closing] == [
        ("f-1", "BUY", Decimal(5), False),
        ("flatten:ACME", "SELL", Decimal(5), False),
        ("f-2", "BUY", Decimal(5), True),
        ("reflatten:ACME:2", "SELL", Decimal(5), False),
    ]
    actions = dict(
        await rows(
            sessionmaker,
            "SELECT action, count(*) FROM audit_events WHERE session_id = :s GROUP BY action",
            s=session_id,
        )
    )
    for action in ("fill.late", "positions.flattened", "positions.reflattened"):
        assert actions.get(action) == 1, (action, actions)
    [(payload,)] = await rows(
        sessionmaker,
        "SELECT payload FROM notifications WHERE session_id = :s AND kind = 'session.late_fill'",
        s=session_id,
    )
    assert (payload["fill_id"], payload["order_id"], payload["realized_pnl"]) == (
        "f-2",
        "o-1",
        "94.45000000",
    )
    # The follow-up again (a retry, the reconciler racing the API's start): nothing more.
    follow_up = LateFillActivities(sessionmaker, PaperBroker(sessionmaker))
    again = await ActivityEnvironment().run(
        follow_up.settle_late_fills, LateFillsInput(session_id=session_id)
    )
    assert (again.reflattened, again.settled_difference, again.notification_ids) == ({}, None, [])
    assert again.realized_pnl == "94.45000000"


async def test_after_the_end_a_fill_must_execute_an_order_the_session_placed(
    api: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    session_id, _ = await ended_with_an_order(api)
    url = f"/sessions/{session_id}/fills"

    unnamed = await api.post(url, json=fill_body("x-1", "BUY", "1", "100"))
    unknown = await api.post(url, json=fill_body("x-2", "BUY", "1", "100", order_id="o-9"))
    other_side = await api.post(url, json=fill_body("x-3", "SELL", "1", "100", order_id="o-1"))
    too_much = await api.post(url, json=fill_body("x-4", "BUY", "6", "100", order_id="o-1"))

    for refused in (unnamed, unknown, other_side):
        assert refused.status_code == 409
        assert refused.json()["error"]["code"] == "unknown_order"
        assert refused.json()["error"]["field"] == "order_id"
    assert too_much.status_code == 409
    assert too_much.json()["error"]["code"] == "order_overfilled"
    assert "o-9" in unknown.json()["error"]["message"]
    stored = await rows(
        sessionmaker, "SELECT count(*) FROM fills WHERE session_id = :s AND late", s=session_id
    )
    assert stored == [(0,)]
    assert (await api.get(f"/sessions/{session_id}")).json()["realized_pnl"] == "49.725"
