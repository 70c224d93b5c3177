"""A Flask (WSGI) login endpoint that records auth.login and auth.login_failed.

    sealtrail up                                  # the embedded stack
    pip install 'sealtrail[examples]'             # flask
    python examples/flask_app.py                  # http://127.0.0.1:5000
    curl -s -XPOST localhost:5000/login -H 'content-type: application/json' \\
         -d '{"username": "alice", "password": "guess"}'
    sealtrail stream & sealtrail sink & sealtrail query --action auth.login_failed
"""

from __future__ import annotations

import atexit
import hashlib
import hmac
import os
from collections.abc import Callable
from typing import Any

from flask import Flask, jsonify, request

from sealtrail.producers import Auditor, bind_context
from sealtrail.producers.middleware.wsgi import WSGIAuditMiddleware

SALT = b"example-only"
USERS = {"alice": hashlib.pbkdf2_hmac("sha256", b"correct horse", SALT, 100_000)}


def password_ok(username: str, password: str) -> bool:
    expected = USERS.get(username)
    given = hashlib.pbkdf2_hmac("sha256", password.encode(), SALT, 100_000)
    return expected is not None and hmac.compare_digest(expected, given)


def create_app(emit: Callable[[dict[str, Any]], str] | None = None,
               trusted_proxies: tuple[str, ...] = ("127.0.0.1",)) -> Flask:
    """The app; ``emit`` defaults to an AuditClient (with its spool) on the settings from the environment."""
    if emit is None:
        from sealtrail.config import load_settings
        from sealtrail.producers import AuditClient

        client = AuditClient(load_settings(), spool=True)
        atexit.register(client.close)  # flush: acknowledged by Kafka or durable in the spool
        emit = client.emit
    audit = Auditor(emit, source="example-flask", tenant="demo")
    app = Flask(__name__)
    app.wsgi_app = WSGIAuditMiddleware(app.wsgi_app, trusted_proxies=trusted_proxies)  # type: ignore[method-assign]

    @app.post("/login")
    def login():  # type: ignore[no-untyped-def]
        body = request.get_json(silent=True) or {}
        username, password = body.get("username"), body.get("password")
        if not isinstance(username, str) or not isinstance(password, str):
            return jsonify(error='send {"username": ..., "password": ...}'), 400
        if not password_ok(username, password):
            audit.auth.login_failed(user=username, reason="bad_password" if username in USERS else "unknown_user")
            return jsonify(error="invalid credentials"), 401
        bind_context(actor_id=username)
        audit.auth.login(method="password")
        return jsonify(user=username)

    return app


if __name__ == "__main__":
    create_app().run(host="127.0.0.1", port=int(os.environ.get("PORT", "5000")))
