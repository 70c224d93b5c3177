#!/usr/bin/env python3
"""Lines per package and the import edges between packages (ast, lazy imports included).

    .venv/bin/python bench/import_graph.py

What the structure's layering rule (tests/unit/test_layering.py) allows, counted: an edge from
sinks to evidence, or evidence to sinks beyond the S3 adapter, is the format leaking out of core.
The walk is the tests' own (tests/support/imports.py).
"""

from __future__ import annotations

import collections
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.imports import TOPS, modules_imported, package_of, sources  # noqa: E402


def main() -> None:
    edges: collections.Counter[tuple[str, str]] = collections.Counter()
    lines: collections.Counter[str] = collections.Counter()
    for top, path in sources():
        lines[top] += path.read_text().count("\n")
        for module in modules_imported(path):
            target = package_of(module)
            if target is not None and target != top:
                edges[(top, target)] += 1
    print("lines per package:", ", ".join(f"{t} {lines[t]:,}" for t in TOPS))
    for (a, b), n in sorted(edges.items()):
        print(f"  {a:10} -> {b:10} {n:3}")


if __name__ == "__main__":
    main()
