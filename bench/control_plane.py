"""Control-plane rate on one router: create_webrtc_transport() and consume() calls per second.

    .venv/bin/python -m bench.control_plane [--calls 600] [--rounds 5] [--node-dir /tmp/msnode-VERSION] [--json]

Besides calls per second, each layer's own CPU time per call (process time of
the Python process, `process.cpuUsage()` of the Node one; the worker's CPU is
in neither): on a shared machine the rates follow the load, the CPU cost much
less. "Node/Python CPU" above 1 means the Python layer spends less per call.

Each operation runs sequentially (one call awaited after the other) and with
100 concurrent calls in flight (batches of 100 gathered), first through this
Python layer (`media/`), then, in the same run and against the same worker
binary, through mediasoup's own Node.js layer of the worker's version (npm
`mediasoup@<the installed worker's VERSION>`, 3.14.16 or 3.27.1), installed
outside the repository in --node-dir with MEDIASOUP_WORKER_BIN pointing at
`.worker/mediasoup-worker`, so its postinstall skips the build).
The Node side is a small script written to a temp dir that prints one JSON line.
If the Node baseline cannot be installed or run, the Python figures are still
printed and the reason is reported. The Python side collects garbage as a node does
(`swarm.gc_policy`), unless ``--default-gc``. With ``--shared-cpu`` the Python side keeps its
threads on one CPU while it measures, as a node does with ``MAFALDA_SHARED_CPU=1``
(`media.cpus`; the worker keeps every CPU).

The two layers take turns, --rounds times (Python, Node, Python, Node, ...),
and each figure is the best of its rounds: on a shared machine other work only
ever slows a round down, and taking turns puts both layers under the same load.
On a 2-core VM one round of either layer swings by up to ±40 %, hence 5 rounds
by default (best of 3 left single figures at the mercy of one slow round).

consume(): one opus producer on a WebRtcTransport, consumers on a second one
(the producer is audio: no RTX, one encoding), all given the router's RTP
capabilities read once before the loop (Node's getter clones them on every
read, which is no part of consume()). Transports created by the
transport rounds are closed after each round so ports do not run out, and the
next figure starts only once the worker has done those closes (Node's close()
does not wait for them: a dump request, answered in order, tells).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import media
from bench.report import add_gc_option, collect_like_a_node, emit_json, parser, progress, table
from media.codecs import DEFAULT_MEDIA_CODECS
from media.cpus import shared_cpu
from media.rtp_traffic import OPUS_RTP_PARAMETERS
from media.worker_install import worker_bin

LOOPBACK = [{"protocol": "udp", "ip": "127.0.0.1"}]
CONCURRENCY = 100
NODE_OVERRIDES = {
    # 3.14: their newer versions need a package the registry does not have (shared notes).
    "3.14.16": {"@mafalda-sfu/mediasoup-ortc": "3.14.7", "@mafalda-sfu/mediasoup-node-fbs": "3.14.7"},
}


def node_package(version: str) -> dict[str, Any]:
    """The package.json that installs mediasoup's Node layer of `version`."""
    return {
        "name": "mafalda-swarm-bench-node",
        "version": "1.0.0",
        "private": True,
        "dependencies": {"mediasoup": version},
        "overrides": NODE_OVERRIDES.get(version, {}),
    }


NODE_SCRIPT = r"""
const mediasoup = require(process.argv[2]);
const CALLS = Number(process.argv[3]);
const CONCURRENCY = Number(process.argv[4]);
const OPUS = JSON.parse(process.argv[5]);
const CODECS = JSON.parse(process.argv[6]);
const LISTEN = [{ protocol: 'udp', ip: '127.0.0.1' }];

async function rate(fn, concurrent, settled) {
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  const made = [];
  if (concurrent) {
    for (let done = 0; done < CALLS; done += CONCURRENCY) {
      const n = Math.min(CONCURRENCY, CALLS - done);
      made.push(...await Promise.all(Array.from({ length: n }, () => fn())));
    }
  } else {
    for (let i = 0; i < CALLS; i++) made.push(await fn());
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(c0);
  for (const obj of made) obj.close();
  await settled();  // close() does not wait for the worker: let it finish them before the next figure
  return [CALLS / seconds, (cpu.user + cpu.system) / CALLS];
}

function put(out, key, measured) {
  out[key] = measured[0];
  out[key + '_cpu_us'] = measured[1];
}

(async () => {
  const worker = await mediasoup.createWorker({ logLevel: 'error' });
  const router = await worker.createRouter({ mediaCodecs: CODECS });
  const out = {};
  // The worker answers in order: once a dump is answered, every close sent before it is done.
  const settled = () => router.dump();
  const makeTransport = () => router.createWebRtcTransport({ listenInfos: LISTEN });
  await rate(makeTransport, false, settled);  // warm-up
  put(out, 'transport_sequential', await rate(makeTransport, false, settled));
  put(out, 'transport_concurrent', await rate(makeTransport, true, settled));
  const send = await router.createWebRtcTransport({ listenInfos: LISTEN });
  const recv = await router.createWebRtcTransport({ listenInfos: LISTEN });
  const producer = await send.produce({ kind: 'audio', rtpParameters: OPUS });
  // Read once, as the Python side does: this getter clones on every read, which is no part of consume().
  const rtpCapabilities = router.rtpCapabilities;
  const consume = () => recv.consume({ producerId: producer.id, rtpCapabilities });
  await rate(consume, false, settled);  // warm-up
  put(out, 'consume_sequential', await rate(consume, false, settled));
  put(out, 'consume_concurrent', await rate(consume, true, settled));
  worker.close();
  console.log(JSON.stringify(out));
})().catch((error) => { console.error(String(error && error.stack || error)); process.exit(1); });
"""


