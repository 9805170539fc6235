"""The monitor page in a real browser, over a swarm of real node processes.

Three media nodes and a monitor (``mafalda-swarm monitor --http``), each its
own process on 127.0.0.1; an application enters a room through node A, and the
room needs a second worker, which the swarm places on another node. Headless
Chromium opens the monitor's page and the test reads the DOM: the members,
the room on both nodes with its pipe, and a SIGKILLed node leaving.

``MAFALDA_MONITOR_SCREENSHOT=path.png`` also saves a screenshot on success (for
documentation); on failure one is always saved under the test's tmp dir.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from media.codecs import DEFAULT_MEDIA_CODECS
from media.remote.client import connect_websocket
from media.rtp_traffic import opus_producer, sink_consumer
from swarm.membership import SwarmAuthority, load_or_create_identity, peer_id_of
from swarm.node import NodeOptions
from tests.browser import chromium_page

APP_TOKEN = "application-server-secret"
PAGE_TOKEN = "monitor-page-token-0123456789"
LOAD_INTERVAL_S = NodeOptions().load_interval_s
"""The default: shorter periods mean shorter TTLs, which a busy shared machine can miss."""
_SWIM = NodeOptions().swim
DETECTION_BOUND_S = (_SWIM.max_health + 1) * (
    _SWIM.probe_interval_s + _SWIM.probe_timeout_s + _SWIM.indirect_timeout_s + _SWIM.suspicion_max_s
)
"""The longest the swarm itself may take to drop a killed member: a probe round and the longest
suspicion, stretched as far as Lifeguard's local health lets a slow (busy) prober stretch them."""
SLACK_S = 10.0
"""Added to every bound: the machine is shared and busy."""


@dataclass
class Member:
    name: str
    process: asyncio.subprocess.Process
    peer_id: str
    lines: list[str] = field(default_factory=list)


