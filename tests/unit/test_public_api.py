"""The SDK's public surface is what it says it is (as httpx's test_exported_members does).

A service imports `sealtrail.producers` and `sealtrail.config.load_settings`; those names are kept when
modules move underneath. A name added to the package's namespace without a place in __all__ (or the
other way round) is a change of the public API, so it must be made here on purpose.
"""

from __future__ import annotations

import types

import sealtrail.producers as producers

PUBLIC = {
    "AsyncAuditClient", "AuditClient", "AuditContext", "Auditor", "audit_context", "bind_context",
    "changed_fields", "current_context", "encode", "new_event_id", "prepare", "reset_context", "set_context",
}


def test_the_producers_package_exports_exactly_its_public_names() -> None:
    assert set(producers.__all__) == PUBLIC
    exposed = {name for name, value in vars(producers).items()
               if not name.startswith("_") and not isinstance(value, types.ModuleType)}
    assert exposed == PUBLIC, exposed ^ PUBLIC


def test_every_public_name_is_documented() -> None:
    undocumented = [name for name in PUBLIC if not (getattr(producers, name).__doc__ or "").strip()]
    assert undocumented == []


def test_the_names_a_service_imports_from_elsewhere_stay() -> None:
    from sealtrail.config import load_settings
    from sealtrail.errors import InvalidEventError, SealtrailError
    from sealtrail.producers.middleware.asgi import AuditMiddleware
    from sealtrail.producers.middleware.wsgi import WSGIAuditMiddleware
    from sealtrail.reasons import RejectReason

    assert issubclass(InvalidEventError, SealtrailError) and callable(load_settings)
    assert {r.value for r in RejectReason} >= {"unknown_field", "missing_field", "wrong_type"}
    assert AuditMiddleware and WSGIAuditMiddleware


def test_the_package_is_typed() -> None:
    from pathlib import Path

    import sealtrail

    assert (Path(sealtrail.__file__).parent / "py.typed").is_file()
