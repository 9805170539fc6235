"""pipe_to_router: one algorithm for every pair of routers, local or remote.

It uses only the public API of routers, transports, producers and consumers
(create_pipe_transport, connect, consume, produce, observer events), so the
same code pipes between two routers of one worker, two workers of one
process, or two machines (each side a `media.remote` router): the
PipeTransports' tuples are what crosses the network.

Each pair of routers shares one PipeTransport pair for every piped producer.
The pair is cached on both routers (their ``_pipe_pairs`` dict, else a weak
table here) as one future, so concurrent pipes between the same routers wait
for the same pair instead of creating two.
"""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass
from typing import Any

DEFAULT_LISTEN_INFO = {"protocol": "udp", "ip": "127.0.0.1"}

PairFuture = asyncio.Future[dict[str, Any]]
"""Settles to {router id: that router's PipeTransport}."""

_fallback_pairs: weakref.WeakKeyDictionary[Any, dict[str, PairFuture]] = weakref.WeakKeyDictionary()


@dataclass
class PipeToRouterResult:
    pipe_consumer: Any = None
    """On the source router's pipe transport: carries the producer out."""
    pipe_producer: Any = None
    """On the destination router: the producer's mirror, consumable there."""
    pipe_data_consumer: Any = None
    """When a data producer was piped: its counterparts (the media ones are then None)."""
    pipe_data_producer: Any = None


def _pairs(router: Any) -> dict[str, PairFuture]:
    pairs = getattr(router, "_pipe_pairs", None)
    if isinstance(pairs, dict):
        return pairs
    return _fallback_pairs.setdefault(router, {})


async def pipe_to_router(
    source: Any,
    producer: Any,
    target: Any,
    *,
    keep_id: bool = True,
    listen_info: dict[str, Any] | None = None,
    enable_rtx: bool = False,
    enable_srtp: bool = False,
) -> PipeToRouterResult:
    """Make ``producer`` (on ``source``) consumable on ``target``; callers check their arguments first.

    The pipe consumer and pipe producer are linked: closing, pausing or
    resuming one side follows on the other.
    """
    pair = await _transport_pair(source, target, listen_info or DEFAULT_LISTEN_INFO, enable_rtx, enable_srtp)
    local, remote = pair[source.id], pair[target.id]
    pipe_consumer = await local.consume(producer_id=producer.id)
    try:
        pipe_producer = await remote.produce(
            id=producer.id if keep_id else None,
            kind=pipe_consumer.kind,
            rtp_parameters=pipe_consumer.rtp_parameters,
            paused=pipe_consumer.producer_paused,
            app_data=producer.app_data,
        )
    except BaseException:
        await pipe_consumer.close()
        raise
    pipe_consumer.observer.on("close", pipe_producer.close)
    pipe_consumer.observer.on("pause", pipe_producer.pause)
    pipe_consumer.observer.on("resume", pipe_producer.resume)
    pipe_producer.observer.on("close", pipe_consumer.close)
    return PipeToRouterResult(pipe_consumer=pipe_consumer, pipe_producer=pipe_producer)


async def pipe_data_to_router(
    source: Any,
    data_producer: Any,
    target: Any,
    *,
    keep_id: bool = True,
    listen_info: dict[str, Any] | None = None,
    enable_rtx: bool = False,
    enable_srtp: bool = False,
) -> PipeToRouterResult:
    """Make ``data_producer`` (on ``source``) consumable on ``target``, over the same PipeTransport pair (SCTP).

    Closing either side closes the other.
    """
    pair = await _transport_pair(source, target, listen_info or DEFAULT_LISTEN_INFO, enable_rtx, enable_srtp)
    local, remote = pair[source.id], pair[target.id]
    pipe_data_consumer = await local.consume_data(data_producer_id=data_producer.id)
    try:
        pipe_data_producer = await remote.produce_data(
            id=data_producer.id if keep_id else None,
            sctp_stream_parameters=pipe_data_consumer.sctp_stream_parameters,
            label=pipe_data_consumer.label,
            protocol=pipe_data_consumer.protocol,
            app_data=data_producer.app_data,
        )
    except BaseException:
        await pipe_data_consumer.close()
        raise
    pipe_data_consumer.observer.on("close", pipe_data_producer.close)
    pipe_data_producer.observer.on("close", pipe_data_consumer.close)
    return PipeToRouterResult(pipe_data_consumer=pipe_data_consumer, pipe_data_producer=pipe_data_producer)


async def _transport_pair(
    source: Any, target: Any, listen_info: dict[str, Any], enable_rtx: bool, enable_srtp: bool
) -> dict[str, Any]:
    source_pairs, target_pairs = _pairs(source), _pairs(target)
    pending = source_pairs.get(target.id)
    if pending is not None:
        return await pending
    pending = asyncio.get_running_loop().create_future()
    source_pairs[target.id] = target_pairs[source.id] = pending
    # SCTP on, as mediasoup's pipeToRouter(): the same pair carries data producers.
    options = {"listen_info": listen_info, "enable_sctp": True, "enable_rtx": enable_rtx, "enable_srtp": enable_srtp}
    local = remote = None
    try:
        local = await source.create_pipe_transport(**options)
        remote = await target.create_pipe_transport(**options)
        await local.connect(
            ip=remote.tuple["localAddress"], port=remote.tuple["localPort"], srtp_parameters=remote.srtp_parameters
        )
        await remote.connect(
            ip=local.tuple["localAddress"], port=local.tuple["localPort"], srtp_parameters=local.srtp_parameters
        )
    except BaseException as error:
        if source_pairs.get(target.id) is pending:
            del source_pairs[target.id]
        if target_pairs.get(source.id) is pending:
            del target_pairs[source.id]
        for transport in (local, remote):
            if transport is not None and not transport.closed:
                await transport.close()
        pending.set_exception(error)
        pending.exception()  # retrieved here; waiters get it too
        raise

    async def forget_pair() -> None:
        if source_pairs.get(target.id) is pending:
            del source_pairs[target.id]
        if target_pairs.get(source.id) is pending:
            del target_pairs[source.id]
        await local.close()
        await remote.close()

    local.observer.on("close", forget_pair)
    remote.observer.on("close", forget_pair)
    pending.set_result({source.id: local, target.id: remote})
    return pending.result()
