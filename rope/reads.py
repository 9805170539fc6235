"""How much one read of an asyncio transport asks for.

asyncio's pipe and socket transports read up to 256 KiB at a time (``max_size``). CPython
allocates the whole size for the bytes object before the read and shrinks it after, and glibc
serves that allocation with mmap (it is over its 128 KiB threshold), then mremap and munmap once
the read came back short: three syscalls and fresh page faults for every message received, a
worker's answer or a ROPE frame alike (strace, issue 15: 2,005 mremap for 2,000 answers of a
worker; one per WebSocket receive). Reads of 64 KiB come from the heap. mediasoup's Node layer
reads into 64 KiB buffers too. The upstream fix we would propose: a default read size under
malloc's mmap threshold, or ``recv_into``/``readinto`` a reused buffer (asyncio's
BufferedProtocol, which its pipe transports do not offer).
"""

from __future__ import annotations

import asyncio

READ_SIZE = 65536
"""What a Linux pipe holds, and more than one TCP segment burst: no read returns less than it would with more."""


def read_at_most(transport: asyncio.BaseTransport, size: int = READ_SIZE) -> None:
    """Make ``transport`` (an asyncio pipe or socket transport) read at most ``size`` bytes at a time."""
    if getattr(transport, "max_size", 0) > size:
        transport.max_size = size  # type: ignore[attr-defined]
