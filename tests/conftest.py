"""Shared fixtures: one real embedded stack per test session, and per-test names on it.

Services are real and session-scoped (starting the stack takes seconds,
stopping it about fifteen); isolation between tests comes from names: each
test makes its own topics, key prefixes and databases with ``unique_name``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import NamedTuple

import pytest

from sealtrail.config import Settings, load_settings
from sealtrail.stack import StackState
from sealtrail.stack import start as start_stack
from sealtrail.stack import stop as stop_stack


class RunningStack(NamedTuple):
    """Settings that point at the running stack (endpoints, keys, topics), and its state."""

    settings: Settings
    state: StackState


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    home = tmp_path_factory.mktemp("stack")
    overrides = {"home": str(home), "kafka": {"partitions": 6}}
    state = start_stack(load_settings(overrides))
    try:
        # loaded again: only now does stack.json exist to supply endpoints and keys
        yield RunningStack(load_settings(overrides), state)
    finally:
        stop_stack(load_settings(overrides))


@pytest.fixture
def unique_name() -> Callable[[str], str]:
    """``unique_name("orders")`` -> ``"orders-3f9a1c2b"``: a fresh topic, prefix or database name per call."""

    def make(prefix: str) -> str:
        return f"{prefix}-{uuid.uuid4().hex[:8]}"

    return make
