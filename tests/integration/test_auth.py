"""Every role against every endpoint family: allowed calls pass the check, others get 403."""

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.roles import Role
from starter.api.schemas import IssuedKey
from starter.services.keys import KeyService
from store.audit import AuditRepository
from tests.integration.api_helpers import fill_body, session_body

OWN, OTHER = "acc-own", "acc-other"
TR, SV, OP, AD = Role.TRADER, Role.SERVICE, Role.OPERATOR, Role.ADMIN
OPEN_PATHS = {"/health/live", "/health/ready", "/metrics"}


def _calls(own: str) -> list[tuple[str, str, dict[str, Any] | None, set[Role]]]:
    """(method, path, body, roles allowed) for each endpoint family; ``own`` is a session id."""
    s = f"/sessions/{own}"
    far = "2099-01-01T00:00:00+00:00"
    return [
        ("POST", "/sessions", session_body(account_id=OWN), {TR, OP, AD}),
        ("GET", "/sessions", None, {TR, OP, AD}),
        ("GET", s, None, {TR, OP, AD}),
        ("GET", f"{s}/gate", None, {TR, SV, OP, AD}),
        ("POST", f"{s}/fills", fill_body("f-auth", "BUY", "1", "10"), {SV, OP, AD}),
        ("POST", f"{s}/marks", {"symbol": "ACME", "price": "10"}, {SV, OP, AD}),
        ("POST", f"{s}/orders", {"order_id": "o", "symbol": "ACME", "side": "BUY"}, {SV, OP, AD}),
        ("GET", f"{s}/orders", None, {TR, SV, OP, AD}),
        ("GET", f"{s}/performance", None, {TR, OP, AD}),
        ("GET", f"{s}/performance/history", None, {TR, OP, AD}),
        ("POST", f"{s}/extend", {"end_time": far}, {OP, AD}),
        ("POST", f"{s}/loss-limit", {"loss_limit": "2000"}, {OP, AD}),
        ("POST", f"{s}/pause", {}, {OP, AD}),
        ("POST", f"{s}/resume", {}, {OP, AD}),
        ("POST", f"{s}/retry-cleanup", {}, {OP, AD}),
        ("GET", "/jobs/failures", None, {OP, AD}),
        ("GET", "/jobs/stats", None, {OP, AD}),
        ("GET", "/notifications", None, {OP, AD}),
        ("GET", "/webhooks", None, {OP, AD}),
        ("POST", "/webhooks", {}, {OP, AD}),
        ("POST", "/codec/decode", {"payloads": []}, {OP, AD}),
        ("GET", "/keys", None, {AD}),
        ("POST", "/keys", {"role": "service"}, {AD}),
        # Last: it ends the session.
        ("POST", f"{s}/terminate", {"reason": "auth matrix"}, {TR, OP, AD}),
    ]


def _bearer(key: IssuedKey) -> dict[str, str]:
    return {"Authorization": f"Bearer {key.api_key}"}


async def _key(
    sessionmaker: async_sessionmaker[AsyncSession], role: Role, account: str | None = None
) -> IssuedKey:
    return await KeyService(sessionmaker).create(role, account)


async def _start(api: httpx.AsyncClient, account: str) -> str:
    body = session_body(account_id=account)
    assert (await api.post("/sessions", json=body)).status_code == 201
    return str(body["session_id"])


@pytest.mark.parametrize("role", list(Role))
async def test_each_role_may_call_exactly_its_endpoints(
    api: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession], role: Role
) -> None:
    key = await _key(sessionmaker, role, OWN if role is Role.TRADER else None)
    own = await _start(api, OWN)
    wrong = []
    for method, path, body, allowed in _calls(own):
        response = await api.request(method, path, json=body, headers=_bearer(key))
        expected_denied = role not in allowed
        if (response.status_code == 403) != expected_denied or response.status_code == 401:
            wrong.append((method, path, response.status_code, response.text[:120]))
        if expected_denied:
            assert response.json()["error"]["code"] == "forbidden"
    assert wrong == []


