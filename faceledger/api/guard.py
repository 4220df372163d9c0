"""What every request passes before any route sees it: the refusal throttle and the body limit.

- A client address that has been refused too often (wrong keys, bad signatures, roles, policies)
  is answered 429 at once, before credentials are checked or anything is written: refusals cost
  the refuser, not the ledger or the database. Well-behaved clients are never charged.
- A body larger than ``max_request_bytes`` is refused: from ``Content-Length`` before a byte is
  read, and while reading a chunked body (the route that reads it gets ``RequestTooLarge``).

Both answer in the shape of the API asked: AWS JSON on Rekognition's ``POST /``, the native
error body elsewhere.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Awaitable, Callable, MutableMapping
from ipaddress import IPv4Network, IPv6Network
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool

from faceledger.errors import RequestTooLarge
from faceledger.imaging.decode import format_bytes
from faceledger.service.common import record_refusal
from faceledger.store.buckets import TokenBuckets

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
T = TypeVar("T")


class AddressThrottle:
    """A token bucket per client address, charged only for refusals (shared by every server
    on a PostgreSQL database: :mod:`faceledger.store.buckets`)."""

    def __init__(self, buckets: TokenBuckets, rate: float) -> None:
        self.buckets, self.rate = buckets, rate

    def exhausted(self, address: str) -> bool:
        return self.buckets.available(address) < 1.0

    def charge(self, address: str) -> None:
        self.buckets.take(address, force=True)

    def retry_after(self, address: str) -> int:
        missing = 1.0 - self.buckets.available(address)
        return max(1, int(missing / self.rate + 0.999))


async def drawn(buckets: TokenBuckets, look: Callable[..., T], *args: Any) -> T:
    """``look(*args)``, a look at ``buckets``: at once when they are in memory, off the event
    loop when each look is a database round trip (buckets shared by servers)."""
    if buckets.in_memory:
        return look(*args)
    return await run_in_threadpool(look, *args)


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


Networks = tuple[IPv4Network | IPv6Network, ...]


def forwarded_client(scope: Scope, proxies: Networks) -> str | None:
    """The client a trusted reverse proxy says it forwards for: walking X-Forwarded-For from
    the right (the entry the nearest proxy added), the first address that is not a trusted
    proxy. None when the connecting peer is not a trusted proxy or the header says nothing
    usable; entries left of a malformed one are never believed (anyone can write them)."""
    if not proxies or not _within(client_address(scope), proxies):
        return None
    entries = [
        part.strip()
        for name, value in scope.get("headers", ())
        if name == b"x-forwarded-for"
        for part in value.decode("latin-1").split(",")
    ]
    for entry in reversed(entries[-32:]):
        try:
            address = ipaddress.ip_address(entry)
        except ValueError:
            return None
        if not _within(str(address), proxies):
            return str(address)
    return None


def forwarded_https(scope: Scope, proxies: Networks) -> bool:
    """Whether a trusted reverse proxy says the client reached it over TLS (X-Forwarded-Proto:
    https); so the console's cookie is marked Secure behind a TLS proxy."""
    if not proxies or not _within(client_address(scope), proxies):
        return False
    protos = [v for name, v in scope.get("headers", ()) if name == b"x-forwarded-proto"]
    return bool(protos) and protos[-1].decode("latin-1").split(",")[-1].strip() == "https"


def _within(address: str, networks: Networks) -> bool:
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(parsed in network for network in networks)


def is_rekognition(scope: Scope) -> bool:
    return scope.get("path") == "/" and scope.get("method") == "POST"


async def send_error(
    scope: Scope,
    send: Send,
    status: int,
    code: str,
    aws_type: str,
    message: str,
    headers: dict[str, str] | None = None,
) -> None:
    if is_rekognition(scope):
        body = {"__type": aws_type, "message": message}
        content_type = b"application/x-amz-json-1.1"
    else:
        body = {"error": {"code": code, "message": message}}
        content_type = b"application/json"
    raw = json.dumps(body).encode()
    extra = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(raw)).encode()),
                *extra,
            ],
        }
    )
    await send({"type": "http.response.body", "body": raw})


class RequestGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope["app"].state if "app" in scope else None
        services = getattr(state, "services", None)
        throttle: AddressThrottle | None = getattr(state, "refusal_throttle", None)
        if services is None or throttle is None:  # not started yet
            await self.app(scope, receive, send)
            return
        proxies = getattr(state, "proxy_networks", ())
        if forwarded_https(scope, proxies):  # before the client is rewritten below
            scope["scheme"] = "https"
        forwarded = forwarded_client(scope, proxies)
        if forwarded is not None:  # every later look at the client sees the real one
            scope["client"] = (forwarded, 0)
        address = client_address(scope)
        # Health needs no credentials and writes nothing: it stays answered for monitoring.
        exhausted = await drawn(throttle.buckets, throttle.exhausted, address)
        if exhausted and scope.get("path") != "/v1/health":
            wait = await run_in_threadpool(throttle.retry_after, address)
            path = f"{scope.get('method')} {scope.get('path')}"
            await run_in_threadpool(
                record_refusal,
                services,
                "",
                "unknown",
                path,
                "too many refused requests from this address",
                "throttled",
                address,
            )
            await send_error(
                scope,
                send,
                429,
                "RATE_LIMITED",
                "ThrottlingException",
                f"too many refused requests from {address}; try again in {wait} s",
                {"Retry-After": str(wait)},
            )
            return
        # Video uploads stream to disk under their own limit; every other body is small.
        limit = (
            services.settings.max_video_bytes
            if scope.get("path") in VIDEO_UPLOADS
            else services.settings.max_request_bytes
        )
        declared = _content_length(scope)
        if declared == -1:
            await send_error(
                scope,
                send,
                400,
                "INVALID_PARAMETER",
                "InvalidParameterException",
                "the Content-Length header is not a whole number",
            )
            return
        if declared is not None and declared > limit:
            await send_error(
                scope,
                send,
                413,
                "REQUEST_TOO_LARGE",
                "ImageTooLargeException",
                f"the request is {format_bytes(declared)}; the limit is {format_bytes(limit)}",
            )
            return
        await self.app(scope, _counting(receive, limit), send)


# Routes whose body is a video, bounded by the video size limit instead of the request limit.
VIDEO_UPLOADS = frozenset({"/v1/videos", "/console/video"})


def _content_length(scope: Scope) -> int | None:
    """The declared length; None when absent; -1 when malformed."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() and len(text) <= 18 else -1
    return None


def _counting(receive: Receive, limit: int) -> Receive:
    received = 0

    async def wrapped() -> Message:
        nonlocal received
        message = await receive()
        if message.get("type") == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise RequestTooLarge(
                    f"the request body is larger than the limit of {format_bytes(limit)}"
                )
        return message

    return wrapped
