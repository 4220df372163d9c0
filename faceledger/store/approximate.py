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
import threading
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from faceledger.store.index import ExactIndex, Neighbor

log = logging.getLogger("faceledger.index")


@dataclass(frozen=True)
class ApproximateSettings:
    above: int = 200_000  # faces; below, exact search only
    candidates: int = 20  # codes fetched per result asked for, before exact re-ranking
    min_candidates: int = 2_000
    train_sample: int = 200_000


class _Codes:
    """The compressed descriptors and the face each label stands for."""

    def __init__(self, dimension: int, vectors: np.ndarray, settings: ApproximateSettings) -> None:
        import faiss  # a heavy import, needed only for large collections

        # One 4-bit sub-quantizer per dimension: fast-scan's SIMD lookups, 64 bytes a face.
        self.index = faiss.IndexPQFastScan(dimension, dimension, 4)
        sample = vectors
        if len(vectors) > settings.train_sample:
            rng = np.random.default_rng(0)
            sample = vectors[rng.choice(len(vectors), settings.train_sample, replace=False)]
        self.index.train(np.ascontiguousarray(sample, dtype=np.float32))
        self.face_ids: list[str | None] = []
        self.labels: dict[str, int] = {}

    def add(self, items: list[tuple[str, np.ndarray]]) -> None:
        if not items:
            return
        for face_id, _ in items:
            old = self.labels.get(face_id)
            if old is not None:  # replaced: the old code is never returned again
                self.face_ids[old] = None
            self.labels[face_id] = len(self.face_ids)
            self.face_ids.append(face_id)
        # Labels are positions: the codes are added in the order the ids were.
        self.index.add(np.ascontiguousarray(np.stack([v for _, v in items]), dtype=np.float32))

    def remove(self, face_ids: Iterable[str]) -> None:
        """Filtered from results at once; the codes stay until the next rebuild."""
        for face_id in face_ids:
            label = self.labels.pop(face_id, None)
            if label is not None:
                self.face_ids[label] = None

    def candidates(self, query: np.ndarray, count: int) -> list[str]:
        _, labels = self.index.search(query.reshape(1, -1), count)
        found = []
        for label in labels[0]:
            if label >= 0:
                face_id = self.face_ids[label]
                if face_id is not None:
                    found.append(face_id)
        return found


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
        self._journal: list[tuple[str, list]] | None = None  # changes while building
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
        with self._lock:
            self.exact.add(items)
            if self._codes is not None:
                self._codes.add(items)
            if self._journal is not None:
                self._journal.append(("add", items))
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
        codes = self._codes
        if codes is None or k <= 0:
            return self.exact.search(query, k, max_distance)
        query = np.asarray(query, dtype=np.float32).reshape(self.dimension)
        wanted = max(self.settings.min_candidates, self.settings.candidates * k)
        with self._lock:
            found = codes.candidates(query, wanted)
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
                end = start + 100_000
                codes.add(list(zip(ids[start:end], vectors[start:end], strict=True)))
            with self._lock:
                for op, change in self._journal or []:
                    if op == "add":
                        codes.add(change)
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
            if codes is not None:
                deleted = len(codes.face_ids) - len(codes.labels)
                if len(self.exact) < 2 * self._built_size and deleted < self._built_size / 5:
                    return
            self._builder = threading.Thread(target=self.build, name="index-build", daemon=True)
            self._builder.start()
