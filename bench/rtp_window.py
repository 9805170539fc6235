"""Measuring forwarding over an exact window: counters read while no traffic flows.

Reading the stats of 1,000 consumers takes seconds; read while media flows,
the first and last consumers would be counted over different windows. So:
read, feed the producer for exactly `seconds`, let the tail drain, read again.
"""

from __future__ import annotations

import asyncio
from typing import Any

from media.rtp_traffic import RtpSource

DRAIN_S = 0.3


async def packets_sent(consumers: list[Any]) -> int:
    """RTP packets the worker has sent for these consumers (their outbound-rtp stats)."""
    total = 0
    for consumer in consumers:
        for stat in await consumer.get_stats():
            if stat["type"] == "outbound-rtp":
                total += int(stat.get("packetCount", 0))
    return total


async def feed(source: RtpSource, seconds: float) -> int:
    """Run the source for `seconds`, then let the tail drain; returns packets sent in the window."""
    before = source.sent
    source.start()
    await asyncio.sleep(seconds)
    await source.stop()
    await asyncio.sleep(DRAIN_S)
    return source.sent - before
