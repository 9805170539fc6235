"""What one hop between two threads of a process costs, by where the threads run.

    .venv/bin/python -m bench.cpu_hops [--hops 3000] [--json]

Two threads echo one byte over a pair of sockets (each one wakes the other,
as the asyncio and trio threads of a node wake each other on every ROPE call
over libp2p): left where the kernel puts them, both on one CPU, and on two
CPUs. The figure behind `media.cpus.shared_cpu`; it has nothing to compare
with but itself (baseline: the threads where the kernel puts them).
"""

from __future__ import annotations

import os
import socket
import statistics
import threading
import time

from bench.report import emit_json, parser, progress, table


def round_trips(cpu_a: int | None, cpu_b: int | None, hops: int) -> list[float]:
    """Seconds per round trip of one byte, thread A on ``cpu_a``, B on ``cpu_b`` (None: anywhere)."""
    to_b, at_b = socket.socketpair()
    to_a, at_a = socket.socketpair()
    everywhere = os.sched_getaffinity(0)

    def echo() -> None:
        if cpu_b is not None:
            os.sched_setaffinity(0, {cpu_b})
        for _ in range(hops):
            at_b.recv(1)
            to_a.send(b"x")

    thread = threading.Thread(target=echo)
    thread.start()
    try:
        if cpu_a is not None:
            os.sched_setaffinity(0, {cpu_a})
        times = []
        for _ in range(hops):
            started = time.perf_counter()
            to_b.send(b"x")
            at_a.recv(1)
            times.append(time.perf_counter() - started)
    finally:
        thread.join()
        os.sched_setaffinity(0, everywhere)
        for end in (to_b, at_b, to_a, at_a):
            end.close()
    return times


def main() -> None:
    args_parser = parser(__doc__.splitlines()[0] if __doc__ else "cpu hops")
    args_parser.add_argument("--hops", type=int, default=3000, help="round trips per placement")
    args = args_parser.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    placements: list[tuple[str, int | None, int | None]] = [("where the kernel puts them", None, None),
                                                            (f"both on CPU {cpus[0]}", cpus[0], cpus[0])]
    if len(cpus) > 1:
        placements.append((f"CPU {cpus[0]} and CPU {cpus[1]}", cpus[0], cpus[1]))
    results = {}
    for name, a, b in placements:
        progress(f"{name} ...")
        times = sorted(round_trips(a, b, args.hops))
        results[name] = {"p50_us": 1e6 * statistics.median(times),
                         "p99_us": 1e6 * times[min(len(times) - 1, int(0.99 * len(times)))]}
    base = results[placements[0][0]]["p50_us"]
    table(["threads", "p50 µs", "p99 µs", "p50 vs kernel's"],
          [[name, r["p50_us"], r["p99_us"], r["p50_us"] / base] for name, r in results.items()],
          title=f"one-byte round trip between two threads, {args.hops} round trips each, {len(cpus)} CPUs")
    emit_json(args.json, {"bench": "cpu_hops", "hops": args.hops, "cpus": len(cpus), "results": results})


if __name__ == "__main__":
    main()
