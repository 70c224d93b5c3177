"""What services import to publish audit events: ``from sealtrail.producers import AuditClient``."""

from sealtrail.producers.client import AuditClient, new_event_id, prepare

__all__ = ["AuditClient", "new_event_id", "prepare"]
