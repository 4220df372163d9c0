"""Fair score normalisation without labels (FSN, Terhörst et al. 2020), measured honestly.

The descriptors of a calibration set are clustered (k-means); each cluster gets the distance at
which its own impostor pairs (both faces in the cluster) reach a target false match rate, and
an offset that moves that distance onto the global one. A comparison's distance is then
adjusted by the mean of its two faces' offsets: faces from a region of descriptor space where
different people look alike are pushed apart, so a threshold means more nearly the same risk for
everyone. No demographic label is used to fit or apply it; labels only measure it.

Offsets are measured out of fold: people are split into folds, and each face's offset comes from
a model fitted on the other folds' people, so no face is scored by a calibration that saw its
person.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from faceledger.evaluation.calibrate import pairwise_counts

DISTANCE_BINS = 40_000
DISTANCE_MAX = 2.5  # unit vectors: 2; dlib's descriptors stay well below


def kmeans(vectors: np.ndarray, k: int, *, seed: int = 0, iterations: int = 25) -> np.ndarray:
    """Centroids by k-means++ seeding and Lloyd's iterations (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    x = vectors.astype(np.float64)
    centroids = [x[rng.integers(len(x))]]
    nearest = ((x - centroids[0]) ** 2).sum(1)
    for _ in range(1, k):
        chosen = x[rng.choice(len(x), p=nearest / nearest.sum())]
        centroids.append(chosen)
        nearest = np.minimum(nearest, ((x - chosen) ** 2).sum(1))
    c = np.stack(centroids)
    for _ in range(iterations):
        labels = assign(x, c)
        for j in range(k):
            members = x[labels == j]
            if len(members):
                c[j] = members.mean(0)
    return c


def assign(vectors: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    x = vectors.astype(np.float64)
    d2 = (x**2).sum(1)[:, None] + (centroids**2).sum(1)[None, :] - 2.0 * x @ centroids.T
    return np.argmin(d2, axis=1)


def impostor_quantile(vectors: np.ndarray, identities: np.ndarray, fmr: float) -> float | None:
    """The distance below which a share ``fmr`` of the impostor pairs fall; None when there
    are too few pairs to show that rate (fewer than 3 / fmr)."""

    def count(distances: np.ndarray) -> np.ndarray:
        bins = np.minimum(distances * (DISTANCE_BINS / DISTANCE_MAX), DISTANCE_BINS - 1)
        return np.bincount(bins.astype(np.int64), minlength=DISTANCE_BINS)

    counts, _ = pairwise_counts(vectors.astype(np.float64), identities, count, DISTANCE_BINS)
    total = int(counts.sum())
    if total * fmr < 3:
        return None
    i = int(np.searchsorted(np.cumsum(counts), fmr * total))
    return (i + 1) * DISTANCE_MAX / DISTANCE_BINS


@dataclass(frozen=True)
class FsnModel:
    centroids: np.ndarray  # (k, d)
    offsets: np.ndarray  # (k,): added (halved, per face) to a pair's distance
    target_fmr: float

    def offsets_of(self, vectors: np.ndarray) -> np.ndarray:
        return self.offsets[assign(vectors, self.centroids)]


def fit_fsn(
    vectors: np.ndarray, identities: np.ndarray, k: int, *, target_fmr: float = 1e-3, seed: int = 0
) -> FsnModel:
    """Clusters and per-cluster offsets from a calibration set (descriptors and who each is:
    identities tell impostor pairs from genuine ones, nothing more)."""
    centroids = kmeans(vectors, k, seed=seed)
    labels = assign(vectors, centroids)
    overall = impostor_quantile(vectors, identities, target_fmr)
    if overall is None:
        raise ValueError("too few impostor pairs in the calibration set")
    offsets = np.full(k, np.nan)
    for j in range(k):
        members = labels == j
        local = impostor_quantile(vectors[members], identities[members], target_fmr)
        if local is not None:
            offsets[j] = overall - local
    # A cluster with too few impostor pairs to show the rate (few people: one person with
    # hundreds of photos fills a cluster of LFW) gets the typical offset, neither pushed nor
    # spared.
    measured = offsets[~np.isnan(offsets)]
    offsets[np.isnan(offsets)] = float(np.median(measured)) if measured.size else 0.0
    return FsnModel(centroids, offsets, target_fmr)


def out_of_fold_offsets(
    vectors: np.ndarray,
    identities: np.ndarray,
    k: int,
    *,
    folds: int = 10,
    target_fmr: float = 1e-3,
    seed: int = 0,
) -> np.ndarray:
    """Each face's offset from a model fitted on the other folds' people."""
    people = np.unique(identities)
    rng = np.random.default_rng(seed)
    fold_of = dict(zip(people.tolist(), rng.permutation(len(people)) % folds, strict=True))
    fold = np.array([fold_of[i] for i in identities.tolist()])
    offsets = np.zeros(len(vectors))
    for f in range(folds):
        test = fold == f
        model = fit_fsn(vectors[~test], identities[~test], k, target_fmr=target_fmr, seed=seed + f)
        offsets[test] = model.offsets_of(vectors[test])
    return offsets
