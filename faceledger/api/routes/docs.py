"""OpenAPI request bodies for routes that take images as JSON (base64) or multipart."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


def _inlined(value: Any, defs: dict[str, Any]) -> Any:
    """``value`` with every local ``#/$defs/X`` reference replaced by X itself: a request body
    given through ``openapi_extra`` is not rewritten by FastAPI, and ``#/$defs`` does not
    resolve from the OpenAPI document's root."""
    if isinstance(value, dict):
        ref = value.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inlined(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inlined(v, defs) for k, v in value.items()}
    if isinstance(value, list):
        return [_inlined(v, defs) for v in value]
    return value


def image_body(
    model: type[BaseModel], images: tuple[str, ...], *, required: bool = True
) -> dict[str, Any]:
    """The body as JSON (images base64) or multipart (images as file parts); ``required=False``
    for routes whose every field has a default, which work with no body at all."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})
    schema = _inlined(schema, defs)
    properties = dict(schema.get("properties", {}))
    json_props = properties | {
        k: {"type": "string", "format": "byte", "description": "the image, base64"} for k in images
    }
    form_props = properties | {k: {"type": "string", "format": "binary"} for k in images}
    needed = [*schema.get("required", []), *images]
    return {
        "requestBody": {
            "required": required,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": json_props,
                        "required": needed,
                    }
                },
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": form_props,
                        "required": needed,
                    }
                },
            },
        }
    }
