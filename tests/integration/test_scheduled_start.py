"""Sessions created ahead of their start time: PENDING until then, active on time, and open
to termination and deadline changes before they start."""

from datetime import UTC, datetime, timedelta

import httpx

from tests.integration.api_helpers import session_body, wait_for_status


def later(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


async def test_a_session_becomes_active_at_its_start_time(api: httpx.AsyncClient) -> None:
    start = datetime.now(UTC) + timedelta(seconds=3)
    body = session_body(start_time=start.isoformat())
    await api.post("/sessions", json=body)

    active = await wait_for_status(api, body["session_id"], {"ACTIVE"}, timeout=15)

    assert datetime.now(UTC) - start < timedelta(seconds=3)
    assert active["status"] == "ACTIVE"


async def test_a_session_terminated_before_its_start_ends_at_once(api: httpx.AsyncClient) -> None:
    body = session_body(start_time=later(600))
    await api.post("/sessions", json=body)

    response = await api.post(
        f"/sessions/{body['session_id']}/terminate", json={"reason": "not today"}
    )

    assert response.status_code == 202
    ended = await wait_for_status(api, body["session_id"], {"TERMINATED"}, timeout=15)
    assert ended["end_reason"] == "TERMINATED"


async def test_the_deadline_of_a_session_not_yet_started_can_be_extended(
    api: httpx.AsyncClient,
) -> None:
    body = session_body(start_time=later(600), seconds=3600)
    await api.post("/sessions", json=body)
    new_end = datetime.fromisoformat(body["end_time"]) + timedelta(hours=1)

    response = await api.post(
        f"/sessions/{body['session_id']}/extend", json={"end_time": new_end.isoformat()}
    )

    assert response.status_code == 200, response.text
    assert datetime.fromisoformat(response.json()["end_time"]) == new_end
    assert response.json()["status"] == "PENDING"
