"""Approximate search for large collections: every face's descriptor compressed to 4 bits a
dimension (faiss's fast-scan product quantizer, 64 bytes a face) is scanned to find candidates,
and the exact descriptors re-rank them.

So every distance, similarity and false match rate reported is exact; only *which* faces are
found is approximate (recall is measured by ``benchmarks/search.py``). The exact descriptors
stay in an :class:`ExactIndex` beside the codes: it answers alone below ``approximate_above``
faces, answers while the codes are built in the background, and is what the codes are
rebuilt from.

Why a scan of compact codes, and not an inverted file (faiss IVF) or a graph (HNSW: usearch,
hnswlib): face descriptors of a model that spreads identities evenly over the sphere (SFace)
have no clusters for an inverted file to exploit, and the matches a threshold of 80 admits are
look-alikes scattered across the gallery. Measured on this machine at 1 M faces
(``benchmarks/search.py``, the README's scale section), IVF4096 with nprobe 128 and HNSW with
ef 128 found about half of them; a scan of 4-bit codes re-ranked exactly found all of them at
both 80 and 99 within the latency target, adds faces without retraining, and deletes by
filtering.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from faceledger.store.index import ExactIndex, Neighbor

log = logging.getLogger("faceledger.index")


@dataclass(frozen=True)
class ApproximateSettings:
    above: int = 200_000  # faces; below, exact search only
    candidates: int = 20  # codes fetched per result asked for, before exact re-ranking
    min_candidates: int = 2_000
    train_sample: int = 200_000
    shards: int = 2  # scanned in parallel: one a core


class _Codes:
    """The compressed descriptors, in ``shards`` scanned side by side (faiss lets go of the
    GIL while it scans), and the face each label stands for."""

    def __init__(self, dimension: int, vectors: np.ndarray, settings: ApproximateSettings) -> None:
        import faiss  # a heavy import, needed only for large collections

        sample = vectors
        if len(vectors) > settings.train_sample:
            rng = np.random.default_rng(0)
            sample = vectors[rng.choice(len(vectors), settings.train_sample, replace=False)]
        # One 4-bit sub-quantizer per dimension: fast-scan's SIMD lookups, 64 bytes a face.
        first = faiss.IndexPQFastScan(dimension, dimension, 4)
        first.train(np.ascontiguousarray(sample, dtype=np.float32))
        self.shards = [first] + [faiss.clone_index(first) for _ in range(settings.shards - 1)]
        self.shard_labels = [_Growing(np.int64) for _ in self.shards]  # shard row -> label
        self.face_ids = _Growing(object)  # label -> face id
        self.alive = _Growing(bool)  # label -> not deleted or replaced since
        self.labels: dict[str, int] = {}
        self._next_shard = 0

    @property
    def deleted(self) -> int:
        return len(self.face_ids) - len(self.labels)

    def add(self, face_ids: list[str], block: np.ndarray) -> None:
        """Codes for ``block`` (one float32 row per face id), into the next shard in turn."""
        if not face_ids:
            return
        start = len(self.face_ids)
        for offset, face_id in enumerate(face_ids):
            old = self.labels.get(face_id)
            if old is not None:  # replaced: the old code is never returned again
                self.alive.values[old] = False
            self.labels[face_id] = start + offset
        self.face_ids.extend(np.array(face_ids, dtype=object))
        self.alive.extend(np.ones(len(face_ids), dtype=bool))
        shard = self._next_shard
        self._next_shard = (shard + 1) % len(self.shards)
        self.shard_labels[shard].extend(np.arange(start, start + len(face_ids), dtype=np.int64))
        self.shards[shard].add(np.ascontiguousarray(block, dtype=np.float32))

    def remove(self, face_ids: Iterable[str]) -> None:
        """Filtered from results at once; the codes stay until the next rebuild."""
        for face_id in face_ids:
            label = self.labels.pop(face_id, None)
            if label is not None:
                self.alive.values[label] = False

    def candidates(self, query: np.ndarray, count: int) -> list[str]:
        """The ``count`` faces whose codes are nearest ``query`` (fewer once deleted ones are
        left out)."""
        query = query.reshape(1, -1)

        def scan(shard: int) -> tuple[np.ndarray, np.ndarray]:
            distances, rows = self.shards[shard].search(query, count)
            found = rows[0] >= 0
            return distances[0][found], self.shard_labels[shard].values[rows[0][found]]

        if len(self.shards) == 1:
            distances, labels = scan(0)
        else:
            parts = list(_scanners().map(scan, range(len(self.shards))))
            distances = np.concatenate([d for d, _ in parts])
            labels = np.concatenate([lab for _, lab in parts])
            if len(labels) > count:
                keep = np.argpartition(distances, count - 1)[:count]
                labels = labels[keep]
        labels = labels[self.alive.values[labels]]
        return self.face_ids.values[labels].tolist()


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _scanners() -> ThreadPoolExecutor:
    """One pool for every collection's scans, a thread a core."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max(2, os.cpu_count() or 2), "codes-scan")
        return _pool


