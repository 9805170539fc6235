"""Who belongs to the swarm: the authority key, member certificates, node identities.

A swarm is defined by one Ed25519 authority key. The authority signs a
certificate binding a libp2p peer id to roles and an expiry; a peer id is proved
by Noise during the connection, so a certificate is worthless to anyone who does
not also hold that peer's private key. Certificates are public: they travel in
the membership handshake and in every gossip message.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

if TYPE_CHECKING:
    from libp2p.crypto.keys import KeyPair

# libp2p is imported where it is used: it takes about a second to import, and the
# CLI's create-swarm, admit and every argument error must answer well before that.

__all__ = [
    "AUTHORITY_KEY_FILE",
    "SWARM_PUBLIC_KEY_FILE",
    "Certificate",
    "CertificateError",
    "CertificateVerifier",
    "SwarmAuthority",
    "admit",
    "create_swarm",
    "identity_peer_id",
    "is_peer_id",
    "load_or_create_identity",
    "load_swarm_public_key",
    "peer_id_of",
]

AUTHORITY_KEY_FILE = "swarm-authority.key"
SWARM_PUBLIC_KEY_FILE = "swarm.pub"
MAX_CERTIFICATE_BYTES = 4096
DEFAULT_VALIDITY_S = 365 * 24 * 3600.0


class CertificateError(ValueError):
    """A certificate that is malformed, forged, expired, or for another peer or swarm."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def is_peer_id(text: str) -> bool:
    """A base58 multihash of a public key: identity-hashed (Ed25519) or sha256 (RSA)."""
    try:
        from libp2p.peer.id import ID

        raw = ID.from_base58(text).to_bytes()
    except Exception:
        return False
    if len(raw) >= 2 and raw[0] == 0x00:
        return raw[1] == len(raw) - 2
    return len(raw) == 34 and raw[0] == 0x12 and raw[1] == 0x20


