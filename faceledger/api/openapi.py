"""The OpenAPI document says what the server really answers: errors as ``{"error": {"code",
"message"}}`` with 400 (never FastAPI's default 422), and the statuses each route can give."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

ERROR_REF = {"$ref": "#/components/schemas/Error"}
ERROR_SCHEMA = {
    "type": "object",
    "title": "Error",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string", "description": "Stable, e.g. RESOURCE_NOT_FOUND."},
                "message": {"type": "string", "description": "What is wrong and how to fix it."},
            },
            "required": ["code", "message"],
        }
    },
    "required": ["error"],
}
WHY = {
    "400": "Bad input: every offending field is named (INVALID_PARAMETER, image codes such as "
    "TRUNCATED, NO_FACE_DETECTED, INVALID_PAGINATION_TOKEN).",
    "401": "No key, or a key this server does not know (recorded on the ledger as refused).",
    "403": "The key's role may not do this, or its use policy refuses it (POLICY_VIOLATION, "
    "naming the rule).",
    "404": "A collection, face, user, key, policy, task or job named in the request does not "
    "exist.",
    "409": "It exists already, or the request breaks a rule on the state it meets "
    "(RULE_VIOLATION, IDEMPOTENT_PARAMETER_MISMATCH).",
    "413": "The body, or the image in it, is larger than the server accepts.",
    "429": "This address was refused too often; retry after Retry-After seconds.",
    "503": "The engine is busy (SERVICE_BUSY); retry after Retry-After seconds.",
}


def statuses_for(path: str, method: str, operation: dict[str, Any]) -> list[str]:
    """The error statuses a route can give, from what it is: every route checks a key, its
    role and the refusal budget; names in the path can be missing; bodies can be too large;
    creating can conflict; images wait for the engine."""
    if path == "/v1/health":
        return []
    found = ["400", "401", "403", "429"]
    if "{" in path or method in ("post", "put", "delete"):
        found.append("404")
    if method in ("post", "put"):
        found.append("413")
        if "201" in operation.get("responses", {}) or path.endswith(("/decisions", "/jobs")):
            found.append("409")
    content = operation.get("requestBody", {}).get("content", {})
    if "multipart/form-data" in content or path in ("/v1/videos", "/v1/evaluation/compare"):
        found.append("503")
    return sorted(found)


def document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Error"] = ERROR_SCHEMA
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            for status in statuses_for(path, method, operation):
                responses[status] = {
                    "description": WHY[status],
                    "content": {"application/json": {"schema": ERROR_REF}},
                }
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    return schema


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_errors(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