class _Growing:
    """A numpy array that grows by doubling; ``values`` is the filled part."""

    def __init__(self, dtype: type) -> None:
        self._data = np.zeros(1024, dtype=dtype)
        self._size = 0

    def __len__(self) -> int:
        return self._size

    @property
    def values(self) -> np.ndarray:
        return self._data[: self._size]

    def extend(self, more: np.ndarray) -> None:
        needed = self._size + len(more)
        if needed > len(self._data):
            grown = np.zeros(max(needed, 2 * len(self._data)), dtype=self._data.dtype)
            grown[: self._size] = self._data[: self._size]
            self._data = grown
        self._data[self._size : needed] = more
        self._size = needed


class ApproximateIndex:
    """A collection's index: exact below ``settings.above`` faces, a scan of codes
    re-ranked exactly above it. Thread-safe; building never blocks searches, adds or deletes.
    """

    def __init__(
        self,
        dimension: int = 128,
        settings: ApproximateSettings | None = None,
        *,
        building: bool = True,
    ) -> None:
        self.dimension = dimension
        self.building = building  # False while a bulk load is under way
        self.settings = settings or ApproximateSettings()
        self.exact = ExactIndex(dimension)
        self._codes: _Codes | None = None
        self._journal: list[tuple[str, Any]] | None = None  # changes while building
        self._lock = threading.RLock()
        self._builder: threading.Thread | None = None
        self._built_size = 0
        self.builds = 0

    def __len__(self) -> int:
        return len(self.exact)

    @property
    def approximate(self) -> bool:
        return self._codes is not None

    def add(self, items: Iterable[tuple[str, np.ndarray]]) -> None:
        items = [(f, np.asarray(v, dtype=np.float32).reshape(self.dimension)) for f, v in items]
        if not items:
            return
        face_ids = [f for f, _ in items]
        block = np.stack([v for _, v in items])
        with self._lock:
            self.exact.add(items)
            if self._codes is not None:
                self._codes.add(face_ids, block)
            if self._journal is not None:
                self._journal.append(("add", (face_ids, block)))
        self._maybe_build()

    def remove(self, face_ids: Iterable[str]) -> None:
        face_ids = list(face_ids)
        with self._lock:
            self.exact.remove(face_ids)
            if self._codes is not None:
                self._codes.remove(face_ids)
            if self._journal is not None:
                self._journal.append(("remove", face_ids))
        self._maybe_build()

    def search(self, query: np.ndarray, k: int, max_distance: float) -> list[Neighbor]:
        if self._codes is None or k <= 0:
            return self.exact.search(query, k, max_distance)
        query = np.asarray(query, dtype=np.float32).reshape(self.dimension)
        wanted = max(self.settings.min_candidates, self.settings.candidates * k)
        with self._lock:  # the codes and the exact descriptors agree while it is held
            assert self._codes is not None  # codes are only ever swapped for newer ones
            found = self._codes.candidates(query, wanted)
            return self.exact.nearest_of(query, found, k, max_distance)

    def build(self) -> None:
        """Train and fill the codes from the exact descriptors now, then swap it in with
        the changes made meanwhile replayed (searches are answered exactly until then)."""
        with self._lock:
            ids, vectors = self.exact.snapshot()
            self._journal = []
        try:
            log.info("building an approximate index of %d faces", len(ids))
            codes = _Codes(self.dimension, vectors, self.settings)
            for start in range(0, len(ids), 100_000):
                codes.add(ids[start : start + 100_000], vectors[start : start + 100_000])
            with self._lock:
                for op, change in self._journal or []:
                    if op == "add":
                        codes.add(*change)
                    else:
                        codes.remove(change)
                self._codes = codes
                self._built_size = len(ids)
                self.builds += 1
            log.info("approximate index of %d faces ready", len(ids))
        finally:
            with self._lock:
                self._journal = None

    def allow_builds(self) -> None:
        """After a bulk load: build the codes in the background if the size calls for it."""
        self.building = True
        self._maybe_build()

    def wait(self, timeout: float | None = None) -> None:
        """Until a background build under way has finished (tests and benchmarks)."""
        builder = self._builder
        if builder is not None:
            builder.join(timeout)

    def _maybe_build(self) -> None:
        """Build when the collection reaches ``above`` faces; build again when it has doubled
        since (the codes were trained on a smaller gallery) or a fifth of the codes are of
        deleted faces."""
        with self._lock:
            if (
                not self.building
                or len(self.exact) < self.settings.above
                or (self._builder is not None and self._builder.is_alive())
            ):
                return
            codes = self._codes
            fresh = codes is not None and (
                len(self.exact) < 2 * self._built_size and codes.deleted < self._built_size / 5
            )
            if fresh:
                return
            self._builder = threading.Thread(target=self.build, name="index-build", daemon=True)
            self._builder.start()
