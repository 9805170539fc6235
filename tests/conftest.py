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


@pytest.fixture(params=BACKENDS)
async def router(request: pytest.FixtureRequest) -> AsyncIterator[object]:
    if request.param == "local":
        worker: object = await media.create_worker()
    else:
        # Two consumers per worker: even small tests spread over workers and pipe.
        worker = await Vertical(media, Capacity(max_workers=3, max_consumers_per_worker=2)).create_worker()
    router = await worker.create_router(media_codecs=DEFAULT_MEDIA_CODECS)  # type: ignore[attr-defined]
    yield router
    await router.close()
    await worker.close()  # type: ignore[attr-defined]


LOOPBACK_UDP = [{"protocol": "udp", "ip": "127.0.0.1"}]