def swarm_id_of(public_key: Ed25519PublicKey) -> str:
    """A short, stable name for a swarm: the hash of its authority's public key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:32]


@dataclass(frozen=True)
class Certificate:
    peer_id: str
    swarm_id: str
    roles: tuple[str, ...]
    issued_at: float
    expires_at: float
    signature: bytes = field(repr=False)

    def payload(self) -> bytes:
        """The signed bytes: canonical JSON of everything but the signature."""
        body = {
            "v": 1,
            "peer": self.peer_id,
            "swarm": self.swarm_id,
            "roles": list(self.roles),
            "iat": self.issued_at,
            "exp": self.expires_at,
        }
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()

    def to_text(self) -> str:
        return f"{_b64(self.payload())}.{_b64(self.signature)}"

    @classmethod
    def from_text(cls, text: str) -> Certificate:
        if not isinstance(text, str) or len(text) > MAX_CERTIFICATE_BYTES:
            raise CertificateError("certificate is not a string of reasonable size")
        try:
            payload_b64, signature_b64 = text.strip().split(".")
            body = json.loads(_unb64(payload_b64))
            signature = _unb64(signature_b64)
            certificate = cls(
                peer_id=str(body["peer"]),
                swarm_id=str(body["swarm"]),
                roles=tuple(str(role) for role in body["roles"]),
                issued_at=float(body["iat"]),
                expires_at=float(body["exp"]),
                signature=signature,
            )
        except (ValueError, KeyError, TypeError) as error:
            raise CertificateError(f"malformed certificate: {error}") from None
        if body.get("v") != 1:
            raise CertificateError(f"unsupported certificate version {body.get('v')!r}")
        return certificate

    def save(self, path: Path) -> None:
        path.write_text(self.to_text() + "\n")

    @classmethod
    def load(cls, path: Path) -> Certificate:
        return cls.from_text(path.read_text())


class CertificateVerifier:
    """Checks certificates against one swarm's public key.

    Verified certificates are cached by their text, so gossip (which carries the
    publisher's certificate in every message) costs one signature check per peer.
    Thread-safe: the gossip validator calls it on the libp2p thread.
    """

    def __init__(self, public_key: Ed25519PublicKey, clock: Callable[[], float] = time.time) -> None:
        self.public_key = public_key
        self.swarm_id = swarm_id_of(public_key)
        self._clock = clock
        self._cache: dict[str, Certificate] = {}
        self._lock = threading.Lock()

    def verify_text(self, text: str, peer_id: str) -> Certificate:
        with self._lock:
            certificate = self._cache.get(text)
        if certificate is None:
            certificate = Certificate.from_text(text)
            self._check_signature(certificate)
            with self._lock:
                if len(self._cache) > 10000:
                    self._cache.clear()
                self._cache[text] = certificate
        self._check_binding(certificate, peer_id)
        return certificate

    def verify(self, certificate: Certificate, peer_id: str) -> Certificate:
        self._check_signature(certificate)
        self._check_binding(certificate, peer_id)
        return certificate

    def still_valid(self, certificate: Certificate, peer_id: str) -> bool:
        """For a certificate this verifier accepted before: bound to ``peer_id`` and not
        expired. No signature check: that costs ~0.1 ms, and `is_member` runs on every
        probe, gossip message and ROPE call (it was a third of a node's asyncio time)."""
        try:
            self._check_binding(certificate, peer_id)
        except CertificateError:
            return False
        return True

    def _check_signature(self, certificate: Certificate) -> None:
        if certificate.swarm_id != self.swarm_id:
            raise CertificateError(f"certificate is for swarm {certificate.swarm_id}, not {self.swarm_id}")
        try:
            self.public_key.verify(certificate.signature, certificate.payload())
        except InvalidSignature:
            raise CertificateError("certificate signature is not the swarm authority's") from None

    def _check_binding(self, certificate: Certificate, peer_id: str) -> None:
        if certificate.peer_id != peer_id:
            raise CertificateError(f"certificate is for {certificate.peer_id}, presented by {peer_id}")
        now = self._clock()
        if certificate.expires_at < now:
            raise CertificateError(f"certificate of {peer_id} expired at {certificate.expires_at:.0f}")
        if certificate.issued_at > now + 300:
            raise CertificateError(f"certificate of {peer_id} is issued in the future")


class SwarmAuthority:
    """The key that defines a swarm; only the operator who admits nodes holds it."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self.private_key = private_key
        self.public_key = private_key.public_key()
        self.swarm_id = swarm_id_of(self.public_key)

    @classmethod
    def generate(cls) -> SwarmAuthority:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load(cls, path: Path) -> SwarmAuthority:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} is not an Ed25519 private key")
        return cls(key)

    def save(self, directory: Path) -> tuple[Path, Path]:
        directory.mkdir(parents=True, exist_ok=True)
        key_path = directory / AUTHORITY_KEY_FILE
        pem = self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        _write_private(key_path, pem)
        public_path = directory / SWARM_PUBLIC_KEY_FILE
        public_path.write_bytes(
            self.public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
        return key_path, public_path

    def issue(
        self, peer_id: str, roles: tuple[str, ...] = ("node",), valid_for_s: float = DEFAULT_VALIDITY_S
    ) -> Certificate:
        if not is_peer_id(peer_id):
            raise ValueError(f"not a libp2p peer id: {peer_id!r}")
        now = time.time()
        unsigned = Certificate(peer_id, self.swarm_id, tuple(roles), round(now, 3), round(now + valid_for_s, 3), b"")
        return Certificate(
            peer_id,
            self.swarm_id,
            tuple(roles),
            unsigned.issued_at,
            unsigned.expires_at,
            self.private_key.sign(unsigned.payload()),
        )


def load_swarm_public_key(path: Path) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(path.read_bytes())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{path} is not an Ed25519 public key")
    return key


def _write_private(path: Path, data: bytes) -> None:
    """Create ``path`` with mode 0600 from the start (never world-readable, even briefly)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
    os.chmod(path, 0o600)


def _load_or_create_key(path: Path) -> Ed25519PrivateKey:
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} is not an Ed25519 private key")
        if path.stat().st_mode & 0o077:
            raise PermissionError(f"{path} is readable by others: chmod 600 {path}")
        return key
    key = Ed25519PrivateKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    _write_private(path, pem)
    return key


def load_or_create_identity(path: Path) -> KeyPair:
    """The node's persistent libp2p identity (Ed25519), created on first start.

    Stored as a PKCS8 PEM file with mode 0600, so the peer id (and with it the
    node's certificate) survives restarts.
    """
    key = _load_or_create_key(path)
    seed = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    from libp2p.crypto.ed25519 import create_new_key_pair

    return create_new_key_pair(seed)


_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def identity_peer_id(path: Path) -> str:
    """The peer id of the identity in ``path`` (created if missing) without importing
    libp2p (a second on a busy box): a node says who it is before it loads the stack.
    An Ed25519 peer id is the identity multihash of the protobuf-encoded public key
    (type 1, 32 bytes), in base58btc."""
    raw = _load_or_create_key(path).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    data = bytes([0x00, 36, 0x08, 0x01, 0x12, 32]) + raw
    number = int.from_bytes(data, "big")
    digits = ""
    while number:
        number, digit = divmod(number, 58)
        digits = _BASE58[digit] + digits
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + digits


def peer_id_of(key_pair: KeyPair) -> str:
    from libp2p.peer.id import ID

    return ID.from_pubkey(key_pair.public_key).to_base58()


def create_swarm(directory: Path) -> SwarmAuthority:
    """Create a new swarm: its authority key (0600) and public key in ``directory``."""
    if (directory / AUTHORITY_KEY_FILE).exists():
        raise FileExistsError(f"{directory / AUTHORITY_KEY_FILE} exists: that swarm is already created")
    authority = SwarmAuthority.generate()
    authority.save(directory)
    return authority


def admit(
    authority_key: Path,
    peer_id: str,
    out: Path,
    roles: tuple[str, ...] = ("node",),
    valid_for_s: float = DEFAULT_VALIDITY_S,
) -> Certificate:
    """Admit a node: issue and write a certificate for its peer id."""
    certificate = SwarmAuthority.load(authority_key).issue(peer_id, roles, valid_for_s)
    certificate.save(out)
    return certificate
