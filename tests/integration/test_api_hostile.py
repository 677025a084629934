"""Hostile input against the real app: every refusal is a 4xx in the one shape, and writes nothing.

Each test starts from a live session, sends what an attacker or a careless operator would, and
compares every writable table (and the session's row) before and after.
"""

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from starter.runtime.settings import Settings
from tests.integration.api_helpers import fill_body, session_body, wait_for_status
from tests.integration.hostile import assert_error, database_state

Sessionmaker = async_sessionmaker[AsyncSession]
UNICODE_HUNDREDS = ["١٠٠", "１００", "१००"]  # noqa: RUF001 - each is 100 to Python's Decimal()
BAD_TEXT = ["a\x00b", "line\nbreak", "bell\x07", "rlo\u202eevil", "nel\x85"]
# (path under /sessions/{id}, a valid body) for every POST that takes an operator's text.
OPERATOR_POSTS = [
    ("terminate", {"reason": "end of day", "actor": "op"}),
    ("extend", {"end_time": "2099-01-01T00:00:00Z", "actor": "op", "reason": "news"}),
    ("loss-limit", {"loss_limit": "900", "actor": "op", "reason": "risk"}),
    ("pause", {"actor": "op", "reason": "news"}),
    ("resume", {"actor": "op", "reason": "news"}),
    ("retry-cleanup", {"actor": "op", "reason": "again"}),
]


async def start_active(api: httpx.AsyncClient) -> str:
    body = session_body()
    assert (await api.post("/sessions", json=body)).status_code == 201
    await wait_for_status(api, body["session_id"], {"ACTIVE"})
    return str(body["session_id"])


@pytest.fixture
async def live(api: httpx.AsyncClient) -> str:
    """A session that is ACTIVE, with its activation written: from here on, nothing changes."""
    return await start_active(api)


def raw(body: str | bytes) -> dict[str, Any]:
    content = body.encode() if isinstance(body, str) else body
    return {"content": content, "headers": {"content-type": "application/json"}}


@pytest.mark.parametrize(("path", "valid"), OPERATOR_POSTS)
async def test_control_characters_in_an_operator_reason_or_actor_are_a_422(
    api: httpx.AsyncClient, sessionmaker: Sessionmaker, live: str, path: str, valid: dict[str, Any]
) -> None:
    before = await database_state(sessionmaker, live)

    for field in ("reason", "actor"):
        for bad in BAD_TEXT:
            response = await api.post(f"/sessions/{live}/{path}", json={**valid, field: bad})
            assert_error(response, 422, "validation_error", field)

    assert await database_state(sessionmaker, live) == before


async def test_reasons_and_actors_are_bounded(
    api: httpx.AsyncClient, sessionmaker: Sessionmaker, live: str
) -> None:
    before = await database_state(sessionmaker, live)

    long_reason = await api.post(f"/sessions/{live}/pause", json={"reason": "r" * 501})
    long_actor = await api.post(f"/sessions/{live}/pause", json={"actor": "a" * 65})

    assert "at most 500" in assert_error(long_reason, 422, field="reason")["message"]
    assert "at most 64" in assert_error(long_actor, 422, field="actor")["message"]
    assert await database_state(sessionmaker, live) == before


@pytest.mark.parametrize("hundred", UNICODE_HUNDREDS)
async def test_money_in_non_ascii_digits_is_refused_everywhere(
    api: httpx.AsyncClient, sessionmaker: Sessionmaker, live: str, hundred: str
) -> None:
    before = await database_state(sessionmaker, live)
    order = {"order_id": "o-1", "symbol": "ACME", "side": "BUY", "quantity": "1"}
    cases = [
        ("/sessions", session_body(loss_limit=hundred), "loss_limit"),
        (f"/sessions/{live}/loss-limit", {"loss_limit": hundred}, "loss_limit"),
        (f"/sessions/{live}/fills", fill_body("f-1", "BUY", hundred, "1"), "quantity"),
        (f"/sessions/{live}/fills", fill_body("f-1", "BUY", "1", hundred), "price"),
        (f"/sessions/{live}/fills", fill_body("f-1", "BUY", "1", "1", fee=hundred), "fee"),
        (f"/sessions/{live}/marks", {"symbol": "ACME", "price": hundred}, "price"),
        (f"/sessions/{live}/orders", {**order, "quantity": hundred}, "quantity"),
        (f"/sessions/{live}/orders", {**order, "limit_price": hundred}, "limit_price"),
    ]

    for path, body, field in cases:
        response = await api.post(path, json=body)
        assert "ASCII digits" in assert_error(response, 422, "validation_error", field)["message"]

    assert await database_state(sessionmaker, live) == before


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("1e3", "ASCII digits"),
        ("0.000000001", "8 decimal places"),
        ("12345678901234567", "16 digits"),
        (True, "boolean"),
    ],
)
async def test_money_outside_numeric_24_8_is_refused(
    api: httpx.AsyncClient, sessionmaker: Sessionmaker, live: str, amount: Any, message: str
) -> None:
    before = await database_state(sessionmaker, live)

    response = await api.post(f"/sessions/{live}/marks", json={"symbol": "ACME", "price": amount})

    assert message in assert_error(response, 422, "validation_error", "price")["message"]
    assert await database_state(sessionmaker, live) == before


