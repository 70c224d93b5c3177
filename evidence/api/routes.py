"""The /v1 endpoints: search, read (with proof), export. Each names the permission it needs.

Searches go through evidence.query (DuckDB over the bucket's Parquet, in
place); pages are walked with an opaque keyset cursor on (occurred_at, chain,
seq), so events sealed while a client pages shift nothing it has not seen yet.
"""

import base64
import hashlib
import hmac
import importlib.util
import secrets
import shutil
import threading
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlencode
from uuid import UUID

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from sealtrail.columns import COLUMNS, INT32, INT64, Column, Group
from sealtrail.config import Settings
from sealtrail.errors import ConfigError, SealtrailError
from sealtrail.event import Category
from sealtrail.evidence.api.problems import problem_responses
from sealtrail.evidence.api.tokens import Authentication, Permission, Principal
from sealtrail.record import JSON_COLUMNS

bearer = HTTPBearer(auto_error=False, description="a token from `sealtrail serve token add`")
MAX_OFFSET = 1_000_000_000


class ApiError(SealtrailError):
    """An expected failure of an API call: becomes a problem document with this status (not an exit code)."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.headers = status, detail, headers


def _api_type(column: Column) -> Any:
    """What a column's value is in a JSON row: parsed where it is JSON text, hex where binary, text for times."""
    if column.json:
        return Any
    return (int if column.arrow in (INT32, INT64) else str) | None


# The search's keys first (its cursor is on occurred_at, chain, seq); then the event's columns, typed from the
# column table; then the seal. Other columns (OCSF, accounting, src_offset, row_check) pass through as extras.
_KEYS: dict[str, Any] = {"event_id": (str, ...), "chain": (str, ...), "seq": (int, ...), "occurred_at": (str, ...),
                         "sealed_at": (str | None, None), "dt": (str | None, None)}
_SEAL: dict[str, Any] = {
    "hash": (str | None, Field(None, description="hex; empty on rows whose hash is recomputed rather than stored")),
    "key_id": (str | None, None),
    "signature": (str | None, Field(None, description="hex")),
}
_FIELDS: dict[str, Any] = {
    **_KEYS,
    **{c.name: (_api_type(c), None) for c in COLUMNS if c.group is Group.EVENT and c.name not in _KEYS},
    **_SEAL,
}
StoredEvent = create_model(
    "StoredEvent",
    __config__=ConfigDict(extra="allow"),
    __doc__="One row of the trail: the event's columns, its place in the chain, and its seal.",
    **_FIELDS,
)


class EventPage(BaseModel):
    events: list[StoredEvent]
    count: int = Field(description="events on this page")
    limit: int
    next: str | None = Field(description="relative link to the next page; null on the last page")


class EventWithProof(BaseModel):
    event: StoredEvent
    proof: dict[str, Any] | None = Field(None, description="present with ?proof=true")


class ExportRequest(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")
    from_: date = Field(alias="from", description="first dt partition (UTC date), inclusive")
    to: date = Field(description="last dt partition (UTC date), inclusive")
    tenant: str | None = Field(None, min_length=1, max_length=256, description="only the chains' spans that hold it")

    @model_validator(mode="after")
    def _ordered(self) -> "ExportRequest":
        if self.to < self.from_:
            raise ValueError("'to' is before 'from'")
        return self


class ExportResponse(BaseModel):
    bundle: str = Field(description="the bundle folder on the server")
    manifest: dict[str, Any] = Field(description="the manifest's header, with the number and bytes of its files")


def _row(row: dict[str, Any]) -> dict[str, Any]:
    from sealtrail.evidence.query import plain

    out = {k: plain(v) for k, v in row.items()}
    for name in JSON_COLUMNS:
        value = out.get(name)
        if isinstance(value, str):
            try:
                out[name] = orjson.loads(value)
            except orjson.JSONDecodeError:
                pass
    return out


def _instant(name: str, value: datetime | None) -> str | None:
    if value is None:
        return None
    try:
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc).isoformat()
    except (OverflowError, ValueError) as e:
        raise ApiError(422, f"{name}: out of range") from e


