"""Port of mediasoup's test-node-sctp.js: skipped (see the reason)."""

from __future__ import annotations

import pytest


@pytest.mark.skip(
    reason="needs a raw SCTP-over-UDP endpoint (upstream: the Node `sctp` package on a dgram socket, against a "
    "PlainTransport with enableSctp); aiortc's RTCSctpTransport only runs over a DTLS transport, so it cannot "
    "speak to a PlainTransport, and the DataChannel-over-WebRtcTransport variant is not ported yet"
)
async def test_ordered_data_producer_delivers_all_sctp_messages_to_the_sctp_data_consumer() -> None:
    """Upstream: an ordered DataProducer over a PlainTransport's SCTP association; every message sent
    from the client reaches a DataConsumer on a DirectTransport in order."""
