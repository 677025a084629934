"""Small helpers for driving the HTTP API in tests."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx


def session_body(
    *, seconds: float = 3600, loss_limit: str = "1000", **overrides: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "session_id": f"api-{uuid.uuid4().hex[:12]}",
        "account_id": "acc-api",
        "algorithm_id": "algo-1",
        "end_time": (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat(),
        "loss_limit": loss_limit,
    }
    body.update(overrides)
    return body


def fill_body(fill_id: str, side: str, quantity: str, price: str, **extra: Any) -> dict[str, Any]:
    return {
        "fill_id": fill_id,
        "symbol": "ACME",
        "side": side,
        "quantity": quantity,
        "price": price,
        **extra,
    }


async def wait_for_status(
    api: httpx.AsyncClient, session_id: str, wanted: set[str], timeout: float = 20.0
) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        body: dict[str, Any] = (await api.get(f"/sessions/{session_id}")).json()
        if body["status"] in wanted:
            return body
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"session {session_id} stayed {body['status']}")
        await asyncio.sleep(0.1)
