"""The membership handshake: who may talk to this node.

Right after a connection, the dialer opens ``/mafalda/membership/1.0.0`` and
presents its certificate; the listener checks it against the Noise-authenticated
peer id and answers with its own certificate, or with a refusal and a hang-up.
So both ends are proved in one round trip and a stranger learns nothing but the
refusal. A connection that has not proved membership within the handshake
timeout is closed by the host (`swarm.bridge.open_host`'s ``members_only``: a
deadline per connection, so a peer's second connection is not cut by its first's).
Pubsub only hears of peers once they are members (``members_only`` too), and ROPE
asks `is_member`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from swarm.bridge import P2PHost, P2PStream
from swarm.frames import FrameError, FrameReader, encode_frame, write_frame
from swarm.membership import Certificate, CertificateError, CertificateVerifier

__all__ = ["MEMBERSHIP_PROTOCOL", "MembershipError", "MembershipGate"]

log = logging.getLogger(__name__)

MEMBERSHIP_PROTOCOL = "/mafalda/membership/1.0.0"
MAX_FRAME = 8192
REFUSAL_LINGER_S = 0.5
"""How long a refused peer has to read the refusal and hang up before the node does."""
_REFUSAL = encode_frame({"ok": False, "error": "not a member of this swarm"})


class MembershipError(ConnectionError):
    """The other end is not (or would not accept us as) a member of this swarm."""


async def _read_frame(stream: P2PStream) -> dict[str, object]:
    """One frame, in one read when it came in one piece (each read is a trip to the libp2p thread)."""
    try:
        frame = await FrameReader(stream, MAX_FRAME).read()
    except FrameError as error:
        raise MembershipError(f"membership handshake: {error}") from None
    if frame is None:
        raise MembershipError("membership handshake: stream closed before a frame")
    return frame


class MembershipGate:
    """Runs the handshake on one host and keeps the set of proved members."""

    def __init__(
        self,
        host: P2PHost,
        certificate: Certificate,
        verifier: CertificateVerifier,
        handshake_timeout_s: float = 5.0,
        on_member: Callable[[str, Certificate], None] | None = None,
    ) -> None:
        self._host = host
        self._certificate = certificate
        self._certificate_text = certificate.to_text()
        self._verifier = verifier
        self._timeout = handshake_timeout_s
        self._on_member = on_member
        self._members: dict[str, Certificate] = {}
        self._closed = False
        host.set_stream_handler(MEMBERSHIP_PROTOCOL, self._respond)
        self._remove_listener = host.add_connection_listener(self._connection_changed, opens=False)

    def is_member(self, peer_id: str) -> bool:
        """True while ``peer_id`` is connected and has proved a valid certificate."""
        certificate = self._members.get(peer_id)
        # Its signature was checked on admission; it may have expired since.
        return certificate is not None and self._verifier.still_valid(certificate, peer_id)

    def members(self) -> dict[str, Certificate]:
        return dict(self._members)

    async def join(self, multiaddr: str, connect_timeout_s: float | None = None) -> str:
        """Connect to ``multiaddr`` and prove membership both ways; returns the peer id.

        Raises ConnectionError (MembershipError if either side is not a member). The connect takes
        at most ``connect_timeout_s`` (default: the handshake timeout), the handshake its timeout.
        """
        timeout = self._timeout if connect_timeout_s is None else connect_timeout_s
        try:
            async with asyncio.timeout(timeout):  # a cut network drops SYNs: the kernel retries for minutes
                peer_id = await self._host.connect(multiaddr)
        except TimeoutError:
            raise ConnectionError(f"cannot connect to {multiaddr}: no answer within {timeout:.1f} s") from None
        if peer_id not in self._members:
            await self.prove(peer_id)
        return peer_id

    async def prove(self, peer_id: str) -> Certificate:
        """Run the dialer's side of the handshake on an existing connection."""
        stream: P2PStream | None = None
        try:
            async with asyncio.timeout(self._timeout):
                stream = await self._host.open_stream(peer_id, MEMBERSHIP_PROTOCOL)
                await write_frame(stream, {"cert": self._certificate_text})
                answer = await _read_frame(stream)
        except TimeoutError:
            await self._host.disconnect(peer_id)  # the stream goes with the connection
            raise MembershipError(f"{peer_id} did not answer the membership handshake") from None
        except MembershipError:
            await self._host.disconnect(peer_id)
            raise
        except BaseException:
            if stream is not None:
                await stream.close()
            raise
        if answer.get("ok") is not True:
            await self._host.disconnect(peer_id)
            raise MembershipError(f"{peer_id} refused us: {answer.get('error', 'no reason given')}")
        await stream.close()
        try:
            certificate = self._verifier.verify_text(str(answer.get("cert")), peer_id)
        except CertificateError as error:
            await self._host.disconnect(peer_id)
            raise MembershipError(f"{peer_id} is not a member: {error}") from None
        await self._admit(peer_id, certificate)
        return certificate

    async def _respond(self, stream: P2PStream) -> None:
        peer_id = stream.remote_peer_id
        try:
            async with asyncio.timeout(self._timeout):
                hello = await _read_frame(stream)
            certificate = self._verifier.verify_text(str(hello.get("cert")), peer_id)
        except (MembershipError, CertificateError, TimeoutError) as error:
            log.info("refused %s: %s", peer_id, error or "handshake timed out")  # strangers: not a warning each
            # Let the refusal reach the peer (it hangs up on reading it) before we do.
            await stream.send_and_hang_up(_REFUSAL, linger_s=REFUSAL_LINGER_S)
            return
        await write_frame(stream, {"ok": True, "cert": self._certificate_text})
        await self._admit(peer_id, certificate)

    async def _admit(self, peer_id: str, certificate: Certificate) -> None:
        if peer_id not in self._host.connected_peers():
            return  # it hung up meanwhile
        new = peer_id not in self._members
        self._members[peer_id] = certificate
        await self._host.admit_peer(peer_id)
        if new:
            log.info("member %s joined (roles %s)", peer_id, ",".join(certificate.roles))
            if self._on_member is not None:
                self._on_member(peer_id, certificate)

    def _connection_changed(self, peer_id: str, connected: bool) -> None:
        if not connected:
            self._members.pop(peer_id, None)

    async def close(self) -> None:
        self._closed = True
        self._remove_listener()