async def test_every_protected_route_refuses_a_call_without_a_key(api: httpx.AsyncClient) -> None:
    spec = (await api.get("/openapi.json")).json()
    refused = []
    for path, operations in spec["paths"].items():
        concrete = path.replace("{session_id}", "any").replace("{key_id}", "any")
        concrete = concrete.replace("{subscription_id}", "1")
        for method in operations:
            response = await api.request(method, concrete, headers={"Authorization": ""})
            if path in OPEN_PATHS:
                assert response.status_code != 401, path
                continue
            refused.append(response.status_code)
            assert response.status_code == 401, (method, path)
            assert response.json()["error"]["code"] == "unauthorized"
    assert len(refused) >= 20


async def test_unknown_malformed_and_revoked_keys_are_401(
    api: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    key = await _key(sessionmaker, Role.OPERATOR)
    assert (await api.get("/sessions", headers={"X-API-Key": key.api_key})).status_code == 200
    forged = key.api_key[:-4] + "AAAA"
    for bad in (forged, "tsk_000000000000.x", "not-a-key"):
        response = await api.get("/sessions", headers={"Authorization": f"Bearer {bad}"})
        assert response.status_code == 401
    assert (await api.post(f"/keys/{key.key_id}/revoke")).json()["revoked_at"] is not None
    response = await api.get("/sessions", headers=_bearer(key))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


async def test_trader_acts_only_on_its_own_account(
    api: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    trader = _bearer(await _key(sessionmaker, Role.TRADER, OWN))
    own, other = await _start(api, OWN), await _start(api, OTHER)
    for method, path, body in (
        ("GET", f"/sessions/{other}", None),
        ("GET", f"/sessions/{other}/performance", None),
        ("POST", f"/sessions/{other}/terminate", {"reason": "not mine"}),
        ("POST", "/sessions", session_body(account_id=OTHER)),
        ("GET", f"/sessions?account_id={OTHER}", None),
    ):
        response = await api.request(method, path, json=body, headers=trader)
        assert response.status_code == 403, (method, path)
    listed = (await api.get("/sessions?limit=500", headers=trader)).json()
    assert {s["account_id"] for s in listed} == {OWN}
    assert own in {s["id"] for s in listed}
    assert (await api.get(f"/sessions/{other}")).json()["status"] != "TERMINATED"


async def test_recorded_actor_is_the_key_not_the_body(
    api: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    key = await _key(sessionmaker, Role.TRADER, OWN)
    session_id = await _start(api, OWN)
    response = await api.post(
        f"/sessions/{session_id}/terminate",
        json={"reason": "done", "actor": "mallory"},
        headers=_bearer(key),
    )
    assert response.status_code == 202
    async with sessionmaker() as db:
        events = await AuditRepository(db).for_session(session_id)
    requested = [e for e in events if e.action == "session.termination_requested"]
    assert [e.actor for e in requested] == [f"key:{key.key_id}:mallory"]


async def test_admin_issues_lists_and_revokes_keys_without_showing_secrets(
    api: httpx.AsyncClient,
) -> None:
    created = await api.post("/keys", json={"role": "trader", "account_id": OWN})
    assert created.status_code == 201
    issued = created.json()
    assert issued["api_key"].startswith(f"tsk_{issued['key_id']}.")
    listing = (await api.get("/keys")).text
    assert issued["key_id"] in listing
    assert issued["api_key"] not in listing
    assert "hash" not in listing
    missing_account = await api.post("/keys", json={"role": "trader"})
    assert missing_account.status_code == 422
    assert (await api.post("/keys/nope/revoke")).status_code == 404


async def test_oversized_body_is_refused_with_413(api: httpx.AsyncClient) -> None:
    body = session_body(algorithm_id="a", padding="x" * 70_000)
    response = await api.post("/sessions", json=body)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
