"""The Web UI's filters: search attributes set by the workflow, queried on a real dev server."""

import asyncio
import uuid

import httpx
from temporalio.client import Client

from tests.integration.api_helpers import fill_body, session_body, wait_for_status


async def workflow_ids(
    client: Client, query: str, expected: int, timeout: float = 10.0
) -> list[str]:
    """Visibility is eventually consistent: poll until ``expected`` workflows match."""
    found: list[str] = []
    for _ in range(int(timeout / 0.2)):
        found = [wf.id async for wf in client.list_workflows(query)]
        if len(found) >= expected:
            break
        await asyncio.sleep(0.2)
    return found


async def test_sessions_are_filterable_by_status_account_loss_and_reason(
    api: httpx.AsyncClient, dev_client: Client
) -> None:
    account = f"acc-{uuid.uuid4().hex[:8]}"
    body = session_body(account_id=account, loss_limit="100")
    session_id = body["session_id"]
    created = (await api.post("/sessions", json=body)).json()
    await wait_for_status(api, session_id, {"ACTIVE"})
    await api.post(f"/sessions/{session_id}/fills", json=fill_body("b", "BUY", "10", "100"))
    await api.post(f"/sessions/{session_id}/fills", json=fill_body("s", "SELL", "10", "91.5"))

    at_risk = await workflow_ids(
        dev_client,
        f'AccountId = "{account}" AND SessionStatus = "ACTIVE" AND LossUsedPct >= 80',
        expected=1,
    )
    await api.post(f"/sessions/{session_id}/terminate", json={"reason": "desk", "actor": "op"})
    await wait_for_status(api, session_id, {"TERMINATED"})
    ended = await workflow_ids(
        dev_client,
        f'AccountId = "{account}" AND TerminationReason = "TERMINATED"'
        ' AND SessionStatus = "TERMINATED"',
        expected=1,
    )

    assert at_risk == [created["workflow_id"]]
    assert ended == [created["workflow_id"]]