async def _rate(fn: Callable[[], Awaitable[Any]], calls: int, concurrent: bool) -> tuple[float, float]:
    """(calls per second, this process's CPU µs per call: the worker's own CPU is not in it)."""
    made: list[Any] = []
    start = time.perf_counter()
    cpu = time.process_time()
    if concurrent:
        for done in range(0, calls, CONCURRENCY):
            made += await asyncio.gather(*(fn() for _ in range(min(CONCURRENCY, calls - done))))
    else:
        for _ in range(calls):
            made.append(await fn())
    seconds = time.perf_counter() - start
    cpu_us = 1e6 * (time.process_time() - cpu) / calls
    for obj in made:
        await obj.close()  # each waits for the worker's answer: it is idle when the next figure starts
    return calls / seconds, cpu_us


def _put(out: dict[str, float], key: str, measured: tuple[float, float]) -> None:
    out[key], out[f"{key}_cpu_us"] = measured


async def measure_python(calls: int, shared: bool) -> dict[str, float]:
    async with shared_cpu(shared):
        return await _measure_python(calls)


async def _measure_python(calls: int) -> dict[str, float]:
    worker = await media.create_worker()
    try:
        router = await worker.create_router(media_codecs=DEFAULT_MEDIA_CODECS)

        def make_transport() -> Awaitable[Any]:
            return router.create_webrtc_transport(listen_infos=LOOPBACK)

        out: dict[str, float] = {}
        await _rate(make_transport, calls, False)  # warm-up
        _put(out, "transport_sequential", await _rate(make_transport, calls, False))
        _put(out, "transport_concurrent", await _rate(make_transport, calls, True))
        send = await router.create_webrtc_transport(listen_infos=LOOPBACK)
        recv = await router.create_webrtc_transport(listen_infos=LOOPBACK)
        producer = await send.produce(kind="audio", rtp_parameters=OPUS_RTP_PARAMETERS)

        rtp_capabilities = router.rtp_capabilities  # read once, as the Node side does

        def consume() -> Awaitable[Any]:
            return recv.consume(producer_id=producer.id, rtp_capabilities=rtp_capabilities)

        await _rate(consume, calls, False)  # warm-up
        _put(out, "consume_sequential", await _rate(consume, calls, False))
        _put(out, "consume_concurrent", await _rate(consume, calls, True))
        return out
    finally:
        await worker.close()


def _node_env() -> dict[str, str]:
    return {**os.environ, "MEDIASOUP_WORKER_BIN": str(worker_bin())}


def install_node_baseline(node_dir: Path) -> Path:
    """npm install mediasoup@<worker version> into node_dir (once); returns the package directory.
    Raises on failure."""
    version = media.version
    package = node_dir / "node_modules" / "mediasoup"
    if (package / "package.json").exists() and json.loads((package / "package.json").read_text())[
        "version"
    ] == version:
        return package
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise RuntimeError("node/npm not found on PATH")
    node_dir.mkdir(parents=True, exist_ok=True)
    (node_dir / "package.json").write_text(json.dumps(node_package(version)))
    progress(f"npm install mediasoup@{version} in {node_dir} (once) ...")
    result = subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund"], cwd=node_dir, env=_node_env(),
        capture_output=True, text=True, timeout=600,
    )
    if result.returncode != 0 or not (package / "package.json").exists():
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"npm install failed (exit {result.returncode}): {' | '.join(tail)}")
    return package


