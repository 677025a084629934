"""The Temporal Web UI tells a session's story: a headless Debian chromium, driven by
Playwright (the system browser, never a downloaded one), opens a running session's page."""

import asyncio
import contextlib
import shutil
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from starter.dev.devserver import free_port, start_dev_server
from starter.runtime.settings import Settings
from starter.services.session_start import start_session_workflow
from store.sessions import SessionRepository
from tests.fixtures.factories import session_values
from tests.integration.conftest import connect_when_ready
from worker import create_worker
from workflows.session import TradingSessionWorkflow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not installed (Debian: apt-get install chromium)"
)
playwright_api = pytest.importorskip("playwright.async_api", reason="playwright not installed")


@pytest.fixture
async def ui_server() -> AsyncIterator[tuple[Client, int]]:
    """A dev server of its own, with its Web UI (the shared one runs without)."""
    port, ui_port = free_port(), free_port()
    process = start_dev_server(None, port, ui_port)
    try:
        yield await connect_when_ready(f"127.0.0.1:{port}"), ui_port
    finally:
        process.terminate()
        process.wait(timeout=15)


async def test_a_sessions_page_shows_its_live_state_and_the_summaries_of_its_steps(
    ui_server: tuple[Client, int], sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    client, ui_port = ui_server
    queue = f"ui-{uuid.uuid4().hex[:8]}"
    values = session_values(
        id=f"ui-{uuid.uuid4().hex[:8]}", end_time=datetime.now(UTC) + timedelta(minutes=10)
    )
    async with sessionmaker.begin() as db:
        await SessionRepository(db).insert_if_absent(values)

    async with create_worker(client, queue, sessionmaker):
        async with sessionmaker() as db:
            row = await SessionRepository(db).get(values["id"])
        await start_session_workflow(client, row, Settings(temporal_task_queue=queue))
        handle = client.get_workflow_handle(row.workflow_id)
        for _ in range(100):
            if (await handle.query(TradingSessionWorkflow.get_status)).status.value == "ACTIVE":
                break
            await asyncio.sleep(0.1)
        url = f"http://127.0.0.1:{ui_port}/namespaces/default/workflows/{handle.id}"
        async with playwright_api.async_playwright() as p:
            browser = await p.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
            )
            try:
                page = await browser.new_page()
                await page.goto(url)
                # The timeline names each step by its summary: the next timer's here.
                await page.get_by_text("time warning").first.wait_for(timeout=30_000)
                timeline = await page.inner_text("body")
                # The live one-line state (set_current_details) is under User Metadata,
                # rendered as Markdown in frames of their own.
                await page.get_by_text("User Metadata", exact=True).first.click()
                metadata = await _text_with(page, "ACTIVE · loss")
            finally:
                await browser.close()
        await handle.terminate("test over")

    assert "Session " + row.id + ": account acc-1" in metadata  # the start's summary
    assert handle.id in timeline
    assert "activate_session" in timeline
    assert f"time warning {values['end_time'] - timedelta(minutes=2):%H:%M}" in timeline
    assert "ACTIVE · loss 0 % of 1000" in metadata
    assert "gate open" in metadata


async def _text_with(page: Any, needle: str, timeout: float = 30.0) -> str:
    """The page's text, its frames' included, once ``needle`` is somewhere in it."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        texts = []
        for frame in page.frames:
            with contextlib.suppress(Exception):  # a frame may go while it is read
                texts.append(await frame.inner_text("body"))
        text = "\n".join(texts)
        if needle in text or asyncio.get_running_loop().time() > deadline:
            return text
        await asyncio.sleep(0.5)
