"""Waiting for eventually consistent answers (Temporal visibility, pollers) in tests."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(probe: Callable[[], Awaitable[T | None]], timeout: float = 20.0) -> T:
    """Call ``probe`` until it returns something other than None; fail after ``timeout``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await probe()
        if value is not None:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"no answer from {probe.__name__} within {timeout:g} s")
        await asyncio.sleep(0.2)
