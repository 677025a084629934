"""A live API under uvicorn (ASGITransport buffers whole responses) and an SSE reader."""

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from starter.dev.devserver import free_port


@dataclass
class Event:
    """One server-sent event; ``comment`` holds ``:`` lines (the first one, ``connected``)."""

    event: str | None = None
    id: str | None = None
    data: str | None = None
    retry: int | None = None
    comment: str | None = None

    @property
    def json(self) -> Any:
        return json.loads(self.data or "null")


@asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[str]:
    """Run ``app`` (lifespan included) on a free port; yield its base URL."""
    port = free_port()
    # No log_config/log_level: uvicorn would reconfigure the process's loggers for good,
    # and later tests (of our own logging set-up) would see its levels.
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started or task.done():
            break
        await asyncio.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


class EventReader:
    """Parses an open ``text/event-stream`` response event by event."""

    def __init__(self, response: httpx.Response) -> None:
        self._lines = response.aiter_lines()

    async def next(self, timeout: float) -> Event:
        return await asyncio.wait_for(self._read(), timeout)

    async def next_data(self, timeout: float) -> Event:
        """The next event with data, skipping keep-alive comments."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            event = await self.next(max(0.01, deadline - asyncio.get_running_loop().time()))
            if event.data is not None:
                return event

    async def _read(self) -> Event:
        event = Event()
        async for line in self._lines:
            if not line:
                return event
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "":
                event.comment = value
            elif name == "retry":
                event.retry = int(value)
            elif name in ("event", "id", "data"):
                setattr(event, name, value)
        raise EOFError("stream closed")


@asynccontextmanager
async def open_stream(
    base_url: str, params: dict[str, str] | None = None, last_event_id: int | None = None
) -> AsyncIterator[EventReader]:
    """GET /notifications/stream and wait for the greeting, so the stream's start is fixed."""
    headers = {} if last_event_id is None else {"Last-Event-ID": str(last_event_id)}
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(10.0, read=None)) as http,
        http.stream("GET", "/notifications/stream", params=params, headers=headers) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        reader = EventReader(response)
        greeting = await reader.next(timeout=10)
        assert greeting.comment == "connected"
        yield reader
