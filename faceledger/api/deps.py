"""Dependencies shared by the routes: the services, the caller, and request bodies that carry
images either as JSON with base64 or as a multipart upload."""

from __future__ import annotations

import json
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile

from faceledger.api.guard import client_address
from faceledger.api.payload import decode_base64, describe_problem, parse_json_object
from faceledger.api.permissions import permission_for
from faceledger.errors import AuthenticationError, InvalidParameterError, PermissionDeniedError
from faceledger.service.auth import Actor, authenticate
from faceledger.service.common import record_refusal
from faceledger.service.context import Services

M = TypeVar("M", bound=BaseModel)


def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


# Declares the scheme in the OpenAPI document (so /docs can "Authorize"); the header itself is
# read below, so a missing or malformed one is refused, and recorded, in one place.
bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="An API key: `faceledger keys create` or POST /v1/keys; sent as "
    "'Authorization: Bearer <key id>.<secret>'.",
)


def refuse_unknown_query(request: Request) -> None:
    """Unknown query parameters are refused, as unknown body fields are: a misspelt
    ``?max_result=5`` must not quietly return the default thousand."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not request.query_params:
        return
    known = _query_names(route.dependant)
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        takes = ", ".join(sorted(known)) if known else "no query parameters"
        raise InvalidParameterError(
            f"unknown query parameter{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(repr(u[:64]) for u in unknown[:10])}; this route takes {takes}"
        )


def _query_names(dependant: Dependant) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def get_actor(
    request: Request,
    services: ServicesDep,
    _declared: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)] = None,
) -> Actor:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip() if scheme.lower() == "bearer" else ""
    try:
        actor = authenticate(services.db, token or None)
    except AuthenticationError as error:
        # Refused attempts are on the ledger too, under the key id they claimed (never the
        # secret), as the Rekognition endpoint does; and they cost the address a token.
        refused(request, token.partition(".")[0], "unknown", error.message, "credentials")
        raise
    request.state.actor = actor  # for the error handler, which records refusals
    needed = permission_for(request.method, request.url.path)
    if needed is None:
        raise PermissionDeniedError("this route has no permission assigned; refused by default")
    actor.require(needed)  # before the body is read
    return actor


ActorDep = Annotated[Actor, Depends(get_actor)]


def charge(request: Request) -> str:
    """Charge the client address's refusal budget (every refusal does); returns the address."""
    address = client_address(request.scope)
    request.app.state.refusal_throttle.charge(address)
    return address


def refused(
    request: Request,
    key_id: str,
    role: str,
    reason: str,
    kind: str,
    operation: str | None = None,
) -> None:
    """Record a refusal (bounded, aggregated) and charge the client address. ``operation``:
    the route (``METHOD /path``) unless given (Rekognition names its action)."""
    address = charge(request)
    record_refusal(
        request.app.state.services,
        key_id,
        role,
        operation or f"{request.method} {request.url.path}",
        reason,
        kind,
        address,
    )


async def read_body(
    request: Request,
    model: type[M],
    image_fields: tuple[str, ...] = (),
    *,
    images_optional: bool = False,
) -> tuple[M, dict[str, bytes]]:
    """Parse a body into ``model`` and decode its images.

    JSON: image fields hold base64 strings. multipart/form-data: image fields are file parts
    and the other fields plain form fields (JSON-encoded lists are accepted for list fields).
    """
    # The request guard has bounded the body already (Content-Length and while reading).
    limit = request.app.state.services.settings.max_request_bytes
    content_type = request.headers.get("content-type", "")
    images: dict[str, bytes] = {}
    if content_type.startswith("multipart/form-data"):
        form = await request.form(max_part_size=limit)
        data: dict[str, Any] = {}
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                if key not in image_fields:
                    raise InvalidParameterError(_wrong_part(key, image_fields))
                images[key] = await value.read()
            else:
                data[key] = _maybe_json(value)
    elif content_type.startswith("application/x-www-form-urlencoded"):
        raise InvalidParameterError(
            "send JSON (Content-Type: application/json) or multipart/form-data with "
            "file parts, not a form-encoded body"
        )
    else:
        data = parse_json_object(await request.body())
        for key in image_fields:
            if key in data:
                images[key] = _decode_base64(key, data.pop(key))
    for key in () if images_optional else image_fields:
        if key not in images:
            raise InvalidParameterError(
                f"{key}: an image is required (base64 in JSON, or a "
                f"file part named {key!r} in multipart/form-data)"
            )
    try:
        return model.model_validate(data), images
    except ValidationError as exc:
        raise InvalidParameterError("; ".join(describe_problem(e) for e in exc.errors())) from None


def _wrong_part(name: str, expected: tuple[str, ...]) -> str:
    if not expected:
        return f"file part {name!r}: this route takes no image"
    names = " and ".join(repr(e) for e in expected)
    return f"file part {name!r} is not one this route takes: name the image part {names}"


def _maybe_json(value: str) -> Any:
    if value[:1] in "[{":
        try:
            return json.loads(value)
        except (ValueError, RecursionError):
            return value
    return value


def _decode_base64(key: str, value: Any) -> bytes:
    if isinstance(value, dict):  # Rekognition style: {"bytes": "..."}
        value = value.get("bytes", value.get("Bytes"))
    return decode_base64(value, key)
