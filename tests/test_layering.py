"""Layers point down: bench -> swarm -> media -> rope. Checked on the source (every import, lazy ones too)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

FORBIDDEN = {
    "rope": {"media", "swarm", "bench"},
    "media": {"swarm", "bench"},
    "swarm": {"bench"},
}


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, top-level package) of every import statement in the file, at any depth."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_no_module_imports_a_layer_above_its_own(layer: str) -> None:
    files = sorted((ROOT / layer).rglob("*.py"))
    assert files, f"no modules under {layer}/"
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports {package}"
        for path in files
        for line, package in _imports(path)
        if package in FORBIDDEN[layer]
    ]
    assert not wrong, "\n".join(wrong)
