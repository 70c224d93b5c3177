"""sealtrail.producers.context: per-request context in contextvars, isolated between tasks and threads."""

from __future__ import annotations

import asyncio
import threading

import pytest

from sealtrail.errors import InvalidEventError
from sealtrail.producers.context import (
    AuditContext,
    audit_context,
    bind_context,
    current_context,
    reset_context,
    set_context,
)


def test_empty_by_default() -> None:
    assert current_context() == AuditContext()
    assert current_context().actor() is None


def test_nested_scopes_restore() -> None:
    with audit_context(actor_id="alice", tenant="acme", ip="198.51.100.7"):
        with audit_context(request_id="r-1"):
            ctx = current_context()
            assert (ctx.actor_id, ctx.tenant, ctx.request_id) == ("alice", "acme", "r-1")
        assert current_context().request_id is None
        assert current_context().actor() == {"id": "alice", "type": "user", "ip": "198.51.100.7"}
    assert current_context() == AuditContext()


def test_bind_updates_the_current_scope_only() -> None:
    token = set_context(AuditContext(ip="::1"))
    try:
        bind_context(actor_id="bob")
        assert current_context().actor() == {"id": "bob", "type": "user", "ip": "::1"}
    finally:
        reset_context(token)
    assert current_context().actor_id is None


def test_ip_is_normalised_and_checked() -> None:
    assert AuditContext(ip="2001:DB8::1").ip == "2001:db8::1"
    with pytest.raises(InvalidEventError, match="context.ip"):
        AuditContext(ip="not-an-ip")


@pytest.mark.parametrize(("changes", "field"), [({"actor_id": 5}, "context.actor_id"), ({"actor_type": "robot"}, "context.actor_type")])
def test_bad_values_name_the_field(changes: dict, field: str) -> None:
    with pytest.raises(InvalidEventError, match=field):
        AuditContext(**changes)


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(InvalidEventError, match="context.colour"):
        bind_context(colour="blue")
    with pytest.raises(InvalidEventError, match="context.colour"), audit_context(colour="blue"):
        pass


def test_asyncio_tasks_do_not_see_each_other() -> None:
    async def request(user: str) -> str | None:
        with audit_context(actor_id=user):
            await asyncio.sleep(0.01)
            # a task started inside the request inherits its context
            inner = await asyncio.create_task(asyncio.to_thread(lambda: current_context().actor_id))
            assert inner == user
            return current_context().actor_id

    async def main() -> list[str | None]:
        return await asyncio.gather(*(request(f"user-{i}") for i in range(20)))

    assert asyncio.run(main()) == [f"user-{i}" for i in range(20)]


def test_threads_do_not_see_each_other() -> None:
    seen: dict[str, str | None] = {}
    barrier = threading.Barrier(8)

    def request(user: str) -> None:
        with audit_context(actor_id=user):
            barrier.wait()
            seen[user] = current_context().actor_id

    threads = [threading.Thread(target=request, args=(f"u{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {f"u{i}": f"u{i}" for i in range(8)}
