"""OpenAPI request bodies for routes that take images as JSON (base64) or multipart."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


def image_body(model: type[BaseModel], images: tuple[str, ...]) -> dict[str, Any]:
    schema = model.model_json_schema()
    properties = dict(schema.get("properties", {}))
    json_props = properties | {
        k: {"type": "string", "format": "byte", "description": "the image, base64"} for k in images
    }
    form_props = properties | {k: {"type": "string", "format": "binary"} for k in images}
    required = [*schema.get("required", []), *images]
    defs = schema.get("$defs", {})
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": json_props,
                        "required": required,
                        "$defs": defs,
                    }
                },
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": form_props,
                        "required": required,
                        "$defs": defs,
                    }
                },
            },
        }
    }
