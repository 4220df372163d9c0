"""Embed a dataset's images, one face per image, in worker processes, with a cache.

Evaluation images hold one subject each, centred (LFW's deep-funneled images are aligned so);
when a detector finds several faces the one nearest the image centre is the subject.
When no detector finds a face, a fixed centre box is embedded instead and the image is counted
as such in every report: dropping those pairs would flatter the accuracy.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from faceledger.evaluation.cache import EmbeddingCache
from faceledger.imaging import sha256_hex
from faceledger.vision import Box, Face, FaceEngine
from faceledger.vision.dnn.runtime import default_threads
from faceledger.vision.engine import MIN_FACE_PX
from faceledger.vision.models import face_model

# Median HOG box on LFW deep-funneled 250x250 images, as shares of the image size (YuNet's faces
# are given boxes of the same kind: faceledger.vision.engine.landmark_box).
CENTRE_BOX = (0.268, 0.32, 0.432, 0.432)


@dataclass(frozen=True)
class Pipeline:
    """How evaluation images are turned into descriptors."""

    detector: str = "yunet"
    min_face_px: int = MIN_FACE_PX
    upsample: int | None = None
    cnn_fallback: bool = True
    flip_fusion: bool = True
    jitter: int = 0
    backend: str = "onnx"
    recognizer: str = "dlib"

    def engine(self, threads: int | None = None) -> FaceEngine:
        return FaceEngine(**asdict(self), threads=threads)

    @classmethod
    def for_model(cls, name: str) -> Pipeline:
        """The pipeline of a face model as collections use it (``dlib``, ``sface`` or a
        version), so what is measured is what is served."""
        model = face_model(name)
        return cls(recognizer=model.recognizer, flip_fusion=model.flip_fusion)

    def key(self, engine_fingerprint: str) -> str:
        # The backend is part of the engine's fingerprint already.
        options = sorted(
            (k, v) for k, v in asdict(self).items() if k not in ("backend", "recognizer")
        )
        detection = FaceEngine.detection_fingerprint(self.detector, self.min_face_px)
        text = f"{engine_fingerprint}|{options}|{detection}|centre={CENTRE_BOX}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Embedded:
    method: str  # the detector ("yunet", "hog", "cnn") or "centre" (no face found: centre box)
    vector: np.ndarray


@dataclass
class EmbedRun:
    results: dict[str, Embedded]
    computed: int
    cached: int
    seconds: float

    @property
    def images_per_second(self) -> float:
        return self.computed / self.seconds if self.computed and self.seconds > 0 else 0.0

    def count(self, method: str) -> int:
        return sum(1 for e in self.results.values() if e.method == method)


def subject_face(faces: Sequence[Face], width: int, height: int) -> Face | None:
    """The face nearest the image centre (ties: the larger)."""
    if not faces:
        return None

    def rank(face: Face) -> tuple[float, float]:
        c = face.box.center
        return (c.x - width / 2) ** 2 + (c.y - height / 2) ** 2, -face.box.area

    return min(faces, key=rank)


def centre_box(width: int, height: int) -> Box:
    left, top, w, h = CENTRE_BOX
    return Box(round(left * width), round(top * height), round(w * width), round(h * height))


def embed_subjects(engine: FaceEngine, images: Sequence[np.ndarray]) -> list[Embedded]:
    """The subject of each image, embedded in one batch."""
    targets: list[Face | Box] = []
    methods = []
    for image in images:
        height, width = image.shape[:2]
        face = subject_face(engine.detect(image), width, height)
        methods.append(face.detector if face is not None else "centre")
        targets.append(face if face is not None else centre_box(width, height))
    embedded = engine.embed_many([(image, [t]) for image, t in zip(images, targets, strict=True)])
    return [Embedded(m, faces[0].embedding) for m, faces in zip(methods, embedded, strict=True)]


_worker_engine: FaceEngine | None = None


def _init_worker(pipeline: Pipeline, threads: int) -> None:
    global _worker_engine
    _worker_engine = pipeline.engine(threads)


def _embed_files(paths: list[str]) -> list[tuple[str, Embedded]]:
    assert _worker_engine is not None
    images = [_worker_engine.load(p) for p in paths]
    return list(zip(paths, embed_subjects(_worker_engine, images), strict=True))


def embed_images(
    root: Path,
    relpaths: Sequence[str],
    pipeline: Pipeline,
    *,
    cache_dir: Path | None,
    workers: int = 2,
    progress: Callable[[int], None] | None = None,
    chunk: int = 8,
) -> EmbedRun:
    """Embed the subject of each image under ``root``; results keyed by relative path."""
    started = time.perf_counter()
    hashes = {rel: sha256_hex((root / rel).read_bytes()) for rel in relpaths}
    engine_fingerprint = FaceEngine.fingerprint_for(
        pipeline.flip_fusion, pipeline.jitter, pipeline.backend, pipeline.recognizer
    )
    key = pipeline.key(engine_fingerprint)
    cache = EmbeddingCache(cache_dir) if cache_dir is not None else None
    cached = cache.get_many(sorted(set(hashes.values())), key) if cache else {}
    results: dict[str, Embedded] = {}
    todo = []
    for rel, sha in hashes.items():
        if sha in cached:
            method, vector = cached[sha]
            results[rel] = Embedded(method, vector)
        else:
            todo.append(rel)
    if progress and len(results):
        progress(len(results))
    compute_started = time.perf_counter()
    batches = [todo[i : i + chunk] for i in range(0, len(todo), chunk)]
    if batches:
        # One BLAS/OpenMP thread per worker: the workers are the parallelism.
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        # Spawned, not forked: a fork of a process that runs other threads (a web server, a
        # test client) can copy a lock some thread holds, and the child then waits forever.
        processes = max(1, min(workers, len(batches)))
        # Each worker gets its share of the cores for ONNX Runtime: no oversubscription.
        threads = max(1, default_threads() // processes)
        with ProcessPoolExecutor(
            max_workers=processes,
            initializer=_init_worker,
            initargs=(pipeline, threads),
            mp_context=multiprocessing.get_context("spawn"),
        ) as pool:
            absolute = [[str(root / rel) for rel in batch] for batch in batches]
            for batch, done in zip(batches, pool.map(_embed_files, absolute), strict=True):
                rows = []
                for rel, (_, embedded) in zip(batch, done, strict=True):
                    results[rel] = embedded
                    rows.append((hashes[rel], key, embedded.method, embedded.vector))
                if cache:
                    cache.put_many(rows)
                if progress:
                    progress(len(batch))
    if cache:
        cache.close()
    compute_seconds = time.perf_counter() - compute_started
    return EmbedRun(
        results,
        computed=len(todo),
        cached=len(relpaths) - len(todo),
        seconds=compute_seconds if todo else time.perf_counter() - started,
    )
