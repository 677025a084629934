"""Performance over HTTP against the real stack: live figures and stored snapshots."""

from datetime import UTC, datetime

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import ActivityEnvironment

from activities.performance import PerformanceActivities
from domain.session_messages import SnapshotInput
from tests.integration.api_helpers import fill_body, session_body, wait_for_status


async def start_active(api: httpx.AsyncClient, loss_limit: str = "1000") -> str:
    body = session_body(loss_limit=loss_limit)
    await api.post("/sessions", json=body)
    await wait_for_status(api, body["session_id"], {"ACTIVE"})
    return str(body["session_id"])


async def trade(api: httpx.AsyncClient, session_id: str) -> None:
    """BUY 10 @ 100 fee 1 (-1), SELL 10 @ 110 fee 1 (+99), BUY 5 @ 110 (0), mark 104."""
    fills = [
        fill_body("f1", "BUY", "10", "100", fee="1"),
        fill_body("f2", "SELL", "10", "110", fee="1"),
        fill_body("f3", "BUY", "5", "110"),
    ]
    for body in fills:
        assert (await api.post(f"/sessions/{session_id}/fills", json=body)).status_code == 201
    mark = {"symbol": "ACME", "price": "104"}
    assert (await api.post(f"/sessions/{session_id}/marks", json=mark)).status_code == 201


async def test_performance_shows_live_figures_computed_from_the_fills(
    api: httpx.AsyncClient,
) -> None:
    session_id = await start_active(api, loss_limit="200")
    await trade(api, session_id)

    response = await api.get(f"/sessions/{session_id}/performance")

    assert response.status_code == 200
    body = response.json()
    live = body["live"]
    # realized -1 + 99 = 98; long 5 @ 110 marked 104: (104 - 110) * 5 = -30; total 68
    assert (live["realized_pnl"], live["unrealized_pnl"], live["total_pnl"]) == ("98", "-30", "68")
    assert (live["fills"], live["fees"]) == (3, "2")
    # one round trip (+98, a win); the long 5 is still open
    assert (live["round_trips"], live["winning_round_trips"], live["win_rate"]) == (1, 1, 1.0)
    assert (live["peak_pnl"], live["max_drawdown"]) == ("98", "1")
    assert (live["loss"], live["loss_used_pct"]) == ("0", 0.0)
    assert live["duration_seconds"] > 0
    assert body["status"] == "ACTIVE"
    assert body["latest"] is None


async def test_performance_reports_the_latest_stored_snapshot_and_its_history(
    api: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    session_id = await start_active(api)
    await trade(api, session_id)
    activities, env = PerformanceActivities(sessionmaker), ActivityEnvironment()
    first = datetime.now(UTC)
    await env.run(activities.record_snapshot, SnapshotInput(session_id=session_id, taken_at=first))
    await api.post(f"/sessions/{session_id}/fills", json=fill_body("f4", "SELL", "5", "90"))
    second = datetime.now(UTC)
    await env.run(activities.record_snapshot, SnapshotInput(session_id=session_id, taken_at=second))

    report = (await api.get(f"/sessions/{session_id}/performance")).json()
    history = (await api.get(f"/sessions/{session_id}/performance/history")).json()

    # f4 closes the long 5 @ 110 at 90: -100, so realized 98 - 100 = -2
    assert report["latest"]["kind"] == "periodic"
    assert datetime.fromisoformat(report["latest"]["taken_at"]) == second
    assert report["latest"]["figures"]["realized_pnl"] == "-2"
    assert report["live"]["realized_pnl"] == "-2"
    assert [datetime.fromisoformat(s["taken_at"]) for s in history] == [second, first]
    assert [s["figures"]["fills"] for s in history] == [4, 3]


async def test_performance_history_of_a_session_without_snapshots_is_empty(
    api: httpx.AsyncClient,
) -> None:
    session_id = await start_active(api)

    response = await api.get(f"/sessions/{session_id}/performance/history")

    assert (response.status_code, response.json()) == (200, [])


async def test_performance_of_an_unknown_session_is_404(api: httpx.AsyncClient) -> None:
    live = await api.get("/sessions/nope-404/performance")
    history = await api.get("/sessions/nope-404/performance/history")

    assert (live.status_code, history.status_code) == (404, 404)
    assert live.json()["error"]["code"] == "not_found"
