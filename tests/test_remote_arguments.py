"""Call arguments of mirrored media objects: one walk on each side, the same answers as before.

Arguments that hold nothing to translate cross uncopied; references, ``$bytes`` and nesting
limits are still handled by the server's walk, with the same errors as rope's own.
"""

from __future__ import annotations

from typing import Any

import pytest

import media
from media.codecs import DEFAULT_MEDIA_CODECS
from rope import InvalidParams
from rope.values import MAX_DEPTH
from swarm.loopback import loopback

LOOPBACK = {"protocol": "udp", "ip": "127.0.0.1"}


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


async def test_over_deep_arguments_to_a_mirrored_object_get_invalid_params_and_it_lives_on() -> None:
    async with loopback(media, "websocket") as (_, remote):
        worker = await remote.create_worker()
        router = await worker.create_router(media_codecs=DEFAULT_MEDIA_CODECS)
        with pytest.raises(InvalidParams, match=f"deeper than {MAX_DEPTH}"):
            await remote.client.call(router.proxy.id, "create_plain_transport", listen_info=LOOPBACK,
                                     app_data={"x": nested(MAX_DEPTH)})
        assert not router.transports  # refused before the call
        transport = await router.create_plain_transport(listen_info=LOOPBACK, app_data={"x": nested(MAX_DEPTH - 3)})
        assert transport.app_data == {"x": nested(MAX_DEPTH - 3)}


async def test_tagged_and_untagged_values_arrive_as_the_server_object_sees_them() -> None:
    async with loopback(media, "websocket") as (server, remote):
        worker = await remote.create_worker()
        router = await worker.create_router(media_codecs=DEFAULT_MEDIA_CODECS)
        app_data = {"blob": b"\x00\xffraw", "$note": "a key like a tag", "list": [{"$ref": "x", "y": 1}]}
        transport = await router.create_plain_transport(listen_info=LOOPBACK, app_data=app_data)
        real = server.find_target(transport.proxy.id)
        assert real.app_data == app_data  # bytes as bytes, dicts that merely look tagged unchanged
        caps = router.rtp_capabilities
        producer = await transport.produce(kind="audio", rtp_parameters={
            "codecs": [{"mimeType": "audio/opus", "payloadType": 100, "clockRate": 48000, "channels": 2}],
            "encodings": [{"ssrc": 1111}]})
        consumer = await transport.consume(producer_id=producer.id, rtp_capabilities=caps)
        assert server.find_target(consumer.proxy.id).producer_id == producer.id
        assert caps == router.rtp_capabilities  # the caller's value is not changed on the way out