class ProcessSwarm:
    """Node processes sharing one authority; A is the bootstrap peer of the others."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.authority = SwarmAuthority.generate()
        _, self.public_key = self.authority.save(root / "authority")
        self.bootstrap = root / "bootstrap-peers.txt"
        self.bootstrap.write_text("")
        (root / "app.token").write_text(APP_TOKEN)
        (root / "page.token").write_text(PAGE_TOKEN)
        self.members: list[Member] = []

    async def start(self, name: str, *extra: str, roles: tuple[str, ...] = ("node",),
                    ready: tuple[str, ...] = ("listening on",)) -> tuple[Member, str]:
        """Start a member; returns it once its stderr has shown every ``ready`` marker, with that text."""
        directory = self.root / name
        peer_id = peer_id_of(load_or_create_identity(directory / "node.key"))
        self.authority.issue(peer_id, roles).save(directory / "node.cert")
        command = "monitor" if "monitor" in roles else "node"
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "swarm.cli", command, "--dir", str(directory), "--swarm-pub", str(self.public_key),
            "--bootstrap", str(self.bootstrap), "--load-interval", str(LOAD_INTERVAL_S), *extra,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )
        member = Member(name, process, peer_id)
        self.members.append(member)
        assert process.stderr is not None
        async with asyncio.timeout(60):
            while not all(marker in "".join(member.lines) for marker in ready):
                line = (await process.stderr.readline()).decode()
                if not line:
                    raise AssertionError(f"{name} exited: {''.join(member.lines)}")
                member.lines.append(line)
        asyncio.get_running_loop().create_task(self._drain(member))
        return member, "".join(member.lines)

    async def _drain(self, member: Member) -> None:
        assert member.process.stderr is not None
        while line := await member.process.stderr.readline():
            member.lines.append(line.decode())

    async def close(self) -> None:
        for member in self.members:
            if member.process.returncode is None:
                member.process.send_signal(signal.SIGTERM)
        for member in self.members:
            try:
                async with asyncio.timeout(15):
                    await member.process.wait()
            except TimeoutError:
                member.process.kill()
                await member.process.wait()


@contextlib.asynccontextmanager
async def process_swarm(root: Path) -> AsyncIterator[tuple[ProcessSwarm, dict[str, Any]]]:
    swarm = ProcessSwarm(root)
    try:
        media = ("--media", "--workers", "1", "--consumers-per-worker", "2")
        page = ("--http", "127.0.0.1:0", "--http-token-file", str(root / "page.token"))
        a, text = await swarm.start("a", *media, "--entry-port", "0", "--token-file", str(root / "app.token"), *page,
                                    ready=("applications:", "monitor page:"))
        swarm.bootstrap.write_text(_found(r"listening on ([^\s;]+)", text) + "\n")
        b, _ = await swarm.start("b", *media)
        c, _ = await swarm.start("c", *media)
        monitor, monitor_text = await swarm.start("m", *page, roles=("monitor",), ready=("monitor page:",))
        yield swarm, {"a": a, "b": b, "c": c, "m": monitor, "entry": _found(r"applications: (ws://\S+)", text),
                      "a_page": _found(r"monitor page: (http://\S+)/", text),
                      "page": _found(r"monitor page: (http://\S+)/", monitor_text)}
    finally:
        await swarm.close()


def _found(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    assert match is not None, f"{pattern!r} not in {text!r}"
    return match.group(1)


DOM = """JSON.stringify({
  version: Number(document.body.dataset.version || 0),
  nodes: [...document.querySelectorAll('#members tr.node')].map(tr => tr.dataset.peer),
  rooms: [...document.querySelectorAll('.room')].map(r => ({id: r.dataset.room, nodes: r.dataset.nodes.split(' ')})),
  pipes: [...document.querySelectorAll('.room li.pipe')].map(p => [p.dataset.fromPeer, p.dataset.toPeer]),
  left: [...document.querySelectorAll('#left li')].map(l => l.dataset.peer),
})"""


@pytest.mark.timeout(300)  # four node processes and a browser on a shared machine
async def test_the_page_shows_members_a_room_across_two_nodes_its_pipe_and_a_node_leaving(tmp_path: Path) -> None:
    async with process_swarm(tmp_path / "swarm") as (_, m), chromium_page(tmp_path / "profile") as page:
        a, b, c, monitor = m["a"], m["b"], m["c"], m["m"]
        nodes = {a.peer_id, b.peer_id, c.peer_id}

        async def dom() -> dict[str, Any]:
            return json.loads(await page.evaluate(DOM))  # type: ignore[no-any-return]

        async def wait_dom(predicate: Any, within: float) -> dict[str, Any]:
            async with asyncio.timeout(within):
                while not predicate(seen := await dom()):  # noqa: ASYNC110 (the page is polled, bounded)
                    await asyncio.sleep(0.05)
            return seen

        try:
            # Signing in: the page refuses to show anything without the token.
            await page.goto(m["page"] + "/")
            assert await page.evaluate("!!document.querySelector('form input[name=token]')")
            await page.evaluate(f"document.querySelector('input[name=token]').value = {json.dumps(PAGE_TOKEN)};"
                                "document.forms[0].submit()")
            await page.wait_for("!!document.querySelector('#members')")
            await wait_dom(lambda d: nodes <= set(d["nodes"]) and monitor.peer_id in d["nodes"], 60)

            async with contextlib.AsyncExitStack() as stack:
                app = await connect_websocket(m["entry"], token=APP_TOKEN)
                stack.push_async_callback(app.close)
                worker = await app.create_worker()
                router = await worker.create_router(media_codecs=DEFAULT_MEDIA_CODECS)
                producer = await stack.enter_async_context(opus_producer(router))
                sinks = []
                for _ in range(3):  # two fit on the producer's worker; the third needs a worker on another node
                    sink, _consumer = await sink_consumer(router, producer.id)
                    stack.callback(sink.close)
                    sinks.append(sink)
                for sink in sinks:
                    await sink.wait_for_packets(10)

                seen = await wait_dom(lambda d: any(r["id"] == router.id for r in d["rooms"]) and d["pipes"], 30)
                room = next(r for r in seen["rooms"] if r["id"] == router.id)
                # Placement follows load (A, the entry, only wins near-ties), so the producer's node is read
                # off the page: its one pipe carries the producer from that node's worker to the other's.
                # The room spans them and its entry, A.
                [[source, sink_node]] = seen["pipes"]
                assert source != sink_node and set(room["nodes"]) == {a.peer_id, source, sink_node}
                await page.wait_for("document.querySelector('#chart-cpu canvas') !== null", 30)
                # Per-transport statistics, fetched from the producer's node over ROPE when asked: ingress,
                # egresses, pipe.
                await page.evaluate(f"document.querySelector('button[data-peer={json.dumps(source)}]').click()")
                rows = await page.wait_for("document.querySelectorAll('#transports tbody tr').length", 30)
                assert rows >= 4, await page.evaluate("document.querySelector('#transports-status').textContent")
                # Both nodes' load records now tell of their workers, the pipe consumer and media flowing.
                await page.wait_for(
                    "[...document.querySelectorAll('#members tr.node')].filter(tr => "
                    "Number(tr.querySelector('td.workers').textContent) > 0).length === 2 && "
                    "[...document.querySelectorAll('#members td.pipe-consumers')].some(td => td.textContent === '1') "
                    "&& [...document.querySelectorAll('#members td.bitrate-in')]"
                    ".some(td => Number(td.dataset.bps) > 0)",
                    30)
                # Node A serves /metrics too (node --http): its own workers, as media.stats counts them.
                async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {PAGE_TOKEN}"}) as http:
                    async with http.get(m["a_page"] + "/metrics") as response:
                        families = {f.name: f for f in text_string_to_metric_families(await response.text())}
                found = [(sample.value, sample.labels["node"]) for name in ("consumers", "pipe_consumers")
                         if (family := families.get(f"mafalda_swarm_local_worker_{name}")) is not None
                         for sample in family.samples]
                expected = {source: [(2, a.peer_id), (1, a.peer_id)], sink_node: [(1, a.peer_id), (0, a.peer_id)]}
                assert found == expected.get(a.peer_id, [])
                if os.environ.get("MAFALDA_MONITOR_SCREENSHOT"):  # for documentation: let the plots grow a little
                    await asyncio.sleep(20)
                    await page.screenshot(Path(os.environ["MAFALDA_MONITOR_SCREENSHOT"]))

                # A node is killed (the one the room does not use, or else the one with only the third
                # consumer, never the entry): it leaves the page within the detection bound.
                unused = [member for member in (b, c) if member.peer_id not in room["nodes"]]
                victim = unused[0] if unused else next(member for member in (b, c) if member.peer_id == sink_node)
                victim.process.send_signal(signal.SIGKILL)
                await wait_dom(lambda d: victim.peer_id not in d["nodes"] and victim.peer_id in d["left"],
                               DETECTION_BOUND_S + SLACK_S)
                seen = await dom()
                assert set(seen["nodes"]) == (nodes - {victim.peer_id}) | {monitor.peer_id}
        except BaseException:
            shot = await page.screenshot(tmp_path / "monitor-page.png")
            print(f"screenshot of the page: {shot}")
            for member in (a, b, c, monitor):
                print(f"--- {member.name} ({member.peer_id}), exit status {member.process.returncode}:")
                print("".join(member.lines[-20:]))
            raise


async def test_the_page_and_its_api_refuse_requests_without_the_token(tmp_path: Path) -> None:
    swarm = ProcessSwarm(tmp_path)
    try:
        _, text = await swarm.start("m", "--http", "127.0.0.1:0", "--http-token-file", str(tmp_path / "page.token"),
                                    roles=("monitor",), ready=("monitor page:",))
        base = _found(r"monitor page: (http://\S+)/", text)
        async with aiohttp.ClientSession() as http:
            for path in ("/", "/api/state", "/api/events", "/metrics", "/static/app.js"):
                async with http.get(base + path) as response:
                    assert response.status == 401, path
                wrong = {"Authorization": "Bearer wrong-token-0123456789"}
                async with http.get(base + path, headers=wrong) as response:
                    assert response.status == 401, path
            async with http.post(base + "/login", data={"token": "wrong"}, allow_redirects=False) as response:
                assert response.status == 401 and "mafalda_monitor" not in response.cookies
            bearer = {"Authorization": f"Bearer {PAGE_TOKEN}"}
            async with http.get(base + "/api/state", headers=bearer) as response:
                assert response.status == 200
                state = await response.json()
            assert [n["roles"] for n in state["nodes"]] == [["monitor"]]
            async with http.post(base + "/api/state", headers=bearer) as response:
                assert response.status == 405  # read-only: nothing but GET (and the login form)
    finally:
        await swarm.close()


async def test_a_monitor_needs_its_role_and_a_token_file(tmp_path: Path) -> None:
    swarm = ProcessSwarm(tmp_path)
    for name, roles, token in (("wrong-role", ("node",), "page.token"), ("no-token", ("monitor",), "missing.token")):
        directory = tmp_path / name
        peer_id = peer_id_of(load_or_create_identity(directory / "node.key"))
        swarm.authority.issue(peer_id, roles).save(directory / "node.cert")
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "swarm.cli", "monitor", "--dir", str(directory), "--swarm-pub", str(swarm.public_key),
            "--bootstrap", str(swarm.bootstrap), "--http", "127.0.0.1:0", "--http-token-file", str(tmp_path / token),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )
        async with asyncio.timeout(60):
            _, stderr = await process.communicate()
        assert process.returncode == 2, stderr
        assert ("'monitor' role" if name == "wrong-role" else "cannot read the monitor token") in stderr.decode()
