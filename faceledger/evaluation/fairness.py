"""Demographic differentials: false match and false non-match rates per group, with confidence
intervals that respect that one person's images are not independent.

Impostor pairs are drawn *within* a group (two different people of the same group): pairs
across groups are easy to tell apart and would hide the effect (NIST FRVT part 3 does the same).
Confidence intervals come from a bootstrap over identities: people are resampled with
replacement, every pair between two resampled people counts as often as they were drawn.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from faceledger.vision.similarity import Calibration, distance_to_similarity, similarity_bins

MIN_IDENTITIES = 10  # fewer people than this: no figure, only "too small"
MIN_IMPOSTOR_PAIRS = 1_000
MIN_GENUINE_PAIRS = 50


@dataclass(frozen=True)
class Rate:
    """A rate with its 95 % interval; ``value`` is None when the sample is too small."""

    value: float | None
    low: float | None
    high: float | None
    errors: int
    trials: int
    identities: int
    upper_bound_only: bool = False
    note: str = ""


@dataclass
class GroupStats:
    group: str
    images: int
    identities: int
    impostor_pairs: int
    genuine_pairs: int
    calibration: Calibration
    fmr: dict[float, Rate] = field(default_factory=dict)
    fnmr: dict[float, Rate] = field(default_factory=dict)


@dataclass
class _Pairs:
    """Per-identity pair counts for one group, enough to recompute rates for any reweighting."""

    images_per_identity: np.ndarray  # (K,)
    genuine_per_identity: np.ndarray  # (K,)
    misses: np.ndarray  # (T, K): genuine pairs below each threshold, per identity
    hits: list[tuple[np.ndarray, np.ndarray, np.ndarray]]  # per threshold: (a, b, count)


def group_pairs(
    vectors: np.ndarray,
    identities: np.ndarray,
    thresholds: list[float],
    block: int = 1024,
    similarity: Callable[[np.ndarray], np.ndarray] = distance_to_similarity,
    offsets: np.ndarray | None = None,
) -> tuple[_Pairs, Calibration]:
    """Score every pair of images in a group once, keeping counts per identity pair.
    ``similarity``: distance to the 0-100 scale the thresholds are in (dlib's by default).
    ``offsets``: per image, added (halved) to each of its pairs' distances (score
    normalisation, :mod:`faceledger.evaluation.fsn`)."""
    names, ident = np.unique(identities, return_inverse=True)
    k = len(names)
    images_per = np.bincount(ident, minlength=k)
    misses = np.zeros((len(thresholds), k), dtype=np.int64)
    hit_counts: list[dict[int, int]] = [{} for _ in thresholds]
    impostor_bins = np.zeros(0, dtype=np.int64)
    genuine_bins = np.zeros(0, dtype=np.int64)
    vectors = vectors.astype(np.float64)
    squared = np.einsum("ij,ij->i", vectors, vectors)
    n = len(vectors)
    for start in range(0, n, block):
        stop = min(start + block, n)
        d2 = squared[start:stop, None] + squared[None, :] - 2.0 * vectors[start:stop] @ vectors.T
        distances = np.sqrt(np.maximum(d2, 0.0))
        if offsets is not None:
            distances = distances + (offsets[start:stop, None] + offsets[None, :]) / 2.0
        sims = similarity(distances)
        upper = np.arange(n)[None, :] > np.arange(start, stop)[:, None]
        rows, cols = np.nonzero(upper)
        a, b = ident[start:stop][rows], ident[cols]
        s = sims[rows, cols]
        same = a == b
        impostor_bins = _add(impostor_bins, similarity_bins(s[~same]))
        genuine_bins = _add(genuine_bins, similarity_bins(s[same]))
        for t_index, threshold in enumerate(thresholds):
            misses[t_index] += np.bincount(a[same & (s < threshold)], minlength=k)
            hit = ~same & (s >= threshold)
            if hit.any():
                lo, hi = np.minimum(a[hit], b[hit]), np.maximum(a[hit], b[hit])
                keys, counts = np.unique(lo.astype(np.int64) * k + hi, return_counts=True)
                bucket = hit_counts[t_index]
                for key, count in zip(keys.tolist(), counts.tolist(), strict=True):
                    bucket[key] = bucket.get(key, 0) + count
    hits = []
    for bucket in hit_counts:
        keys = np.fromiter(bucket.keys(), dtype=np.int64, count=len(bucket))
        counts = np.fromiter(bucket.values(), dtype=np.int64, count=len(bucket))
        hits.append((keys // k, keys % k, counts))
    genuine_per = images_per * (images_per - 1) // 2
    calibration = Calibration(impostor_bins, genuine_bins)
    return _Pairs(images_per, genuine_per, misses, hits), calibration


def _add(total: np.ndarray, more: np.ndarray) -> np.ndarray:
    return more.copy() if total.size == 0 else total + more


def _impostor_total(weights: np.ndarray, images: np.ndarray) -> float:
    # Pairs of images of two different (resampled) people: ((sum w n)^2 - sum (w n)^2) / 2.
    wn = weights * images
    return float((wn.sum() ** 2 - (wn**2).sum()) / 2.0)


def rates(
    pairs: _Pairs, thresholds: list[float], *, bootstrap: int = 500, seed: int = 0
) -> tuple[dict[float, Rate], dict[float, Rate]]:
    """FMR and FNMR at each threshold, with 95 % intervals from a bootstrap over identities."""
    k = len(pairs.images_per_identity)
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(k, np.full(k, 1.0 / k), size=bootstrap).astype(np.float64)
    people_with_pairs = int((pairs.genuine_per_identity > 0).sum())
    impostor_trials = int(_impostor_total(np.ones(k), pairs.images_per_identity))
    genuine_trials = int(pairs.genuine_per_identity.sum())
    fmr: dict[float, Rate] = {}
    fnmr: dict[float, Rate] = {}
    for t_index, threshold in enumerate(thresholds):
        a, b, counts = pairs.hits[t_index]
        errors = int(counts.sum())
        if k < MIN_IDENTITIES or impostor_trials < MIN_IMPOSTOR_PAIRS:
            fmr[threshold] = Rate(
                None,
                None,
                None,
                errors,
                impostor_trials,
                k,
                note=f"too small: {k} people, {impostor_trials} impostor pairs",
            )
        else:
            samples = np.array(
                [
                    (counts * w[a] * w[b]).sum()
                    / max(_impostor_total(w, pairs.images_per_identity), 1.0)
                    for w in draws
                ]
            )
            fmr[threshold] = _rate(errors, impostor_trials, samples, k)
        misses = pairs.misses[t_index]
        if people_with_pairs < MIN_IDENTITIES or genuine_trials < MIN_GENUINE_PAIRS:
            fnmr[threshold] = Rate(
                None,
                None,
                None,
                int(misses.sum()),
                genuine_trials,
                people_with_pairs,
                note=f"too small: {people_with_pairs} people with 2+ images, "
                f"{genuine_trials} genuine pairs",
            )
        else:
            totals = draws @ pairs.genuine_per_identity
            samples = (draws @ misses) / np.maximum(totals, 1.0)
            fnmr[threshold] = _rate(int(misses.sum()), genuine_trials, samples, people_with_pairs)
    return fmr, fnmr


def _rate(errors: int, trials: int, samples: np.ndarray, identities: int) -> Rate:
    if errors == 0:
        # No errors seen: the bootstrap collapses to 0, so report the rule-of-three bound.
        return Rate(
            0.0,
            0.0,
            3.0 / trials,
            0,
            trials,
            identities,
            upper_bound_only=True,
            note="no errors seen; the upper bound is 3/n",
        )
    low, high = np.percentile(samples, [2.5, 97.5])
    return Rate(errors / trials, float(low), float(high), errors, trials, identities)


def group_stats(
    group: str,
    vectors: np.ndarray,
    identities: np.ndarray,
    thresholds: list[float],
    bootstrap: int = 500,
    similarity: Callable[[np.ndarray], np.ndarray] = distance_to_similarity,
    offsets: np.ndarray | None = None,
) -> GroupStats:
    pairs, calibration = group_pairs(
        vectors, identities, thresholds, similarity=similarity, offsets=offsets
    )
    fmr, fnmr = rates(pairs, thresholds, bootstrap=bootstrap)
    k = len(pairs.images_per_identity)
    return GroupStats(
        group,
        len(vectors),
        k,
        int(_impostor_total(np.ones(k), pairs.images_per_identity)),
        int(pairs.genuine_per_identity.sum()),
        calibration,
        fmr,
        fnmr,
    )


def worst_best_ratio(values: dict[str, Rate]) -> dict[str, object]:
    """Worst over best group for one metric, among groups that have a figure."""
    shown = {g: r.value for g, r in values.items() if r.value is not None}
    if len(shown) < 2:
        return {"ratio": None, "note": "fewer than two groups with a figure"}
    worst = max(shown, key=lambda g: shown[g])
    best = min(shown, key=lambda g: shown[g])
    if shown[best] == 0:
        return {
            "ratio": None,
            "worst": worst,
            "best": best,
            "note": f"{best} had no errors; the ratio is unbounded",
        }
    return {"ratio": shown[worst] / shown[best], "worst": worst, "best": best}


def worst_group_threshold(groups: list[GroupStats], target_fmr: float) -> dict[str, object]:
    """The lowest similarity that keeps FMR <= target for every group that can show it."""
    per_group: dict[str, float | None] = {}
    for g in groups:
        per_group[g.group] = g.calibration.threshold_for_fmr(target_fmr)
    measured = {g: t for g, t in per_group.items() if t is not None}
    return {
        "target_fmr": target_fmr,
        "threshold": max(measured.values()) if measured else None,
        "worst_group": max(measured, key=lambda g: measured[g]) if measured else None,
        "per_group": per_group,
        "unmeasurable_groups": sorted(g for g, t in per_group.items() if t is None),
    }


def wilson(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion."""
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = (
        z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    )
    return max(0.0, centre - half), min(1.0, centre + half)