def measure_node(node_dir: Path, calls: int) -> dict[str, float]:
    package = install_node_baseline(node_dir)
    with tempfile.TemporaryDirectory(prefix="control-plane-node-") as tmp:
        script = Path(tmp) / "bench.js"
        script.write_text(NODE_SCRIPT)
        result = subprocess.run(
            ["node", str(script), str(package), str(calls), str(CONCURRENCY),
             json.dumps(OPUS_RTP_PARAMETERS), json.dumps(DEFAULT_MEDIA_CODECS)],
            env=_node_env(), capture_output=True, text=True, timeout=300,
        )
    if result.returncode != 0:
        raise RuntimeError(f"node script failed (exit {result.returncode}): {result.stderr.strip()[-300:]}")
    return {k: float(v) for k, v in json.loads(result.stdout.strip().splitlines()[-1]).items()}


def best_of(best: dict[str, float], new: dict[str, float]) -> dict[str, float]:
    """Highest rate and lowest CPU per call of the rounds so far."""
    return {
        key: min(value, best.get(key, value)) if key.endswith("_cpu_us") else max(value, best.get(key, 0.0))
        for key, value in new.items()
    }


ROWS = [
    ("create_webrtc_transport()", "sequential", "transport_sequential"),
    ("create_webrtc_transport()", f"{CONCURRENCY} concurrent", "transport_concurrent"),
    ("consume()", "sequential", "consume_sequential"),
    ("consume()", f"{CONCURRENCY} concurrent", "consume_concurrent"),
]


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=600, help="calls per measurement (default 600)")
    p.add_argument("--node-dir", type=Path, default=Path(tempfile.gettempdir()) / f"msnode-{media.version}",
                   help="where mediasoup's Node layer is (or gets) installed; outside the repository")
    p.add_argument("--no-node", action="store_true", help="skip the Node.js baseline")
    p.add_argument("--rounds", type=int, default=5, help="turns each layer takes; figures are the best (default 5)")
    p.add_argument("--shared-cpu", action="store_true",
                   help="keep the Python threads on one CPU while it measures (MAFALDA_SHARED_CPU=1 for a node)")
    add_gc_option(p)
    args = p.parse_args()
    collection = collect_like_a_node(args.default_gc)

    python: dict[str, float] = {}
    node: dict[str, float] | None = None
    node_error = "skipped (--no-node)" if args.no_node else None
    for round_number in range(1, args.rounds + 1):
        progress(f"round {round_number}/{args.rounds}: Python layer, {args.calls} calls per measurement ...")
        python = best_of(python, asyncio.run(measure_python(args.calls, args.shared_cpu)))
        if node_error is None:
            progress(f"round {round_number}/{args.rounds}: mediasoup's Node.js layer, same worker binary ...")
            try:
                node = best_of(node or {}, measure_node(args.node_dir, args.calls))
            except (RuntimeError, OSError, subprocess.SubprocessError, ValueError, KeyError) as error:
                node_error = str(error)
                node = None

    rows = []
    for operation, mode, key in ROWS:
        py, nd = python[key], (node or {}).get(key)
        py_cpu, nd_cpu = python[f"{key}_cpu_us"], (node or {}).get(f"{key}_cpu_us")
        rows.append([operation, mode, py, nd if nd is not None else "n/a", py / nd if nd else "n/a",
                     py_cpu, nd_cpu if nd_cpu is not None else "n/a", nd_cpu / py_cpu if nd_cpu else "n/a"])
    table(["operation", "mode", "Python calls/s", "Node calls/s", "Python/Node",
           "Python CPU us/call", "Node CPU us/call", "Node/Python CPU"], rows,
          title=f"Control plane on one router, {args.calls} calls per figure, best of {args.rounds} rounds "
                f"(mediasoup worker {media.version}; Python: {collection}"
                f"{', threads on one CPU' if args.shared_cpu else ''})")
    if node_error:
        print(f"Node.js baseline NOT measured: {node_error}")
    emit_json(args.json, {
        "calls": args.calls, "rounds": args.rounds, "concurrency": CONCURRENCY,
        "python_shares_one_cpu": args.shared_cpu, "python_default_gc": args.default_gc,
        "python": python, "node": node, "node_error": node_error,
        "ratio": {k: python[k] / node[k] for _, _, k in ROWS} if node else None,
        "cpu_node_over_python": {k: node[f"{k}_cpu_us"] / python[f"{k}_cpu_us"] for _, _, k in ROWS} if node else None,
    })


if __name__ == "__main__":
    main()
