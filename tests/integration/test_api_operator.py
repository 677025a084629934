"""Operator actions over HTTP: updates, pause/resume and the pre-trade gate."""

import asyncio
from datetime import datetime, timedelta
from typing import Any

import httpx

from tests.integration.api_helpers import fill_body, session_body, wait_for_status


async def start_active(api: httpx.AsyncClient, **overrides: Any) -> str:
    body = session_body(**overrides)
    await api.post("/sessions", json=body)
    await wait_for_status(api, body["session_id"], {"ACTIVE"})
    return str(body["session_id"])


async def test_extend_deadline_returns_the_new_deadline_and_stores_it(
    api: httpx.AsyncClient,
) -> None:
    session_id = await start_active(api)
    current = datetime.fromisoformat((await api.get(f"/sessions/{session_id}")).json()["end_time"])
    new_end = (current + timedelta(hours=1)).isoformat()

    response = await api.post(
        f"/sessions/{session_id}/extend", json={"end_time": new_end, "actor": "op-1"}
    )

    assert response.status_code == 200
    assert datetime.fromisoformat(response.json()["end_time"]) == current + timedelta(hours=1)
    stored = (await api.get(f"/sessions/{session_id}")).json()
    assert datetime.fromisoformat(stored["end_time"]) == current + timedelta(hours=1)


async def test_extend_to_an_earlier_deadline_is_a_422_and_changes_nothing(
    api: httpx.AsyncClient,
) -> None:
    session_id = await start_active(api)
    before = (await api.get(f"/sessions/{session_id}")).json()["end_time"]
    earlier = (datetime.fromisoformat(before) - timedelta(minutes=1)).isoformat()

    response = await api.post(f"/sessions/{session_id}/extend", json={"end_time": earlier})

    assert response.status_code == 422
    assert response.json()["error"]["field"] == "end_time"
    assert "later than the current" in response.json()["error"]["message"]
    assert (await api.get(f"/sessions/{session_id}")).json()["end_time"] == before


async def test_lowering_the_loss_limit_below_the_loss_ends_the_session(
    api: httpx.AsyncClient,
) -> None:
    session_id = await start_active(api)
    await api.post(f"/sessions/{session_id}/fills", json=fill_body("b", "BUY", "10", "100"))
    await api.post(f"/sessions/{session_id}/fills", json=fill_body("s", "SELL", "10", "70"))

    response = await api.post(f"/sessions/{session_id}/loss-limit", json={"loss_limit": "250"})
    ended = await wait_for_status(api, session_id, {"LOSS_LIMIT"}, timeout=10)

    assert response.status_code == 200
    assert ended["loss_limit"] == "250"
    assert ended["realized_pnl"] == "-300"


async def test_zero_loss_limit_is_refused_before_reaching_the_workflow(
    api: httpx.AsyncClient,
) -> None:
    session_id = await start_active(api)

    response = await api.post(f"/sessions/{session_id}/loss-limit", json={"loss_limit": "0"})

    assert response.status_code == 422
    assert (await api.get(f"/sessions/{session_id}")).json()["loss_limit"] == "1000"


async def test_pause_closes_the_gate_and_resume_reopens_it(api: httpx.AsyncClient) -> None:
    session_id = await start_active(api)
    assert (await api.get(f"/sessions/{session_id}/gate")).json()["open"] is True

    paused = await api.post(f"/sessions/{session_id}/pause", json={"reason": "news"})
    closed = await wait_for_gate(api, session_id, False)
    await api.post(f"/sessions/{session_id}/resume", json={})
    reopened = await wait_for_gate(api, session_id, True)

    assert paused.status_code == 202
    assert closed["reason"] == "news"
    assert reopened["status"] == "ACTIVE"


async def test_gate_is_closed_once_the_session_ended(api: httpx.AsyncClient) -> None:
    session_id = await start_active(api)
    await api.post(f"/sessions/{session_id}/terminate", json={"reason": "done"})
    await wait_for_status(api, session_id, {"TERMINATED"})

    gate = (await api.get(f"/sessions/{session_id}/gate")).json()
    extend = await api.post(
        f"/sessions/{session_id}/extend", json={"end_time": "2099-01-01T00:00:00Z"}
    )

    assert gate["open"] is False
    assert gate["reason"] == "session is TERMINATED"
    assert extend.status_code == 409


async def wait_for_gate(api: httpx.AsyncClient, session_id: str, open_: bool) -> dict[str, object]:
    for _ in range(100):
        gate: dict[str, object] = (await api.get(f"/sessions/{session_id}/gate")).json()
        if gate["open"] is open_:
            return gate
        await asyncio.sleep(0.05)
    raise AssertionError(f"gate never became {'open' if open_ else 'closed'}")


async def test_retry_cleanup_is_refused_unless_the_session_is_cleanup_failed(
    api: httpx.AsyncClient,
) -> None:
    session_id = await start_active(api)

    response = await api.post(f"/sessions/{session_id}/retry-cleanup", json={"actor": "op-1"})

    assert response.status_code == 409
    assert "not CLEANUP_FAILED" in response.json()["error"]["message"]
