"""Principals of recently verified API keys, kept in this process for a few seconds.

A burst of requests with one key then costs one database lookup instead of one each. The
price is that a key revoked elsewhere (the CLI, another API process) keeps working here
until its entry expires; a revoke through this process evicts it at once.

Entries are keyed by the key's SHA-256 (what the database stores), never by the key itself.
Only successful lookups are kept: an unknown or revoked key is looked up every time, so a
key issued a moment ago works at once and a flood of bad keys cannot push good ones out.
"""

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial

from starter.services.principals import Principal, hash_key

# Far more keys than any desk uses in one TTL; past it the least recently used go first.
MAX_ENTRIES = 10_000

Lookup = Callable[[str], Awaitable[Principal | None]]


@dataclass(frozen=True)
class _Entry:
    principal: Principal
    expires_at: float


class KeyCache:
    """A bounded, TTL-limited map from key digest to principal; ``ttl_seconds=0`` turns it off."""

    def __init__(
        self,
        ttl_seconds: float,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self.clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._loading: dict[str, asyncio.Future[Principal | None]] = {}
        # Bumped by every eviction: a lookup that began before it must not store its answer.
        self._generation = 0

    @property
    def enabled(self) -> bool:
        return self.ttl_seconds > 0

    def __len__(self) -> int:
        return len(self._entries)

    async def get_or_load(self, api_key: str, lookup: Lookup) -> Principal | None:
        """The cached principal of ``api_key``, else ``lookup(api_key)`` (stored if found).

        Concurrent misses for one key share a single lookup.
        """
        if not self.enabled:
            return await lookup(api_key)
        digest = hash_key(api_key)
        entry = self._entries.get(digest)
        if entry is not None:
            if self.clock() < entry.expires_at:
                self._entries.move_to_end(digest)
                return entry.principal
            del self._entries[digest]
        loading = self._loading.get(digest)
        if loading is None:
            loading = asyncio.ensure_future(self._load(digest, api_key, lookup, self._generation))
            self._loading[digest] = loading
            loading.add_done_callback(partial(self._loaded, digest))
        # Shielded: one caller giving up (client disconnect) must not cancel the others' lookup.
        return await asyncio.shield(loading)

    def evict(self, key_id: str) -> None:
        """Forget ``key_id`` (it was just revoked).

        Lookups in flight may have read the key before the revoke: they will not store their
        answer, and later callers do not join them but look the key up afresh.
        """
        self._generation += 1
        self._loading.clear()
        for digest in [d for d, e in self._entries.items() if e.principal.key_id == key_id]:
            del self._entries[digest]

    async def _load(
        self, digest: str, api_key: str, lookup: Lookup, generation: int
    ) -> Principal | None:
        principal = await lookup(api_key)
        if principal is not None and generation == self._generation:
            self._entries[digest] = _Entry(principal, self.clock() + self.ttl_seconds)
            if len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return principal

    def _loaded(self, digest: str, done: asyncio.Future[Principal | None]) -> None:
        if self._loading.get(digest) is done:  # not if an eviction let a newer one start
            del self._loading[digest]
        if not done.cancelled():
            done.exception()  # retrieved, so asyncio does not log it when every waiter left
