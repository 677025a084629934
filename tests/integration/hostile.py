"""What hostile-input tests share: the error shape, and proof that nothing was written."""

from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

# Every table a request could write to, directly or through a workflow it wakes.
TABLES = (
    "trading_sessions",
    "fills",
    "marks",
    "orders",
    "positions",
    "audit_events",
    "notifications",
    "webhook_subscriptions",
    "api_keys",
    "alerts",
)
# The columns an operator request changes on a session's row.
SESSION_STATE = "status, end_time, loss_limit, gate_open, gate_reason, end_reason, end_detail"


async def database_state(
    sessionmaker: async_sessionmaker[AsyncSession], session_id: str | None = None
) -> dict[str, Any]:
    """Row counts of every writable table, and the session's own state when one is named."""
    counts = " UNION ALL ".join(f"SELECT '{t}', count(*) FROM {t}" for t in TABLES)
    async with sessionmaker() as db:
        state: dict[str, Any] = {t: n for t, n in (await db.execute(text(counts))).all()}
        if session_id is not None:
            row = await db.execute(
                text(f"SELECT {SESSION_STATE} FROM trading_sessions WHERE id = :id"),
                {"id": session_id},
            )
            state["session"] = tuple(row.one())
    return state


def assert_error(
    response: httpx.Response, status: int, code: str | None = None, field: str | None = None
) -> dict[str, Any]:
    """The one error shape, with this status (and code and field, when given)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert set(error) == {"code", "message", "field"}, error
    assert isinstance(error["message"], str)
    assert error["message"]
    if code is not None:
        assert error["code"] == code, error
    if field is not None:
        assert error["field"] == field, error
    return error
