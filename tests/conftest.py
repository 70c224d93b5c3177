"""Shared fixtures: one real embedded stack per test session, and per-test names on it.

Services are real and session-scoped (starting the stack takes seconds,
stopping it about fifteen); isolation between tests comes from names: each
test makes its own topics, key prefixes and databases with ``unique_name``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
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


@contextmanager
def stack_home(name: str) -> Iterator[Path]:
    """A stack's home outside pytest's temporary root, removed afterwards (kept with SEALTRAIL_KEEP_TEST_STACK=1).

    PostgreSQL runs as its own system user and must traverse every folder
    above its data. Another pytest session on the machine resets pytest's
    root folder to mode 0700 when it starts, and the stack's PostgreSQL then
    dies mid-run with "Permission denied".
    """
    home = Path(tempfile.mkdtemp(prefix=f"sealtrail-test-{name}-"))
    try:
        yield home
    finally:
        if not os.environ.get("SEALTRAIL_KEEP_TEST_STACK"):
            shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def stack() -> Iterator[RunningStack]:
    with stack_home("stack") as home:
        overrides = {"home": str(home), "kafka": {"partitions": 6}}
        state = start_stack(load_settings(overrides))
        try:
            # loaded again: only now does stack.json exist to supply endpoints and keys
            yield RunningStack(load_settings(overrides), state)
        finally:
            stop_stack(load_settings(overrides))


@pytest.fixture
def own_stack_home() -> Iterator[Path]:
    """A home for a test's own stack (see stack_home)."""
    with stack_home("own") as home:
        yield home


@pytest.fixture
def unique_name() -> Callable[[str], str]:
    """``unique_name("orders")`` -> ``"orders-3f9a1c2b"``: a fresh topic, prefix or database name per call."""

    def make(prefix: str) -> str:
        return f"{prefix}-{uuid.uuid4().hex[:8]}"

    return make
