"""Property-based fuzz of every POST endpoint with hostile text, Unicode digits and duplicate keys.

For each generated request: a 4xx in the one error shape, and no table (nor the session's row)
changed. Afterwards the fuzzed session still expires on time. The app is the real one (auth
on, PostgreSQL, a worker); hypothesis runs in a thread and sends through the test's loop.
"""

import asyncio
import json
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from starter.api.app import create_app
from starter.runtime.settings import Settings
from tests.integration.api_helpers import session_body, wait_for_status
from tests.integration.hostile import assert_error, database_state

T = TypeVar("T")
Run = Callable[[Coroutine[Any, Any, T]], T]
EXAMPLES = 80
SESSION_SECONDS = 20.0
# Requests stop this long before the session's first own write (its 99 % time warning).
QUIET_MARGIN = 4.0

MONEY = ("loss_limit", "quantity", "price", "fee", "limit_price")
NOT_TEXT = ("end_time", "start_time", "side", "role", "executed_at", "marked_at", *MONEY)
# Every POST of the API with a valid body; {id} is the fuzzed session. New endpoints must be
# added here (the test checks the list against the OpenAPI document).
TEMPLATES: dict[str, dict[str, Any]] = {
    "/sessions": session_body(session_id="fz-new"),
    "/sessions/{session_id}/terminate": {"reason": "end of day", "actor": "op"},
    "/sessions/{session_id}/extend": {"end_time": "2099-01-01T00:00:00Z", "actor": "op"},
    "/sessions/{session_id}/loss-limit": {"loss_limit": "900", "reason": "risk"},
    "/sessions/{session_id}/pause": {"actor": "op", "reason": "news"},
    "/sessions/{session_id}/resume": {"actor": "op", "reason": "news"},
    "/sessions/{session_id}/retry-cleanup": {"actor": "op", "reason": "again"},
    "/sessions/{session_id}/fills": {
        "fill_id": "fz-f",
        "symbol": "ACME",
        "side": "BUY",
        "quantity": "1",
        "price": "10",
        "fee": "0",
    },
    "/sessions/{session_id}/marks": {"symbol": "ACME", "price": "10"},
    # A symbol no session trades: market marks are shared by every session.
    "/marks": {"marks": [{"symbol": "FUZZ-MKT", "price": "10"}]},
    "/sessions/{session_id}/orders": {
        "order_id": "fz-o",
        "symbol": "ACME",
        "side": "BUY",
        "quantity": "1",
        "limit_price": "10",
    },
    "/webhooks": {"url": "http://127.0.0.1:9/hook", "secret": "s" * 16, "account_id": "acc-fz"},
    "/keys": {"role": "trader", "account_id": "acc-fz", "description": "fuzz"},
    "/keys/{key_id}/revoke": {},
    "/codec/encode": {"payloads": []},
    "/codec/decode": {"payloads": []},
    # Every mutation is hostile, so the kill switch is never pressed (a scope no session has).
    "/kill-switch": {"scope": {"account_id": "acc-fz-kill"}, "reason": "fuzz", "actor": "op"},
    "/kill-switch/{kill_switch_id}/rearm": {"actor": "op", "reason": "fuzz"},
    "/alerts/{alert_id}/ack": {"actor": "op", "reason": "seen"},
}

FORBIDDEN = st.characters(categories=["Cc"]) | st.sampled_from(
    ["\u2028", "\u2029", "\u202e", "\u2066", "\ud800", "\udfff"]
)
HOSTILE_TEXT = st.tuples(st.text(max_size=8), FORBIDDEN, st.text(max_size=8)).map("".join)
UNICODE_DIGITS = st.text(
    st.characters(categories=["Nd"], exclude_characters="0123456789"), min_size=1, max_size=6
)
HOSTILE_MONEY = st.tuples(UNICODE_DIGITS, st.sampled_from(["", ".5", "0"])).map("".join)
ANY_VALUE = st.none() | st.booleans() | st.integers() | st.text(max_size=10) | HOSTILE_TEXT


