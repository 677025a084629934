"""Market data per symbol (POST /marks), the ingest check's wake window, future marks refused,
and when a session was last checked. Real app, real worker, dev server and PostgreSQL."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from domain.roles import Role
from domain.session import workflow_id_for
from domain.session_messages import CheckNowInput
from domain.sweep import shard_of
from starter.runtime.settings import Settings
from starter.services.keys import KeyService
from store.fleet import FleetRepository
from store.models import MarketMark, TradingSession
from tests.integration.api_helpers import fill_body, session_body, wait_for_status


def new_symbol() -> str:
    """Market marks are shared by every session: each test trades its own symbol."""
    return f"M{uuid.uuid4().hex[:10]}"


async def holding(api: httpx.AsyncClient, sym: str, loss_limit: str, **row: Any) -> str:
    """An ACTIVE session holding 10 ``sym`` bought at 100."""
    body = session_body(loss_limit=loss_limit)
    session_id = str(body["session_id"])
    await api.post("/sessions", json=body)
    await wait_for_status(api, session_id, {"ACTIVE"})
    fill = fill_body(uuid.uuid4().hex[:8], "BUY", "10", "100", symbol=sym)
    assert (await api.post(f"/sessions/{session_id}/fills", json=fill)).status_code == 201
    return session_id


async def set_row(
    sessionmaker: async_sessionmaker[AsyncSession], session_id: str, **values: Any
) -> None:
    """What the workflow would have recorded: warnings sent, LossUsedPct published."""
    async with sessionmaker.begin() as db:
        await db.execute(
            update(TradingSession).where(TradingSession.id == session_id).values(**values)
        )


async def check_requests(client: Client, session_id: str) -> list[CheckNowInput]:
    """The check_now signals the workflow received, decoded."""
    history = await client.get_workflow_handle(workflow_id_for(session_id)).fetch_history()
    found = []
    for event in history.events:
        if event.event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            continue
        attributes = event.workflow_execution_signaled_event_attributes
        if attributes.signal_name == "check_now":
            [request] = await client.data_converter.decode(
                list(attributes.input.payloads), [CheckNowInput]
            )
            found.append(request)
    return found


def mark(sym: str, price: str, **extra: Any) -> dict[str, Any]:
    return {"symbol": sym, "price": price, **extra}


# --- the ingest check of one session ----------------------------------------------------


async def test_marks_past_a_sent_warning_do_not_wake_the_workflow_until_the_limit(
    api: httpx.AsyncClient,
    dev_client: Client,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    sym = new_symbol()
    session_id = await holding(api, sym, loss_limit="900")
    await set_row(sessionmaker, session_id, loss_warnings_sent=[0.8], published_loss_pct=84.0)

    # losses 765 .. 774: 85 % .. 86 % of 900, the 80 % warning already sent
    for step in range(10):
        price = f"{23.5 - step * 0.1:.1f}"
        response = await api.post(f"/sessions/{session_id}/marks", json=mark(sym, price))
        assert response.status_code == 201
    assert await check_requests(dev_client, session_id) == []

    await api.post(f"/sessions/{session_id}/marks", json=mark(sym, "10"))  # loss 900

    assert await check_requests(dev_client, session_id) == [
        CheckNowInput(source="mark", reason="limit")
    ]
    await wait_for_status(api, session_id, {"LOSS_LIMIT"}, timeout=10)


async def test_a_fast_feed_wakes_the_workflow_once_per_window(
    api: httpx.AsyncClient,
    dev_client: Client,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    settings.ingest_wake_window_seconds = 60  # every mark below lands inside one window
    sym = new_symbol()
    session_id = await holding(api, sym, loss_limit="1000")
    # the warning is sent, but the workflow has not published its LossUsedPct yet
    await set_row(sessionmaker, session_id, loss_warnings_sent=[0.8], published_loss_pct=0.0)

    for step in range(10):  # 85 % .. 86 %: LossUsedPct moved 85 points each time
        await api.post(f"/sessions/{session_id}/marks", json=mark(sym, f"{15 - step * 0.1:.1f}"))

    assert await check_requests(dev_client, session_id) == [
        CheckNowInput(source="mark", reason="moved")
    ]
    body = (await api.get(f"/sessions/{session_id}")).json()
    assert body["last_checked_by"] == "mark"


async def test_a_mark_dated_beyond_the_clock_skew_is_refused(api: httpx.AsyncClient) -> None:
    sym = new_symbol()
    session_id = await holding(api, sym, loss_limit="1000")
    ahead = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()

    response = await api.post(f"/sessions/{session_id}/marks", json=mark(sym, "1", marked_at=ahead))
    within_skew = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
    accepted = await api.post(
        f"/sessions/{session_id}/marks", json=mark(sym, "99", marked_at=within_skew)
    )

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"
    assert response.json()["error"]["field"] == "marked_at"
    assert accepted.status_code == 201


# --- POST /marks ------------------------------------------------------------------------


async def test_a_market_batch_halts_the_breached_holders_and_wakes_their_workflows(
    api: httpx.AsyncClient, dev_client: Client
) -> None:
    sym, other = new_symbol(), new_symbol()
    tight = await holding(api, sym, loss_limit="100")
    loose = await holding(api, sym, loss_limit="100000")
    elsewhere = await holding(api, other, loss_limit="100")

    response = await api.post("/marks", json={"marks": [mark(sym, "85"), mark(sym, "80")]})

    # one mark stored per symbol (the later of two alike); loss 200 against limits 100 / 100000
    assert response.status_code == 200
    assert response.json() == {
        "marks_applied": 1,
        "sessions_affected": 2,
        "sessions_halted": 1,
        "sessions_woken": 1,
    }
    gate = (await api.get(f"/sessions/{tight}/gate")).json()
    assert gate["open"] is False
    assert (await api.get(f"/sessions/{loose}/gate")).json()["open"] is True
    assert await check_requests(dev_client, tight) == [
        CheckNowInput(source="marks", reason="limit", gate_closed=True)
    ]
    assert await check_requests(dev_client, loose) == []
    assert await check_requests(dev_client, elsewhere) == []
    ended = await wait_for_status(api, tight, {"LOSS_LIMIT"}, timeout=10)
    assert ended["end_reason"] == "LOSS_LIMIT"


async def test_a_market_batch_with_a_future_mark_is_refused_whole(
    api: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    sym, late = new_symbol(), new_symbol()
    ahead = (datetime.now(UTC) + timedelta(days=365 * 70)).isoformat()  # 2099-ish

    response = await api.post(
        "/marks", json={"marks": [mark(sym, "10"), mark(late, "10", marked_at=ahead)]}
    )

    assert response.status_code == 422
    assert response.json()["error"]["field"] == "marks.1.marked_at"
    async with sessionmaker() as db:
        stored = await db.execute(select(MarketMark).where(MarketMark.symbol.in_([sym, late])))
        assert stored.all() == []


async def test_a_market_batch_is_bounded(api: httpx.AsyncClient) -> None:
    marks = [mark(f"S{i}", "1") for i in range(1001)]

    response = await api.post("/marks", json={"marks": marks})

    assert response.status_code == 422
    assert response.json()["error"]["field"] == "marks"


async def test_only_market_data_and_admin_keys_may_post_marks(
    api: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    keys = KeyService(sessionmaker)
    feed = (await keys.create(Role.MARKET_DATA, description="feed")).api_key
    operator = (await keys.create(Role.OPERATOR, description="ops")).api_key
    batch = {"marks": [mark(new_symbol(), "1")]}

    def as_key(key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    assert (await api.post("/marks", json=batch, headers=as_key(feed))).status_code == 200
    assert (await api.post("/marks", json=batch)).status_code == 200  # the fixture's admin
    refused = await api.post("/marks", json=batch, headers=as_key(operator))
    assert refused.status_code == 403
    assert (await api.get("/sessions", headers=as_key(feed))).status_code == 403
    fill = fill_body("x", "BUY", "1", "1")
    posted = await api.post("/sessions/any/fills", json=fill, headers=as_key(feed))
    assert posted.status_code == 403


# --- when a session was last checked ----------------------------------------------------


async def test_get_session_shows_the_newer_of_its_own_check_and_its_shards_sweep(
    api: httpx.AsyncClient, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    sym = new_symbol()
    session_id = await holding(api, sym, loss_limit="1000")
    after_fill = (await api.get(f"/sessions/{session_id}")).json()
    assert after_fill["last_checked_by"] == "fill"

    swept_at = datetime.now(UTC)
    shards = settings.sweep_shards
    async with sessionmaker.begin() as db:
        await FleetRepository(db).record_sweep(
            shard_of(session_id, shards), shards, swept_at, swept_at, 1, 0
        )
    after_sweep = (await api.get(f"/sessions/{session_id}")).json()
    await api.post(f"/sessions/{session_id}/marks", json=mark(sym, "99"))
    after_mark = (await api.get(f"/sessions/{session_id}")).json()

    assert after_sweep["last_checked_by"] == "sweep"
    assert datetime.fromisoformat(after_sweep["last_checked_at"]) == swept_at
    assert after_mark["last_checked_by"] == "mark"
    assert datetime.fromisoformat(after_mark["last_checked_at"]) > swept_at
