"""Orders over HTTP against the real stack: the trading gate is enforced where they are booked."""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.integration.api_helpers import session_body, wait_for_status
from tests.integration.polling import eventually


async def start_active(api: httpx.AsyncClient, **overrides: Any) -> str:
    body = session_body(**overrides)
    await api.post("/sessions", json=body)
    await wait_for_status(api, body["session_id"], {"ACTIVE"})
    return str(body["session_id"])


def order_body(order_id: str, side: str = "BUY", quantity: str = "10", **extra: Any) -> Any:
    return {"order_id": order_id, "symbol": "ACME", "side": side, "quantity": quantity, **extra}


async def wait_for_gate(api: httpx.AsyncClient, session_id: str, open_: bool) -> dict[str, Any]:
    async def gate() -> dict[str, Any] | None:
        body: dict[str, Any] = (await api.get(f"/sessions/{session_id}/gate")).json()
        return body if body["open"] is open_ else None

    return await eventually(gate, timeout=10)


async def test_order_on_an_open_gate_is_booked_open_and_listed(api: httpx.AsyncClient) -> None:
    session_id = await start_active(api)

    response = await api.post(
        f"/sessions/{session_id}/orders", json=order_body("o-1", limit_price="101.50")
    )
    listed = await api.get(f"/sessions/{session_id}/orders")

    assert response.status_code == 201
    order = response.json()
    assert order["status"] == "OPEN"
    assert (order["quantity"], order["limit_price"], order["duplicate"]) == ("10", "101.5", False)
    assert [o["order_id"] for o in listed.json()] == ["o-1"]


async def test_repeated_order_id_returns_the_stored_order_without_a_second_one(
    api: httpx.AsyncClient,
) -> None:
    session_id = await start_active(api)
    first = await api.post(f"/sessions/{session_id}/orders", json=order_body("o-1"))

    again = await api.post(f"/sessions/{session_id}/orders", json=order_body("o-1"))

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["duplicate"] is True
    assert again.json()["created_at"] == first.json()["created_at"]
    assert len((await api.get(f"/sessions/{session_id}/orders")).json()) == 1


async def test_order_id_reused_with_other_values_is_a_conflict(api: httpx.AsyncClient) -> None:
    session_id = await start_active(api)
    await api.post(f"/sessions/{session_id}/orders", json=order_body("o-1", quantity="10"))

    response = await api.post(
        f"/sessions/{session_id}/orders", json=order_body("o-1", quantity="9")
    )

    assert response.status_code == 409
    assert response.json()["error"]["field"] == "order_id"
    [stored] = (await api.get(f"/sessions/{session_id}/orders")).json()
    assert stored["quantity"] == "10"


async def test_paused_session_refuses_orders_until_resumed(api: httpx.AsyncClient) -> None:
    session_id = await start_active(api)
    await api.post(f"/sessions/{session_id}/pause", json={"reason": "news"})
    await wait_for_gate(api, session_id, False)

    refused = await api.post(f"/sessions/{session_id}/orders", json=order_body("o-1"))
    await api.post(f"/sessions/{session_id}/resume", json={})
    await wait_for_gate(api, session_id, True)
    accepted = await api.post(f"/sessions/{session_id}/orders", json=order_body("o-1"))

    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "gate_closed"
    assert "news" in refused.json()["error"]["message"]
    assert accepted.status_code == 201
    assert len((await api.get(f"/sessions/{session_id}/orders")).json()) == 1


async def test_session_not_yet_active_refuses_orders(api: httpx.AsyncClient) -> None:
    start = datetime.now(UTC) + timedelta(minutes=10)
    body = session_body(start_time=start.isoformat())
    await api.post("/sessions", json=body)

    response = await api.post(f"/sessions/{body['session_id']}/orders", json=order_body("o-1"))

    assert response.status_code == 409
    assert "PENDING" in response.json()["error"]["message"]
    assert (await api.get(f"/sessions/{body['session_id']}/orders")).json() == []


async def test_ended_session_refuses_new_orders_but_still_answers_a_repeat(
    api: httpx.AsyncClient,
) -> None:
    session_id = await start_active(api)
    await api.post(f"/sessions/{session_id}/orders", json=order_body("o-1"))
    await api.post(f"/sessions/{session_id}/terminate", json={"reason": "done"})
    await wait_for_status(api, session_id, {"TERMINATED"})

    refused = await api.post(f"/sessions/{session_id}/orders", json=order_body("o-2"))
    repeat = await api.post(f"/sessions/{session_id}/orders", json=order_body("o-1"))

    assert refused.status_code == 409
    assert repeat.status_code == 200
    assert [o["order_id"] for o in (await api.get(f"/sessions/{session_id}/orders")).json()] == [
        "o-1"
    ]


async def test_orders_of_an_unknown_session_are_404(api: httpx.AsyncClient) -> None:
    placed = await api.post("/sessions/nope-404/orders", json=order_body("o-1"))
    listed = await api.get("/sessions/nope-404/orders")

    assert (placed.status_code, listed.status_code) == (404, 404)
    assert placed.json()["error"]["code"] == "not_found"


async def test_order_with_zero_quantity_is_a_422_and_books_nothing(
    api: httpx.AsyncClient,
) -> None:
    session_id = await start_active(api)

    response = await api.post(
        f"/sessions/{session_id}/orders", json=order_body("o-1", quantity="0")
    )

    assert response.status_code == 422
    assert response.json()["error"]["field"] == "quantity"
    assert (await api.get(f"/sessions/{session_id}/orders")).json() == []
