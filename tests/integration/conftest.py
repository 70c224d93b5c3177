"""A per-test trail on the session's embedded stack: own topics, bucket prefix and groups.

Workers run as real `sealtrail stream` / `sealtrail sink` processes, configured
through SEALTRAIL_* variables exactly as an operator would, so kill -9 in the
fault tests hits a real process.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.trail import Trail

__all__ = ["Trail"]


@pytest.fixture
def make_trail(stack, tmp_path: Path) -> Iterator:  # type: ignore[no-untyped-def]
    made: list[Trail] = []

    def make(**kwargs: Any) -> Trail:
        folder = tmp_path / f"trail{len(made)}"
        folder.mkdir()
        made.append(Trail(stack.settings, folder, **kwargs))
        return made[-1]

    try:
        yield make
    finally:
        for t in made:
            t.stop_all()


@pytest.fixture
def trail(make_trail) -> Trail:  # type: ignore[no-untyped-def]
    return make_trail()
