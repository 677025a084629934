"""Risk controls on the real stack: pre-trade checks on every order, the REDUCING and HALTED
trading states, drawdown from peak equity and the profit target (issue 16)."""

from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store.audit import AuditRepository
from tests.integration.api_helpers import fill_body, session_body, wait_for_status
from tests.integration.polling import eventually


async def _start(api: httpx.AsyncClient, **overrides: Any) -> str:
    body = session_body(**overrides)
    response = await api.post("/sessions", json=body)
    assert response.status_code == 201, response.text
    await wait_for_status(api, body["session_id"], {"ACTIVE"})
    return str(body["session_id"])


def _order(order_id: str, side: str = "BUY", quantity: str = "1", **extra: Any) -> Any:
    return {"order_id": order_id, "symbol": "ACME", "side": side, "quantity": quantity, **extra}


async def _refusal(api: httpx.AsyncClient, session_id: str, body: Any) -> str:
    response = await api.post(f"/sessions/{session_id}/orders", json=body)
    assert response.status_code == 409, response.text
    return str(response.json()["error"]["code"])


async def test_every_pre_trade_check_refuses_with_its_code_and_books_nothing(
    api: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    limits = {
        "max_quantity": "5",
        "max_notional": "1000",
        "price_collar_pct": "5",
        "max_open_orders": "2",
    }
    session_id = await _start(api, order_limits=limits)
    no_mark = await _refusal(api, session_id, _order("o-0", limit_price="100"))
    await api.post(f"/sessions/{session_id}/marks", json={"symbol": "ACME", "price": "100"})

    codes = [
        await _refusal(api, session_id, _order("o-1", quantity="6")),
        await _refusal(api, session_id, _order("o-2", quantity="5", limit_price="300")),
        await _refusal(api, session_id, _order("o-3", limit_price="110")),
    ]
    booked = [
        (await api.post(f"/sessions/{session_id}/orders", json=_order(f"ok-{i}"))).status_code
        for i in range(2)
    ]
    too_many = await _refusal(api, session_id, _order("o-4", limit_price="104"))

    assert no_mark == "no_reference_price"
    assert codes == ["max_quantity", "max_notional", "price_collar"]
    assert (booked, too_many) == ([201, 201], "max_open_orders")
    orders = (await api.get(f"/sessions/{session_id}/orders")).json()
    assert [o["order_id"] for o in orders] == ["ok-0", "ok-1"]
    async with sessionmaker() as db:
        audit = await AuditRepository(db).for_session(session_id)
    refused = [e.details["refusal"] for e in audit if e.action == "order.refused"]
    assert refused == [
        "no_reference_price",
        "max_quantity",
        "max_notional",
        "price_collar",
        "max_open_orders",
    ]
    risk = (await api.get(f"/sessions/{session_id}")).json()["risk"]
    assert risk["order_limits"] == limits


async def test_the_order_rate_throttle_refuses_a_second_order_within_the_second(
    api: httpx.AsyncClient,
) -> None:
    session_id = await _start(api, order_limits={"max_orders_per_second": 1})

    first = await api.post(f"/sessions/{session_id}/orders", json=_order("r-1"))
    second = await api.post(f"/sessions/{session_id}/orders", json=_order("r-2"))

    assert first.status_code == 201
    assert (second.status_code, second.json()["error"]["code"]) == (409, "order_rate")


async def test_reducing_state_admits_only_orders_that_shrink_the_position(
    api: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    session_id = await _start(api, loss_limit="1000", reducing_at=0.5)
    await api.post(f"/sessions/{session_id}/fills", json=fill_body("f-1", "BUY", "10", "100"))
    # unrealized -600: 60 % of the limit, past the 50 % where REDUCING starts
    await api.post(f"/sessions/{session_id}/marks", json={"symbol": "ACME", "price": "40"})

    gate = (await api.get(f"/sessions/{session_id}/gate")).json()
    adding = await _refusal(api, session_id, _order("buy-1", "BUY", "1"))
    flipping = await _refusal(api, session_id, _order("sell-11", "SELL", "11"))
    reducing = await api.post(f"/sessions/{session_id}/orders", json=_order("sell-5", "SELL", "5"))

    assert (gate["open"], gate["trading_state"]) == (True, "REDUCING")
    assert (adding, flipping, reducing.status_code) == ("reducing_only", "reducing_only", 201)

    async def live_state() -> str | None:
        body = (await api.get(f"/sessions/{session_id}")).json()
        live = body.get("live") or {}
        return "REDUCING" if live.get("trading_state") == "REDUCING" else None

    await eventually(live_state, timeout=20)
    session = (await api.get(f"/sessions/{session_id}")).json()
    assert session["risk"]["trading_state"] == "REDUCING"
    assert session["risk"]["limits"][0]["used_pct"] == 60.0
    async with sessionmaker() as db:
        audit = await AuditRepository(db).for_session(session_id)
    changed = [e.details for e in audit if e.action == "trading_state.changed"]
    assert changed[0]["from"] == "ACTIVE"
    assert changed[0]["to"] == "REDUCING"


async def test_a_paused_session_is_halted_and_refuses_every_order(api: httpx.AsyncClient) -> None:
    session_id = await _start(api)
    await api.post(f"/sessions/{session_id}/pause", json={"reason": "news"})

    gate = (await api.get(f"/sessions/{session_id}/gate")).json()
    code = await _refusal(api, session_id, _order("p-1", "SELL", "1"))

    assert (gate["open"], gate["trading_state"]) == (False, "HALTED")
    assert code == "gate_closed"


async def test_a_drawdown_from_the_peak_ends_the_session_drawdown_limit(
    api: httpx.AsyncClient,
) -> None:
    session_id = await _start(api, loss_limit="1000", max_drawdown="100")
    await api.post(f"/sessions/{session_id}/fills", json=fill_body("f-1", "BUY", "10", "100"))
    # equity +200 (the peak), then +90: 110 below the peak, past the 100 allowed
    await api.post(f"/sessions/{session_id}/marks", json={"symbol": "ACME", "price": "120"})
    peak = (await api.get(f"/sessions/{session_id}")).json()["risk"]["peak_equity"]
    await api.post(f"/sessions/{session_id}/marks", json={"symbol": "ACME", "price": "109"})

    ended = await wait_for_status(api, session_id, {"LOSS_LIMIT"}, timeout=30)

    assert peak == "200"
    assert ended["end_reason"] == "DRAWDOWN_LIMIT"
    assert "drawdown 110 from peak 200" in ended["end_detail"]


async def test_reaching_the_profit_target_ends_the_session(api: httpx.AsyncClient) -> None:
    session_id = await _start(api, profit_target="50")
    await api.post(f"/sessions/{session_id}/fills", json=fill_body("f-1", "BUY", "10", "100"))
    await api.post(f"/sessions/{session_id}/marks", json={"symbol": "ACME", "price": "106"})

    ended = await wait_for_status(api, session_id, {"TERMINATED"}, timeout=30)

    assert ended["end_reason"] == "PROFIT_TARGET"
