"""Shared fixtures: real mediasoup workers, started and stopped per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

import media
from media.codecs import DEFAULT_MEDIA_CODECS


@pytest.fixture
async def worker() -> AsyncIterator[media.Worker]:
    worker = await media.create_worker()
    yield worker
    await worker.close()


@pytest.fixture
async def router(worker: media.Worker) -> AsyncIterator[object]:
    router = await worker.create_router(media_codecs=DEFAULT_MEDIA_CODECS)
    yield router
    await router.close()


LOOPBACK_UDP = [{"protocol": "udp", "ip": "127.0.0.1"}]
