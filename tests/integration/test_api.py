"""The HTTP API against a real dev server, a real worker and real PostgreSQL."""

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
from temporalio.client import Client

from domain.session import workflow_id_for
from tests.integration.api_helpers import fill_body, session_body, wait_for_status


async def test_start_session_creates_row_and_running_workflow(
    api: httpx.AsyncClient, dev_client: Client
) -> None:
    body = session_body()

    response = await api.post("/sessions", json=body)

    assert response.status_code == 201
    created = response.json()
    assert created["id"] == body["session_id"]
    assert created["workflow_id"] == workflow_id_for(body["session_id"])
    active = await wait_for_status(api, body["session_id"], {"ACTIVE"})
    assert active["live"]["status"] == "ACTIVE"
    assert active["loss_limit"] == "1000"
    description = await dev_client.get_workflow_handle(created["workflow_id"]).describe()
    assert description.status is not None
    assert description.status.name == "RUNNING"


async def test_repeated_start_returns_same_session_without_second_workflow(
    api: httpx.AsyncClient, dev_client: Client
) -> None:
    body = session_body()
    first = await api.post("/sessions", json=body)
    handle = dev_client.get_workflow_handle(first.json()["workflow_id"])
    run_id = (await handle.describe()).run_id

    again = await api.post("/sessions", json=body)

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert (await handle.describe()).run_id == run_id


async def test_idempotency_key_without_session_id_returns_the_same_session(
    api: httpx.AsyncClient,
) -> None:
    body = session_body()
    del body["session_id"]
    headers = {"Idempotency-Key": f"key-{datetime.now(UTC).timestamp()}"}

    first = await api.post("/sessions", json=body, headers=headers)
    second = await api.post("/sessions", json=body, headers=headers)

    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]


async def test_twenty_parallel_identical_starts_make_one_session_and_one_workflow(
    api: httpx.AsyncClient, dev_client: Client
) -> None:
    body = session_body()

    responses = await asyncio.gather(*(api.post("/sessions", json=body) for _ in range(20)))

    assert sorted(r.status_code for r in responses) == [200] * 19 + [201]
    listed = (await api.get("/sessions", params={"account_id": "acc-api", "limit": 500})).json()
    assert [s["id"] for s in listed].count(body["session_id"]) == 1
    query = f'WorkflowId = "{workflow_id_for(body["session_id"])}"'
    await asyncio.sleep(1.5)  # visibility is eventually consistent
    assert (await dev_client.count_workflows(query)).count == 1


async def test_same_session_id_with_other_parameters_is_a_conflict(
    api: httpx.AsyncClient,
) -> None:
    body = session_body()
    await api.post("/sessions", json=body)

    response = await api.post("/sessions", json={**body, "loss_limit": "5"})

    assert response.status_code == 409
    assert response.json()["error"]["field"] == "loss_limit"
    stored = (await api.get(f"/sessions/{body['session_id']}")).json()
    assert stored["loss_limit"] == "1000"


async def test_fill_updates_realized_pnl_and_duplicate_fill_applies_once(
    api: httpx.AsyncClient,
) -> None:
    body = session_body()
    session_id = body["session_id"]
    await api.post("/sessions", json=body)

    await api.post(f"/sessions/{session_id}/fills", json=fill_body("f1", "BUY", "10", "100"))
    sell = fill_body("f2", "SELL", "4", "110", fee="1.5")
    first = await api.post(f"/sessions/{session_id}/fills", json=sell)
    repeat = await api.post(f"/sessions/{session_id}/fills", json=sell)

    # (110 - 100) * 4 - 1.5 = 38.5, once.
    assert (first.status_code, repeat.status_code) == (201, 200)
    assert first.json()["realized_pnl"] == "38.5"
    assert repeat.json()["duplicate"] is True
    assert (await api.get(f"/sessions/{session_id}")).json()["realized_pnl"] == "38.5"


async def test_fill_id_reused_with_other_values_is_rejected(api: httpx.AsyncClient) -> None:
    body = session_body()
    session_id = body["session_id"]
    await api.post("/sessions", json=body)
    await api.post(f"/sessions/{session_id}/fills", json=fill_body("f1", "BUY", "10", "100"))

    response = await api.post(
        f"/sessions/{session_id}/fills", json=fill_body("f1", "BUY", "99", "100")
    )

    assert response.status_code == 409
    assert response.json()["error"]["field"] == "fill_id"


async def test_breaching_fill_ends_session_at_once(api: httpx.AsyncClient) -> None:
    body = session_body(loss_limit="100")
    session_id = body["session_id"]
    await api.post("/sessions", json=body)
    await wait_for_status(api, session_id, {"ACTIVE"})

    await api.post(f"/sessions/{session_id}/fills", json=fill_body("b", "BUY", "10", "100"))
    await api.post(f"/sessions/{session_id}/fills", json=fill_body("s", "SELL", "10", "89"))

    # The 30 s tick is far away: only the fill's signal can end it within seconds.
    ended = await wait_for_status(api, session_id, {"LOSS_LIMIT"}, timeout=10)
    assert ended["realized_pnl"] == "-110"


async def test_terminate_ends_session_and_later_fills_are_refused(
    api: httpx.AsyncClient,
) -> None:
    body = session_body()
    session_id = body["session_id"]
    await api.post("/sessions", json=body)

    response = await api.post(
        f"/sessions/{session_id}/terminate", json={"reason": "risk review", "actor": "op-1"}
    )
    ended = await wait_for_status(api, session_id, {"TERMINATED"})
    late_fill = await api.post(
        f"/sessions/{session_id}/fills", json=fill_body("late", "BUY", "1", "100")
    )
    again = await api.post(f"/sessions/{session_id}/terminate", json={"reason": "again"})

    assert response.status_code == 202
    assert ended["end_detail"] == "risk review"
    assert late_fill.status_code == 409
    assert again.status_code == 409
    assert ended["realized_pnl"] == "0"


async def test_list_filters_by_status_and_account(api: httpx.AsyncClient) -> None:
    account = f"acc-{datetime.now(UTC).timestamp()}"
    kept = session_body(account_id=account)
    ended = session_body(account_id=account)
    for body in (kept, ended):
        await api.post("/sessions", json=body)
    await api.post(f"/sessions/{ended['session_id']}/terminate", json={"reason": "done"})
    await wait_for_status(api, ended["session_id"], {"TERMINATED"})

    terminated = await api.get("/sessions", params={"account_id": account, "status": "TERMINATED"})
    everything = await api.get("/sessions", params={"account_id": account})

    assert [s["id"] for s in terminated.json()] == [ended["session_id"]]
    assert {s["id"] for s in everything.json()} == {kept["session_id"], ended["session_id"]}


async def test_session_created_with_short_deadline_expires(api: httpx.AsyncClient) -> None:
    body = session_body(seconds=2)

    await api.post("/sessions", json=body)
    ended = await wait_for_status(api, body["session_id"], {"EXPIRED"}, timeout=15)

    ended_at = datetime.fromisoformat(ended["ended_at"])
    deadline = datetime.fromisoformat(body["end_time"])
    assert deadline <= ended_at < deadline + timedelta(seconds=2)
