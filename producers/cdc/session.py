"""Telling the capture triggers who the application user is: ``app.*`` settings from the request context.

The triggers read ``app.user_id``, ``app.ip_address``, ``app.tenant`` and
``app.request_id`` with ``current_setting(..., true)``. Call ``apply_context``
at the start of each transaction (the settings are transaction-local, so a
pooled connection never carries one request's user into the next)::

    with conn.transaction():
        apply_context(conn)            # from the middleware's context
        conn.execute("update orders set status = 'paid' where id = %s", (order_id,))
"""

from __future__ import annotations

from typing import Any

from sealtrail.producers.context import AuditContext, current_context

SETTINGS = ("app.user_id", "app.ip_address", "app.tenant", "app.request_id")
_SQL = "select " + ", ".join(f"set_config('{name}', %s, true)" for name in SETTINGS)


def context_settings(context: AuditContext | None = None) -> dict[str, str]:
    ctx = context or current_context()
    values = (ctx.actor_id, ctx.ip, ctx.tenant, ctx.request_id)
    return {name: value or "" for name, value in zip(SETTINGS, values, strict=True)}


def apply_context(conn: Any, context: AuditContext | None = None) -> None:
    """Set the app.* settings for the current transaction on a psycopg (or any DB-API) connection or cursor."""
    conn.execute(_SQL, tuple(context_settings(context).values()))
