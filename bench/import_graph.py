#!/usr/bin/env python3
"""Lines per package and the import edges between packages (ast, lazy imports included).

    .venv/bin/python bench/import_graph.py

What the structure's layering rule (tests/unit/test_layering.py) allows, counted: an edge from
sinks to evidence, or evidence to sinks beyond the S3 adapter, is the format leaking out of core.
"""

from __future__ import annotations

import ast
import collections
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOPS = ("core", "producers", "stream", "sinks", "evidence", "cli", "stack")
NAMED = {"producers", "stream", "sinks", "evidence", "cli", "stack"}


def package_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "sealtrail":
        return None
    return parts[1] if len(parts) > 1 and parts[1] in NAMED else "core"


def main() -> None:
    edges: collections.Counter[tuple[str, str]] = collections.Counter()
    lines: collections.Counter[str] = collections.Counter()
    for top in TOPS:
        for path in (ROOT / top).rglob("*.py"):
            source = path.read_text()
            lines[top] += source.count("\n")
            for node in ast.walk(ast.parse(source)):
                names = ([node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0
                         else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
                for name in names:
                    target = package_of(name)
                    if target is not None and target != top:
                        edges[(top, target)] += 1
    print("lines per package:", ", ".join(f"{t} {lines[t]:,}" for t in TOPS))
    for (a, b), n in sorted(edges.items()):
        print(f"  {a:10} -> {b:10} {n:3}")


if __name__ == "__main__":
    main()
