"""Typed helpers for the event families every audit design records.

One ``Auditor`` over any ``emit`` callable: the synchronous ``AuditClient.emit``
returns the event id, the asyncio ``AsyncAuditClient.emit`` returns a coroutine,
and the helpers return whatever ``emit`` returns, so the same code reads::

    audit = Auditor(client.emit, source="web")           # sync
    audit.auth.login_failed(user="alice", reason="bad_password")

    audit = Auditor(aclient.emit, source="web")          # asyncio
    await audit.auth.login_failed(user="alice", reason="bad_password")

The actor (id, ip, user agent), request id and tenant come from the request
context (``sealtrail.producers.context``) unless passed; a helper that cannot
find an actor or a tenant raises InvalidEventError naming what is missing,
at the call site rather than in the stream.

Families and their actions:

    auth      auth.login  auth.logout  auth.login_failed  auth.password_reset  auth.mfa_failed
    change    data.insert  data.update  data.delete                  (before/after, changed fields)
    security  security.privilege_escalation  security.suspicious_activity  security.vulnerability_found
    admin     admin.user_created  admin.user_disabled  admin.role_granted  admin.role_revoked
              admin.config_changed
    access    access.export  access.sensitive_read
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Generic, Literal, TypeVar

from sealtrail.errors import InvalidEventError
from sealtrail.producers.context import current_context

R = TypeVar("R")
Severity = Literal["low", "medium", "high", "critical"]
_SEVERITIES = ("low", "medium", "high", "critical")
_MISSING = object()


def changed_fields(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> list[str]:
    """Top-level keys whose value differs (a key present on one side only counts as changed), sorted."""
    before, after = before or {}, after or {}
    return sorted(k for k in set(before) | set(after) if before.get(k, _MISSING) != after.get(k, _MISSING))


def _text(name: str, value: Any, *, required: bool = True) -> str | None:
    if value is None:
        if required:
            raise InvalidEventError("missing_field", name, "required")
        return None
    if not isinstance(value, str):
        raise InvalidEventError("wrong_type", name, f"expected text, got {type(value).__name__}")
    if not value.strip():
        raise InvalidEventError("invalid_value", name, "must not be empty")
    return value


def _mapping(name: str, value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidEventError("wrong_type", name, f"expected a mapping, got {type(value).__name__}")
    return dict(value)


class Auditor(Generic[R]):
    """The five families over one ``emit``; ``source`` names the service, ``tenant`` is the fallback tenant."""

    def __init__(self, emit: Callable[[dict[str, Any]], R], *, source: str, tenant: str | None = None) -> None:
        if not callable(emit):
            raise InvalidEventError("wrong_type", "emit", "expected a callable such as AuditClient.emit")
        self._emit = emit
        self.source = _text("source", source)
        self.tenant = _text("tenant", tenant, required=False)
        self.auth = AuthEvents(self)
        self.change = ChangeEvents(self)
        self.security = SecurityEvents(self)
        self.admin = AdminEvents(self)
        self.access = AccessEvents(self)

    def build(
        self,
        category: str,
        action: str,
        *,
        outcome: str = "success",
        actor: str | None = None,
        actor_type: str | None = None,
        resource: tuple[str, str] | None = None,
        before: Mapping[str, Any] | None = None,
        after: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        tenant: str | None = None,
    ) -> dict[str, Any]:
        """The event as a dict, with the request context filled in (what the helpers send)."""
        ctx = current_context()
        if actor is not None:
            _text("actor", actor)
            actor_obj: dict[str, Any] = {"id": actor, "type": actor_type or ctx.actor_type}
            if ctx.ip:
                actor_obj["ip"] = ctx.ip
            if ctx.user_agent:
                actor_obj["user_agent"] = ctx.user_agent
        else:
            found = ctx.actor()
            if found is None:
                raise InvalidEventError(
                    "missing_field", "actor.id",
                    "no actor: pass user=/actor=, or set the request context (audit_context, bind_context, middleware)",
                )
            actor_obj = found if actor_type is None else {**found, "type": actor_type}
        event_tenant = tenant or ctx.tenant or self.tenant
        if event_tenant is None:
            raise InvalidEventError(
                "missing_field", "tenant", "no tenant: pass tenant=, set it in the request context, or give Auditor(tenant=)"
            )
        event: dict[str, Any] = {
            "category": category,
            "action": action,
            "outcome": outcome,
            "actor": actor_obj,
            "tenant": event_tenant,
            "source": self.source,
            "metadata": _mapping("metadata", metadata) or {},
        }
        if resource is not None:
            if not isinstance(resource, tuple) or len(resource) != 2:
                raise InvalidEventError("wrong_type", "resource", "expected (type, id)")
            event["resource"] = {"type": _text("resource.type", resource[0]), "id": _text("resource.id", resource[1])}
        if before is not None:
            event["before"] = _mapping("before", before)
        if after is not None:
            event["after"] = _mapping("after", after)
        if ctx.request_id:
            event["request_id"] = ctx.request_id
        if ctx.request_id_given is not None:
            event["metadata"] = {**event["metadata"], "request_id_given": ctx.request_id_given}
        return event

    def event(self, category: str, action: str, **fields: Any) -> R:
        """Any other action (``build`` plus send), for what the families do not name."""
        return self._emit(self.build(category, action, **fields))


def _details(details: Mapping[str, Any] | None, **known: Any) -> dict[str, Any]:
    out = {k: v for k, v in known.items() if v is not None}
    out.update(_mapping("details", details) or {})
    return out


class _Family(Generic[R]):
    category = ""

    def __init__(self, auditor: Auditor[R]) -> None:
        self._auditor = auditor

    def _send(self, action: str, **fields: Any) -> R:
        return self._auditor.event(self.category, action, **fields)


class AuthEvents(_Family[R]):
    """Authentication. ``user`` defaults to the context's actor; for failures it is the name that was tried."""

    category = "auth"

    def login(self, *, user: str | None = None, method: str | None = None, mfa: bool | None = None,
              details: Mapping[str, Any] | None = None, tenant: str | None = None) -> R:
        return self._send("auth.login", actor=user, metadata=_details(details, method=method, mfa=mfa), tenant=tenant)

    def logout(self, *, user: str | None = None, details: Mapping[str, Any] | None = None,
               tenant: str | None = None) -> R:
        return self._send("auth.logout", actor=user, metadata=_details(details), tenant=tenant)

    def login_failed(self, *, user: str | None = None, reason: str, method: str | None = None,
                     details: Mapping[str, Any] | None = None, tenant: str | None = None) -> R:
        _text("reason", reason)
        return self._send("auth.login_failed", outcome="failure", actor=user,
                          metadata=_details(details, reason=reason, method=method), tenant=tenant)

    def password_reset(self, *, user: str | None = None, requested_by: str | None = None,
                       details: Mapping[str, Any] | None = None, tenant: str | None = None) -> R:
        _text("requested_by", requested_by, required=False)
        return self._send("auth.password_reset", actor=user, metadata=_details(details, requested_by=requested_by),
                          tenant=tenant)

    def mfa_failed(self, *, user: str | None = None, method: str | None = None,
                   details: Mapping[str, Any] | None = None, tenant: str | None = None) -> R:
        return self._send("auth.mfa_failed", outcome="failure", actor=user,
                          metadata=_details(details, method=method), tenant=tenant)


