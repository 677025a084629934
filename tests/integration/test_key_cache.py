"""The API-key cache: a verified key is looked up once per TTL, a revoke here evicts it at once.

Lookups are counted by wrapping the real ``ApiKeyRepository.by_key_id``; time is a fake clock.
"""

import asyncio
from collections.abc import Callable

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.roles import Role
from starter.services.key_cache import KeyCache
from starter.services.keys import KeyService
from starter.services.principals import Principal
from store.api_keys import ApiKeyRepository
from store.models import ApiKey

TTL = 5.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _until(condition: Callable[[], bool]) -> None:
    """Let other tasks run until ``condition`` holds (a few loop turns, no wall-clock wait)."""
    for _ in range(100):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never held")


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Key ids looked up in the database, in order; the real query still runs."""
    seen: list[str] = []
    real = ApiKeyRepository.by_key_id

    async def counting(self: ApiKeyRepository, key_id: str) -> ApiKey | None:
        seen.append(key_id)
        return await real(self, key_id)

    monkeypatch.setattr(ApiKeyRepository, "by_key_id", counting)
    return seen


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def keys(sessionmaker: async_sessionmaker[AsyncSession], clock: FakeClock) -> KeyService:
    return KeyService(sessionmaker, KeyCache(TTL, clock=clock))


async def test_a_verified_key_is_not_looked_up_again_within_the_ttl(
    keys: KeyService, clock: FakeClock, lookups: list[str]
) -> None:
    issued = await keys.create(Role.TRADER, "acc-cache")
    first = await keys.authenticate(issued.api_key)
    clock.now += TTL - 0.1
    again = await keys.authenticate(issued.api_key)
    assert first == again == Principal(Role.TRADER, issued.key_id, "acc-cache")
    assert lookups == [issued.key_id]


async def test_a_burst_with_one_key_makes_one_lookup(keys: KeyService, lookups: list[str]) -> None:
    issued = await keys.create(Role.OPERATOR)
    principals = await asyncio.gather(*(keys.authenticate(issued.api_key) for _ in range(20)))
    assert {p.key_id if p else None for p in principals} == {issued.key_id}
    assert lookups == [issued.key_id]


async def test_revoking_through_the_service_evicts_the_key_at_once(
    keys: KeyService, lookups: list[str]
) -> None:
    issued = await keys.create(Role.OPERATOR)
    assert await keys.authenticate(issued.api_key) is not None
    await keys.revoke(issued.key_id)
    assert await keys.authenticate(issued.api_key) is None
    assert lookups == [issued.key_id, issued.key_id]


async def test_a_key_revoked_elsewhere_works_until_the_ttl_ends(
    keys: KeyService,
    clock: FakeClock,
    sessionmaker: async_sessionmaker[AsyncSession],
    lookups: list[str],
) -> None:
    issued = await keys.create(Role.OPERATOR)
    assert await keys.authenticate(issued.api_key) is not None
    await KeyService(sessionmaker).revoke(issued.key_id)  # the CLI: another process, no cache
    assert await keys.authenticate(issued.api_key) is not None
    clock.now += TTL
    assert await keys.authenticate(issued.api_key) is None
    assert lookups == [issued.key_id, issued.key_id]


async def test_unknown_and_revoked_keys_are_looked_up_every_time(
    keys: KeyService, lookups: list[str]
) -> None:
    issued = await keys.create(Role.OPERATOR)
    forged = issued.api_key[:-4] + "AAAA"
    await keys.revoke((revoked := await keys.create(Role.SERVICE)).key_id)
    for _ in range(2):
        assert await keys.authenticate(forged) is None
        assert await keys.authenticate(revoked.api_key) is None
    assert lookups == [issued.key_id, revoked.key_id] * 2
    # The forged key did not poison the real one, which then works (and is cached).
    assert await keys.authenticate(issued.api_key) is not None


async def test_a_zero_ttl_looks_every_key_up(
    sessionmaker: async_sessionmaker[AsyncSession], lookups: list[str]
) -> None:
    keys = KeyService(sessionmaker, KeyCache(0))
    issued = await keys.create(Role.OPERATOR)
    for _ in range(3):
        assert await keys.authenticate(issued.api_key) is not None
    assert lookups == [issued.key_id] * 3


async def test_the_cache_keeps_at_most_its_size_dropping_the_least_recently_used(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FakeClock, lookups: list[str]
) -> None:
    cache = KeyCache(TTL, max_entries=2, clock=clock)
    keys = KeyService(sessionmaker, cache)
    a, b, c = [await keys.create(Role.OPERATOR) for _ in range(3)]
    for issued in (a, b, a, c):  # b is the least recently used when c arrives
        await keys.authenticate(issued.api_key)
    assert len(cache) == 2
    await keys.authenticate(a.api_key)
    await keys.authenticate(b.api_key)
    assert lookups == [a.key_id, b.key_id, c.key_id, b.key_id]
    assert all(raw.api_key not in repr(cache.__dict__) for raw in (a, b, c))


async def test_a_revoke_during_a_lookup_is_not_undone_by_it(clock: FakeClock) -> None:
    """The lookup read the key before the revoke committed: its answer must not be cached."""
    cache = KeyCache(TTL, clock=clock)
    principal = Principal(Role.OPERATOR, "0123456789ab")
    release = asyncio.Event()
    calls = 0

    async def slow_lookup(api_key: str) -> Principal | None:
        nonlocal calls
        calls += 1
        read_before_the_revoke = calls == 1
        await release.wait()
        return principal if read_before_the_revoke else None

    before = asyncio.create_task(cache.get_or_load("tsk_key", slow_lookup))
    await _until(lambda: calls == 1)
    cache.evict("0123456789ab")
    after = asyncio.create_task(cache.get_or_load("tsk_key", slow_lookup))
    await _until(lambda: calls == 2)  # the call after the revoke did not join the older lookup
    release.set()
    assert await before == principal  # the request that raced the revoke still passes
    assert await after is None
    assert len(cache) == 0


async def test_the_api_looks_a_key_up_once_for_many_requests_and_forgets_it_on_revoke(
    api: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession], lookups: list[str]
) -> None:
    issued = await KeyService(sessionmaker).create(Role.OPERATOR)
    as_operator = {"Authorization": f"Bearer {issued.api_key}"}
    for _ in range(5):
        assert (await api.get("/sessions", headers=as_operator)).status_code == 200
    assert lookups.count(issued.key_id) == 1
    assert (await api.post(f"/keys/{issued.key_id}/revoke")).status_code == 200
    assert (await api.get("/sessions", headers=as_operator)).status_code == 401
