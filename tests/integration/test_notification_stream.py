"""Notifications as server-sent events: LISTEN/NOTIFY wake-ups, the fallback re-read, resume."""

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import httpx
import pytest
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from domain.notifications import NotificationEvent, StreamCursor
from starter.api.app import create_app
from starter.runtime.settings import Settings
from store.listener import NotificationListener, asyncpg_dsn
from store.models import Notification
from store.notifications import NOTIFY_CHANNEL, NotificationRepository
from tests.fixtures.notification_data import new_account, queue_notification, warning_payload
from tests.integration.api_helpers import fill_body, session_body
from tests.integration.polling import eventually
from tests.integration.sse import open_stream, serve
from worker import create_worker

Sessionmaker = async_sessionmaker[AsyncSession]


@pytest.fixture
async def live_api(
    settings: Settings, dev_client: Client, sessionmaker: Sessionmaker
) -> AsyncIterator[str]:
    """The real app under uvicorn, with a worker on the test's own task queue.

    Auth is off here (streaming is under test; test_auth.py covers the stream's 401/403).
    """
    app = create_app(settings.model_copy(update={"auth_enabled": False}))
    worker = create_worker(dev_client, settings.temporal_task_queue, sessionmaker)
    async with worker, serve(app) as base_url:
        yield base_url


async def test_stream_delivers_a_new_notification_of_the_account_within_5_seconds(
    live_api: str, sessionmaker: Sessionmaker
) -> None:
    account = new_account()
    async with open_stream(live_api, {"account_id": account}) as stream:
        await queue_notification(sessionmaker, new_account())  # another account's: filtered out
        notification_id = await queue_notification(sessionmaker, account)

        event = await stream.next_data(timeout=5)

    assert event.event == "warning.loss"
    assert event.id == str(notification_id)
    assert event.json["id"] == notification_id
    assert event.json["account_id"] == account
    assert event.json["payload"]["threshold"] == 0.8


async def test_warning_of_a_running_session_arrives_on_the_stream(live_api: str) -> None:
    account = new_account()
    body = session_body(account_id=account, loss_limit="500")
    async with open_stream(live_api, {"account_id": account}) as stream:
        async with httpx.AsyncClient(base_url=live_api) as http:
            assert (await http.post("/sessions", json=body)).status_code == 201
            session = f"/sessions/{body['session_id']}/fills"
            # Buy 10 at 100, sell 10 at 60: realized -400, 80 % of the 500 limit.
            await http.post(session, json=fill_body("f1", "BUY", "10", "100"))
            await http.post(session, json=fill_body("f2", "SELL", "10", "60"))

        event = await stream.next_data(timeout=30)

    assert event.event == "warning.loss"
    assert event.json["session_id"] == body["session_id"]
    assert event.json["payload"]["threshold"] == 0.8


async def test_stream_resumes_after_last_event_id(
    live_api: str, sessionmaker: Sessionmaker
) -> None:
    account = new_account()
    first = await queue_notification(sessionmaker, account)
    second = await queue_notification(sessionmaker, account, kind="session.ended")

    async with open_stream(live_api, {"account_id": account}, last_event_id=first - 1) as stream:
        replayed = [await stream.next_data(timeout=5), await stream.next_data(timeout=5)]

    assert [(e.id, e.event) for e in replayed] == [
        (str(first), "warning.loss"),
        (str(second), "session.ended"),
    ]


async def test_row_committed_without_notify_still_arrives_by_the_periodic_reread(
    live_api: str, sessionmaker: Sessionmaker
) -> None:
    account = new_account()
    async with open_stream(live_api, {"account_id": account}) as stream:
        async with sessionmaker.begin() as db:  # bypasses enqueue: no NOTIFY is sent
            await db.execute(
                insert(Notification).values(
                    session_id="s-silent",
                    account_id=account,
                    kind="warning.time",
                    payload=warning_payload("s-silent"),
                    dedupe_key=f"{account}:silent",
                )
            )

        event = await stream.next_data(timeout=5)

    assert event.event == "warning.time"


async def test_listener_wakes_subscribers_on_commit(
    database_url: str, sessionmaker: Sessionmaker
) -> None:
    listener = NotificationListener(database_url)
    try:
        async with listener.subscribe() as wake:
            assert listener.listening
            wake.clear()
            await queue_notification(sessionmaker, new_account())
            await asyncio.wait_for(wake.wait(), timeout=5)
    finally:
        await listener.close()
    assert not listener.listening


async def test_notify_is_sent_on_commit_and_never_for_a_rolled_back_notification(
    database_url: str, sessionmaker: Sessionmaker
) -> None:
    heard: asyncio.Queue[str] = asyncio.Queue()
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    await connection.add_listener(NOTIFY_CHANNEL, lambda *args: heard.put_nowait(args[3]))
    try:
        account = new_account()
        async with sessionmaker() as db:
            repository = NotificationRepository(db)
            await repository.enqueue(
                session_id="s-rolled-back",
                account_id=account,
                kind="warning.loss",
                payload={},
                dedupe_key=f"{account}:rolled-back",
            )
            rolled_back = await repository.id_for(f"{account}:rolled-back")
            await asyncio.sleep(0.2)
            assert heard.empty()  # not before commit
            await db.rollback()
        committed = await queue_notification(sessionmaker, account)

        payloads = [await asyncio.wait_for(heard.get(), timeout=5)]
        while payloads[-1] != str(committed):
            payloads.append(await asyncio.wait_for(heard.get(), timeout=5))
    finally:
        await connection.close()
    assert str(rolled_back) not in payloads


async def test_late_commit_below_the_last_streamed_id_is_still_streamed(
    sessionmaker: Sessionmaker,
) -> None:
    account = new_account()

    async def unsent(cursor: StreamCursor) -> list[int]:
        async with sessionmaker() as db:
            rows, _ = await NotificationRepository(db).unsent(
                floor=cursor.floor,
                last_id=cursor.last_id,
                sent=cursor.recently_sent,
                lookback=timedelta(seconds=30),
                limit=100,
                account_id=account,
            )
        events = [NotificationEvent.model_validate(r, from_attributes=True) for r in rows]
        return [e.id for e in cursor.take(events)]

    async with sessionmaker() as db:
        cursor = StreamCursor(await NotificationRepository(db).latest_id())
    async with sessionmaker() as slow:  # draws its id first, commits last
        repository = NotificationRepository(slow)
        await repository.enqueue(
            session_id="s-slow",
            account_id=account,
            kind="warning.loss",
            payload={},
            dedupe_key=f"{account}:slow",
        )
        slow_id = await repository.id_for(f"{account}:slow")
        fast = await queue_notification(sessionmaker, account)
        assert await unsent(cursor) == [fast]
        await slow.commit()

    assert slow_id is not None
    assert slow_id < fast
    assert await unsent(cursor) == [slow_id]
    assert await unsent(cursor) == []


async def test_stream_of_a_client_that_went_away_is_released(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"auth_enabled": False}))
    async with serve(app) as base_url:
        async with open_stream(base_url):
            listener: NotificationListener = app.state.notification_listener
            assert listener.subscribers == 1
            assert listener.listening

        async def released() -> bool | None:
            return True if listener.subscribers == 0 else None

        await eventually(released, timeout=10)