class ChangeEvents(_Family[R]):
    """Data changes of one resource, with before/after state and the changed field names."""

    category = "change"

    def insert(self, resource_type: str, resource_id: str, *, after: Mapping[str, Any], actor: str | None = None,
               details: Mapping[str, Any] | None = None, tenant: str | None = None) -> R:
        return self._change("data.insert", resource_type, resource_id, None, after, actor, details, tenant)

    def update(self, resource_type: str, resource_id: str, *, before: Mapping[str, Any], after: Mapping[str, Any],
               actor: str | None = None, details: Mapping[str, Any] | None = None, tenant: str | None = None) -> R:
        return self._change("data.update", resource_type, resource_id, before, after, actor, details, tenant)

    def delete(self, resource_type: str, resource_id: str, *, before: Mapping[str, Any], actor: str | None = None,
               details: Mapping[str, Any] | None = None, tenant: str | None = None) -> R:
        return self._change("data.delete", resource_type, resource_id, before, None, actor, details, tenant)

    def _change(self, action: str, rtype: str, rid: str, before: Any, after: Any, actor: str | None,
                details: Mapping[str, Any] | None, tenant: str | None) -> R:
        before_map, after_map = _mapping("before", before), _mapping("after", after)
        if action != "data.insert" and before_map is None:
            raise InvalidEventError("missing_field", "before", f"{action} needs the state before the change")
        if action != "data.delete" and after_map is None:
            raise InvalidEventError("missing_field", "after", f"{action} needs the state after the change")
        metadata = _details(details, changed=changed_fields(before_map, after_map))
        return self._send(action, actor=actor, resource=(rtype, rid), before=before_map, after=after_map,
                          metadata=metadata, tenant=tenant)


