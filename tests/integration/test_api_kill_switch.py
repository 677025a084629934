"""The emergency kill switch on the real stack (dev server, worker, PostgreSQL): one call
closes every gate in the scope at once, ends every session in it, and locks the scope."""

import uuid
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.roles import Role
from starter.services.keys import KeyService
from store.audit import AuditRepository
from tests.integration.api_helpers import session_body, wait_for_status
from tests.integration.polling import eventually


def _account() -> str:
    return f"acc-kill-{uuid.uuid4().hex[:8]}"


async def _start(api: httpx.AsyncClient, **overrides: Any) -> str:
    body = session_body(**overrides)
    assert (await api.post("/sessions", json=body)).status_code == 201
    await wait_for_status(api, body["session_id"], {"ACTIVE"})
    return str(body["session_id"])


async def _ended(api: httpx.AsyncClient, kill_id: int) -> dict[str, Any] | None:
    body: dict[str, Any] = (await api.get(f"/kill-switch/{kill_id}")).json()
    return body if body["sessions_winding_down"] == 0 else None


async def test_kill_switch_closes_gates_at_once_and_ends_every_session_of_the_account(
    api: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    account, other = _account(), _account()
    killed = [
        await _start(api, account_id=account, algorithm_id="algo-1"),
        await _start(api, account_id=account, algorithm_id="algo-2"),
    ]
    spared = await _start(api, account_id=other)

    pressed = await api.post(
        "/kill-switch",
        json={"scope": {"account_id": account}, "reason": "runaway algo", "actor": "desk"},
    )

    assert pressed.status_code == 201, pressed.text
    switch = pressed.json()
    assert (switch["sessions_targeted"], switch["engaged"]) == (2, True)
    # The gates are closed when the call answers, before any workflow has wound down.
    for session_id in killed:
        assert (await api.get(f"/sessions/{session_id}/gate")).json()["open"] is False
    assert (await api.get(f"/sessions/{spared}/gate")).json()["open"] is True
    done = await eventually(lambda: _ended(api, switch["id"]), timeout=30)
    assert (done["sessions_ended"], done["winding_down"], done["signals_sent"]) == (2, [], 2)
    for session_id in killed:
        ended = await wait_for_status(api, session_id, {"TERMINATED"})
        assert ended["end_reason"] == "TERMINATED"
        assert "kill switch" in ended["end_detail"]
    assert (await api.get(f"/sessions/{spared}")).json()["status"] == "ACTIVE"
    async with sessionmaker() as db:
        audit = await AuditRepository(db).for_session(killed[0])
        trail = [(e.action, e.actor) for e in audit]
        engaged = await AuditRepository(db).for_session(f"kill-switch-{switch['id']}")
    closed = next(actor for action, actor in trail if action == "gate.closed")
    assert closed.endswith(":desk")
    assert ("session.termination_requested", closed) in trail
    assert [e.action for e in engaged] == ["kill_switch.engaged"]


async def test_a_locked_scope_refuses_new_sessions_until_an_admin_rearms_it(
    api: httpx.AsyncClient,
) -> None:
    algorithm = f"algo-{uuid.uuid4().hex[:8]}"
    pressed = await api.post(
        "/kill-switch", json={"scope": {"algorithm_id": algorithm}, "reason": "bad release"}
    )
    kill_id = pressed.json()["id"]

    refused = await api.post("/sessions", json=session_body(algorithm_id=algorithm))
    again = await api.post(
        "/kill-switch", json={"scope": {"algorithm_id": algorithm}, "reason": "again"}
    )
    rearmed = await api.post(f"/kill-switch/{kill_id}/rearm", json={"reason": "fixed"})
    twice = await api.post(f"/kill-switch/{kill_id}/rearm", json={})
    accepted = await api.post("/sessions", json=session_body(algorithm_id=algorithm))

    assert (pressed.status_code, pressed.json()["sessions_targeted"]) == (201, 0)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "kill_switch_engaged"
    assert (again.status_code, again.json()["id"]) == (200, kill_id)
    assert rearmed.status_code == 200
    assert (rearmed.json()["engaged"], rearmed.json()["rearmed_at"] is not None) == (False, True)
    assert twice.status_code == 409
    assert accepted.status_code == 201


async def test_a_risk_key_presses_the_switch_but_only_an_admin_rearms_it(
    api: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    risk = await KeyService(sessionmaker).create(Role.RISK, description="risk desk")
    as_risk = {"Authorization": f"Bearer {risk.api_key}"}
    trader = await KeyService(sessionmaker).create(Role.TRADER, account_id="acc-t")
    as_trader = {"Authorization": f"Bearer {trader.api_key}"}
    scope = {"scope": {"account_id": _account()}, "reason": "drill"}

    by_trader = await api.post("/kill-switch", json=scope, headers=as_trader)
    by_risk = await api.post("/kill-switch", json=scope, headers=as_risk)
    kill_id = by_risk.json()["id"]
    rearm_by_risk = await api.post(f"/kill-switch/{kill_id}/rearm", json={}, headers=as_risk)
    read_by_risk = await api.get(f"/kill-switch/{kill_id}", headers=as_risk)
    await api.post(f"/kill-switch/{kill_id}/rearm", json={})

    assert (by_trader.status_code, by_risk.status_code) == (403, 201)
    assert by_risk.json()["engaged_by"].startswith("key:")
    assert (rearm_by_risk.status_code, read_by_risk.status_code) == (403, 200)


async def test_a_scope_must_name_exactly_one_thing(api: httpx.AsyncClient) -> None:
    for scope in ({}, {"account_id": "a", "algorithm_id": "b"}, {"all": False}):
        response = await api.post("/kill-switch", json={"scope": scope, "reason": "x"})
        assert response.status_code == 422, scope
