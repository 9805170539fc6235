"""Pure parts of the swarm: bootstrap file, certificates, identities, records, the view."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest
from libp2p.crypto.ed25519 import create_new_key_pair

from swarm.bootstrap import BootstrapError, load_bootstrap, parse_bootstrap
from swarm.cli import main as cli_main
from swarm.membership import (
    Certificate,
    CertificateError,
    CertificateVerifier,
    SwarmAuthority,
    identity_peer_id,
    load_or_create_identity,
    load_swarm_public_key,
    peer_id_of,
)
from swarm.records import (
    LoadRecord,
    MemberNews,
    MembershipRecord,
    Placement,
    PlacementRecord,
    RecordError,
    WorkerLoad,
    decode_envelope,
    encode_envelope,
)
from swarm.swim import LocalHealth, SwimConfig
from swarm.view import SwarmView

PEER = "12D3KooWL4UhZekokNhjHGDwPUz6EkCyeCUcxtmxm6msJFhg3FAG"


def test_bootstrap_parsing_with_comments() -> None:
    text = f"# peers\n\n/ip4/127.0.0.1/tcp/4001/p2p/{PEER}  # the first\n   \n/ip4/10.0.0.2/tcp/4002/p2p/{PEER}\n"
    peers = parse_bootstrap(text)
    assert [(p.line, p.peer_id) for p in peers] == [(3, PEER), (5, PEER)]
    assert peers[0].multiaddr == f"/ip4/127.0.0.1/tcp/4001/p2p/{PEER}"


def test_bootstrap_bad_lines_are_all_reported_with_numbers() -> None:
    text = f"# ok\n/ip4/127.0.0.1/tcp/4001\nnonsense\n/ip4/127.0.0.1/tcp/1/p2p/{PEER}\n/ip4/1.2.3.4/udp/5/p2p/{PEER}\n"
    with pytest.raises(BootstrapError) as caught:
        parse_bootstrap(text, "peers.txt")
    assert [line for line, _ in caught.value.problems] == [2, 3, 5]
    message = str(caught.value)
    assert "peers.txt:2: missing /p2p/" in message and "peers.txt:3:" in message and "peers.txt:5:" in message


def test_bootstrap_missing_file_is_a_new_swarm(tmp_path: Path) -> None:
    assert load_bootstrap(tmp_path / "absent.txt") == []


def test_identity_is_created_0600_and_persistent(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "node.key"
    first = load_or_create_identity(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert peer_id_of(load_or_create_identity(path)) == peer_id_of(first)
    assert identity_peer_id(path) == peer_id_of(first)  # the same id, without libp2p
    fresh = tmp_path / "fresh.key"
    assert identity_peer_id(fresh) == peer_id_of(load_or_create_identity(fresh))
    path.chmod(0o644)
    with pytest.raises(PermissionError):
        load_or_create_identity(path)


def test_certificates() -> None:
    authority = SwarmAuthority.generate()
    verifier = CertificateVerifier(authority.public_key)
    peer = peer_id_of(create_new_key_pair())
    certificate = authority.issue(peer, roles=("node", "media"))
    assert verifier.verify_text(certificate.to_text(), peer).roles == ("node", "media")
    assert Certificate.from_text(certificate.to_text()) == certificate

    with pytest.raises(CertificateError, match="presented by"):
        verifier.verify_text(certificate.to_text(), PEER)  # someone else's certificate
    with pytest.raises(CertificateError, match="swarm"):
        CertificateVerifier(SwarmAuthority.generate().public_key).verify(certificate, peer)
    with pytest.raises(CertificateError, match="expired"):
        verifier.verify(authority.issue(peer, valid_for_s=-1), peer)
    payload, signature = certificate.to_text().split(".")
    forged_body = json.loads(base64.urlsafe_b64decode(payload + "==")) | {"roles": ["admin"]}
    forged = base64.urlsafe_b64encode(json.dumps(forged_body).encode()).decode().rstrip("=")
    with pytest.raises(CertificateError, match="signature"):
        verifier.verify_text(f"{forged}.{signature}", peer)
    for garbage in ("", "x.y", "a.b.c", "!!!.???", 42):
        with pytest.raises(CertificateError):
            verifier.verify_text(garbage, peer)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        authority.issue("not-a-peer-id")


def test_cli_create_swarm_and_admit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["create-swarm", str(tmp_path / "swarm")]) == 0
    key = tmp_path / "swarm" / "swarm-authority.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert cli_main(["create-swarm", str(tmp_path / "swarm")]) == 1  # never overwrite an authority
    peer = peer_id_of(load_or_create_identity(tmp_path / "node" / "node.key"))
    out = tmp_path / "node" / "node.cert"
    assert cli_main(["admit", peer, "--authority", str(key), "--out", str(out), "--roles", "node,media"]) == 0
    verifier = CertificateVerifier(load_swarm_public_key(tmp_path / "swarm" / "swarm.pub"))
    assert verifier.verify(Certificate.load(out), peer).roles == ("node", "media")
    assert cli_main(["admit", "bogus", "--authority", str(key), "--out", str(out)]) == 1
    capsys.readouterr()


def test_record_codec_round_trip_and_strictness() -> None:
    load = LoadRecord(PEER, 7, 12.5, 2, (WorkerLoad("w", 3, 500, 4.5),), 1.0, 2.0, ("/ip4/127.0.0.1/tcp/1",), 6.0, 3)
    assert decode_envelope(encode_envelope("cert", load)).record == load
    placements = PlacementRecord(PEER, 9, {"router:1": Placement("router", {"worker": "w"})})
    news = MembershipRecord(PEER, 11, (MemberNews(PEER, "alive", 5), MemberNews("a", "suspect", 3)), 5)
    assert decode_envelope(encode_envelope("cert", news)).record == news
    lie = MembershipRecord(PEER, 12, (MemberNews("a", "alive", 9),))  # only "a" may say "a" is alive
    with pytest.raises(RecordError, match="only a member itself"):
        decode_envelope(encode_envelope("cert", lie))
    decoded = decode_envelope(encode_envelope("cert", placements))
    assert decoded.certificate == "cert" and decoded.record == placements
    bad = [
        b"\xff",
        b"[]",
        b'{"v":2}',
        b'{"v":1,"cert":"c","kind":"nope","record":{}}',
        b'{"v":1,"cert":"c","kind":"load","record":{"peer":"p","ver":-1}}',
        b'{"v":1,"cert":"c","kind":"placements","record":{"peer":"p","ver":1,"items":[]}}',
        b" " * (300 * 1024),
    ]
    for data in bad:
        with pytest.raises(RecordError):
            decode_envelope(data)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_view_versions_and_ttl_backstop() -> None:
    clock = FakeClock()
    view = SwarmView("me", default_ttl_s=6.0, clock=clock)
    events: list[tuple[str, str]] = []
    view.add_listener(lambda e: events.append((e.kind, e.peer_id)))

    def load(version: int, consumers: int = 0) -> LoadRecord:
        return LoadRecord("a", version, 0, 1, (WorkerLoad("w", consumers, 10),), 0, 0, (), 6.0)

    assert view.apply(load(2))
    assert not view.apply(load(1, consumers=5))  # stale: ignored, but proves liveness
    assert view.load("a") is not None and view.load("a").version == 2  # type: ignore[union-attr]
    assert not view.apply(LoadRecord("me", 1, 0, 1, (), 0, 0, (), 6))  # ourselves
    view.apply(PlacementRecord("a", 5, {"p1": Placement("producer")}))
    assert view.locate("p1") == "a" and view.placements()["p1"][0] == "a"
    view.apply(PlacementRecord("a", 4, {}))  # stale
    assert view.locate("p1") == "a"

    clock.now += 5.9
    assert view.expire() == []
    view.apply(load(3, consumers=1))  # refreshes the deadline
    clock.now += 5.9
    assert view.expire() == []
    clock.now += 0.2
    assert view.expire() == [("a", None)]  # silent past its TTL: not declared dead, just gone
    assert view.locate("p1") is None and "a" not in view
    assert events == [("added", "a"), ("load", "a"), ("placements", "a"), ("load", "a"), ("removed", "a")]


def test_view_suspicion_refutation_and_death() -> None:
    """SWIM's merge rules: suspicion at the current incarnation, refuted only by a higher
    one; Lifeguard's shorter timeout with more accusers; dead is final for that incarnation."""
    clock = FakeClock()
    # initial_rto_s=0: members never pinged add no round-trip floor (tested below)
    swim = SwimConfig(suspicion_min_s=1.0, suspicion_max_s=4.0, suspicion_confirmations=2, initial_rto_s=0.0)
    view = SwarmView("me", default_ttl_s=60.0, clock=clock, swim=swim)
    events: list[tuple[str, str]] = []
    view.add_listener(lambda e: events.append((e.kind, e.peer_id)))
    for peer in ("a", "b", "c", "d"):
        view.apply(LoadRecord(peer, 1, 0, 1, (), 0, 0, (), 60.0, incarnation=10))

    # b suspects a; nobody confirms: the full timeout
    view.apply(MembershipRecord("b", 2, (MemberNews("a", "suspect", 10),), 10))
    assert view.state_of("a") == ("suspect", 10) and ("suspect", "a") in events
    clock.now += 3.9
    assert view.expire() == []
    # a refutes with a higher incarnation (a late record at the old one would not)
    view.apply(LoadRecord("a", 2, 0, 1, (), 0, 0, (), 60.0, incarnation=10))
    assert view.state_of("a") == ("suspect", 10)
    view.apply(MembershipRecord("a", 3, (MemberNews("a", "alive", 11),), 11))
    assert view.state_of("a") == ("alive", 11) and ("alive", "a") in events
    clock.now += 1.0
    assert view.expire() == []
    # a stale suspicion (an incarnation a has left behind) counts for nothing
    assert not view.accused(MemberNews("a", "suspect", 10), "c")

    # three independent accusers: the minimum timeout
    for accuser in ("b", "c", "me"):
        view.accused(MemberNews("a", "suspect", 11), accuser)
    clock.now += 1.1
    assert view.expire() == [("a", 11)]
    assert "a" not in view and view.state_of("a") == ("dead", 11)
    # a late record of the dead incarnation cannot bring it back; a higher one does
    assert not view.apply(LoadRecord("a", 9, 0, 1, (), 0, 0, (), 60.0, incarnation=11))
    assert "a" not in view
    view.apply(MembershipRecord("a", 10, (MemberNews("a", "alive", 12),), 12))
    assert "a" in view

    # our own probe refused at once: our timer runs refused_suspicion_s
    assert view.suspect("b", certain=True) == MemberNews("b", "suspect", 10)
    clock.now += swim.refused_suspicion_s + 0.01
    assert view.expire() == [("b", 10)]
    # dead news removes at once; a stall of ours pushes running suspicions back
    view.apply(MembershipRecord("d", 11, (MemberNews("c", "dead", 10),), 10))
    assert "c" not in view
    view.suspect("d")
    view.stalled(10.0)
    clock.now += 5.0
    assert view.expire() == [] and "d" in view