async def test_money_as_a_json_number_is_stored_exactly(api: httpx.AsyncClient, live: str) -> None:
    body = (
        '{"fill_id":"f-num","symbol":"ACME","side":"BUY","quantity":0.1,"price":1234567.12345678}'
    )

    response = await api.post(f"/sessions/{live}/fills", **raw(body))

    assert response.status_code == 201, response.text
    assert response.json()["quantity"] == "0.1"
    assert response.json()["price"] == "1234567.12345678"


@pytest.mark.parametrize(
    ("path", "body", "key"),
    [
        ("fills", '{"fill_id":"f-d","symbol":"ACME","side":"BUY","quantity":"-5",'
                  '"quantity":"1","price":"1"}', "quantity"),
        ("marks", '{"symbol":"ACME","price":"1","price":"2"}', "price"),
        ("pause", '{"actor":"op","reason":"a","reason":"b"}', "reason"),
        ("terminate", '{"reason":"x","extra":{"a":1,"a":2}}', "a"),
    ],
)  # fmt: skip
async def test_duplicate_json_keys_are_a_400_naming_the_key(
    api: httpx.AsyncClient, sessionmaker: Sessionmaker, live: str, path: str, body: str, key: str
) -> None:
    before = await database_state(sessionmaker, live)

    response = await api.post(f"/sessions/{live}/{path}", **raw(body))

    error = assert_error(response, 400, "malformed_json", key)
    assert "duplicate key" in error["message"]
    assert await database_state(sessionmaker, live) == before


@pytest.mark.parametrize("session_id", [".", "..", "-rf", "a b", "a\x00b", "a/b", "s" * 65])
async def test_session_ids_outside_the_safe_alphabet_are_refused(
    api: httpx.AsyncClient, sessionmaker: Sessionmaker, session_id: str
) -> None:
    before = await database_state(sessionmaker)

    response = await api.post("/sessions", json=session_body(session_id=session_id))

    assert_error(response, 422, "validation_error", "session_id")
    assert await database_state(sessionmaker) == before


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/sessions/%2E%2E"),
        ("GET", "/sessions/%2E"),
        ("GET", "/sessions/a%00b"),
        ("GET", "/sessions/a%0Ab/gate"),
        ("POST", "/sessions/%2E%2E/terminate"),
        ("POST", "/sessions/a%00b/fills"),
        ("POST", "/sessions/%E2%80%AEx/orders"),
        ("GET", "/sessions/a%00b/performance"),
        ("POST", "/keys/..%00/revoke"),
    ],
)
async def test_ids_in_the_path_outside_the_safe_alphabet_are_a_422_not_a_500(
    api: httpx.AsyncClient, sessionmaker: Sessionmaker, method: str, path: str
) -> None:
    before = await database_state(sessionmaker)
    body = fill_body("f", "BUY", "1", "1") if path.endswith("fills") else {"reason": "x"}

    response = await api.request(method, path, json=body if method == "POST" else None)

    field = "key_id" if path.startswith("/keys") else "session_id"
    assert_error(response, 422, "validation_error", field)
    assert await database_state(sessionmaker) == before


