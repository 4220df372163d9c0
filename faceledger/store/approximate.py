"""Approximate search for large collections: every face's descriptor compressed to 4 bits a
dimension (faiss's fast-scan product quantizer, 64 bytes a face; 4 bits per two dimensions from
6 M faces) is scanned to find candidates, and the exact descriptors re-rank them.

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
    # At this size and above, codes of half the size: a scan reads every code for every query,
    # and at 10 M faces reading 64-byte codes alone takes ~19 ms on two cores. Half-size codes
    # need five times the candidates for the same matches, which costs less there (but more
    # below ~6 M faces): measured in benchmarks/search.py.
    compact_above: int = 6_000_000
    compact_min_candidates: int = 10_000
    train_sample: int = 200_000
    shards: int = 2  # scanned in parallel: one a core


class _Codes:
    """The compressed descriptors, in ``shards`` scanned side by side (faiss lets go of the
    GIL while it scans), and, for each label, the face's row in the exact index (so candidates
    are re-ranked without looking a face id up)."""

    def __init__(self, dimension: int, vectors: np.ndarray, settings: ApproximateSettings) -> None:
        import faiss  # a heavy import, needed only for large collections

        sample = vectors
        if len(vectors) > settings.train_sample:
            rng = np.random.default_rng(0)
            sample = vectors[rng.choice(len(vectors), settings.train_sample, replace=False)]
        compact = len(vectors) >= settings.compact_above
        self.min_candidates = (
            settings.compact_min_candidates if compact else settings.min_candidates
        )
        # 4-bit sub-quantizers for fast-scan's SIMD lookups, one a dimension (64 bytes a face)
        # or one per two (32 bytes); scanned in blocks of 64 codes (faster than 32 here).
        quantizers = dimension // 2 if compact else dimension
        first = faiss.IndexPQFastScan(dimension, quantizers, 4, faiss.METRIC_L2, 64)
        first.train(np.ascontiguousarray(sample, dtype=np.float32))
        self.shards = [first] + [faiss.clone_index(first) for _ in range(settings.shards - 1)]
        self.shard_labels = [_Growing(np.int64) for _ in self.shards]  # shard row -> label
        self.rows = _Growing(np.int64)  # label -> the face's row in the exact index
        self.alive = _Growing(bool)  # label -> not deleted or replaced since
        self.labels: dict[str, int] = {}  # face id -> its newest label
        self._next_shard = 0

    @property
    def deleted(self) -> int:
        return len(self.rows) - len(self.labels)

    @property
    def bytes_per_face(self) -> int:
        return int(self.shards[0].code_size)

    def add(self, face_ids: list[str], block: np.ndarray, rows: np.ndarray) -> None:
        """Codes for ``block`` (one float32 row per face id, each at ``rows`` in the exact
        index), into the next shard in turn."""
        if not face_ids:
            return
        start = len(self.rows)
        self.rows.extend(rows)
        self.alive.extend(np.ones(len(face_ids), dtype=bool))
        for offset, face_id in enumerate(face_ids):
            old = self.labels.get(face_id)
            if old is not None:  # replaced: the old code is never returned again
                self.alive.values[old] = False
            self.labels[face_id] = start + offset
        shard = self._next_shard
        self._next_shard = (shard + 1) % len(self.shards)
        self.shard_labels[shard].extend(np.arange(start, start + len(face_ids), dtype=np.int64))
        self.shards[shard].add(np.ascontiguousarray(block, dtype=np.float32))

    def remove(self, face_ids: Iterable[str], moves: list[tuple[str, int]]) -> None:
        """Filtered from results at once (the codes stay until the next rebuild); ``moves``
        are the exact index's, as its ``remove`` reported them."""
        for face_id in face_ids:
            label = self.labels.pop(face_id, None)
            if label is not None:
                self.alive.values[label] = False
        for face_id, row in moves:
            label = self.labels.get(face_id)
            if label is not None:
                self.rows.values[label] = row

    def candidates(self, query: np.ndarray, count: int) -> np.ndarray:
        """The exact index's rows of about ``count`` faces whose codes are nearest ``query``:
        from each shard its share by size (deleted faces left out)."""
        query = query.reshape(1, -1)
        total = max(1, len(self.rows))

        def scan(shard: int) -> np.ndarray:
            share = -(-count * len(self.shard_labels[shard]) // total)
            rows = self.shards[shard].search(query, max(1, share))[1][0]
            return self.shard_labels[shard].values[rows[rows >= 0]]

        if len(self.shards) == 1:
            labels = scan(0)
        else:
            labels = np.concatenate(list(_scanners().map(scan, range(len(self.shards)))))
        labels = labels[self.alive.values[labels]]
        return self.rows.values[labels]


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
            rows = self.exact.add(items)
            if self._codes is not None:
                self._codes.add(face_ids, block, rows)
            if self._journal is not None:
                self._journal.append(("add", (face_ids, block, rows)))
        self._maybe_build()

    def remove(self, face_ids: Iterable[str]) -> None:
        face_ids = list(face_ids)
        with self._lock:
            moves = self.exact.remove(face_ids)
            if self._codes is not None:
                self._codes.remove(face_ids, moves)
            if self._journal is not None:
                self._journal.append(("remove", (face_ids, moves)))
        self._maybe_build()

    def search(self, query: np.ndarray, k: int, max_distance: float) -> list[Neighbor]:
        if self._codes is None or k <= 0:
            return self.exact.search(query, k, max_distance)
        query = np.asarray(query, dtype=np.float32).reshape(self.dimension)
        with self._lock:  # the codes and the exact descriptors agree while it is held
            codes = self._codes
            assert codes is not None  # codes are only ever swapped for newer ones
            wanted = max(codes.min_candidates, self.settings.candidates * k)
            rows = codes.candidates(query, wanted)
            return self.exact.nearest_of(query, rows, k, max_distance)

    def build(self) -> None:
        """Train and fill the codes from the exact descriptors now, then swap it in with
        the changes made meanwhile replayed (searches are answered exactly until then)."""
        with self._lock:
            ids, vectors = self.exact.snapshot()
            self._journal = []
        try:
            log.info("building an approximate index of %d faces", len(ids))
            codes = _Codes(self.dimension, vectors, self.settings)
            for start in range(0, len(ids), 100_000):  # row i of the snapshot is row i
                end = min(start + 100_000, len(ids))
                codes.add(ids[start:end], vectors[start:end], np.arange(start, end))
            with self._lock:
                for op, change in self._journal or []:
                    if op == "add":
                        codes.add(*change)
                    else:
                        codes.remove(*change)
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