def test_a_stall_longer_than_the_ttl_does_not_empty_the_view() -> None:
    """A node SIGSTOPped past its peers' TTL heard nothing because it was not running, not
    because they left: on SIGCONT it keeps them, and drops one only if it stays silent."""
    clock = FakeClock()
    view = SwarmView("me", default_ttl_s=6.0, clock=clock, swim=SwimConfig())
    for peer in ("a", "b"):
        view.apply(LoadRecord(peer, 1, 0, 1, (), 0, 0, (), 6.0, incarnation=1))
    clock.now += 15.0
    view.stalled(15.0)
    assert view.expire() == [] and {"a", "b"} <= set(view.peers())
    clock.now += 3.0
    view.apply(LoadRecord("a", 2, 0, 1, (), 0, 0, (), 6.0, incarnation=1))  # a speaks again; b stays silent
    clock.now += 3.5  # b's TTL, counted while we ran, is over; a's is not
    assert view.expire() == [("b", None)] and "a" in view


def test_a_stalled_node_takes_news_of_a_death_as_a_suspicion() -> None:
    """Right after a stall (SIGCONT), a death heard may be older than the subject's
    refutation queued behind it: the subject is only suspected, and the refutation wins."""
    clock = FakeClock()
    swim = SwimConfig(suspicion_min_s=1.0, suspicion_max_s=4.0, backlog_stall_s=1.0, initial_rto_s=0.0)
    view = SwarmView("me", default_ttl_s=60.0, clock=clock, swim=swim)
    for peer in ("a", "b", "c", "d"):
        view.apply(LoadRecord(peer, 1, 0, 1, (), 0, 0, (), 60.0, incarnation=10))
    view.tick(0.05)
    clock.now += 5.0  # stopped: the sweep did not run, and nothing told the view yet
    view.apply(MembershipRecord("b", 2, (MemberNews("a", "dead", 10),), 10))
    assert view.state_of("a") == ("suspect", 10)
    view.apply(MembershipRecord("a", 3, (MemberNews("a", "alive", 11),), 11))
    assert view.state_of("a") == ("alive", 11)
    view.tick(0.05)
    view.stalled(0.5)  # a short stall (a busy loop) leaves no backlog: deaths are believed
    view.apply(MembershipRecord("b", 3, (MemberNews("d", "dead", 10),), 10))
    assert "d" not in view
    view.stalled(5.0)  # the sweep noticed a long one: deaths stay doubted while its backlog is read
    clock.now += 1.5
    view.tick(0.05)
    view.apply(MembershipRecord("b", 4, (MemberNews("c", "dead", 10),), 10))
    assert view.state_of("c") == ("suspect", 10)
    clock.now += 1.1
    view.tick(0.05)
    view.apply(MembershipRecord("b", 5, (MemberNews("a", "dead", 11),), 11))
    assert "a" not in view  # running again: a death is a death
    clock.now += 4.0
    assert view.expire() == [("c", 10)]  # unrefuted, the doubted death comes true


