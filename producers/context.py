"""Who is acting, from where, in which request: carried in contextvars so application code need not pass it.

The middleware (``sealtrail.producers.middleware``) sets the context once per
request; the typed helpers (``sealtrail.producers.families``) read it when
they build an event. contextvars follow asyncio tasks and
``asyncio.to_thread``, and each thread of a WSGI server has its own, so
concurrent requests never see each other's actor.

    with audit_context(actor_id="alice", ip="198.51.100.7", tenant="acme"):
        audit.auth.login()                      # actor, ip and tenant come from the context

    bind_context(actor_id=user.id)             # later in the same request, once authenticated
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass, fields, replace
from typing import Any

from sealtrail.errors import InvalidEventError

_ACTOR_TYPES = ("user", "service", "system")


@dataclass(frozen=True)
class AuditContext:
    """What every event from this request shares. All optional: the helpers say which one is missing."""

    actor_id: str | None = None
    actor_type: str = "user"
    ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None
    tenant: str | None = None
    request_id_given: str | None = None  # the client's refused request id, escaped: kept in each event's metadata

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None and not isinstance(value, str):
                raise InvalidEventError("wrong_type", f"context.{f.name}", f"expected text, got {type(value).__name__}")
        if self.actor_type not in _ACTOR_TYPES:
            raise InvalidEventError("invalid_value", "context.actor_type", f"one of {', '.join(_ACTOR_TYPES)}")
        if self.ip is not None:
            try:
                object.__setattr__(self, "ip", str(ipaddress.ip_address(self.ip)))
            except ValueError as e:
                raise InvalidEventError("invalid_value", "context.ip", f"not an IP address: {self.ip!r}") from e

    def actor(self) -> dict[str, Any] | None:
        """The event's ``actor`` object, or None when no actor id is known."""
        if not self.actor_id:
            return None
        actor: dict[str, Any] = {"id": self.actor_id, "type": self.actor_type}
        if self.ip:
            actor["ip"] = self.ip
        if self.user_agent:
            actor["user_agent"] = self.user_agent
        return actor


EMPTY = AuditContext()
_current: ContextVar[AuditContext] = ContextVar("sealtrail_audit_context", default=EMPTY)


def current_context() -> AuditContext:
    """The audit context of this request (or task, or thread): what emitted events are filled in from."""
    return _current.get()


def set_context(context: AuditContext) -> Token[AuditContext]:
    """Replace the context; keep the token to ``reset_context`` it (the middleware does this per request)."""
    if not isinstance(context, AuditContext):
        raise InvalidEventError("wrong_type", "context", f"expected AuditContext, got {type(context).__name__}")
    return _current.set(context)


def reset_context(token: Token[AuditContext]) -> None:
    """Put back the context set_context replaced, so one request's actor never leaks into the next."""
    _current.reset(token)


def _changed(changes: dict[str, str | None]) -> AuditContext:
    """The current context with changes applied; a misspelt field is the caller's error, named as such."""
    unknown = set(changes) - {f.name for f in fields(AuditContext)}
    if unknown:
        raise InvalidEventError("unknown_field", f"context.{sorted(unknown)[0]}", "not a context field")
    values: dict[str, Any] = changes  # __post_init__ checks each value's type
    return replace(_current.get(), **values)


def bind_context(**changes: str | None) -> AuditContext:
    """Update fields of the current context in place (e.g. the actor once login succeeded); returns the new one."""
    context = _changed(changes)
    _current.set(context)
    return context


@contextmanager
def audit_context(**values: str | None) -> Iterator[AuditContext]:
    """A nested scope: the current context with ``values`` changed, restored on exit."""
    token = _current.set(_changed(values))
    try:
        yield _current.get()
    finally:
        _current.reset(token)
