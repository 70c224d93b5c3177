"""What services import to publish audit events.

    from sealtrail.producers import AuditClient, Auditor, audit_context

``AuditClient`` / ``AsyncAuditClient`` send events (with an optional durable
spool for broker outages), ``Auditor`` gives typed helpers for the event
families, and the request context (``audit_context``, ``bind_context``) carries
actor, ip, user agent, request id and tenant. Importing this package pulls in
no Faust, pyarrow, boto3 or DuckDB.

    client      AuditClient, AsyncAuditClient: the producer, the spool's replay, flush's promise
    outbound    an event made into the bytes sent: prepare + encode (the reference) and prepared_bytes
                (the fast path beside it, for a plain dict with nothing to coerce, redact or refuse)
    context     the request context (audit_context, bind_context)   middleware: ASGI and WSGI
    families    Auditor: typed helpers for the auth, change, security, admin and access families
    spool       the durable local spool for broker outages
    cdc         PostgreSQL change capture; git, access_review, evidence_entry: other sources as events
"""

from sealtrail.producers.client import AsyncAuditClient, AuditClient
from sealtrail.producers.context import (
    AuditContext,
    audit_context,
    bind_context,
    current_context,
    reset_context,
    set_context,
)
from sealtrail.producers.families import Auditor, changed_fields
from sealtrail.producers.outbound import encode, new_event_id, prepare

__all__ = [
    "AsyncAuditClient",
    "AuditClient",
    "AuditContext",
    "Auditor",
    "audit_context",
    "bind_context",
    "changed_fields",
    "current_context",
    "encode",
    "new_event_id",
    "prepare",
    "reset_context",
    "set_context",
]