def test_deaths_reported_by_a_member_back_from_the_dead_are_suspicions_for_a_while() -> None:
    """The cut side of a healed partition declared everyone dead and saw no refutation: once it is
    back (a higher incarnation), its deaths of live members are only suspicions for
    `returned_doubt_s`, which their answers clear; later, its deaths are believed again."""
    clock = FakeClock()
    swim = SwimConfig(suspicion_min_s=1.0, suspicion_max_s=4.0, returned_doubt_s=10.0, initial_rto_s=0.0)
    view = SwarmView("me", default_ttl_s=60.0, clock=clock, swim=swim)
    for peer in ("a", "b", "cut"):
        view.apply(LoadRecord(peer, 1, 0, 1, (), 0, 0, (), 60.0, incarnation=10))
    view.tick(1.0)
    view.declare_dead("cut", 10)  # our side dropped it during the partition
    view.apply(MembershipRecord("cut", 2, (MemberNews("a", "dead", 10),), 10))
    assert view.state_of("a") == ("alive", 10)  # from the dead: not heard at all
    view.apply(MembershipRecord("cut", 3, (MemberNews("cut", "alive", 11), MemberNews("a", "dead", 10)), 11))
    assert view.state_of("cut") == ("alive", 11)
    assert view.state_of("a") == ("suspect", 10)  # doubted, not removed
    view.apply(MembershipRecord("a", 2, (MemberNews("a", "alive", 11),), 11))
    assert view.state_of("a") == ("alive", 11)  # its refutation wins
    clock.now += 10.0
    view.tick(1.0)
    view.apply(MembershipRecord("cut", 4, (MemberNews("b", "dead", 10),), 11))
    assert "b" not in view  # back long enough: a death is a death


