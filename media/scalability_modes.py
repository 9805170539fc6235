"""Scalability mode parsing, as mediasoup's ``scalabilityModes.js``.

Consumers need the number of temporal layers of a simulcast Producer to build
the ``L<spatial>T<temporal>`` mode they advertise; anything that does not parse
falls back to a single layer, as mediasoup does, rather than failing.
"""

from __future__ import annotations

import re
from typing import TypedDict

# Anchored at the start only, like the JS regex, so suffixes such as "_KEY_SHIFT"
# still parse. [0-9] rather than \d so that non-ASCII digits are not accepted.
_SCALABILITY_MODE_RE = re.compile(r"[LS]([1-9][0-9]?)T([1-9][0-9]?)(_KEY)?")


class ScalabilityMode(TypedDict):
    spatialLayers: int
    temporalLayers: int
    ksvc: bool


def parse_scalability_mode(scalability_mode: str | None) -> ScalabilityMode:
    """Return the layers described by a scalability mode such as ``"L3T3_KEY"``.

    ``None``, non-strings and unrecognised modes give one spatial and one
    temporal layer, matching mediasoup's ``parse()``.
    """
    match = _SCALABILITY_MODE_RE.match(scalability_mode) if isinstance(scalability_mode, str) else None
    if match:
        return {
            "spatialLayers": int(match.group(1)),
            "temporalLayers": int(match.group(2)),
            "ksvc": bool(match.group(3)),
        }
    return {"spatialLayers": 1, "temporalLayers": 1, "ksvc": False}
