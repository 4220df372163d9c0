"""Create, list, describe and delete collections."""

from __future__ import annotations

import re

from sqlalchemy import delete, func, select

from faceledger.errors import AlreadyExistsError, InvalidParameterError
from faceledger.service.common import (
    Request,
    check_limit,
    decode_token,
    encode_token,
    require_collection,
)
from faceledger.service.context import Services
from faceledger.service.crops import default_keep
from faceledger.service.results import CollectionInfo, CollectionSummary, Page
from faceledger.store.schema import CollectionRow, FaceRow, UserRow

# Rekognition's pattern for collection ids.
COLLECTION_ID = re.compile(r"^[a-zA-Z0-9_.\-]{1,255}$")


def create_collection(
    services: Services,
    request: Request,
    collection_id: str,
    *,
    face_model: str | None = None,
    keep_face_crops: bool | None = None,
) -> CollectionInfo:
    """A new, empty collection bound to ``face_model`` (``sface``, ``dlib`` or a version;
    the server's default model when None) for its whole life. ``keep_face_crops``: whether
    each face keeps an encrypted crop for review (None: :func:`crops.default_keep`)."""
    request.actor.require("collections:manage")
    if not COLLECTION_ID.match(collection_id):
        raise InvalidParameterError(
            "a collection id is 1-255 characters of letters, digits, '_', '.' and '-'"
        )
    version = services.model_version(face_model)
    with services.write_lock, services.db.write() as session:
        if session.get(CollectionRow, collection_id) is not None:
            raise AlreadyExistsError(f"collection {collection_id!r} already exists")
        if keep_face_crops is None:
            keep_face_crops = default_keep(services, session, collection_id)
        row = CollectionRow(
            collection_id=collection_id,
            face_model_version=version,
            created_by=request.actor.key_id,
            keep_face_crops=keep_face_crops,
        )
        session.add(row)
        session.flush()
        services.ledger.append(
            session,
            request.event(
                "CreateCollection",
                collection_id=collection_id,
                parameters={"face_model_version": version, "keep_face_crops": keep_face_crops},
            ),
        )
        info = CollectionInfo(collection_id, 0, 0, version, row.created_at, keep_face_crops)
    return info


def describe_collection(services: Services, request: Request, collection_id: str) -> CollectionInfo:
    request.actor.require("collections:read")
    with services.db.read() as session:
        row = require_collection(session, collection_id)
        faces = session.scalar(select(func.count()).where(FaceRow.collection_id == collection_id))
        users = session.scalar(select(func.count()).where(UserRow.collection_id == collection_id))
        return CollectionInfo(
            collection_id,
            int(faces or 0),
            int(users or 0),
            row.face_model_version,
            row.created_at,
            row.keep_face_crops,
            row.retention_days,
        )


def list_collections(
    services: Services, request: Request, *, max_results: int = 1000, next_token: str | None = None
) -> Page[CollectionSummary]:
    request.actor.require("collections:read")
    check_limit(max_results, "max results")
    after = decode_token(next_token)
    with services.db.read() as session:
        query = select(CollectionRow.collection_id, CollectionRow.face_model_version).order_by(
            CollectionRow.collection_id
        )
        if after is not None:
            query = query.where(CollectionRow.collection_id > after)
        rows = [CollectionSummary(*row) for row in session.execute(query.limit(max_results + 1))]
    more = len(rows) > max_results
    rows = rows[:max_results]
    return Page(rows, encode_token(rows[-1].collection_id) if more else None)


def delete_collection(services: Services, request: Request, collection_id: str) -> int:
    """Delete a collection with all its faces and users; returns how many faces went."""
    request.actor.require("collections:manage")
    services.forget_saved_index()
    with services.write_lock, services.db.write() as session:
        require_collection(session, collection_id)
        faces = session.execute(
            delete(FaceRow).where(FaceRow.collection_id == collection_id)
        ).rowcount
        session.execute(delete(UserRow).where(UserRow.collection_id == collection_id))
        session.execute(delete(CollectionRow).where(CollectionRow.collection_id == collection_id))
        services.ledger.append(
            session,
            request.event(
                "DeleteCollection",
                collection_id=collection_id,
                results={"deleted_faces": faces},
            ),
        )
    return int(faces)
