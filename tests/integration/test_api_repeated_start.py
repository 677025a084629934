"""A repeated POST /sessions answers with the session's real state, never a 200 for a
session that is not running."""

import httpx
from temporalio.client import Client

from domain.session import workflow_id_for
from tests.integration.api_helpers import session_body, wait_for_status


async def test_repeated_start_of_a_session_whose_workflow_was_terminated_is_a_conflict(
    api: httpx.AsyncClient, dev_client: Client
) -> None:
    body = session_body()
    session_id = str(body["session_id"])
    await api.post("/sessions", json=body)
    await wait_for_status(api, session_id, {"ACTIVE"})
    # What `temporal workflow terminate` or the Web UI's Terminate does: no clean-up.
    await dev_client.get_workflow_handle(workflow_id_for(session_id)).terminate("by hand")

    again = await api.post("/sessions", json=body)

    assert again.status_code == 409
    assert again.json()["error"]["code"] == "workflow_closed"
    assert "ACTIVE" in again.json()["error"]["message"]
    gate = (await api.get(f"/sessions/{session_id}/gate")).json()
    assert gate["open"] is False  # it takes no more orders while the reconciler comes


async def test_repeated_start_of_an_ended_session_answers_the_stored_end(
    api: httpx.AsyncClient,
) -> None:
    body = session_body()
    session_id = str(body["session_id"])
    await api.post("/sessions", json=body)
    await wait_for_status(api, session_id, {"ACTIVE"})
    await api.post(f"/sessions/{session_id}/terminate", json={"reason": "done"})
    await wait_for_status(api, session_id, {"TERMINATED"})

    again = await api.post("/sessions", json=body)

    assert again.status_code == 200
    assert (again.json()["status"], again.json()["end_reason"]) == ("TERMINATED", "TERMINATED")
    assert again.json()["ended_at"] is not None