class SecurityEvents(_Family[R]):
    category = "security"

    def privilege_escalation(self, *, user: str, granted: str, before: Mapping[str, Any] | None = None,
                             after: Mapping[str, Any] | None = None, actor: str | None = None,
                             details: Mapping[str, Any] | None = None, tenant: str | None = None) -> R:
        _text("user", user)
        _text("granted", granted)
        return self._send("security.privilege_escalation", actor=actor, resource=("user", user), before=before,
                          after=after, metadata=_details(details, granted=granted), tenant=tenant)

    def suspicious_activity(self, *, description: str, severity: Severity = "medium", actor: str | None = None,
                            resource: tuple[str, str] | None = None, details: Mapping[str, Any] | None = None,
                            tenant: str | None = None) -> R:
        _text("description", description)
        _severity(severity)
        return self._send("security.suspicious_activity", outcome="unknown", actor=actor, resource=resource,
                          metadata=_details(details, description=description, severity=severity), tenant=tenant)

    def vulnerability_found(self, *, identifier: str, component: str, severity: Severity, actor: str | None = None,
                            details: Mapping[str, Any] | None = None, tenant: str | None = None) -> R:
        _text("identifier", identifier)
        _text("component", component)
        _severity(severity)
        return self._send("security.vulnerability_found", actor=actor, resource=("component", component),
                          metadata=_details(details, identifier=identifier, severity=severity), tenant=tenant)


class AdminEvents(_Family[R]):
    """Administrative actions; the actor is the administrator, the resource what they acted on."""

    category = "admin"

    def user_created(self, *, user: str, roles: list[str] | None = None, actor: str | None = None,
                     details: Mapping[str, Any] | None = None, tenant: str | None = None) -> R:
        return self._on_user("admin.user_created", user, actor, _details(details, roles=roles), tenant)

    def user_disabled(self, *, user: str, reason: str | None = None, actor: str | None = None,
                      details: Mapping[str, Any] | None = None, tenant: str | None = None) -> R:
        return self._on_user("admin.user_disabled", user, actor, _details(details, reason=reason), tenant)

    def role_granted(self, *, user: str, role: str, actor: str | None = None,
                     details: Mapping[str, Any] | None = None, tenant: str | None = None) -> R:
        _text("role", role)
        return self._on_user("admin.role_granted", user, actor, _details(details, role=role), tenant)

    def role_revoked(self, *, user: str, role: str, actor: str | None = None,
                     details: Mapping[str, Any] | None = None, tenant: str | None = None) -> R:
        _text("role", role)
        return self._on_user("admin.role_revoked", user, actor, _details(details, role=role), tenant)

    def config_changed(self, *, setting: str, before: Any, after: Any, actor: str | None = None,
                       details: Mapping[str, Any] | None = None, tenant: str | None = None) -> R:
        _text("setting", setting)
        return self._send("admin.config_changed", actor=actor, resource=("config", setting),
                          before={"value": before}, after={"value": after}, metadata=_details(details), tenant=tenant)

    def _on_user(self, action: str, user: str, actor: str | None, metadata: dict[str, Any], tenant: str | None) -> R:
        _text("user", user)
        return self._send(action, actor=actor, resource=("user", user), metadata=metadata, tenant=tenant)


class AccessEvents(_Family[R]):
    """Reads that matter: exports and reads of sensitive data."""

    category = "access"

    def export(self, resource_type: str, resource_id: str, *, rows: int | None = None, format: str | None = None,
               actor: str | None = None, details: Mapping[str, Any] | None = None, tenant: str | None = None) -> R:
        _count("rows", rows)
        return self._send("access.export", actor=actor, resource=(resource_type, resource_id),
                          metadata=_details(details, rows=rows, format=format), tenant=tenant)

    def sensitive_read(self, resource_type: str, resource_id: str, *, fields: list[str] | None = None,
                       purpose: str | None = None, actor: str | None = None,
                       details: Mapping[str, Any] | None = None, tenant: str | None = None) -> R:
        if fields is not None and not (isinstance(fields, list) and all(isinstance(f, str) for f in fields)):
            raise InvalidEventError("wrong_type", "fields", "expected a list of field names")
        return self._send("access.sensitive_read", actor=actor, resource=(resource_type, resource_id),
                          metadata=_details(details, fields=fields, purpose=purpose), tenant=tenant)


def _severity(value: Any) -> None:
    if value not in _SEVERITIES:
        raise InvalidEventError("invalid_value", "severity", f"one of {', '.join(_SEVERITIES)}, got {value!r}")


def _count(name: str, value: Any) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
        raise InvalidEventError("invalid_value", name, f"expected a count >= 0, got {value!r}")
