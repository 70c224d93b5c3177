"""The one middleware in front of the API: every HTTP call but /healthz passes here before any route runs.

In this order:

1. who calls (caller.py): address, user agent and request id, each bounded;
2. the bearer token, checked here so that no body is read before it is known.
   A tokens file that cannot be read is a 503 for the caller and an error in
   the server log; its path and problem are never sent;
3. calls without a valid token are rate limited (throttle.py);
4. a place for the call's access event is reserved (access.py); none left: 503;
5. the body: never read for a call without a valid token (the app sees an
   empty one), else read up to ``serve.max_body_bytes`` (413 above it);
6. the app runs. When its response starts, the access event is built and put
   in the reserved place; if that fails, the caller gets 503 instead and the
   app's body is dropped, so nothing is served that the trail does not record.

The event's action is trail.search / trail.read / trail.export for the
operations, trail.access_denied for 401 and 403 (the refused operation is in
metadata.operation), trail.describe for the OpenAPI document and its page,
trail.rate_limited for the recorded 429s and trail.request for anything else;
outcome success below 400, failure from 400 on. Calls without a valid token
and calls to no operation are recorded compactly, since anyone can make them
and the trail keeps them for years: the path cut to 128 characters plus the
SHA-256 of the whole, the query string only as its length and SHA-256, the
user agent cut to 128 characters.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl

from sealtrail.config import Settings
from sealtrail.evidence.api.access import AccessRecorder, Slot
from sealtrail.evidence.api.caller import Caller, caller_for, clip, printable, sha256_of
from sealtrail.evidence.api.metrics import Metrics
from sealtrail.evidence.api.problems import problem
from sealtrail.evidence.api.throttle import Refusal, Throttle
from sealtrail.evidence.api.tokens import TokenStore, authenticate_header
from sealtrail.producers.context import reset_context, set_context
from sealtrail.producers.middleware.proxies import trusted_networks

_log = logging.getLogger("sealtrail.serve")
UNRECORDED = frozenset({"/healthz"})
DESCRIBE = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect"})
MAX_QUERY_PARAMS = 32
MAX_TEXT = 256
COMPACT_TEXT = 128

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Message], Awaitable[None]]


class _ClientGone(Exception):
    """The client disconnected while its body was being read."""


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key == name:
            return value.decode("latin-1")
    return None


async def _read_body(scope: Scope, receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None once it is larger than LIMIT (by Content-Length before reading anything)."""
    declared = _header(scope, b"content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise _ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    given = False

    async def replay() -> Any:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _without_body(receive: Receive) -> Receive:
    """What the app reads for a call without a valid token: an empty body; the client's is never buffered."""
    given = False

    async def empty() -> Any:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": b"", "more_body": False}
        while True:  # an app waiting for the disconnect: skip the body, one chunk at a time
            message = await receive()
            if message["type"] != "http.request":
                return message

    return empty


def _query(scope: Scope) -> dict[str, str]:
    raw = scope.get("query_string", b"").decode("latin-1")
    return {printable(clip(key, 64)): printable(clip(value, MAX_TEXT))
            for key, value in parse_qsl(raw, keep_blank_values=True)[:MAX_QUERY_PARAMS]}


def _bounded(name: str, text: str, out: dict[str, Any]) -> None:
    """NAME as at most COMPACT_TEXT printable characters, and the SHA-256 of the whole when that is not all of it."""
    shown = clip(printable(text), COMPACT_TEXT)
    out[name] = shown
    if shown != text:
        out[f"{name}_sha256"] = sha256_of(text)


class _Call:
    """One call's response on its way out: the access event is recorded when it starts, or nothing leaves."""

    def __init__(self, gate: Gate, scope: Scope, caller: Caller, started: float, slot: Slot, send: Send) -> None:
        self.gate, self.scope, self.caller, self.started, self.slot, self._send = gate, scope, caller, started, slot, send
        self.status: int | None = None
        self.refused = False

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = int(message["status"])
            if not self.record(self.status):
                self.refused = True
                await self.gate.unrecorded(self.scope, self.caller, self._send, "its access event could not be built")
                return
            headers = [*message.get("headers", []), (b"x-request-id", self.caller.request_id)]
            message = {**message, "headers": headers}
        elif self.refused:
            return  # the body of a response that was replaced by 503
        await self._send(message)

    def record(self, status: int) -> bool:
        return self.gate.record(self.scope, status, self.started, self.caller, self.slot)


class Gate:
    def __init__(self, app: Callable[..., Awaitable[None]], *, recorder: AccessRecorder, metrics: Metrics,
                 tokens: TokenStore, throttle: Throttle, settings: Settings) -> None:
        self.app = app
        self.recorder = recorder
        self.metrics = metrics
        self.tokens = tokens
        self.throttle = throttle
        self.trusted = trusted_networks(settings.producer.trusted_proxies)
        self.hops = settings.serve.proxy_hops
        self.max_body = settings.serve.max_body_bytes
        self.resource = ("audit_trail", clip(f"s3://{settings.s3.bucket}/{settings.s3.prefix}", MAX_TEXT))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path", "") in UNRECORDED:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        scope.setdefault("state", {})
        caller = caller_for(scope, self.trusted, self.hops)
        token = set_context(caller.context)
        try:
            await self._serve(scope, receive, send, caller, started)
        finally:
            reset_context(token)

    async def _serve(self, scope: Scope, receive: Receive, send: Send, caller: Caller, started: float) -> None:
        state = scope["state"]
        auth = authenticate_header(self.tokens, _header(scope, b"authorization"))
        state["auth"] = auth
        if auth.principal is not None:
            state["principal"] = auth.principal
        if auth.failure:
            _log.error("bearer tokens cannot be checked (%s %s answered 503): %s", scope.get("method"),
                       printable(clip(scope.get("path", ""), MAX_TEXT)), auth.failure)
        if auth.principal is None and (refusal := self.throttle.check(caller.context.ip)) is not None:
            await self._refuse(scope, send, caller, started, refusal)
            return
        slot = self.recorder.reserve()
        if slot is None:
            await self.unrecorded(scope, caller, send, f"{self.recorder.backlog} access events wait for the producer")
            return
        call = _Call(self, scope, caller, started, slot, send)
        try:
            if auth.failure:
                state["reason"] = auth.denied
                await problem(503, "bearer tokens cannot be checked right now; the server log has the details")(
                    scope, receive, call.send)
                return
            if auth.principal is None:
                receive = _without_body(receive)
            else:
                body = await _read_body(scope, receive, self.max_body)
                if body is None:
                    state["reason"] = "body too large"
                    await problem(413, f"the request body is larger than {self.max_body} bytes "
                                       "(serve.max_body_bytes)")(scope, receive, call.send)
                    return
                receive = _replay(body, receive)
            await self.app(scope, receive, call.send)
        except _ClientGone:
            return
        except Exception:
            if call.status is not None:
                raise  # the response has started: the server ends the connection
            _log.exception("unhandled error in %s %s", scope.get("method"), printable(clip(scope.get("path", ""), MAX_TEXT)))
            await problem(500, "internal error; the server log has the details")(scope, receive, call.send)
        finally:
            slot.release()

    async def _refuse(self, scope: Scope, send: Send, caller: Caller, started: float, refusal: Refusal) -> None:
        """429 for a call over a rate limit; recorded only when it is the first refusal of its window."""
        self.metrics.limited.labels(refusal.limit.split(":")[0].removeprefix("per ")).inc()
        response = problem(429, f"too many calls without a valid token ({refusal.limit}); "
                                f"retry in {refusal.retry_after_s} s or send a token",
                           headers={"Retry-After": str(refusal.retry_after_s)})
        slot = self.recorder.reserve() if refusal.record else None
        if slot is None:
            await response(scope, _without_body(_nothing), _with_request_id(send, caller))
            return
        state = scope["state"]
        state["action"] = "trail.rate_limited"
        state["result"] = {"limit": refusal.limit, "unrecorded_refusals": refusal.unrecorded}
        _log.warning("rate limit %s reached by %s; further refusals in this window are counted, not recorded",
                     refusal.limit, caller.context.ip)
        call = _Call(self, scope, caller, started, slot, send)
        try:
            await response(scope, _without_body(_nothing), call.send)
        finally:
            slot.release()

    async def unrecorded(self, scope: Scope, caller: Caller, send: Send, why: str) -> None:
        """503, and nothing else, for a call whose access event cannot be recorded."""
        self.metrics.unrecorded.inc()
        _log.error("refusing %s %s: %s", scope.get("method"), printable(clip(scope.get("path", ""), MAX_TEXT)), why)
        response = problem(503, "access events cannot be recorded right now; nothing was served; try again later")
        await response(scope, _without_body(_nothing), _with_request_id(send, caller))

    def record(self, scope: Scope, status: int, started: float, caller: Caller, slot: Slot) -> bool:
        """Build this call's access event and queue it in SLOT; False (and an error logged) if it cannot be."""
        state: dict[str, Any] = scope.get("state") or {}
        path: str = scope.get("path", "")
        method = printable(clip(scope.get("method", ""), 16))
        principal = state.get("principal")
        operation = state.get("action") or ("trail.describe" if path in DESCRIBE else "trail.request")
        action = "trail.access_denied" if status in (401, 403) else operation
        actor = principal.name if principal is not None else "anonymous"
        elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
        compact = principal is None or operation == "trail.request"
        metadata: dict[str, Any] = {"method": method, "status": status, "operation": operation,
                                    "duration_ms": elapsed_ms}
        query = scope.get("query_string", b"")
        context = caller.context
        if compact:
            _bounded("path", path, metadata)
            if query:
                metadata["query_bytes"] = len(query)
                metadata["query_sha256"] = sha256_of(query.decode("latin-1"))
            if context.user_agent and len(context.user_agent) > COMPACT_TEXT:
                metadata["user_agent_sha256"] = sha256_of(context.user_agent)
                context = replace(context, user_agent=clip(context.user_agent, COMPACT_TEXT))
        else:
            metadata["path"] = printable(clip(path, 1024))
            if query:
                metadata["filters"] = _query(scope)
        if principal is not None:
            metadata["role"] = principal.role.value
        if caller.request_id_given is not None:
            metadata["request_id_replaced_sha256"] = sha256_of(caller.request_id_given)
        for name in ("denied", "reason"):
            if state.get(name):
                metadata["reason"] = state[name]
        if state.get("result"):
            metadata["result"] = state["result"]
        outcome = "success" if status < 400 else "failure"
        token = set_context(context)
        try:
            event = self.recorder.build(action, outcome=outcome, actor=actor, metadata=metadata, resource=self.resource)
        except Exception as e:  # noqa: BLE001 - whatever the cause, the call must not be served unrecorded
            _log.error("access event for %s %s not built: %s: %s", method, printable(clip(path, MAX_TEXT)),
                       type(e).__name__, e)
            slot.release()
            return False
        finally:
            reset_context(token)
        if not slot.submit(event):
            return False
        self.metrics.recorded.inc()
        self.metrics.requests.labels(action, str(status)).inc()
        self.metrics.seconds.labels(action).observe(elapsed_ms / 1000)
        shown = printable(clip(path, MAX_TEXT))
        _log.info("%s %s %d %.1fms actor=%s action=%s", method, shown, status, elapsed_ms, actor, action,
                  extra={"fields": {"method": method, "path": shown, "status": status, "actor": actor,
                                    "action": action, "duration_ms": elapsed_ms, "request_id": context.request_id}})
        return True


async def _nothing() -> Any:
    return {"type": "http.disconnect"}


def _with_request_id(send: Send, caller: Caller) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []),
                                              (b"x-request-id", caller.request_id)]}
        await send(message)

    return sending
