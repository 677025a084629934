"""A whole session's life through the API, at DEBUG: no key, hash or password in the logs."""

import logging

import httpx
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from starter.keys_service import KeyService, Role, hash_key
from starter.settings import Settings
from tests.integration.api_helpers import fill_body, session_body, wait_for_status


async def test_a_full_session_life_logs_no_secret(
    api: httpx.AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    keys = KeyService(sessionmaker)
    trader = await keys.create(Role.TRADER, "acc-logs")
    service = await keys.create(Role.SERVICE)
    as_trader = {"Authorization": f"Bearer {trader.api_key}"}
    as_service = {"X-API-Key": service.api_key}
    body = session_body(account_id="acc-logs")
    session_id = body["session_id"]

    with caplog.at_level(logging.DEBUG):
        assert (await api.post("/sessions", json=body, headers=as_trader)).status_code == 201
        await wait_for_status(api, session_id, {"ACTIVE"})
        fill = fill_body("f1", "BUY", "2", "10")
        assert (
            await api.post(f"/sessions/{session_id}/fills", json=fill, headers=as_service)
        ).status_code == 201
        mark = {"symbol": "ACME", "price": "9"}
        assert (
            await api.post(f"/sessions/{session_id}/marks", json=mark, headers=as_service)
        ).status_code == 201
        # A refused call logs too: the wrong key must not show up either.
        wrong = await api.post(
            f"/sessions/{session_id}/terminate",
            json={"reason": "x"},
            headers={"Authorization": f"Bearer {trader.api_key}x"},
        )
        assert wrong.status_code == 401
        terminate = {"reason": "end of day", "actor": "desk"}
        response = await api.post(
            f"/sessions/{session_id}/terminate", json=terminate, headers=as_trader
        )
        assert response.status_code == 202
        await wait_for_status(api, session_id, {"TERMINATED"})

    logged = caplog.text + "".join(repr(r.__dict__) for r in caplog.records)
    assert session_id in logged  # the capture did see the session's life
    for secret in (trader.api_key, service.api_key, hash_key(trader.api_key)):
        assert secret not in logged
    for key in (trader, service):
        assert key.api_key.split(".", 1)[1] not in logged  # not even the secret half
    url = make_url(settings.resolved_database_url())
    if url.password:
        assert url.password not in logged
    assert settings.resolved_database_url() not in logged