@st.composite
def hostile_requests(draw: st.DrawFn) -> tuple[str, str, bytes, tuple[int, ...]]:
    """(path template, how it was made hostile, JSON body, the statuses allowed)."""
    path = draw(st.sampled_from(sorted(TEMPLATES)))
    body = dict(TEMPLATES[path])
    texts = [k for k, v in body.items() if isinstance(v, str) and k not in NOT_TEXT]
    money = [k for k in body if k in MONEY]
    kinds = ["duplicate"] * bool(body) + ["text"] * bool(texts) + ["money"] * bool(money)
    kind = draw(st.sampled_from([*kinds, "path"] if "{" in path else kinds))
    if kind == "text":
        body[draw(st.sampled_from(texts))] = draw(HOSTILE_TEXT)
    elif kind == "money":
        body[draw(st.sampled_from(money))] = draw(HOSTILE_MONEY)
    pairs = [f"{json.dumps(k)}:{json.dumps(v)}" for k, v in body.items()]
    if kind == "duplicate":
        key = draw(st.sampled_from(sorted(body)))
        twin = f"{json.dumps(key)}:{json.dumps(draw(ANY_VALUE))}"
        pairs.insert(draw(st.integers(0, len(pairs))), twin)
    # Unpaired surrogates cannot be UTF-8: JSON carries them as \ud800 escapes (ensure_ascii).
    raw = ("{" + ",".join(pairs) + "}").encode()
    # Without TRADING_PAYLOAD_KEYS the codec answers 503 before it reads a body (by design).
    # An unpaired surrogate is refused with the body (400), any other bad text by its field.
    allowed = (
        (400, 503) if path.startswith("/codec") else (400,) if kind == "duplicate" else (400, 422)
    )
    if kind == "path":
        # Dots escaped too: a client would otherwise resolve "/./" and "/../" away itself.
        segment = quote(
            draw(HOSTILE_TEXT | st.sampled_from([".", ".."])), "", errors="surrogatepass"
        )
        segment = segment.replace(".", "%2E")
        for name in ("{session_id}", "{key_id}", "{alert_id}", "{kill_switch_id}"):
            path = path.replace(name, segment)
        allowed = (404, 422)  # a decoded "/" leaves the route: 404; else the id is refused
    return path, kind, raw, allowed


async def test_hostile_posts_are_refused_in_the_error_shape_and_the_session_still_expires(
    api: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    posts = {
        path
        for path, item in create_app(Settings(auth_enabled=False)).openapi()["paths"].items()
        if "post" in item
    }
    assert posts == set(TEMPLATES), "every POST endpoint is fuzzed"
    body = session_body(seconds=SESSION_SECONDS, warning_thresholds=[0.99])
    session_id = body["session_id"]
    assert (await api.post("/sessions", json=body)).status_code == 201
    await wait_for_status(api, session_id, {"ACTIVE"})
    quiet_until = time.monotonic() + SESSION_SECONDS * 0.99 - QUIET_MARGIN
    loop = asyncio.get_running_loop()
    sent: list[str] = []

    def run(coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout=30)

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=hostile_requests())
    def fuzz(case: tuple[str, str, bytes, tuple[int, ...]]) -> None:
        template, kind, content, allowed = case
        if time.monotonic() > quiet_until:
            return  # the session writes its own warning soon: stop comparing tables
        path = (
            template.replace("{session_id}", session_id)
            .replace("{key_id}", "0a1b2c3d4e5f")
            .replace("{alert_id}", "1")
            .replace("{kill_switch_id}", "1")
        )
        before = run(database_state(sessionmaker, session_id))
        headers = {"content-type": "application/json"}
        response = run(api.post(path, content=content, headers=headers))
        note = f"{kind} {path} {content!r}"
        assert response.status_code in allowed, f"{note}: {response.status_code} {response.text}"
        assert_error(response, response.status_code)
        assert run(database_state(sessionmaker, session_id)) == before, note
        sent.append(template)

    await asyncio.to_thread(fuzz)
    assert len(sent) >= EXAMPLES // 2, "most examples ran before the session's own writes"

    ended = await wait_for_status(api, session_id, {"EXPIRED"}, timeout=SESSION_SECONDS + 15)
    late = datetime.fromisoformat(ended["ended_at"]) - datetime.fromisoformat(ended["end_time"])
    assert timedelta(0) <= late < timedelta(seconds=5)
    assert datetime.now(UTC) > datetime.fromisoformat(ended["end_time"])
