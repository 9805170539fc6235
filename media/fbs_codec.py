"""The channel's FlatBuffers codec: `media.fbs_codec_impl`, compiled with mypyc where it is built.

    from media import fbs_codec
    data = fbs_codec.encode_size_prefixed(message)
    message = fbs_codec.decode(fbs.table("Message.Message"), data, 4)

The codec's one source is ``fbs_codec_impl.py`` (what it does and why: its
docstring). ``scripts/build-codec`` (run by ``scripts/setup``) compiles a copy of
it with mypyc into ``media/fbs_codec_compiled.<abi>.so``, a module of another
name, so it never shadows the source, stamped with ``SOURCE_SHA256``: the
digest of the source it was built from. This module uses the compiled codec only
while that stamp matches the source as it is now; with no build, a build for
another Python, or a source edited since, it uses the pure-Python module (and
says why in a debug log line), so stale compiled code never runs. (A compiled
module named fbs_codec_impl, as an in-place ``mypyc media/fbs_codec_impl.py``
makes, would shadow the source itself: that is logged as a warning.)
"""

from __future__ import annotations

import hashlib
import importlib
import logging
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

logger = logging.getLogger(__name__)

SOURCE = "media.fbs_codec_impl"
COMPILED = "media.fbs_codec_compiled"


SOURCE_FILE = Path(__file__).with_name("fbs_codec_impl.py")


def source_digest() -> str:
    """SHA-256 (hex) of fbs_codec_impl.py's bytes: the stamp a compiled build of it must carry."""
    return hashlib.sha256(SOURCE_FILE.read_bytes()).hexdigest()


def compiled_build() -> tuple[ModuleType | None, str]:
    """The compiled codec if it is built from the current source, else None and why not."""
    try:
        compiled = importlib.import_module(COMPILED)
    except ImportError as error:
        return None, f"no compiled codec ({error}; scripts/build-codec builds it)"
    if getattr(compiled, "SOURCE_SHA256", None) != source_digest():
        return None, f"{compiled.__file__} was built from another fbs_codec_impl.py (scripts/build-codec rebuilds it)"
    return compiled, ""


def load() -> ModuleType:
    """The compiled codec if it is built from the current source, else the pure-Python one."""
    compiled, why_not = compiled_build()
    if compiled is None:
        logger.debug("pure-Python FlatBuffers codec: %s", why_not)
        return _pure()
    return compiled


def _pure() -> ModuleType:
    module = importlib.import_module(SOURCE)
    if module.__file__ is None or not module.__file__.endswith(".py"):  # e.g. `mypyc media/fbs_codec_impl.py`
        logger.warning("%s shadows %s and may be stale: delete it (scripts/build-codec builds the compiled codec)",
                       module.__file__, SOURCE_FILE)
    return module


implementation = load()
"""The codec module in use: media.fbs_codec_compiled or media.fbs_codec_impl."""

if TYPE_CHECKING:  # the same functions, either way: mypy checks the callers against the source's signatures
    from media.fbs_codec_impl import decode, encode_size_prefixed, plan
else:
    encode_size_prefixed = implementation.encode_size_prefixed
    decode = implementation.decode
    plan = implementation.plan
