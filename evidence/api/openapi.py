"""What FastAPI's generated OpenAPI document leaves out, added so that it describes what the server does.

- 500 on every operation: any of them can meet a bug or an outage the handlers do not map.
- the document itself (/openapi.json) and its page (/docs): recorded calls like any other, so
  they can answer 429 and 503 too.
- the headers: X-Request-ID (taken from the request when it is safe text, else a new one; always
  in the response), Link on a search page that has a next one, WWW-Authenticate on 401,
  Retry-After on 429.
"""

from __future__ import annotations

from typing import Any

from sealtrail.evidence.api.problems import problem_responses

REQUEST_ID_PARAMETER = {
    "name": "X-Request-ID", "in": "header", "required": False,
    "description": "your id for the call, recorded in its access event; [A-Za-z0-9._:@-]{1,128}, "
                   "anything else is replaced by a new id (and its SHA-256 recorded)",
    "schema": {"type": "string"},
}
HEADERS = {
    "X-Request-ID": {"description": "the call's request id, as recorded in its access event",
                     "schema": {"type": "string"}},
    "Link": {"description": 'the next page, as <URL>; rel="next" (absent on the last page)',
             "schema": {"type": "string"}},
    "WWW-Authenticate": {"description": 'Bearer realm="sealtrail" (error="invalid_token" for an unknown token)',
                         "schema": {"type": "string"}},
    "Retry-After": {"description": "seconds until the rate limit lets a call without a token through again",
                    "schema": {"type": "integer"}},
}
UNRECORDED = frozenset({"/healthz"})


def _described(media: str, schema: dict[str, Any], summary: str, operation_id: str,
               tags: list[str]) -> dict[str, Any]:
    return {"summary": summary, "operationId": operation_id, "tags": tags,
            "responses": {"200": {"description": "OK", "content": {media: {"schema": schema}}}}}


def complete_document(doc: dict[str, Any]) -> dict[str, Any]:
    """DOC (FastAPI's) with the paths, statuses and headers above added."""
    paths = doc.setdefault("paths", {})
    paths["/openapi.json"] = {"get": _described("application/json", {"type": "object"},
                                                "This OpenAPI document", "openapi", ["operations"])}
    paths["/docs"] = {"get": _described("text/html", {"type": "string"},
                                        "The document as a page (Swagger UI)", "docs", ["operations"])}
    for path, item in paths.items():
        for operation in item.values():
            responses = operation.setdefault("responses", {})
            extra = (500,) if path in UNRECORDED else (429, 500, 503)
            for status, entry in problem_responses(*extra).items():
                responses.setdefault(str(status), entry)
            if path in UNRECORDED:
                continue
            parameters = operation.setdefault("parameters", [])
            if not any(p.get("name") == "X-Request-ID" for p in parameters):
                parameters.append(REQUEST_ID_PARAMETER)
            for status, response in responses.items():
                headers = response.setdefault("headers", {})
                headers["X-Request-ID"] = HEADERS["X-Request-ID"]
                if status == "401":
                    headers["WWW-Authenticate"] = HEADERS["WWW-Authenticate"]
                if status == "429":
                    headers["Retry-After"] = HEADERS["Retry-After"]
                if status == "200" and operation.get("operationId") == "searchEvents":
                    headers["Link"] = HEADERS["Link"]
    return doc
