"""Amazon Rekognition's wire protocol (AWS JSON 1.1) at ``POST /``.

A thin layer: it checks the AWS Signature V4, finds the action named by ``X-Amz-Target``,
and hands the JSON body to one function per action in :mod:`.actions`, which calls the same
service the native API uses. Errors leave in AWS's shape (``__type`` and ``message``) so that
botocore raises its modelled exceptions.
"""

from __future__ import annotations

import json
import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from faceledger.api.deps import charge, refused
from faceledger.api.guard import drawn
from faceledger.api.payload import parse_json_object
from faceledger.errors import (
    AlreadyExistsError,
    AuthenticationError,
    FaceledgerError,
    IdempotentParameterMismatch,
    InvalidImageError,
    InvalidPaginationToken,
    InvalidParameterError,
    InvalidVideoError,
    NoFaceDetected,
    NotFoundError,
    PermissionDeniedError,
    PolicyViolation,
    RateLimited,
    RequestTooLarge,
    ServiceBusy,
)
from faceledger.service.auth import aws_credential
from faceledger.service.common import Request as ServiceRequest
from faceledger.service.context import Services

from . import sigv4
from .actions import ACTIONS, Call, InvalidS3Object
from .ratelimit import RateLimiter
from .validation import validate
from .video_actions import VIDEO_ACTIONS

log = logging.getLogger("faceledger.rekognition")
ACTIONS.update(VIDEO_ACTIONS)
router = APIRouter()
TARGET_PREFIX = "RekognitionService"
CONTENT_TYPE = "application/x-amz-json-1.1"


def aws_error(kind: str, message: str, status: int = 400) -> Response:
    return Response(
        json.dumps({"__type": kind, "message": message}), status, media_type=CONTENT_TYPE
    )


def error_type(error: FaceledgerError, action: str) -> str:
    if isinstance(error, NotFoundError):
        return "ResourceNotFoundException"
    if isinstance(error, AlreadyExistsError):
        return "ConflictException" if action == "CreateUser" else "ResourceAlreadyExistsException"
    if isinstance(error, InvalidImageError):
        if error.code in {"TOO_LARGE", "TOO_MANY_PIXELS"}:
            return "ImageTooLargeException"
        return "InvalidImageFormatException"
    if isinstance(error, InvalidS3Object):
        return "InvalidS3ObjectException"
    if isinstance(error, InvalidPaginationToken):
        return "InvalidPaginationTokenException"
    if isinstance(error, IdempotentParameterMismatch):
        return "IdempotentParameterMismatchException"
    if isinstance(error, InvalidVideoError):
        return (
            "VideoTooLargeException" if error.code == "TOO_LARGE" else "InvalidParameterException"
        )
    if isinstance(error, InvalidParameterError | NoFaceDetected):
        return "InvalidParameterException"
    if isinstance(error, AuthenticationError | PermissionDeniedError):
        return "AccessDeniedException"
    if isinstance(error, RateLimited):
        return "ProvisionedThroughputExceededException"
    return "InternalServerError"


@router.post("/", include_in_schema=False)
async def rekognition(http: Request) -> Response:
    try:
        return await _handle(http)
    except Exception:  # never the native error shape, never a traceback, on this endpoint
        log.exception("unhandled error on the Rekognition endpoint")
        return aws_error("InternalServerError", "internal error; see the server log", 500)


async def _refuse(
    http: Request, key_id: str, role: str, action: str, reason: str, kind: str
) -> Response:
    """Record the refusal (bounded, aggregated), charge the address, answer AccessDenied."""
    await run_in_threadpool(refused, http, key_id, role, reason, kind, action)
    return aws_error("AccessDeniedException", reason)


async def _handle(http: Request) -> Response:
    services: Services = http.app.state.services
    target = http.headers.get("x-amz-target", "")
    prefix, _, action = target.partition(".")
    if prefix != TARGET_PREFIX or action not in ACTIONS:
        return aws_error("UnknownOperationException", f"unknown operation {target[:100]!r}")
    headers = {k.lower(): v for k, v in http.headers.items()}
    claimed = headers.get("authorization", "").partition("Credential=")[2].split("/")[0]
    try:  # before the body is read: an unsigned request costs nothing more
        signed = sigv4.parse_authorization(headers)
    except AuthenticationError as error:
        return await _refuse(http, claimed, "unknown", action, error.message, "credentials")
    try:
        body = await http.body()
    except RequestTooLarge as error:
        return aws_error("ImageTooLargeException", error.message, 413)
    try:
        credential = await run_in_threadpool(
            aws_credential, services.db, services.secrets, signed.access_key_id
        )
        sigv4.verify(
            signed,
            credential.secret,
            method=http.method,
            path=http.url.path,
            query=http.url.query,
            headers=headers,
            body=body,
            regions=services.settings.accepted_regions,
        )
    except AuthenticationError as error:
        return await _refuse(http, claimed, "unknown", action, error.message, "credentials")
    limiter: RateLimiter = http.app.state.rate_limiter
    if not await drawn(limiter.buckets, limiter.allow, credential.actor.key_id):
        return aws_error(
            "ProvisionedThroughputExceededException",
            f"more than {services.settings.aws_rate_limit:g} requests per second "
            "for this access key",
        )
    try:
        payload = parse_json_object(body)
        validate(action, payload)
    except InvalidParameterError as error:
        return aws_error("InvalidParameterException", error.message)
    # Rekognition's shapes have no place for these: they come from headers or the key.
    request = ServiceRequest(
        credential.actor,
        headers.get("x-faceledger-purpose") or credential.default_purpose,
        headers.get("x-faceledger-case") or credential.default_case,
        headers.get("x-faceledger-legal-basis"),
    )
    call = Call(services, request, payload)
    try:
        result = await run_in_threadpool(ACTIONS[action], call)
    except PolicyViolation as error:  # the service put the refusal on the ledger already
        await run_in_threadpool(charge, http)
        return aws_error("AccessDeniedException", error.message)
    except PermissionDeniedError as error:
        kind = "role" if "role" in error.message else "rule"
        actor = credential.actor
        return await _refuse(http, actor.key_id, actor.role.value, action, error.message, kind)
    except ServiceBusy as error:
        response = aws_error("ThrottlingException", error.message, 503)
        response.headers["Retry-After"] = str(error.retry_after)
        return response
    except FaceledgerError as error:
        kind = error_type(error, action)
        return aws_error(kind, error.message, 500 if kind == "InternalServerError" else 400)
    return JSONResponse(result, media_type=CONTENT_TYPE)