def _fingerprint(filters: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(filters, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _cursor_mac(key: bytes, body: bytes) -> bytes:
    return hmac.new(key, body, hashlib.sha256).digest()[:16]


def encode_cursor(row: dict[str, Any], fingerprint: str, key: bytes) -> str:
    """The position after ROW for the filters FINGERPRINT names, MACed with the server's KEY."""
    body = orjson.dumps({"t": row["occurred_at"], "c": row["chain"], "s": row["seq"], "f": fingerprint})
    return f"{_b64(body)}.{_b64(_cursor_mac(key, body))}"


def decode_cursor(cursor: str, fingerprint: str, key: bytes) -> tuple[str, str, int]:
    """(occurred_at as UTC ISO 8601, chain, seq) of a cursor this server made for these filters; else ApiError 400."""
    foreign = ApiError(400, "cursor: not a cursor this server made (cursors end when the server restarts, unless "
                            "serve.cursor_secret is set); start again from the first page")
    try:
        body_text, dot, mac_text = cursor.partition(".")
        body, mac = _unb64(body_text), _unb64(mac_text)
    except (ValueError, TypeError) as e:  # binascii.Error is a ValueError
        raise foreign from e
    if not dot or not hmac.compare_digest(mac, _cursor_mac(key, body)):
        raise foreign
    try:
        doc = orjson.loads(body)
        at, chain, seq, made_for = doc["t"], doc["c"], doc["s"], doc["f"]
        if not (isinstance(at, str) and isinstance(chain, str) and isinstance(seq, int) and isinstance(made_for, str)):
            raise TypeError
    except (ValueError, TypeError, KeyError) as e:
        raise foreign from e
    if made_for != fingerprint:
        raise ApiError(400, "cursor: made for other filters; pass the same filters as the page it came from")
    try:
        instant = datetime.fromisoformat(at)
        if instant.tzinfo is None:
            instant = instant.replace(tzinfo=timezone.utc)
        utc = instant.astimezone(timezone.utc)  # OverflowError at the ends of the calendar
    except (ValueError, OverflowError) as e:
        raise ApiError(400, "cursor: its time is not a time within range") from e
    return utc.isoformat(), chain, seq


def authorize(permission: Permission, action: str) -> Any:
    """A dependency: the caller's principal, or 401 (no or unknown token) / 403 (role lacks the permission).

    The token was checked by the gate (gate.py) before any body was read; the
    bearer scheme is declared here so that the OpenAPI document names it.
    """

    def check(request: Request, credentials: HTTPAuthorizationCredentials | None = Security(bearer)) -> Principal:
        request.state.action = action
        auth: Authentication = request.state.auth
        if auth.principal is None:
            request.state.denied = auth.denied
            if auth.denied == "unknown token":
                raise ApiError(401, "unknown token",
                               {"WWW-Authenticate": 'Bearer realm="sealtrail", error="invalid_token"'})
            raise ApiError(401, "a bearer token is required (Authorization: Bearer <token>)",
                           {"WWW-Authenticate": 'Bearer realm="sealtrail"'})
        principal = auth.principal
        if not principal.may(permission):
            request.state.denied = f"role {principal.role} lacks {permission}"
            raise ApiError(403, f"role {principal.role.value} may not {permission.value}")
        return principal

    return check


def build_router(settings: Settings) -> APIRouter:
    router = APIRouter()
    cfg = settings.serve
    export_lock = threading.Lock()
    cursor_key = cfg.cursor_secret.get_secret_value().encode() if cfg.cursor_secret else secrets.token_bytes(32)
    common = (400, 401, 403, 422, 429, 500, 503)

    @router.get("/events", response_model=EventPage, responses=problem_responses(*common),
                summary="Search events", operation_id="searchEvents")
    def search_events(
        request: Request,
        response: Response,
        principal: Annotated[Principal, Depends(authorize(Permission.SEARCH, "trail.search"))],
        actor: Annotated[str | None, Query(min_length=1, max_length=256, description="actor id")] = None,
        action: Annotated[str | None, Query(min_length=1, max_length=128, description="e.g. auth.login_failed")] = None,
        resource: Annotated[str | None, Query(min_length=1, max_length=513, description="TYPE or TYPE:ID")] = None,
        tenant: Annotated[str | None, Query(min_length=1, max_length=256)] = None,
        category: Category | None = None,
        since: Annotated[datetime | None, Query(description="occurred at or after (ISO 8601; UTC if no zone)")] = None,
        until: Annotated[datetime | None, Query(description="occurred before (ISO 8601; UTC if no zone)")] = None,
        limit: Annotated[int, Query(ge=1, le=cfg.max_page, description=f"page size, at most {cfg.max_page}")] = min(
            cfg.default_page, cfg.max_page),
        cursor: Annotated[str | None, Query(min_length=1, max_length=1024, description="from a page's next link")] = None,
        offset: Annotated[int | None, Query(ge=0, le=MAX_OFFSET, description="rows to skip (instead of cursor)")] = None,
        order: Literal["asc", "desc"] = "asc",
    ) -> EventPage:
        """Events matching every filter, ordered by occurred_at, then chain and seq."""
        from sealtrail.evidence.query import open_events, query_events

        if cursor is not None and offset is not None:
            raise ApiError(400, "give cursor or offset, not both")
        resource_type, _, resource_id = (resource or "").partition(":")
        filters = {"actor": actor, "action": action, "resource_type": resource_type or None,
                   "resource_id": resource_id or None, "tenant": tenant,
                   "category": category.value if category else None,
                   "since": _instant("since", since), "until": _instant("until", until)}
        fingerprint = _fingerprint({**filters, "order": order})
        after = decode_cursor(cursor, fingerprint, cursor_key) if cursor is not None else None
        con = open_events(settings)
        try:
            rows = query_events(con, **filters, limit=limit + 1, offset=offset or 0,
                                order="occurred_at" if order == "asc" else "-occurred_at", after=after)
        finally:
            con.close()
        more = len(rows) > limit
        rows = [_row(r) for r in rows[:limit]]
        link = None
        if more:
            params = {k: v for k, v in request.query_params.items() if k not in ("cursor", "offset")}
            params["cursor"] = encode_cursor(rows[-1], fingerprint, cursor_key)
            link = f"{request.url.path}?{urlencode(params)}"
            response.headers["Link"] = f'<{link}>; rel="next"'
        request.state.result = {"count": len(rows)}
        return EventPage(events=[StoredEvent(**r) for r in rows], count=len(rows), limit=limit, next=link)

    @router.get("/events/{event_id}", response_model=EventWithProof,
                responses=problem_responses(*common, 404, 409, 501),
                summary="Read one event, optionally with its proof", operation_id="getEvent")
    def get_event(
        request: Request,
        event_id: UUID,
        principal: Annotated[Principal, Depends(authorize(Permission.READ, "trail.read"))],
        proof: Annotated[bool, Query(description="add the proof that the event is in the signed trail")] = False,
    ) -> EventWithProof:
        from sealtrail.evidence.query import open_events, query_events

        if proof and not principal.may(Permission.PROOF):
            request.state.denied = f"role {principal.role} lacks proof"
            raise ApiError(403, f"role {principal.role.value} may not read proofs")
        con = open_events(settings)
        try:
            rows = query_events(con, event_id=str(event_id), limit=1)
        finally:
            con.close()
        if not rows:
            raise ApiError(404, f"no event {event_id} in the trail (events appear once sealed and stored)")
        event = StoredEvent(**_row(rows[0]))
        if not proof:
            return EventWithProof(event=event)
        if importlib.util.find_spec("sealtrail.evidence.proof") is None:
            raise ApiError(501, "proofs are not available in this build (sealtrail.evidence.proof is missing)")
        from sealtrail.evidence.proof import build_proof
        from sealtrail.sinks.s3 import S3Store

        return EventWithProof(event=event, proof=build_proof(S3Store(settings), settings, str(event_id)))

    @router.post("/exports", response_model=ExportResponse, status_code=201,
                 responses=problem_responses(*common, 404, 413, 501),
                 summary="Export a date range as a verified evidence bundle (admin)", operation_id="createExport")
    def create_export(
        request: Request,
        body: ExportRequest,
        principal: Annotated[Principal, Depends(authorize(Permission.EXPORT, "trail.export"))],
    ) -> ExportResponse:
        if importlib.util.find_spec("sealtrail.evidence.export") is None:
            raise ApiError(501, "export is not available in this build (sealtrail.evidence.export is missing)")
        from sealtrail.evidence.export import export_bundle, safe_name
        from sealtrail.sinks.s3 import S3Store

        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        name = f"{body.from_}_{body.to}" + (f"_{safe_name(body.tenant)}" if body.tenant else "")
        out = Path(settings.serve_export_dir) / f"{name}-{stamp}-{secrets.token_hex(3)}"
        with export_lock:  # one at a time: an export reads and verifies a whole window
            try:
                result = export_bundle(S3Store(settings), settings, out, body.from_, body.to, tenant=body.tenant)
            except BaseException as e:
                # a half-written folder is no bundle: nobody may take it for evidence (the folder is this
                # call's own, named with a random suffix, so nothing else is removed)
                shutil.rmtree(out, ignore_errors=True)
                if isinstance(e, ConfigError) and e.setting in ("--from/--to", "--tenant"):
                    raise ApiError(404, e.problem) from e
                raise
        manifest = {k: v for k, v in result.manifest.items() if k != "files"}
        files = result.manifest.get("files", [])
        manifest["files"] = len(files)
        manifest["bytes"] = sum(int(f.get("size", 0)) for f in files)
        request.state.result = {"bundle": str(result.out), "verified": manifest.get("verification", {}).get("ok")}
        return ExportResponse(bundle=str(result.out), manifest=manifest)

    return router
