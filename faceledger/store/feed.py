"""Vector indexes that follow the database, not the process.

Triggers write every insert and delete of a face to ``face_changes`` in the same transaction
(:class:`~faceledger.store.schema.FaceChangeRow`). Before an index answers, it catches up to the
newest change: one indexed ``max(seq)`` read when nothing changed, the new changes otherwise. So
a face indexed by the CLI is found by a running server's very next search, and a face deleted by
any process is never returned, whichever process holds the index.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from faceledger.store.approximate import ApproximateIndex, ApproximateSettings
from faceledger.store.database import Database
from faceledger.store.index import IndexSet, VectorIndex
from faceledger.store.schema import FaceChangeRow, FaceRow

# Changes kept in the feed when it is pruned; a process further behind than this rebuilds.
KEEP_CHANGES = 100_000


class FollowingIndexes:
    """Per-collection indexes kept in step with the database's face change feed."""

    def __init__(
        self, db: Database, dimension: int = 128, approximate: ApproximateSettings | None = None
    ) -> None:
        self.db = db
        self.dimension = dimension
        self.approximate = approximate
        self._indexes = self._new_set()
        self.applied = 0  # the newest change the indexes reflect
        self.rebuilds = 0
        self._lock = threading.Lock()

    def current(self, collection_id: str) -> VectorIndex:
        """The collection's index, caught up with every change committed so far."""
        self.catch_up()
        return self._indexes.get(collection_id)

    def rebuild(self) -> None:
        """Load every stored descriptor; one read transaction, so the faces and the change
        sequence they reflect are the same snapshot."""
        with self._lock, self.db.read() as session:
            self._rebuild(session)

    def catch_up(self) -> None:
        with self._lock, self.db.read() as session:
            newest = session.scalar(select(func.max(FaceChangeRow.seq))) or 0
            if newest <= self.applied:
                return
            oldest = session.scalar(select(func.min(FaceChangeRow.seq))) or 0
            if oldest > self.applied + 1:  # the changes we missed were pruned
                self._rebuild(session)
                return
            changes = session.execute(
                select(FaceChangeRow.collection_id, FaceChangeRow.face_id, FaceChangeRow.op)
                .where(FaceChangeRow.seq > self.applied, FaceChangeRow.seq <= newest)
                .order_by(FaceChangeRow.seq)
            ).all()
            last_op: dict[tuple[str, str], str] = {}
            for collection_id, face_id, op in changes:
                last_op[(collection_id, face_id)] = op
            added = [face_id for (_, face_id), op in last_op.items() if op == "add"]
            vectors = _embeddings(session, added)
            for (collection_id, face_id), op in last_op.items():
                index = self._indexes.get(collection_id)
                vector = vectors.get(face_id)
                if op == "add" and vector is not None:
                    index.add([(face_id, vector)])
                else:  # removed, or added and removed again within this batch
                    index.remove([face_id])
            self.applied = newest

    @contextmanager
    def frozen(self) -> Iterator[tuple[int, list[tuple[str, VectorIndex]]]]:
        """The change they reflect and every collection's index, held still (no catching up)
        while the block runs: what a snapshot saves."""
        with self._lock:
            yield self.applied, self._indexes.items()

    def collections(self) -> list[tuple[str, VectorIndex]]:
        return self._indexes.items()

    def restore(self, applied: int, loaded: list[tuple[str, list[str], np.ndarray]]) -> None:
        """Indexes from saved faces and descriptors that reflect change ``applied``."""
        indexes = self._new_set()
        for collection_id, ids, vectors in loaded:
            index = indexes.get(collection_id)
            for start in range(0, len(ids), 10_000):
                end = start + 10_000
                index.add(zip(ids[start:end], vectors[start:end], strict=True))
        self._allow_builds(indexes)
        with self._lock:
            self._indexes, self.applied = indexes, applied

    def _allow_builds(self, indexes: IndexSet) -> None:
        for _, index in indexes.items():  # large collections start building their codes
            if isinstance(index, ApproximateIndex):
                index.allow_builds()

    def _new_set(self) -> IndexSet:
        """Exact indexes, or (with ``approximate``) ones that add codes above a size."""
        if self.approximate is None:
            return IndexSet(self.dimension)
        settings = self.approximate
        # Loading builds nothing on the way; allow_builds() once everything is in.
        return IndexSet(self.dimension, lambda d: ApproximateIndex(d, settings, building=False))

    def _rebuild(self, session: Session) -> None:
        indexes = self._new_set()
        # The newest change first, then the faces: on PostgreSQL each statement sees its own
        # snapshot, so a face committed in between is loaded and its change applied again on
        # the next catch-up (adding is idempotent); the reverse order could miss it.
        newest = session.scalar(select(func.max(FaceChangeRow.seq))) or 0
        pending: dict[str, list[tuple[str, np.ndarray]]] = {}
        for collection_id, face_id, vector in _stored_descriptors(session):
            batch = pending.setdefault(collection_id, [])
            batch.append((face_id, vector))
            if len(batch) >= 10_000:
                indexes.get(collection_id).add(batch)
                pending[collection_id] = []
        for collection_id, batch in pending.items():
            indexes.get(collection_id).add(batch)
        self._allow_builds(indexes)
        self._indexes, self.applied = indexes, newest
        self.rebuilds += 1


def _stored_descriptors(session: Session) -> Iterator[tuple[str, str, np.ndarray]]:
    """(collection, face, descriptor) for every stored face, streamed."""
    if session.get_bind().dialect.name != "postgresql":
        query = select(FaceRow.collection_id, FaceRow.face_id, FaceRow.embedding)
        for collection_id, face_id, blob in session.execute(
            query.execution_options(yield_per=10_000)
        ):
            yield collection_id, face_id, np.frombuffer(blob, dtype=np.float32)
        return
    # pgvector's binary form (a 2-byte dimension, 2 unused, big-endian float32s) through a
    # server-side cursor: parsing the text form of a million descriptors takes a minute.
    connection = session.connection().connection.driver_connection
    with connection.cursor(name="faceledger_rebuild", binary=True) as cursor:
        cursor.itersize = 10_000
        cursor.execute("SELECT collection_id, face_id, embedding FROM faces")
        for collection_id, face_id, raw in cursor:
            yield collection_id, face_id, np.frombuffer(raw, dtype=">f4", offset=4).astype("<f4")


def _embeddings(session: Session, face_ids: list[str]) -> dict[str, np.ndarray]:
    found: dict[str, np.ndarray] = {}
    for start in range(0, len(face_ids), 500):  # SQLite's bound-parameter limit
        chunk = face_ids[start : start + 500]
        for face_id, blob in session.execute(
            select(FaceRow.face_id, FaceRow.embedding).where(FaceRow.face_id.in_(chunk))
        ):
            found[face_id] = np.frombuffer(blob, dtype=np.float32)
    return found


def prune_changes(session: Session, keep: int = KEEP_CHANGES) -> int:
    """Drop all but the newest ``keep`` changes (at least one stays: it tells every process how
    far the feed has come); returns how many were dropped."""
    newest = session.scalar(select(func.max(FaceChangeRow.seq))) or 0
    result = session.execute(
        delete(FaceChangeRow).where(FaceChangeRow.seq <= newest - max(keep, 1))
    )
    return int(result.rowcount or 0)
