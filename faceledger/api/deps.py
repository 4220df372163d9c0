"""Dependencies shared by the routes: the services, the caller, and request bodies that carry
images either as JSON with base64 or as a multipart upload."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile

from faceledger.errors import AuthenticationError, FaceledgerError, InvalidParameterError
from faceledger.service.auth import Actor, authenticate
from faceledger.service.common import record_refusal
from faceledger.service.context import Services

M = TypeVar("M", bound=BaseModel)


def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_actor(request: Request, services: ServicesDep) -> Actor:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip() if scheme.lower() == "bearer" else ""
    try:
        actor = authenticate(services.db, token or None)
    except AuthenticationError as error:
        # Refused attempts are on the ledger too, under the key id they claimed (never the
        # secret), as the Rekognition endpoint does.
        record_refusal(
            services,
            token.partition(".")[0][:64],
            "unknown",
            f"{request.method} {request.url.path}",
            error.message,
        )
        raise
    request.state.actor = actor  # for the error handler, which records refusals
    return actor


ActorDep = Annotated[Actor, Depends(get_actor)]


class RequestTooLarge(FaceledgerError):
    code = "REQUEST_TOO_LARGE"


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
    limit = request.app.state.services.settings.max_request_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise RequestTooLarge(
            f"the request is {int(declared) / 1e6:.1f} MB; the limit is {limit / 1e6:.1f} MB"
        )
    content_type = request.headers.get("content-type", "")
    images: dict[str, bytes] = {}
    if content_type.startswith("multipart/form-data"):
        form = await request.form(max_part_size=limit)
        data: dict[str, Any] = {}
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                images[key] = await value.read()
            else:
                data[key] = _maybe_json(value)
    else:
        raw = await request.body()
        if len(raw) > limit:
            raise RequestTooLarge(f"the request is larger than {limit / 1e6:.1f} MB")
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            raise InvalidParameterError("the body is not valid JSON") from None
        if not isinstance(data, dict):
            raise InvalidParameterError("the body must be a JSON object")
        for key in image_fields:
            if key in data:
                images[key] = _decode_base64(key, data.pop(key))
    for key in () if images_optional else image_fields:
        if key not in images:
            raise InvalidParameterError(
                f"{key}: an image is required (base64 in JSON, or a "
                "file part in multipart/form-data)"
            )
    try:
        return model.model_validate(data), images
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidParameterError(f"{where}: {first['msg']}") from None


def _maybe_json(value: str) -> Any:
    if value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _decode_base64(key: str, value: Any) -> bytes:
    if isinstance(value, dict):  # Rekognition style: {"bytes": "..."}
        value = value.get("bytes", value.get("Bytes"))
    if not isinstance(value, str):
        raise InvalidParameterError(f"{key}: expected a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidParameterError(f"{key}: not valid base64") from None
