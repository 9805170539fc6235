"""Helpers for the port of mediasoup's own Node test suite (`test-*.js` -> `test_*.py`)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from media.worker_install import version_at_least
from tests.conftest import BACKENDS

DATA = Path(__file__).parent / "data"
TIMEOUT_S = 5.0


AT_LEAST_3_27 = version_at_least(3, 27)
"""Whether the installed worker is 3.27+: these files follow 3.14.16's test-*.js and, where 3.27.1's
differ (header extension ids, SCTP parameters, error types), 3.27.1's, chosen by this flag."""


def skip_backends(reason: str, *skipped: str) -> pytest.MarkDecorator:
    """Run a `router` / `backend_worker` test on every back-end but those named (default: the vertical ones)."""
    skipped = skipped or ("vertical", "vertical-cluster")
    return pytest.mark.parametrize(
        "backend_worker",
        [pytest.param(b, id=b, marks=pytest.mark.skip(reason=reason) if b in skipped else ()) for b in BACKENDS],
        indirect=True,
    )


async def wait_for(condition: Callable[[], Any], limit_s: float = TIMEOUT_S) -> None:
    """Poll until `condition()` is true (a bounded wait for an event, not a timing)."""
    async with asyncio.timeout(limit_s):
        while not condition():  # noqa: ASYNC110 - conditions on worker state have no Event to wait on
            await asyncio.sleep(0.01)


async def once(emitter: Any, event: str, limit_s: float = TIMEOUT_S) -> tuple[Any, ...]:
    """Wait for one emission of `event`; returns its arguments."""
    future: asyncio.Future[tuple[Any, ...]] = asyncio.get_running_loop().create_future()

    def handler(*args: Any) -> None:
        if not future.done():
            future.set_result(args)

    emitter.once(event, handler)
    async with asyncio.timeout(limit_s):
        return await future


class Calls:
    """A listener that records its calls (the jest.fn() of these tests)."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def __call__(self, *args: Any) -> None:
        self.calls.append(args)

    @property
    def count(self) -> int:
        return len(self.calls)


def pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def router_dump(transport: Any) -> dict[str, Any]:
    """The dump of the router that holds `transport` (on vertical, the real router under it)."""
    return await (getattr(transport, "real_router", None) or transport.router).dump()  # type: ignore[no-any-return]
