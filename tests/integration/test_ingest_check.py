"""Every fill and mark is checked as it is recorded; only a loss near the limit wakes the
workflow. Real app, real worker, real dev server and PostgreSQL."""

import asyncio
from typing import Any

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from domain.session import workflow_id_for
from tests.integration.api_helpers import fill_body, session_body, wait_for_status
from workflows.session import TradingSessionWorkflow


def mark_body(price: str) -> dict[str, Any]:
    return {"symbol": "ACME", "price": price}


async def check_now_signals(client: Client, session_id: str) -> int:
    history = await client.get_workflow_handle(workflow_id_for(session_id)).fetch_history()
    return sum(
        1
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
        and event.workflow_execution_signaled_event_attributes.signal_name == "check_now"
    )


async def active_with_position(api: httpx.AsyncClient, loss_limit: str) -> str:
    """An ACTIVE session holding 10 ACME bought at 100."""
    body = session_body(loss_limit=loss_limit)
    session_id = str(body["session_id"])
    await api.post("/sessions", json=body)
    await wait_for_status(api, session_id, {"ACTIVE"})
    await api.post(f"/sessions/{session_id}/fills", json=fill_body("o", "BUY", "10", "100"))
    return session_id


def ingest_checks(metrics_text: str, source: str, outcome: str) -> float:
    prefix = f'trading_ingest_checks_total{{outcome="{outcome}",source="{source}"}} '
    for line in metrics_text.splitlines():
        if line.startswith(prefix):
            return float(line.removeprefix(prefix))
    return 0.0


async def test_marks_far_from_the_limit_are_checked_without_waking_the_workflow(
    api: httpx.AsyncClient, dev_client: Client
) -> None:
    session_id = await active_with_position(api, loss_limit="1000")

    # losses 10, 15, 30: below 80 % of 1000, and LossUsedPct (0 published) moved < 5 points
    for price in ("99", "98.5", "97"):
        response = await api.post(f"/sessions/{session_id}/marks", json=mark_body(price))
        assert response.status_code == 201

    assert await check_now_signals(dev_client, session_id) == 0
    metrics = (await api.get("/metrics")).text
    assert ingest_checks(metrics, "mark", "quiet") >= 3
    assert ingest_checks(metrics, "fill", "quiet") >= 1


async def test_a_mark_that_reaches_the_warning_threshold_wakes_the_workflow_to_warn(
    api: httpx.AsyncClient, dev_client: Client
) -> None:
    session_id = await active_with_position(api, loss_limit="1000")

    await api.post(f"/sessions/{session_id}/marks", json=mark_body("15"))  # loss 850: 85 %

    handle = dev_client.get_workflow_handle_for(
        TradingSessionWorkflow.run, workflow_id_for(session_id)
    )
    for _ in range(100):  # the periodic check is 30 s away: only the signal can do this
        view = await handle.query(TradingSessionWorkflow.get_status)
        if view.loss_warnings_sent:
            break
        await asyncio.sleep(0.1)
    assert view.loss_warnings_sent == [0.8]
    assert view.status == "ACTIVE"
    assert await check_now_signals(dev_client, session_id) == 1
    assert ingest_checks((await api.get("/metrics")).text, "mark", "woke") >= 1


async def test_a_breaching_mark_ends_the_session_at_once(api: httpx.AsyncClient) -> None:
    session_id = await active_with_position(api, loss_limit="100")

    await api.post(f"/sessions/{session_id}/marks", json=mark_body("89"))  # loss 110

    ended = await wait_for_status(api, session_id, {"LOSS_LIMIT"}, timeout=10)
    assert ended["end_reason"] == "LOSS_LIMIT"
