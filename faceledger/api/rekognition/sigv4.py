"""AWS Signature Version 4, verified on the server.

The client signs a canonical form of the request with a key derived from its secret, the date,
the region and the service; the server recomputes the signature with the stored secret and
compares in constant time. Requests more than 5 minutes from the server's clock are refused,
so a captured request cannot be replayed later. The payload hash in the canonical request is
always computed from the body received: a client's ``X-Amz-Content-Sha256`` must equal it (so a
captured signature cannot carry another body), and ``UNSIGNED-PAYLOAD`` is refused. The
credential scope must name this service and a region the server accepts.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote

from faceledger.errors import AuthenticationError

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW = dt.timedelta(minutes=5)
_AUTH = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<credential>[^,\s]+),\s*"
    r"SignedHeaders=(?P<signed>[^,\s]+),\s*Signature=(?P<signature>[0-9a-f]{64})$"
)


@dataclass(frozen=True)
class SignedRequest:
    access_key_id: str
    date: str  # YYYYMMDD
    region: str
    service: str
    signed_headers: list[str]
    signature: str
    amz_date: str  # YYYYMMDDTHHMMSSZ


def parse_authorization(headers: Mapping[str, str]) -> SignedRequest:
    header = headers.get("authorization")
    if not header:
        raise AuthenticationError("the request is not signed (no Authorization header)")
    match = _AUTH.match(header.strip())
    if match is None:
        raise AuthenticationError(f"the Authorization header is not {ALGORITHM}")
    parts = match["credential"].split("/")
    if len(parts) != 5 or parts[4] != "aws4_request":
        raise AuthenticationError("the credential scope is malformed")
    amz_date = headers.get("x-amz-date", "")
    return SignedRequest(
        parts[0],
        parts[1],
        parts[2],
        parts[3],
        match["signed"].split(";"),
        match["signature"],
        amz_date,
    )


def verify(
    signed: SignedRequest,
    secret: str,
    *,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
    regions: Collection[str] = ("us-east-1",),
    service: str = "rekognition",
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> None:
    """Raise AuthenticationError unless the signature is right, fresh, over this body and for
    an accepted region."""
    try:
        when = dt.datetime.strptime(signed.amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        raise AuthenticationError("X-Amz-Date is missing or malformed") from None
    if abs(now() - when) > MAX_SKEW:
        raise AuthenticationError(
            "the request is signed more than 5 minutes from the server's "
            "time (expired, or the clocks differ)"
        )
    if signed.date != signed.amz_date[:8] or signed.service != service:
        raise AuthenticationError("the credential scope does not match the request")
    if signed.region not in regions:
        raise AuthenticationError(
            f"the credential scope names region {signed.region[:32]!r}; this server accepts "
            f"{', '.join(sorted(regions))} (FACELEDGER_AWS_REGIONS)"
        )
    if "host" not in signed.signed_headers:
        raise AuthenticationError("the Host header must be signed")
    payload_hash = hashlib.sha256(body).hexdigest()
    claimed = headers.get("x-amz-content-sha256")
    if claimed is not None and claimed != payload_hash:
        raise AuthenticationError(
            "X-Amz-Content-Sha256 does not match the body received (unsigned payloads are "
            "not accepted: the signature must cover the body)"
        )
    expected = signature(
        secret, signed, method=method, path=path, query=query, headers=headers, body=body
    )
    if not hmac.compare_digest(expected, signed.signature):
        raise AuthenticationError(
            "the request signature does not match (wrong secret, or the "
            "request was changed after signing)"
        )


def signature(
    secret: str,
    signed: SignedRequest,
    *,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
) -> str:
    """The signature of a request; the payload hash is the body's own, never a header's."""
    canonical = "\n".join(
        [
            method.upper(),
            quote(path or "/", safe="/~"),
            _canonical_query(query),
            "".join(f"{name}:{_trim(headers.get(name, ''))}\n" for name in signed.signed_headers),
            ";".join(signed.signed_headers),
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{signed.date}/{signed.region}/{signed.service}/aws4_request"
    to_sign = "\n".join(
        [ALGORITHM, signed.amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = _hmac(f"AWS4{secret}".encode(), signed.date)
    for part in (signed.region, signed.service, "aws4_request"):
        key = _hmac(key, part)
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def _trim(value: str) -> str:
    return " ".join(value.split())


def _canonical_query(query: str) -> str:
    pairs = sorted(parse_qsl(query, keep_blank_values=True))
    return "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in pairs)
