"""Bad input: a 4xx JSON error naming the problem, and nothing written."""

import httpx
import pytest

from tests.integration.api_helpers import fill_body, session_body


async def assert_nothing_stored(api: httpx.AsyncClient, account_id: str) -> None:
    assert (await api.get("/sessions", params={"account_id": account_id})).json() == []


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"loss_limit": "0"}, "loss_limit"),
        ({"loss_limit": "-5"}, "loss_limit"),
        ({"loss_limit": "NaN"}, "loss_limit"),
        ({"end_time": "2001-01-01T00:00:00Z"}, "end_time"),
        ({"end_time": "2030-01-01T00:00:00"}, "end_time"),
        ({"start_time": "2099-01-02T00:00:00Z", "end_time": "2099-01-01T00:00:00Z"}, None),
        ({"surprise": 1}, "surprise"),
        ({"account_id": "spaces are not ids"}, "account_id"),
        ({"warning_thresholds": [1.5]}, "warning_thresholds.0"),
    ],
)
async def test_invalid_session_is_rejected_naming_the_field(
    api: httpx.AsyncClient, overrides: dict[str, object], field: str | None
) -> None:
    body = session_body(account_id="acc-bad-input")
    body.update(overrides)

    response = await api.post("/sessions", json=body)

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    if field is not None:
        assert error["field"] == field
    else:
        assert "end_time must be after start_time" in error["message"]
    await assert_nothing_stored(api, "acc-bad-input")


async def test_malformed_json_is_a_400_with_json_error(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/sessions", content=b"{not json", headers={"content-type": "application/json"}
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"


async def test_session_longer_than_the_maximum_is_rejected(api: httpx.AsyncClient) -> None:
    body = session_body(seconds=3600 * 24 * 365, account_id="acc-bad-input")

    response = await api.post("/sessions", json=body)

    assert response.status_code == 422
    assert "at most" in response.json()["error"]["message"]
    await assert_nothing_stored(api, "acc-bad-input")


@pytest.mark.parametrize(
    ("method", "path", "json"),
    [
        ("GET", "/sessions/no-such-session", None),
        ("POST", "/sessions/no-such-session/terminate", {"reason": "x"}),
        ("POST", "/sessions/no-such-session/fills", fill_body("f", "BUY", "1", "1")),
        ("POST", "/sessions/no-such-session/marks", {"symbol": "ACME", "price": "1"}),
    ],
)
async def test_unknown_session_is_a_404(
    api: httpx.AsyncClient, method: str, path: str, json: object
) -> None:
    response = await api.request(method, path, json=json)

    assert response.status_code == 404
    assert "no-such-session" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"quantity": "0"}, "quantity"),
        ({"price": "-1"}, "price"),
        ({"side": "HOLD"}, "side"),
        ({"fee": "-0.01"}, "fee"),
    ],
)
async def test_invalid_fill_is_rejected_and_changes_nothing(
    api: httpx.AsyncClient, overrides: dict[str, str], field: str
) -> None:
    body = session_body()
    session_id = body["session_id"]
    await api.post("/sessions", json=body)

    response = await api.post(
        f"/sessions/{session_id}/fills", json={**fill_body("f1", "BUY", "1", "1"), **overrides}
    )

    assert response.status_code == 422
    assert response.json()["error"]["field"] == field
    assert (await api.get(f"/sessions/{session_id}")).json()["realized_pnl"] == "0"


async def test_text_postgres_cannot_store_is_a_422_and_writes_nothing(
    api: httpx.AsyncClient,
) -> None:
    body = session_body()
    session_id = body["session_id"]
    await api.post("/sessions", json=body)

    listed = await api.get("/notifications", params={"account_id": "\x00"})
    terminate = await api.post(f"/sessions/{session_id}/terminate", json={"reason": "a\x00b"})

    assert listed.status_code == 422
    assert terminate.status_code == 422
    assert terminate.json()["error"]["field"] == "reason"
    assert "U+0000" in terminate.json()["error"]["message"]
    assert (await api.get(f"/sessions/{session_id}")).json()["status"] in {"PENDING", "ACTIVE"}
