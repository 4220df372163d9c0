"""Build the similarity -> false-match-rate table from every cross-identity pair of LFW.

All images are embedded (cached), then every pair of images is scored in blocks: pairs of two
different people are impostors, pairs of one person genuine. Images where no detector found a
face are left out, since what is calibrated is the engine's output on faces it found.

dlib's similarity is a fixed map of its distance. Another model's map is measured first: its
impostor distances are counted finely, and each of a ladder of false match rates is pinned to
the similarity where dlib's shipped table reaches the same rate
(:func:`~faceledger.vision.similarity.matched_scale`); its table is then counted on that scale.
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
    DLIB_SCALE,
    GRID_SIZE,
    Calibration,
    ScoreScale,
    matched_scale,
    similarity_bins,
)

# Fine distance bins for measuring another model's impostor distances (unit vectors: 0-2).
DISTANCE_BINS = 40_000
DISTANCE_MAX = 2.0


def pairwise_counts(
    vectors: np.ndarray,
    identities: np.ndarray,
    count: Callable[[np.ndarray], np.ndarray],
    size: int,
    block: int = 1024,
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` (distances -> histogram of ``size`` bins) over all unordered pairs (i < j),
    impostor and genuine apart."""
    impostor = np.zeros(size, dtype=np.int64)
    genuine = np.zeros(size, dtype=np.int64)
    squared = np.einsum("ij,ij->i", vectors, vectors)
    n = len(vectors)
    for start in range(0, n, block):
        stop = min(start + block, n)
        rows = vectors[start:stop]
        d2 = squared[start:stop, None] + squared[None, :] - 2.0 * rows @ vectors.T
        distances = np.sqrt(np.maximum(d2, 0.0))
        upper = np.arange(n)[None, :] > np.arange(start, stop)[:, None]  # each pair once
        same = identities[start:stop, None] == identities[None, :]
        impostor += count(distances[upper & ~same])
        genuine += count(distances[upper & same])
    return impostor, genuine


def pairwise_histograms(
    vectors: np.ndarray,
    identities: np.ndarray,
    scale: ScoreScale = DLIB_SCALE,
    block: int = 1024,
) -> tuple[np.ndarray, np.ndarray]:
    """Similarity histograms of all unordered pairs (i < j): (impostor, genuine)."""
    return pairwise_counts(
        vectors, identities, lambda d: similarity_bins(scale.similarity(d)), GRID_SIZE, block
    )


def measured_scale(
    vectors: np.ndarray, identities: np.ndarray, reference: Calibration
) -> ScoreScale:
    """The scale on which these descriptors' impostors reach each similarity as often as
    ``reference``'s do."""

    def count(distances: np.ndarray) -> np.ndarray:
        bins = np.minimum(distances * (DISTANCE_BINS / DISTANCE_MAX), DISTANCE_BINS - 1)
        return np.bincount(bins.astype(np.int64), minlength=DISTANCE_BINS)

    impostor, _ = pairwise_counts(vectors, identities, count, DISTANCE_BINS)
    below = np.cumsum(impostor) / impostor.sum()  # share of impostors under each bin's top

    def distance_at_fmr(fmr: float) -> float | None:
        if fmr * impostor.sum() < 30:
            return None
        i = int(np.searchsorted(below, fmr))
        before = below[i - 1] if i else 0.0
        within = (fmr - before) / (below[i] - before) if below[i] > before else 1.0
        return (i + within) * DISTANCE_MAX / DISTANCE_BINS

    return matched_scale(reference, distance_at_fmr)


def calibrate_lfw(
    data: Path | str | None = None,
    *,
    pipeline: Pipeline | None = None,
    limit: int | None = None,
    cache_dir: Path | None = None,
    workers: int = 2,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
    reference: Calibration | None = None,
) -> Calibration:
    """``reference``: the table another model's scale is matched to (dlib's shipped one)."""
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
    scale = DLIB_SCALE
    if pipeline.recognizer != "dlib":
        scale = measured_scale(vectors, identities, reference or Calibration.load())
    impostor, genuine = pairwise_histograms(vectors, identities, scale)
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
            "command": f"faceledger eval calibrate --recognizer {pipeline.recognizer}",
            "scale": "fixed logistic"
            if pipeline.recognizer == "dlib"
            else "impostor distance quantiles matched to dlib's table",
        },
        scale=scale,
    )
