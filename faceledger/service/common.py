"""Helpers every use case shares: request context, lookups, pagination, image reading."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Select, and_, or_
from sqlalchemy.orm import InstrumentedAttribute, Session

from faceledger.errors import InvalidPaginationToken, InvalidParameterError, NotFoundError
from faceledger.governance.ledger import Event
from faceledger.imaging import ImageLimits, decode_image, peek_size, sha256_hex
from faceledger.service.auth import Actor
from faceledger.service.context import Services
from faceledger.service.refusals import Refusal
from faceledger.service.results import FaceRecord, Page
from faceledger.store.schema import CollectionRow, FaceRow
from faceledger.vision import Box, Face, FaceEngine

MAX_PAGE = 4096


@dataclass(frozen=True)
class Request:
    """Who is asking and why: every use case takes one."""

    actor: Actor
    purpose: str | None = None
    case: str | None = None  # case or reference number
    legal_basis: str | None = None

    def event(self, operation: str, **fields: object) -> Event:
        stated = {k: v for k, v in (("case", self.case), ("legal_basis", self.legal_basis)) if v}
        if stated:
            fields["parameters"] = {**stated, **fields.get("parameters", {})}  # type: ignore[dict-item]
        return Event(
            operation=operation,
            actor_key_id=self.actor.key_id,
            actor_role=self.actor.role.value,
            purpose=self.purpose,
            **fields,
        )  # type: ignore[arg-type]


@dataclass(frozen=True)
class LoadedImage:
    rgb: np.ndarray
    sha256: str

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])


def record_refusal(
    services: Services,
    key_id: str,
    role: str,
    operation: str,
    reason: str,
    kind: str = "credentials",
    address: str | None = None,
) -> None:
    """Refused attempts go on the ledger too, bounded and aggregated
    (:mod:`faceledger.service.refusals`). ``kind``: credentials (missing, unknown or badly
    signed), role (not the role's to do), policy (the key's use policy), rule (another rule,
    e.g. reviewing one's own search), throttled (too many refusals from one address)."""
    services.refusals.record(Refusal(key_id, role, operation, reason, kind, address))


@contextmanager
def refusals_recorded(
    services: Services, request: Request, operation: str, kind: str, refusal: type[Exception]
) -> Iterator[None]:
    """Whatever ``refusal`` the block raises is recorded on the ledger as the caller's refused
    attempt, then raised; the record is written after any transaction inside the block ended."""
    try:
        yield
    except refusal as error:
        actor = request.actor
        message = getattr(error, "message", str(error))
        record_refusal(services, actor.key_id, actor.role.value, operation, message, kind)
        raise


# Images above this many pixels (as their header claims) are worked on one at a time.
HEAVY_PIXELS = 8_000_000


def read_image(services: Services, data: bytes) -> LoadedImage:
    """Decode a request's image; call within ``services.gate.slot()``."""
    size = peek_size(data)
    if size is not None and size[0] * size[1] > HEAVY_PIXELS:
        services.gate.heavy()
    limits = ImageLimits(
        services.settings.max_image_bytes,
        services.settings.max_image_pixels,
        services.settings.min_image_side,
    )
    return LoadedImage(decode_image(data, limits), sha256_hex(data))


def analyze(services: Services, image: LoadedImage, engine: FaceEngine | None = None) -> list[Face]:
    return (engine or services.engine).analyze(image.rgb)


def collection_model(services: Services, collection_id: str) -> str:
    """The face model version a collection is bound to (NotFoundError when it does not exist)."""
    with services.db.read() as session:
        return require_collection(session, collection_id).face_model_version


def collection_engine(services: Services, collection_id: str) -> FaceEngine:
    """The engine of the face model the collection is bound to: its descriptors are only ever
    compared with descriptors of the same model."""
    return services.engine_for(collection_model(services, collection_id))


def require_collection(session: Session, collection_id: str) -> CollectionRow:
    row = session.get(CollectionRow, collection_id)
    if row is None:
        raise NotFoundError(f"collection {collection_id!r} does not exist")
    return row


def face_record(row: FaceRow) -> FaceRecord:
    box = row.box
    return FaceRecord(
        face_id=row.face_id,
        collection_id=row.collection_id,
        external_image_id=row.external_image_id,
        image_id=row.image_id,
        box=Box(box["left"], box["top"], box["width"], box["height"]),
        image_width=int(box.get("image_width", 0)),
        image_height=int(box.get("image_height", 0)),
        confidence=row.confidence,
        user_id=row.user_id,
        created_at=row.created_at,
    )


def check_threshold(threshold: float) -> float:
    if not 0.0 <= threshold <= 100.0:
        raise InvalidParameterError("a similarity threshold is between 0 and 100")
    return threshold


def check_limit(value: int, name: str, upper: int = MAX_PAGE) -> int:
    if not 1 <= value <= upper:
        raise InvalidParameterError(f"{name} must be between 1 and {upper}")
    return value


TOKEN_PREFIX = "flt1."  # a token's version, so a token from elsewhere is told apart


def encode_token(last_key: str) -> str:
    return TOKEN_PREFIX + base64.urlsafe_b64encode(last_key.encode()).decode().rstrip("=")


def decode_token(token: object) -> str | None:
    """The key a page ends at; a token not made by :func:`encode_token` is refused."""
    if token is None or token == "":
        return None
    if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX) or len(token) > 1024:
        raise InvalidPaginationToken("the pagination token is not one this server issued")
    body = token[len(TOKEN_PREFIX) :]
    try:
        key = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise InvalidPaginationToken("the pagination token is not one this server issued") from None
    if not key or encode_token(key) != token:
        raise InvalidPaginationToken("the pagination token is not one this server issued")
    return key


def chronological_page(
    session: Session,
    query: Select[Any],
    created: InstrumentedAttribute[dt.datetime],
    key: InstrumentedAttribute[str],
    *,
    max_results: int,
    next_token: str | None,
) -> Page[Any]:
    """Rows oldest first, a page at a time: the token holds the last row's time and id, so
    rows added while paging are neither skipped nor repeated."""
    check_limit(max_results, "max results")
    after = decode_token(next_token)
    if after is not None:
        stamp, _, last = after.rpartition("|")
        try:
            moment = dt.datetime.fromisoformat(stamp)
        except ValueError:
            moment = None
        # Tokens this server issues hold UTC times; anything else was made elsewhere.
        if moment is None or moment.utcoffset() != dt.timedelta(0):
            raise InvalidPaginationToken("the pagination token is not one this server issued")
        query = query.where(or_(created > moment, and_(created == moment, key > last)))
    rows = list(session.scalars(query.order_by(created, key).limit(max_results + 1)))
    if len(rows) <= max_results:
        return Page(rows)
    last_row = rows[max_results - 1]
    token = f"{getattr(last_row, created.key).isoformat()}|{getattr(last_row, key.key)}"
    return Page(rows[:max_results], encode_token(token))
