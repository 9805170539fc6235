"""Shared fixtures: real mediasoup workers, started and stopped per test."""

from __future__ import annotations

import contextlib
import inspect
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

import media
from media.codecs import DEFAULT_MEDIA_CODECS
from media.horizontal import Horizontal
from media.vertical import Capacity, Vertical
from swarm.loopback import loopback

# Property tests must not fail because the machine is busy: no deadline, no "too slow" health
# check (both measure time), the same examples on every run (derandomize, no example database).
# HYPOTHESIS_PROFILE=explore searches afresh, with more examples, when hunting for bugs.
settings.register_profile("ci", deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True,
                          database=None)
settings.register_profile("explore", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
async def worker() -> AsyncIterator[media.Worker]:
    worker = await media.create_worker()
    yield worker
    await worker.close()


BACKENDS = ["local", "vertical", "remote-ws", "remote-libp2p", "horizontal", "vertical-cluster"]
"""Every back-end offering mediasoup's API; router-level tests run against each. The remote ones
are a Remote Mediasoup server over the local `media` module, reached over WebSocket or libp2p;
`horizontal` places workers over two such servers, `vertical-cluster` is a Vertical over that
(Mafalda's flagship: one router spanning workers of several servers)."""


@contextlib.asynccontextmanager
async def backend_mediasoup(backend: str) -> AsyncIterator[Any]:
    """mediasoup's module-level API (`create_worker()`) of the named back-end."""
    if backend == "local":
        yield media
    elif backend == "vertical":
        # Two consumers per worker: even small tests spread over workers and pipe.
        yield Vertical(media, Capacity(max_workers=3, max_consumers_per_worker=2))
    elif backend in ("horizontal", "vertical-cluster"):
        async with loopback(media, "websocket") as (_, a), loopback(media, "libp2p") as (_, b):
            horizontal = Horizontal([a, b])
            yield horizontal if backend == "horizontal" else Vertical(
                horizontal, Capacity(max_workers=3, max_consumers_per_worker=2)
            )
    else:
        async with loopback(media, "websocket" if backend == "remote-ws" else "libp2p") as (_, remote):
            yield remote


@pytest.fixture(params=BACKENDS)
async def backend_worker(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """A worker of each back-end, for tests that create their own routers (own codecs, app_data)."""
    async with backend_mediasoup(request.param) as mediasoup:
        worker = await mediasoup.create_worker()
        yield worker
        await worker.close()


@pytest.fixture
async def router(backend_worker: object) -> AsyncIterator[object]:
    router = await backend_worker.create_router(media_codecs=DEFAULT_MEDIA_CODECS)  # type: ignore[attr-defined]
    yield router
    await router.close()


LOOPBACK_UDP = [{"protocol": "udp", "ip": "127.0.0.1"}]


REMOTE_BACKENDS = ("remote-ws", "remote-libp2p", "horizontal", "vertical-cluster")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Skip, on remote back-ends, tests that inject a worker notification into an object's private
    handler (``obj._on_notification(...)``): a remote object has no channel of its own to inject into."""
    skip = pytest.mark.skip(reason="injects a notification into a local object's private channel handler")
    for item in items:
        backend = getattr(item, "callspec", None) and item.callspec.params.get("backend_worker")
        if backend in REMOTE_BACKENDS and "._on_notification(" in _source(item):
            item.add_marker(skip)


def _source(item: pytest.Item) -> str:
    try:
        return inspect.getsource(item.function)  # type: ignore[attr-defined]
    except (AttributeError, OSError, TypeError):
        return ""
