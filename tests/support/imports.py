"""The source's imports, read with ast (lazy ones inside functions included): one walker for the layering
test, the extras test and bench/import_graph.py."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOPS = ("core", "producers", "stream", "sinks", "evidence", "cli", "stack")
NAMED = {"producers", "stream", "sinks", "evidence", "cli", "stack"}  # sealtrail.<name> lives in <name>/


def modules_imported(path: Path) -> Iterator[str]:
    """Every absolute module name path imports (`from sealtrail import stack` counts as sealtrail.stack)."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            if node.module == "sealtrail":
                yield from (f"sealtrail.{a.name}" for a in node.names if a.name in NAMED)
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names)


def package_of(module: str) -> str | None:
    """The source folder a sealtrail module lives in (core for sealtrail.* itself), None for others."""
    parts = module.split(".")
    if parts[0] != "sealtrail":
        return None
    return parts[1] if len(parts) > 1 and parts[1] in NAMED else "core"


def sources(*tops: str) -> Iterator[tuple[str, Path]]:
    """(top folder, file) for every Python file of the given source folders (all of them by default)."""
    for top in tops or TOPS:
        for path in sorted((ROOT / top).rglob("*.py")):
            yield top, path
