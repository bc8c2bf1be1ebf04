"""Waiting in tests for what happens in the background (a sender loop, a sandbox, a process)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def until(check: Callable[[], object], timeout_s: float = 10.0) -> None:
    """Poll ``check`` until it is true; fail the test after ``timeout_s``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not check():
        assert loop.time() < deadline, f"timed out after {timeout_s:.0f}s"
        await asyncio.sleep(0.01)
