"""One error body for everything: ``{"error": {"code": ..., "message": ...}}``, mapped once."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from faceledger.api.deps import charge, refused
from faceledger.api.payload import describe_problem
from faceledger.errors import (
    AlreadyExistsError,
    AuthenticationError,
    DatasetError,
    FaceledgerError,
    IdempotentParameterMismatch,
    InvalidImageError,
    InvalidParameterError,
    InvalidVideoError,
    LedgerError,
    NoFaceDetected,
    NotFoundError,
    PermissionDeniedError,
    PolicyViolation,
    RateLimited,
    RuleViolation,
    ServiceBusy,
)
from faceledger.service.buckets import InvalidS3Object

log = logging.getLogger("faceledger.api")

STATUS: list[tuple[type[FaceledgerError], int]] = [
    (NotFoundError, 404),
    (AlreadyExistsError, 409),
    (AuthenticationError, 401),
    (PermissionDeniedError, 403),
    (InvalidImageError, 400),
    (InvalidParameterError, 400),
    (NoFaceDetected, 400),
    (DatasetError, 404),
    (ServiceBusy, 503),
    (IdempotentParameterMismatch, 409),
    (InvalidVideoError, 400),
    (InvalidS3Object, 400),
    (RateLimited, 429),
    (LedgerError, 503),
    (RuleViolation, 409),
]
TOO_LARGE_CODES = {"TOO_LARGE", "TOO_MANY_PIXELS", "REQUEST_TOO_LARGE"}


def status_for(error: FaceledgerError) -> int:
    if error.code in TOO_LARGE_CODES:
        return 413
    for kind, status in STATUS:
        if isinstance(error, kind):
            return status
    return 500


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    return {"error": {"code": code, "message": message}}


async def _record_refusal(request: Request, error: FaceledgerError) -> None:
    """A known key refused by its role or a rule goes on the ledger (policy and review-rule
    refusals are recorded by the service, credential failures by get_actor); every refusal
    costs the client address a token of its refusal budget."""
    actor = getattr(request.state, "actor", None)
    if actor is None:
        return
    if isinstance(error, (PolicyViolation, RuleViolation)):  # the service recorded these
        await run_in_threadpool(charge, request)
        return
    if not isinstance(error, PermissionDeniedError):
        return
    kind = "role" if "role" in error.message else "rule"
    await run_in_threadpool(refused, request, actor.key_id, actor.role.value, error.message, kind)


def validation_message(request: Request, problems: Sequence[Any]) -> str:
    """Every offending field at once, each with what was expected; a body that is not JSON
    where JSON is expected is told so instead."""
    content_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    body_problems = [p for p in problems if tuple(p.get("loc", ()))[:1] == ("body",)]
    if body_problems and content_type and content_type != "application/json":
        return (
            f"send JSON: this route takes a JSON body (Content-Type: application/json), "
            f"not {content_type}"
        )
    return "; ".join(describe_problem(p) for p in problems) or "invalid request"


def install(app: FastAPI) -> None:
    @app.exception_handler(FaceledgerError)
    async def _domain(request: Request, error: FaceledgerError) -> Response:
        await _record_refusal(request, error)
        status = status_for(error)
        if request.url.path.startswith("/console"):  # a person at a browser: a page
            from faceledger.web.console import error_page

            return error_page(request, error, status)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        if isinstance(error, ServiceBusy):
            headers = {"Retry-After": str(error.retry_after)}
        return JSONResponse(error_body(error.code, error.message), status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse(
            error_body("INVALID_PARAMETER", validation_message(request, error.errors())), 400
        )

    @app.exception_handler(HTTPException)
    async def _http(_: Request, error: HTTPException) -> JSONResponse:
        code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(error.status_code, "HTTP_ERROR")
        return JSONResponse(error_body(code, str(error.detail)), error.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, error: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=error)
        return JSONResponse(error_body("INTERNAL", "internal error; see the server log"), 500)
