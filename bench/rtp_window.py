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


async def feed(ingress: Any, packets_per_second: float, seconds: float) -> int:
    """Send RTP to a comedia PlainTransport for `seconds`, then drain; returns packets sent."""
    source = RtpSource("127.0.0.1", ingress.tuple["localPort"], packets_per_second)
    source.start()
    await asyncio.sleep(seconds)
    await source.stop()
    await asyncio.sleep(DRAIN_S)
    return source.sent
