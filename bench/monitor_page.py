"""The monitor page: how big it is, and how fast a change in the swarm reaches it.

    .venv/bin/python -m bench.monitor_page [--rounds 20] [--json]

Size: every file the page loads (raw and gzip-compressed, as a browser would
get them with compression; aiohttp's static route serves them uncompressed
unless a proxy compresses) and one "state" event for this swarm.

Latency: three real swarm nodes in this process on 127.0.0.1 (libp2p hosts,
GossipSub, default cadences), the first with the monitor role serving the
page. An SSE client reads ``/api/events`` like the page's EventSource. Each
round one node changes its load (``notify_load_changed``) and we time
  gossip: change -> the monitor's view holds the new record,
  page:   change -> the "state" event carrying it has been received.
Then one node closes (its connections drop, as with SIGKILL) and we time the
"state" event without it (the swarm's suspicion grace dominates).

``--browser`` also opens the page in headless Chromium (the DevTools helper of
the tests, `tests.browser`) and times change -> the members table showing it
(the page's own clock, Date.now(), against ours: one machine, one clock).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import statistics
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from libp2p.crypto.ed25519 import create_new_key_pair

from bench.report import emit_json, parser, progress, table
from swarm.bootstrap import parse_bootstrap
from swarm.membership import CertificateVerifier, SwarmAuthority, peer_id_of
from swarm.monitor.http import STATIC, MonitorServer
from swarm.monitor.state import SwarmState
from swarm.node import NodeOptions, SwarmNode
from swarm.records import LoadReport, WorkerLoad

TOKEN = "bench-token-0123456789abcdef"
PAGE_FILES = ("index.html", "app.js", "style.css", "vendor/uPlot.iife.min.js", "vendor/uPlot.min.css")


def page_sizes() -> list[tuple[str, int, int]]:
    rows = []
    for name in PAGE_FILES:
        path = STATIC / name
        data = path.read_bytes() if path.exists() else b""
        rows.append((name, len(data), len(gzip.compress(data, 9)) if data else 0))
    return rows


@contextlib.asynccontextmanager
async def swarm(count: int) -> AsyncIterator[list[SwarmNode]]:
    authority = SwarmAuthority.generate()
    verifier = CertificateVerifier(authority.public_key)
    async with contextlib.AsyncExitStack() as stack:
        nodes: list[SwarmNode] = []
        for index in range(count):
            key_pair = create_new_key_pair()
            roles = ("monitor",) if index == 0 else ("node",)
            bootstrap = parse_bootstrap(nodes[0].listen_addrs[0]) if index else []
            node = SwarmNode(key_pair, authority.issue(peer_id_of(key_pair), roles), verifier,
                             NodeOptions(bootstrap=bootstrap))
            nodes.append(await stack.enter_async_context(node))
        yield nodes


class EventStream:
    """The page's side of ``/api/events``: every "state" event, with the time it arrived."""

    def __init__(self) -> None:
        self.states: list[tuple[float, dict[str, Any]]] = []
        self.arrived = asyncio.Event()
        self.state_bytes = 0

    async def read(self, http: aiohttp.ClientSession, url: str) -> None:
        async with http.get(url) as response:
            event = None
            async for raw in response.content:
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                elif line.startswith("data: ") and event == "state":
                    self.state_bytes = len(line) - len("data: ")
                    self.states.append((time.monotonic(), json.loads(line.removeprefix("data: "))))
                    self.arrived.set()

    async def wait(self, predicate: Any, within: float = 30.0) -> float:
        """When the first state event after now satisfying ``predicate`` arrived."""
        start = len(self.states)
        async with asyncio.timeout(within):
            while True:
                for arrived_at, state in self.states[start:]:
                    if predicate(state):
                        return arrived_at
                start = len(self.states)
                self.arrived.clear()
                await self.arrived.wait()


def consumers_of(state: dict[str, Any], peer: str) -> int | None:
    return next((n.get("consumers") for n in state["nodes"] if n["peer"] == peer), None)


SHOWN = """new Promise(resolve => {{
  const shown = () => {{
    const cell = document.querySelector('#members tr[data-peer="{peer}"] td.consumers');
    return cell && cell.textContent.startsWith('{k} /');
  }};
  if (shown()) return resolve(Date.now());
  new MutationObserver((_, observer) => {{
    if (shown()) {{ observer.disconnect(); resolve(Date.now()); }}
  }}).observe(document.querySelector('#members'), {{childList: true, subtree: true, characterData: true}});
}})"""


