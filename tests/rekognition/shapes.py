"""Check a parsed botocore response against the operation's output shape in botocore's model."""

from __future__ import annotations

import datetime as dt
from typing import Any

import botocore.session
from botocore.model import Shape

MODEL = botocore.session.get_session().get_service_model("rekognition")
TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "float": (float, int),
    "double": (float, int),
    "integer": (int,),
    "long": (int,),
    "boolean": (bool,),
    "timestamp": (dt.datetime,),
    "blob": (bytes,),
}


def problems(value: Any, shape: Shape, where: str = "") -> list[str]:
    if shape.type_name == "structure":
        if not isinstance(value, dict):
            return [f"{where}: expected an object"]
        found = [
            f"{where}.{m}: required but missing" for m in shape.required_members if m not in value
        ]
        for name, member in shape.members.items():
            if name in value:
                found += problems(value[name], member, f"{where}.{name}")
        return found
    if shape.type_name == "list":
        if not isinstance(value, list):
            return [f"{where}: expected a list"]
        return [
            p for i, item in enumerate(value) for p in problems(item, shape.member, f"{where}[{i}]")
        ]
    if shape.type_name == "map":
        return [] if isinstance(value, dict) else [f"{where}: expected a map"]
    expected = TYPES[shape.type_name]
    if not isinstance(value, expected) or (
        shape.type_name in ("integer", "long") and isinstance(value, bool)
    ):
        return [f"{where}: {type(value).__name__} is not {shape.type_name}"]
    enum = getattr(shape, "enum", None)  # only string shapes have one
    if enum and value not in enum:
        return [f"{where}: {value!r} is not one of {enum}"]
    return []


def check(operation: str, response: dict[str, Any]) -> dict[str, Any]:
    shape = MODEL.operation_model(operation).output_shape
    body = {k: v for k, v in response.items() if k != "ResponseMetadata"}
    found = problems(body, shape, operation)
    assert not found, found
    return response