def test_timeouts_follow_the_measured_round_trips() -> None:
    """RFC 6298's estimator: probe timeouts follow the round trips of every ping (what the
    machine does now); a suspicion lasts at least a few of the suspect's own round trips;
    nothing measured yet, the initial estimate."""
    swim = SwimConfig.local()
    health = LocalHealth(swim)
    assert health.rto() == health.rto("a") == swim.initial_rto_s
    for _ in range(50):
        health.observe("a", 0.005)
    assert health.rto() < 0.01 and health.rto("a") < 0.01 and health.rto("b") == swim.initial_rto_s
    assert health.wait(swim.probe_timeout_s) == swim.probe_timeout_s
    for _ in range(50):
        health.observe("b", 0.8)
    assert 0.8 <= health.rto() < 1.0 and health.rto("a") < 0.01
    assert health.wait(swim.probe_timeout_s) == health.rto()
    assert health.wait(swim.indirect_timeout_s, round_trips=2) == 2 * health.rto()
    for _ in range(30):
        health.observe("a", 0.005)
    assert health.rto() < 0.2  # the machine is quick again: some seconds of pings (two a second) tell
    health.worse()
    assert health.wait(swim.probe_timeout_s) == 2 * swim.probe_timeout_s
    health.observe("b", 60.0)
    assert health.rto("b") == swim.max_rto_s
    view = SwarmView("me", default_ttl_s=60.0, swim=swim, health=health)
    view.apply(LoadRecord("b", 1, 0, 1, (), 0, 0, (), 60.0, incarnation=1))
    view.suspect("b")
    state = view.peers()["b"]
    assert state.suspect_deadline - state.suspected_at == swim.suspicion_round_trips * swim.max_rto_s


def test_every_neighbour_is_probed_at_least_every_few_periods() -> None:
    """A member probes one neighbour per period, and a hub (a bootstrap node: everyone's neighbour)
    faster, so that each of its neighbours is probed at least every `probe_round_members` periods:
    a member whose neighbours are hubs is probed as often as one whose neighbours are not."""
    swim = SwimConfig.local()
    rounds = swim.probe_round_members
    for neighbours in (1, rounds, rounds + 1, 19, 200):
        period = swim.probe_period_s(neighbours)
        assert period <= swim.probe_interval_s  # never fewer probes than one per period
        if neighbours >= rounds:  # a round over all neighbours: at most `rounds` periods
            assert neighbours * period == pytest.approx(rounds * swim.probe_interval_s)
    assert swim.probe_period_s(rounds) == swim.probe_period_s(1) == swim.probe_interval_s
    assert swim.probe_period_s(2 * rounds) == swim.probe_interval_s / 2
