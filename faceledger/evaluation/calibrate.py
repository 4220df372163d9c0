"""Build the similarity -> false-match-rate table from every cross-identity pair of LFW.

All images are embedded (cached), then every pair of images is scored in blocks: pairs of two
different people are impostors, pairs of one person genuine. Images where no detector found a
face are left out, since what is calibrated is the engine's output on faces it found.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np

from faceledger.evaluation import lfw
from faceledger.evaluation.embedder import Pipeline, embed_images
from faceledger.vision.similarity import (
    GRID_SIZE,
    Calibration,
    distance_to_similarity,
    similarity_bins,
)


def pairwise_histograms(
    vectors: np.ndarray, identities: np.ndarray, block: int = 1024
) -> tuple[np.ndarray, np.ndarray]:
    """Similarity histograms of all unordered pairs (i < j): (impostor, genuine)."""
    impostor = np.zeros(GRID_SIZE, dtype=np.int64)
    genuine = np.zeros(GRID_SIZE, dtype=np.int64)
    squared = np.einsum("ij,ij->i", vectors, vectors)
    n = len(vectors)
    for start in range(0, n, block):
        stop = min(start + block, n)
        rows = vectors[start:stop]
        d2 = squared[start:stop, None] + squared[None, :] - 2.0 * rows @ vectors.T
        distances = np.sqrt(np.maximum(d2, 0.0))
        upper = np.arange(n)[None, :] > np.arange(start, stop)[:, None]  # each pair once
        same = identities[start:stop, None] == identities[None, :]
        sims = distance_to_similarity(distances)
        impostor += similarity_bins(sims[upper & ~same])
        genuine += similarity_bins(sims[upper & same])
    return impostor, genuine


def calibrate_lfw(
    data: Path | str | None = None,
    *,
    pipeline: Pipeline | None = None,
    limit: int | None = None,
    cache_dir: Path | None = None,
    workers: int = 2,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> Calibration:
    pipeline = pipeline or Pipeline()
    root = lfw.resolve_lfw_dir(data)
    images = lfw.all_images(root)
    if limit is not None:
        images = images[:limit]
    if on_total:
        on_total(len(images))
    run = embed_images(
        root / "images", images, pipeline, cache_dir=cache_dir, workers=workers, progress=progress
    )
    kept = [rel for rel in images if run.results[rel].method != "centre"]
    vectors = np.stack([run.results[rel].vector for rel in kept]).astype(np.float64)
    identities = np.array([lfw.identity_of(rel) for rel in kept])
    impostor, genuine = pairwise_histograms(vectors, identities)
    return Calibration(
        impostor_counts=impostor,
        genuine_counts=genuine,
        description={
            "dataset": "LFW deep-funneled, all images; every cross-identity pair is an impostor",
            "images": len(kept),
            "images_without_face_left_out": len(images) - len(kept),
            "identities": len(set(identities.tolist())),
            "pipeline": asdict(pipeline),
            "created": dt.date.today().isoformat(),
            "command": "faceledger eval calibrate",
        },
    )
