"""Shared fixtures: real mediasoup workers, started and stopped per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

import media
from media.codecs import DEFAULT_MEDIA_CODECS
from media.vertical import Capacity, Vertical


@pytest.fixture
async def worker() -> AsyncIterator[media.Worker]:
    worker = await media.create_worker()
    yield worker
    await worker.close()


BACKENDS = ["local", "vertical"]
"""Every back-end offering mediasoup's API; router-level tests run against each."""


async def create_backend_worker(backend: str, **settings: object) -> object:
    """A worker of the named back-end (each offers mediasoup's `create_worker()`)."""
    if backend == "local":
        return await media.create_worker(**settings)  # type: ignore[arg-type]
    # Two consumers per worker: even small tests spread over workers and pipe.
    return await Vertical(media, Capacity(max_workers=3, max_consumers_per_worker=2)).create_worker(**settings)


@pytest.fixture(params=BACKENDS)
async def backend_worker(request: pytest.FixtureRequest) -> AsyncIterator[object]:
    """A worker of each back-end, for tests that create their own routers (own codecs, app_data)."""
    worker = await create_backend_worker(request.param)
    yield worker
    await worker.close()  # type: ignore[attr-defined]


@pytest.fixture
async def router(backend_worker: object) -> AsyncIterator[object]:
    router = await backend_worker.create_router(media_codecs=DEFAULT_MEDIA_CODECS)  # type: ignore[attr-defined]
    yield router
    await router.close()


LOOPBACK_UDP = [{"protocol": "udp", "ip": "127.0.0.1"}]
