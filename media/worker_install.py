"""Where `scripts/install-worker` put the worker binary and its channel bindings.

The binary and the Python bindings must come from the same mediasoup version:
the channel's FlatBuffers schemas change between versions. Both live in the
install directory (`<repo>/.worker`, a link into the build cache);
`MEDIASOUP_WORKER_BIN` overrides the binary alone, e.g. for a debug build of
the same version.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
INSTALL_HINT = "run scripts/install-worker (it builds the worker and its bindings)"
DEFAULT_VERSION = "3.27.1"
"""What scripts/install-worker builds unless MEDIASOUP_VERSION says otherwise (3.14.16 is the fallback)."""


class WorkerNotInstalledError(RuntimeError):
    """The worker or its bindings are missing: nothing can run until they are built."""


def install_dir() -> Path:
    return Path(os.environ.get("MAFALDA_WORKER_DIR", REPO_ROOT / ".worker"))


def worker_bin() -> Path:
    override = os.environ.get("MEDIASOUP_WORKER_BIN")
    path = Path(override) if override else install_dir() / "mediasoup-worker"
    if not os.access(path, os.X_OK):
        raise WorkerNotInstalledError(f"no executable mediasoup-worker at {path}: {INSTALL_HINT}")
    return path


def worker_version() -> str:
    """The version the worker reports itself as, and expects in MEDIASOUP_VERSION."""
    try:
        return (install_dir() / "VERSION").read_text().strip()
    except FileNotFoundError:
        raise WorkerNotInstalledError(f"no worker VERSION in {install_dir()}: {INSTALL_HINT}") from None


def version_at_least(major: int, minor: int, version: str | None = None) -> bool:
    """Whether `version` (default: the installed worker's; DEFAULT_VERSION when none is installed) is
    at least major.minor: where the Python layer must follow a behaviour, not a schema difference."""
    if version is None:
        try:
            version = worker_version()
        except WorkerNotInstalledError:
            version = DEFAULT_VERSION
    return tuple(int(part) for part in version.split(".")[:2]) >= (major, minor)


def ensure_bindings_importable() -> None:
    """Put the generated `FBS` package on sys.path (flatc emits absolute `FBS.` imports)."""
    bindings = install_dir() / "python"
    if not (bindings / "FBS" / "__init__.py").exists():
        raise WorkerNotInstalledError(f"no channel bindings in {bindings}: {INSTALL_HINT}")
    if str(bindings) not in sys.path:
        sys.path.append(str(bindings))