async def measure(rounds: int, browser: bool) -> dict[str, Any]:
    async with swarm(3) as nodes, contextlib.AsyncExitStack() as stack:
        monitor, busy, leaving = nodes
        server = MonitorServer(SwarmState(monitor), TOKEN)
        url = await server.start("127.0.0.1", 0)
        stream = EventStream()
        page = None
        if browser:
            import tempfile

            from tests.browser import chromium_page

            profile = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            page = await stack.enter_async_context(chromium_page(profile))
            await page.goto(url + "/login")
            await page.evaluate(f"document.querySelector('input[name=token]').value = {json.dumps(TOKEN)};"
                                "document.forms[0].submit()")
            await page.wait_for(f"!!document.querySelector('#members tr[data-peer=\"{busy.peer_id}\"]')")
        shown: list[float] = []
        try:
            async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
                reader = asyncio.get_running_loop().create_task(stream.read(http, url + "/api/events"))
                view = monitor.view
                assert view is not None
                progress("waiting for the views to fill")
                await stream.wait(lambda s: all(consumers_of(s, n.peer_id) is not None for n in nodes[1:]), 60)
                gossip, page_s = [], []
                for k in range(1, rounds + 1):
                    arrived = asyncio.Event()
                    seen_at = [0.0]

                    def on_view(event: Any, k: int = k, arrived: asyncio.Event = arrived,
                                seen_at: list[float] = seen_at) -> None:
                        record = view.load(busy.peer_id)
                        if record is not None and record.consumers == k and not arrived.is_set():
                            seen_at[0] = time.monotonic()
                            arrived.set()

                    remove = view.add_listener(on_view)
                    in_page = None
                    if page is not None:
                        in_page = asyncio.ensure_future(page.evaluate(SHOWN.format(peer=busy.peer_id, k=k)))
                        await asyncio.sleep(0.05)  # the observer is in place
                    wall = time.time()
                    busy.set_load_provider(lambda k=k: LoadReport(workers=(WorkerLoad("w", k, 500),)))
                    start = time.monotonic()  # set_load_provider notifies: the next record carries k
                    received = await stream.wait(lambda s, k=k: consumers_of(s, busy.peer_id) == k)
                    await asyncio.wait_for(arrived.wait(), 5)
                    if in_page is not None:
                        shown.append((await asyncio.wait_for(in_page, 10)) / 1000 - wall)
                    remove()
                    gossip.append(seen_at[0] - start)
                    page_s.append(received - start)
                    await asyncio.sleep(0.3)
                progress("closing one node")
                start = time.monotonic()
                await leaving.close()
                gone = await stream.wait(lambda s: all(n["peer"] != leaving.peer_id for n in s["nodes"]), 60)
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader
        finally:
            await server.close()
    return {"gossip_s": gossip, "page_s": page_s, "shown_s": shown, "leave_s": gone - start,
            "state_event_bytes": stream.state_bytes, "suspect_grace_s": NodeOptions().suspect_grace_s}


def quantiles(values: list[float]) -> tuple[float, float, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p95 * 1000, ordered[-1] * 1000


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--browser", action="store_true", help="also time the page itself in headless Chromium")
    args = p.parse_args()
    sizes = page_sizes()
    total_raw, total_gzip = sum(r[1] for r in sizes), sum(r[2] for r in sizes)
    table(["file", "bytes", "gzip bytes"], [*sizes, ("total", total_raw, total_gzip)], "page size")
    figures = asyncio.run(measure(args.rounds, args.browser))
    gossip, page = quantiles(figures["gossip_s"]), quantiles(figures["page_s"])
    rows = [("change -> monitor's view (gossip)", *gossip), ("change -> state event at the page", *page)]
    shown = quantiles(figures["shown_s"]) if figures["shown_s"] else None
    if shown is not None:
        rows.append(("change -> table shows it (Chromium)", *shown))
    table(["path", "p50 ms", "p95 ms", "max ms"], rows,
          f"update latency over {args.rounds} load changes (3 nodes, one the monitor)")
    table(["event", "seconds", "state event bytes"],
          [("node closed -> gone from the page", figures["leave_s"], figures["state_event_bytes"])],
          f"a member leaving (the swarm's suspicion grace is {figures['suspect_grace_s']} s)")
    emit_json(args.json, {"page_bytes": total_raw, "page_gzip_bytes": total_gzip,
                          "files": {name: raw for name, raw, _ in sizes},
                          "gossip_ms": dict(zip(("p50", "p95", "max"), gossip, strict=True)),
                          "page_ms": dict(zip(("p50", "p95", "max"), page, strict=True)),
                          "shown_ms": dict(zip(("p50", "p95", "max"), shown, strict=True)) if shown else None,
                          "leave_s": figures["leave_s"], "state_event_bytes": figures["state_event_bytes"]})


if __name__ == "__main__":
    main()
