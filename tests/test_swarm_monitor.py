"""Mafalda-monitor: what a member sees of every other node's load and placements."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest
from libp2p.crypto.ed25519 import create_new_key_pair
from prometheus_client.parser import text_string_to_metric_families

import media
from media.codecs import DEFAULT_MEDIA_CODECS
from media.rtp_traffic import OPUS_RTP_PARAMETERS
from media.stats import get_stats
from media.vertical import Capacity
from swarm import logs
from swarm.bootstrap import parse_bootstrap
from swarm.cli import build_parser
from swarm.media_node import MediaNode, member_session
from swarm.membership import CertificateVerifier, SwarmAuthority, peer_id_of
from swarm.monitor.http import MonitorServer
from swarm.monitor.metrics import LOCAL_WORKER_COUNTS
from swarm.monitor.rooms import RoomSpans
from swarm.monitor.state import SwarmState
from swarm.monitor_cli import render, snapshot
from swarm.node import SwarmNode
from swarm.records import LoadRecord, LoadReport, RecordError, WorkerLoad, decode_envelope, encode_envelope
from tests.test_swarm_node import FAST, full_views, swarm_of, wait_until


async def test_monitor_shows_every_nodes_load_and_placements() -> None:
    async with swarm_of(SwarmAuthority.generate(), 3) as nodes:
        await wait_until(lambda: full_views(nodes))
        busy, monitor = nodes[1], nodes[2]
        busy.set_load_provider(lambda: LoadReport(workers=(WorkerLoad("w1", 42, 500), WorkerLoad("w2", 7, 500))))
        busy.notify_load_changed()
        busy.set_placement("room:abc", "room", {"entry": busy.peer_id})
        assert monitor.view is not None
        view = monitor.view

        def shows_busy() -> bool:
            rows = {row["peer"]: row for row in snapshot(view)}
            row = rows.get(busy.peer_id)
            return bool(row and row["consumers"] == 49 and row["placements"] == ["room:abc"])

        await wait_until(shows_busy)
        rows = snapshot(view)
        assert {row["peer"] for row in rows} == {nodes[0].peer_id, busy.peer_id}
        table = render(rows)
        assert "49/1000" in table and "room:abc" in table and "(2 node(s) in view)" in table


# -- the load record's monitoring fields --------------------------------------------------


def test_load_records_carry_pipe_consumers_memory_roles_and_links_and_old_records_still_decode() -> None:
    record = LoadRecord("peer-a", 7, 12.5, 2, (WorkerLoad("101", 3, 500, 4.5, 2), WorkerLoad("102", 1, 500)),
                        1e3, 2e3, ("/ip4/127.0.0.1/tcp/1",), 6.0, 3, memory_bytes=123_456_789,
                        roles=("node",), links=("peer-b", "peer-c"))
    data = encode_envelope("cert", record)
    assert decode_envelope(data).record == record
    body = json.loads(data)["record"]
    assert all(len(worker) == 4 for worker in body["workers"])  # nodes that predate the new fields accept it
    assert record.consumers == 4 and record.pipe_consumers == 2

    old = {"peer": "peer-a", "ver": 1, "cpu": 1.0, "ncpu": 2, "workers": [["w", 3, 500, None]], "bw": [0, 0],
           "addrs": [], "ttl": 6.0}
    decoded = decode_envelope(json.dumps({"v": 1, "cert": "c", "kind": "load", "record": old}).encode()).record
    assert isinstance(decoded, LoadRecord)
    assert (decoded.workers[0].pipe_consumers, decoded.memory_bytes, decoded.roles, decoded.links) == (0, 0, (), ())

    for bad in ({"wpipe": [1, 2]}, {"wpipe": [-1]}, {"mem": "lots"}, {"roles": ["x" * 33]}, {"links": [7]}):
        message = {"v": 1, "cert": "c", "kind": "load", "record": {**old, **bad}}
        with pytest.raises(RecordError):
            decode_envelope(json.dumps(message).encode())


# -- /metrics and the page's model, over a room spanning two media nodes (in process) ------

TOKEN = "a-token-long-enough-0123"
LOOPBACK = {"protocol": "udp", "ip": "127.0.0.1"}


@contextlib.asynccontextmanager
async def media_swarm_and_monitor() -> AsyncIterator[tuple[MediaNode, MediaNode, SwarmNode]]:
    """Two media nodes (one worker each, two consumers per worker) and a member with the monitor role."""
    authority = SwarmAuthority.generate()
    async with swarm_of(authority, 2) as nodes:
        key_pair = create_new_key_pair()
        options = dataclasses.replace(FAST, bootstrap=parse_bootstrap(nodes[0].listen_addrs[0]))
        monitor = SwarmNode(key_pair, authority.issue(peer_id_of(key_pair), ("monitor",)),
                            CertificateVerifier(authority.public_key), options)
        async with monitor:
            media_nodes = [MediaNode(n, media, Capacity(max_workers=1, max_consumers_per_worker=2)) for n in nodes]
            for media_node in media_nodes:
                await media_node.start()
            try:
                await wait_until(lambda: full_views([*nodes, monitor]))
                yield media_nodes[0], media_nodes[1], monitor
            finally:
                for media_node in media_nodes:
                    await media_node.close()


async def test_metrics_match_get_stats_and_the_room_spans_both_nodes_never_the_monitor() -> None:
    async with media_swarm_and_monitor() as (entry, peer, monitor):
        await wait_until(lambda: all(c.peer_id != monitor.peer_id for c in entry.mediasoup.candidates())
                         and len(entry.mediasoup.candidates()) == 2)  # once its load record tells its role
        server = MonitorServer(SwarmState(entry.node), TOKEN, local_stats=lambda: get_stats(entry.local.workers))
        url = await server.start("127.0.0.1", 0)
        try:
            worker = await entry.create_worker()
            router = await worker.create_router(media_codecs=DEFAULT_MEDIA_CODECS)
            ingress = await router.create_plain_transport(listen_info=LOOPBACK, rtcp_mux=True, comedia=True)
            producer = await ingress.produce(kind="audio", rtp_parameters=OPUS_RTP_PARAMETERS)
            for _ in range(3):  # one worker per node, two consumers each: the third is on the peer's worker
                egress = await router.create_plain_transport(listen_info=LOOPBACK, rtcp_mux=True)
                await egress.consume(producer_id=producer.id, rtp_capabilities=router.rtp_capabilities)
            assert entry.local.workers and peer.local.workers

            spans = RoomSpans(entry)
            spans.refresh()
            [room] = server.state.rooms()
            assert room["id"] == router.id and room["nodes"] == sorted([entry.node.peer_id, peer.node.peer_id])
            [pipe] = room["pipes"]
            # Placement follows load (the entry wins only near-ties), so either node may hold the producer's
            # worker; its pipe carries the producer to the other node's worker.
            source = pipe["from"]["peer"]
            assert {source, pipe["to"]["peer"]} == {entry.node.peer_id, peer.node.peer_id}

            async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
                async with http.get(url + "/metrics") as response:
                    assert response.status == 200
                    text = await response.text()
            stats = await get_stats(entry.local.workers)
            samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                       for family in text_string_to_metric_families(text) for s in family.samples}
            own = entry.node.peer_id
            for worker_stats in stats["workers"]:
                labels = (("node", own), ("worker", str(worker_stats["pid"])))
                for count in LOCAL_WORKER_COUNTS:
                    assert samples[(f"mafalda_swarm_local_worker_{count}", labels)] == worker_stats[count], count
            # The producer's node: two consumers and the pipe's; the other: the third consumer.
            expected = (1, 2) if source == own else (0, 1)
            assert (stats["totals"]["pipe_consumers"], stats["totals"]["consumers"]) == expected
            assert samples[("mafalda_swarm_members", ())] == 3
            assert samples[("mafalda_swarm_node_role_info", (("node", monitor.peer_id), ("role", "monitor")))] == 1
            assert samples[("mafalda_swarm_rooms", ())] == 1
            assert samples[("mafalda_swarm_room_nodes", (("room", router.id),))] == 2
            assert ("mafalda_swarm_node_memory_bytes", (("node", peer.node.peer_id),)) in samples
        finally:
            await server.close()


def test_json_logs_are_one_object_per_line_with_peer_and_room(capsys: pytest.CaptureFixture[str]) -> None:
    try:
        logs.configure(1, "json")
        logs.set_peer_id("12D3KooWtest")
        logging.getLogger("swarm.test").info("room %s opened", "r1", extra={"room_id": "r1"})
        logging.getLogger("swarm.test").warning("plain")
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
        assert [(line["level"], line["logger"], line["message"], line["peer"]) for line in lines] == [
            ("info", "swarm.test", "room r1 opened", "12D3KooWtest"),
            ("warning", "swarm.test", "plain", "12D3KooWtest"),
        ]
        assert lines[0]["room"] == "r1" and "room" not in lines[1] and lines[0]["time"].endswith("+00:00")
        [commands] = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
        for command in ("node", "monitor", "serve", "proxy", "simulate", "demo"):
            assert "--log-format" in commands.choices[command]._option_string_actions, command
    finally:
        logs.set_peer_id(None)
        logs.configure(0, "text")


async def test_a_member_session_with_a_member_we_hold_no_connection_to() -> None:
    """Gossip shows members we hold no connection to (the monitor joined through another node; peer
    exchange connects it later, or not at all), and our host knows no address of theirs: a member
    session first proves a connection from the address their load record gossips."""
    async with media_swarm_and_monitor() as (_entry, peer, monitor):
        target = peer.node.peer_id
        await monitor.host.disconnect(target)  # in case peer exchange connected us already
        await wait_until(lambda: not monitor.is_member(target))
        remote = await member_session(monitor, target, reconnect=None)
        try:
            stats = await remote.get_node_stats()
        finally:
            await remote.close()
        assert [w["pid"] for w in stats["workers"]] == [w.pid for w in peer.local.workers]
