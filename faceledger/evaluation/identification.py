"""1:N identification in the style of NIST FRTE 1:N (and of the test that matched members of
Congress to mugshots): a gallery holds one image of each enrolled person; mated probes are
other images of enrolled people, non-mated probes are people who are not enrolled.

FPIR(T): share of non-mated searches that return anyone at similarity >= T.
FNIR(T): share of mated searches whose mate is not returned at similarity >= T.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from faceledger.evaluation.fairness import Rate, wilson
from faceledger.vision.similarity import distance_to_similarity


@dataclass(frozen=True)
class Split:
    gallery: np.ndarray  # image indices, one per enrolled person
    mated: np.ndarray  # image indices, another image of the same enrolled person
    mated_gallery_row: np.ndarray  # row of each mated probe's mate in the gallery
    non_mated: np.ndarray  # image indices of people not enrolled


def split(identities: np.ndarray, gallery_size: int | None = None) -> Split:
    """People with 2+ images alternate between enrolled and not enrolled (sorted by name);
    people with one image are never enrolled. ``gallery_size`` keeps the first N enrolled."""
    order: dict[str, list[int]] = {}
    for index, person in enumerate(identities.tolist()):
        order.setdefault(person, []).append(index)
    people = sorted(order)
    repeat = [p for p in people if len(order[p]) >= 2]
    enrolled = repeat[0::2]
    outside = repeat[1::2] + [p for p in people if len(order[p]) == 1]
    if gallery_size is not None:
        enrolled = enrolled[:gallery_size]
    return Split(
        gallery=np.array([order[p][0] for p in enrolled], dtype=np.int64),
        mated=np.array([order[p][1] for p in enrolled], dtype=np.int64),
        mated_gallery_row=np.arange(len(enrolled), dtype=np.int64),
        non_mated=np.array([order[p][0] for p in outside], dtype=np.int64),
    )


def _similarities(
    vectors: np.ndarray,
    probes: np.ndarray,
    gallery: np.ndarray,
    similarity: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray:
    p, g = vectors[probes].astype(np.float64), vectors[gallery].astype(np.float64)
    d2 = (p**2).sum(1)[:, None] + (g**2).sum(1)[None, :] - 2.0 * p @ g.T
    return np.asarray(similarity(np.sqrt(np.maximum(d2, 0.0))))


@dataclass(frozen=True)
class IdentificationResult:
    gallery_size: int
    mated_searches: int
    non_mated_searches: int
    fpir: dict[float, Rate]
    fnir: dict[float, Rate]
    fpir_by_group: dict[str, dict[float, Rate]]
    fnir_by_group: dict[str, dict[float, Rate]]


def identification(
    vectors: np.ndarray,
    identities: np.ndarray,
    groups: np.ndarray,
    thresholds: list[float],
    gallery_size: int | None = None,
    min_searches: int = 30,
    similarity: Callable[[np.ndarray], np.ndarray] = distance_to_similarity,
) -> IdentificationResult:
    """FPIR and FNIR overall and per group of the probe, with Wilson 95 % intervals
    (each search is one person, so searches are independent). ``similarity``: the model's
    distance-to-similarity scale (dlib's by default)."""
    s = split(identities, gallery_size)
    top_non_mated = _similarities(vectors, s.non_mated, s.gallery, similarity).max(axis=1)
    mate_scores = _similarities(vectors, s.mated, s.gallery, similarity)[
        np.arange(len(s.mated)), s.mated_gallery_row
    ]

    def rate(errors: np.ndarray, people: int) -> Rate:
        n = len(errors)
        if n < min_searches:
            return Rate(
                None, None, None, int(errors.sum()), n, people, note=f"too small: {n} searches"
            )
        low, high = wilson(int(errors.sum()), n)
        return Rate(
            float(errors.mean()),
            low,
            high,
            int(errors.sum()),
            n,
            people,
            upper_bound_only=not errors.any(),
        )

    def by_threshold(scores: np.ndarray, false_when_at_least: bool) -> dict[float, Rate]:
        return {
            t: rate(scores >= t if false_when_at_least else scores < t, len(scores))
            for t in thresholds
        }

    fpir_groups: dict[str, dict[float, Rate]] = {}
    fnir_groups: dict[str, dict[float, Rate]] = {}
    for group in sorted(set(groups.tolist())):
        in_non = groups[s.non_mated] == group
        in_mated = groups[s.mated] == group
        fpir_groups[group] = by_threshold(top_non_mated[in_non], True)
        fnir_groups[group] = by_threshold(mate_scores[in_mated], False)
    return IdentificationResult(
        len(s.gallery),
        len(s.mated),
        len(s.non_mated),
        by_threshold(top_non_mated, True),
        by_threshold(mate_scores, False),
        fpir_groups,
        fnir_groups,
    )
