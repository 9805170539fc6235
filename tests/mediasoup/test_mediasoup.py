"""Port of mediasoup's test-mediasoup.js: module-level version, capabilities, scalability modes."""

from __future__ import annotations

import pytest

import media
from media.worker_install import install_dir


def test_version_matches_the_worker_package() -> None:
    # Upstream compares with package.json; here the installed worker's VERSION file is the package.
    assert media.version == (install_dir() / "VERSION").read_text().strip()
    assert media.version in ("3.14.16", "3.27.1")  # the versions scripts/worker-patches/ supports


def test_supported_rtp_capabilities_are_the_installed_versions() -> None:
    """3.27 dropped H264-SVC, H265 and framemarking and added AV1 and the dependency descriptor."""
    caps = media.get_supported_rtp_capabilities()
    mime_types = {codec["mimeType"] for codec in caps["codecs"]}
    uris = {ext["uri"] for ext in caps["headerExtensions"]}
    dependency_descriptor = "https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension"
    if media.version.startswith("3.27."):
        assert "video/AV1" in mime_types and "video/H264-SVC" not in mime_types
        assert dependency_descriptor in uris and "urn:ietf:params:rtp-hdrext:framemarking" not in uris
    else:
        assert "video/H264-SVC" in mime_types and "video/AV1" not in mime_types
        assert dependency_descriptor not in uris and "urn:ietf:params:rtp-hdrext:framemarking" in uris


def test_get_supported_rtp_capabilities_returns_a_copy() -> None:
    rtp_capabilities = media.get_supported_rtp_capabilities()
    assert isinstance(rtp_capabilities, dict)
    rtp_capabilities["codecs"] = "bar"
    assert media.get_supported_rtp_capabilities() != rtp_capabilities


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("L1T3", (1, 3, False)),
        ("L3T2_KEY", (3, 2, True)),
        ("S2T3", (2, 3, False)),
        ("foo", (1, 1, False)),
        (None, (1, 1, False)),
        ("S0T3", (1, 1, False)),
        ("S1T0", (1, 1, False)),
        ("L20T3", (20, 3, False)),
        ("S200T3", (1, 1, False)),
        ("L4T7_KEY_SHIFT", (4, 7, True)),
    ],
)
def test_parse_scalability_mode(mode: str | None, expected: tuple[int, int, bool]) -> None:
    spatial, temporal, ksvc = expected
    assert media.parse_scalability_mode(mode) == {"spatialLayers": spatial, "temporalLayers": temporal, "ksvc": ksvc}