async def test_a_start_too_far_ahead_is_refused_and_one_within_the_window_is_taken(
    api: httpx.AsyncClient, sessionmaker: Sessionmaker
) -> None:
    now = datetime.now(UTC)

    def starting_in(days: float) -> dict[str, Any]:
        start = now + timedelta(days=days)
        return session_body(
            start_time=start.isoformat(), end_time=(start + timedelta(hours=1)).isoformat()
        )

    before = await database_state(sessionmaker)
    ten_years = await api.post("/sessions", json=starting_in(3650))
    a_month = await api.post("/sessions", json=starting_in(31))
    assert await database_state(sessionmaker) == before
    within = await api.post("/sessions", json=starting_in(29))

    assert "30 days" in assert_error(ten_years, 422, "validation_error", "start_time")["message"]
    assert_error(a_month, 422, "validation_error", "start_time")
    assert within.status_code == 201, within.text
    await api.post(f"/sessions/{within.json()['id']}/terminate", json={"reason": "test over"})


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://hooks.example.com/x", "http"),
        ("javascript:alert(1)", "http"),
        ("http://hooks.example.com/\nX-Injected: 1", "whitespace"),
        ("http://hooks.example.com/\x00", "control"),
        ("https://hooks.example.com/" + "a" * 2048, "2048"),
    ],
)
async def test_webhook_urls_other_than_plain_http_are_refused(
    api: httpx.AsyncClient, sessionmaker: Sessionmaker, url: str, message: str
) -> None:
    before = await database_state(sessionmaker)

    response = await api.post("/webhooks", json={"url": url, "secret": "s" * 16})

    assert message in assert_error(response, 422, "validation_error", "url")["message"]
    assert await database_state(sessionmaker) == before


async def test_a_key_description_with_control_characters_is_refused(
    api: httpx.AsyncClient, sessionmaker: Sessionmaker
) -> None:
    before = await database_state(sessionmaker)

    response = await api.post("/keys", json={"role": "operator", "description": "ops\x00"})

    assert_error(response, 422, "validation_error", "description")
    assert await database_state(sessionmaker) == before


async def test_unknown_routes_and_wrong_methods_use_the_error_shape(
    api: httpx.AsyncClient,
) -> None:
    unknown = await api.get("/no/such/route")
    wrong_method = await api.delete("/sessions")

    assert_error(unknown, 404, "not_found")
    assert_error(wrong_method, 405, "method_not_allowed")
    assert wrong_method.headers["allow"]  # Starlette names the methods of the first match


async def test_bodies_over_the_limit_are_a_413_declared_or_chunked(
    api: httpx.AsyncClient, sessionmaker: Sessionmaker, settings: Settings
) -> None:
    before = await database_state(sessionmaker)
    big = json.dumps(session_body(reason="x" * settings.max_request_bytes)).encode()

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 4096):
            yield big[start : start + 4096]

    declared = await api.post("/sessions", **raw(big))
    chunked = await api.post(
        "/sessions", content=chunks(), headers={"content-type": "application/json"}
    )

    assert_error(declared, 413, "payload_too_large")
    assert_error(chunked, 413, "payload_too_large")
    assert await database_state(sessionmaker) == before


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"reason": "caf\xe9"}', "not UTF-8"),
        (b"[" * 10_000 + b"]" * 10_000, "nested deeper"),
        (b'{"a":' * 40 + b"1" + b"}" * 40, "nested deeper"),
        (b'{"reason": NaN}', "NaN is not"),
        (b'{"reason": "\\ud800"}', "surrogate"),
        (b'{"reason": "x"} {"reason": "y"}', "not valid JSON"),
    ],
)
async def test_unparsable_bodies_are_a_400_in_the_error_shape(
    api: httpx.AsyncClient, sessionmaker: Sessionmaker, live: str, body: bytes, message: str
) -> None:
    before = await database_state(sessionmaker, live)

    response = await api.post(f"/sessions/{live}/terminate", **raw(body))

    assert message in assert_error(response, 400, "malformed_json")["message"]
    assert await database_state(sessionmaker, live) == before


@pytest.mark.parametrize(
    "body", [b"{not json", b"[" * 10_000, b'{"a":1,"a":2}', b"\xff\xfe", b'{"reason":"x"}']
)
@pytest.mark.parametrize("key", [None, "Bearer tsk_nope.nope"])
async def test_a_caller_without_a_valid_key_gets_401_whatever_the_body(
    api: httpx.AsyncClient, sessionmaker: Sessionmaker, body: bytes, key: str | None
) -> None:
    before = await database_state(sessionmaker)
    headers = {"content-type": "application/json", "authorization": key or ""}

    response = await api.post("/sessions/whatever/terminate", content=body, headers=headers)

    assert_error(response, 401, "unauthorized")
    assert await database_state(sessionmaker) == before
