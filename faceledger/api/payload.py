"""Reading untrusted request payloads, shared by both APIs: JSON objects and base64 images."""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from faceledger.errors import InvalidParameterError

MAX_JSON_DEPTH = 32
_DATA_URL = re.compile(r"^data:(?P<type>[\w.+-]+/[\w.+-]+)?(?P<params>(;[^,;]*)*),", re.ASCII)
_BASE64 = re.compile(rb"^[A-Za-z0-9+/]*={0,2}$")
_BASE64_URLSAFE = re.compile(rb"^[A-Za-z0-9_-]*={0,2}$")


def parse_json_object(raw: bytes, what: str = "the body") -> dict[str, Any]:
    """A JSON object, or InvalidParameterError saying what is wrong with it."""
    if not raw.strip():
        return {}
    if _depth_exceeds(raw, MAX_JSON_DEPTH):
        raise InvalidParameterError(f"{what} is nested more than {MAX_JSON_DEPTH} levels deep")
    try:
        value = json.loads(raw)
    except UnicodeDecodeError:
        raise InvalidParameterError(f"{what} is not UTF-8 text") from None
    except (ValueError, RecursionError) as error:
        raise InvalidParameterError(f"{what} is not valid JSON ({error})") from None
    if not isinstance(value, dict):
        raise InvalidParameterError(f"{what} must be a JSON object")
    return value


def _depth_exceeds(raw: bytes, limit: int) -> bool:
    """Brackets outside strings, counted without parsing (the parser itself recurses)."""
    depth, in_string, escaped = 0, False, False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            if depth > limit:
                return True
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return False


def decode_base64(value: Any, field: str) -> bytes:
    """Image bytes from base64 text. Line breaks and spaces are ignored, a ``data:`` URL prefix
    (``data:image/jpeg;base64,``) is accepted, and the URL-safe alphabet too; anything else is
    refused with the reason."""
    if not isinstance(value, str):
        raise InvalidParameterError(f"{field}: expected base64 text, got {_kind(value)}")
    text = value.strip()
    match = _DATA_URL.match(text)
    if match:
        if ";base64" not in match["params"]:
            raise InvalidParameterError(f"{field}: a data: URL must be base64 (';base64,')")
        text = text[match.end() :]
    compact = "".join(text.split()).encode("ascii", "replace")
    if not compact:
        raise InvalidParameterError(f"{field}: the base64 text is empty")
    urlsafe = _BASE64_URLSAFE.match(compact) is not None and _BASE64.match(compact) is None
    if not (_BASE64.match(compact) or urlsafe):
        bad = next(
            (chr(b) for b in compact if not (chr(b).isalnum() or chr(b) in "+/=_-")), "padding"
        )
        raise InvalidParameterError(
            f"{field}: not valid base64 (unexpected {bad!r}; expected A-Z a-z 0-9 + / and = "
            "padding)"
        )
    padded = compact + b"=" * (-len(compact) % 4)
    try:
        return (base64.urlsafe_b64decode if urlsafe else base64.b64decode)(padded)
    except (binascii.Error, ValueError):
        raise InvalidParameterError(
            f"{field}: not valid base64 (its length or padding is wrong)"
        ) from None


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", bool: "true/false", type(None): "null"}.get(
        type(value), type(value).__name__
    )


def describe_problem(problem: Any) -> str:
    where = ".".join(str(part) for part in problem.get("loc", ()) if part not in ("body",))
    where = where.removeprefix("query.").removeprefix("path.")
    kind, message = problem.get("type", ""), str(problem.get("msg", "invalid"))
    if kind == "extra_forbidden":
        message = "not a field this route takes"
    elif kind == "missing":
        message = "required"
    elif kind == "literal_error" or kind == "enum":
        message = f"expected {problem.get('ctx', {}).get('expected', 'one of the listed values')}"
        message += f" (got {problem.get('input')!r})"
    return f"{where}: {message}" if where else message


def encode_base64(data: bytes) -> str:
    return base64.b64encode(data).decode()
