"""Vector indexes: one per collection, behind a small interface.

``ExactIndex`` keeps every descriptor of a collection in one float32 matrix and scores a query
against all of them: exact results, no training, memory of 512 bytes per face. It is rebuilt
from the database at start and kept in step with every committed write. Large collections
add compressed codes in front of it (:mod:`faceledger.store.approximate`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class Neighbor:
    face_id: str
    distance: float


class VectorIndex(Protocol):
    def add(self, items: Iterable[tuple[str, np.ndarray]]) -> None: ...

    def remove(self, face_ids: Iterable[str]) -> None: ...

    def search(self, query: np.ndarray, k: int, max_distance: float) -> list[Neighbor]: ...

    def __len__(self) -> int: ...


class ExactIndex:
    """Brute-force Euclidean search over a growing float32 matrix. Thread-safe."""

    def __init__(self, dimension: int = 128) -> None:
        self.dimension = dimension
        self._vectors = np.zeros((0, dimension), dtype=np.float32)
        self._norms = np.zeros(0, dtype=np.float32)
        self._ids: list[str] = []
        self._position: dict[str, int] = {}
        self._size = 0
        self._lock = threading.RLock()

    def __len__(self) -> int:
        return self._size

    def add(self, items: Iterable[tuple[str, np.ndarray]]) -> np.ndarray:
        """Adds or replaces each face's descriptor; returns the row each one is in."""
        items = list(items)
        rows = np.zeros(len(items), dtype=np.int64)
        if not items:
            return rows
        with self._lock:
            self._reserve(self._size + len(items))
            for number, (face_id, vector) in enumerate(items):
                vector = np.asarray(vector, dtype=np.float32).reshape(self.dimension)
                row = self._position.get(face_id)
                if row is None:
                    row = self._size
                    self._size += 1
                    self._ids.append(face_id)
                    self._position[face_id] = row
                self._vectors[row] = vector
                self._norms[row] = float(vector @ vector)
                rows[number] = row
        return rows

    def remove(self, face_ids: Iterable[str]) -> list[tuple[str, int]]:
        """Removes the faces; each hole is filled by the last row, so returns the faces that
        moved, each with its new row, in the order they moved (what keeps row numbers held
        elsewhere, as the approximate index's, right)."""
        moves: list[tuple[str, int]] = []
        with self._lock:
            for face_id in face_ids:
                row = self._position.pop(face_id, None)
                if row is None:
                    continue
                last = self._size - 1
                if row != last:  # move the last row into the hole
                    moved = self._ids[last]
                    self._vectors[row] = self._vectors[last]
                    self._norms[row] = self._norms[last]
                    self._ids[row] = moved
                    self._position[moved] = row
                    moves.append((moved, row))
                self._ids.pop()
                self._size -= 1
        return moves

    def search(self, query: np.ndarray, k: int, max_distance: float) -> list[Neighbor]:
        """Up to ``k`` nearest faces within ``max_distance``, nearest first."""
        query = np.asarray(query, dtype=np.float32).reshape(self.dimension)
        with self._lock:
            n = self._size
            if n == 0 or k <= 0:
                return []
            squared = self._norms[:n] - 2.0 * (self._vectors[:n] @ query) + float(query @ query)
            limit = max_distance * max_distance
            candidates = np.flatnonzero(squared <= limit)
            if candidates.size > k:
                nearest = np.argpartition(squared[candidates], k - 1)[:k]
                candidates = candidates[nearest]
            order = candidates[np.argsort(squared[candidates], kind="stable")]
            return [Neighbor(self._ids[i], float(np.sqrt(max(squared[i], 0.0)))) for i in order]

    def nearest_of(
        self, query: np.ndarray, rows: np.ndarray, k: int, max_distance: float
    ) -> list[Neighbor]:
        """:meth:`search` among the faces in ``rows`` only, computed the same way: what
        re-ranks an approximate index's candidates (rows it holds as :meth:`add` and
        :meth:`remove` report them, so no face id is looked up on the way)."""
        query = np.asarray(query, dtype=np.float32).reshape(self.dimension)
        with self._lock:
            rows = np.asarray(rows, dtype=np.int64).reshape(-1)
            if rows.size == 0 or k <= 0:
                return []
            squared = self._norms[rows] - 2.0 * (self._vectors[rows] @ query) + float(query @ query)
            keep = np.flatnonzero(squared <= max_distance * max_distance)
            order = keep[np.argsort(squared[keep], kind="stable")][:k]
            return [
                Neighbor(self._ids[rows[i]], float(np.sqrt(max(squared[i], 0.0)))) for i in order
            ]

    def snapshot(self) -> tuple[list[str], np.ndarray]:
        """Every face id and its descriptor, as they are now (copies)."""
        with self._lock:
            return list(self._ids), self._vectors[: self._size].copy()

    def _reserve(self, capacity: int) -> None:
        if capacity <= len(self._vectors):
            return
        grown = max(capacity, 2 * len(self._vectors), 1024)
        vectors = np.zeros((grown, self.dimension), dtype=np.float32)
        vectors[: self._size] = self._vectors[: self._size]
        norms = np.zeros(grown, dtype=np.float32)
        norms[: self._size] = self._norms[: self._size]
        self._vectors, self._norms = vectors, norms


class IndexSet:
    """The indexes of all collections, created on first use by ``make`` (exact by default)."""

    def __init__(
        self, dimension: int = 128, make: Callable[[int], VectorIndex] | None = None
    ) -> None:
        self.dimension = dimension
        self._make = make or ExactIndex
        self._indexes: dict[str, VectorIndex] = {}
        self._lock = threading.Lock()

    def get(self, collection_id: str) -> VectorIndex:
        with self._lock:
            index = self._indexes.get(collection_id)
            if index is None:
                index = self._indexes[collection_id] = self._make(self.dimension)
            return index

    def items(self) -> list[tuple[str, VectorIndex]]:
        with self._lock:
            return list(self._indexes.items())

    def drop(self, collection_id: str) -> None:
        with self._lock:
            self._indexes.pop(collection_id, None)
