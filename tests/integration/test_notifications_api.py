"""GET /notifications and webhook subscription management, through the real app."""

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.fixtures.notification_data import SECRET, deactivate, new_account, queue_notification

Sessionmaker = async_sessionmaker[AsyncSession]


@pytest.fixture
async def created(sessionmaker: Sessionmaker) -> AsyncIterator[list[int]]:
    """Subscriptions a test made through the API; deactivated afterwards."""
    ids: list[int] = []
    yield ids
    await deactivate(sessionmaker, ids)


async def test_list_filters_by_account_and_session_and_pages_by_id(
    api: httpx.AsyncClient, sessionmaker: Sessionmaker
) -> None:
    account = new_account()
    first = await queue_notification(sessionmaker, account, session_id=f"{account}-s1")
    second = await queue_notification(sessionmaker, account, session_id=f"{account}-s2")
    await queue_notification(sessionmaker, new_account())

    listed = (await api.get("/notifications", params={"account_id": account})).json()
    one_session = (await api.get("/notifications", params={"session_id": f"{account}-s2"})).json()
    page = await api.get(
        "/notifications", params={"account_id": account, "after_id": first, "limit": 1}
    )

    assert [n["id"] for n in listed] == [first, second]
    assert listed[0]["kind"] == "warning.loss"
    assert listed[0]["payload"]["threshold"] == 0.8
    assert listed[0]["delivered_at"] is None
    assert [n["id"] for n in one_session] == [second]
    assert [n["id"] for n in page.json()] == [second]


async def test_bad_list_parameters_are_rejected(api: httpx.AsyncClient) -> None:
    response = await api.get("/notifications", params={"limit": 0})
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "limit"


async def test_webhook_is_created_listed_without_its_secret_and_deactivated(
    api: httpx.AsyncClient, created: list[int]
) -> None:
    account = new_account()
    response = await api.post(
        "/webhooks",
        json={"url": "https://hooks.example.com/trading", "secret": SECRET, "account_id": account},
    )
    assert response.status_code == 201
    hook = response.json()
    created.append(hook["id"])
    assert hook["url"] == "https://hooks.example.com/trading"
    assert hook["account_id"] == account
    assert hook["active"] is True

    listing = await api.get("/webhooks")
    assert SECRET not in listing.text
    assert "secret" not in listing.text
    assert hook["id"] in [h["id"] for h in listing.json()]

    deleted = await api.delete(f"/webhooks/{hook['id']}")
    assert deleted.status_code == 200
    assert deleted.json()["active"] is False
    again = await api.delete(f"/webhooks/{hook['id']}")
    assert again.json()["active"] is False
    [listed] = [h for h in (await api.get("/webhooks")).json() if h["id"] == hook["id"]]
    assert listed["active"] is False


async def test_catch_all_webhook_has_no_account(api: httpx.AsyncClient, created: list[int]) -> None:
    response = await api.post("/webhooks", json={"url": "http://127.0.0.1:9/x", "secret": SECRET})
    assert response.status_code == 201
    created.append(response.json()["id"])
    assert response.json()["account_id"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "https://hooks.example.com", "secret": "too-short"}, "secret"),
        ({"url": "ftp://hooks.example.com", "secret": SECRET}, "url"),
        ({"url": "not a url", "secret": SECRET}, "url"),
        ({"secret": SECRET}, "url"),
        ({"url": "https://hooks.example.com", "secret": SECRET, "account_id": "a b"}, "account_id"),
        ({"url": "https://hooks.example.com", "secret": SECRET, "extra": 1}, "extra"),
    ],
)
async def test_bad_webhook_is_rejected_and_nothing_is_stored(
    api: httpx.AsyncClient, body: dict[str, object], field: str
) -> None:
    before = len((await api.get("/webhooks")).json())

    response = await api.post("/webhooks", json=body)

    assert response.status_code == 422
    assert response.json()["error"]["field"] == field
    assert len((await api.get("/webhooks")).json()) == before


async def test_deactivating_an_unknown_webhook_is_a_404(api: httpx.AsyncClient) -> None:
    response = await api.delete("/webhooks/987654321")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
