"""Errors as RFC 9457 problem documents (application/problem+json), the same shape for every status."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import Response
from pydantic import BaseModel, Field

PROBLEM_TYPE = "application/problem+json"
TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Content too large",
    422: "Unprocessable request",
    429: "Too many requests",
    500: "Internal server error",
    501: "Not implemented",
    503: "Service unavailable",
}


class Problem(BaseModel):
    type: str = Field("about:blank", description="URI naming the kind of problem")
    title: str
    status: int
    detail: str | None = None
    instance: str | None = Field(None, description="the request path")
    errors: list[dict[str, Any]] | None = Field(None, description="per-parameter validation errors (422)")


def problem(status: int, detail: str | None = None, *, instance: str | None = None,
            errors: list[dict[str, Any]] | None = None, headers: dict[str, str] | None = None) -> Response:
    doc: dict[str, Any] = {"type": "about:blank", "title": TITLES.get(status, "Error"), "status": status}
    if detail is not None:
        doc["detail"] = detail
    if instance is not None:
        doc["instance"] = instance
    if errors is not None:
        doc["errors"] = errors
    return Response(orjson.dumps(doc, default=str), status_code=status, media_type=PROBLEM_TYPE, headers=headers)


_SCHEMA_REF = {"$ref": "#/components/schemas/Problem"}


def add_problem_schema(openapi: dict[str, Any]) -> dict[str, Any]:
    """Put Problem into the document's components, where every error response refers to it."""
    openapi.setdefault("components", {}).setdefault("schemas", {})["Problem"] = Problem.model_json_schema()
    return openapi


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for the given statuses, all with the Problem schema."""
    return {
        status: {"description": TITLES[status], "content": {PROBLEM_TYPE: {"schema": _SCHEMA_REF}}}
        for status in statuses
    }
