from __future__ import annotations

import numpy as np
import pytest

from faceledger.evaluation.acquisition import Outcome, failure_rates
from faceledger.evaluation.fairness import (
    Rate,
    _Pairs,
    group_pairs,
    rates,
    wilson,
    worst_best_ratio,
    worst_group_threshold,
)
from faceledger.evaluation.identification import identification, split
from faceledger.vision.similarity import Calibration, similarity_bins, similarity_to_distance


def points_at(distances_from_origin: list[float]) -> np.ndarray:
    """128-d vectors on one axis, so pair distances are differences of these numbers."""
    vectors = np.zeros((len(distances_from_origin), 128))
    vectors[:, 0] = distances_from_origin
    return vectors


def test_group_pairs_counts_by_hand() -> None:
    # Person a at 0 and 0.3; person b at 1.0; person c at 0.35.
    # similarity 80 <=> distance 0.5446. Pairs: a-a 0.3 (genuine, hit), a-b 1.0 and 0.7 (no),
    # a-c 0.35 and 0.05 (two false matches), b-c 0.65 (no).
    vectors = points_at([0.0, 0.3, 1.0, 0.35])
    people = np.array(["a", "a", "b", "c"])
    pairs, calibration = group_pairs(vectors, people, [80.0, 99.99])
    assert calibration.n_impostor == 5 and calibration.n_genuine == 1
    a_index, b_index, counts = pairs.hits[0]
    assert list(zip(a_index.tolist(), b_index.tolist(), counts.tolist(), strict=True)) == [
        (0, 2, 2)
    ]  # a (0) with c (2), twice
    assert pairs.misses[0].tolist() == [0, 0, 0]  # the genuine pair (0.3) is above 80
    assert pairs.misses[1].tolist() == [1, 0, 0]  # ...and below 99.99 (distance 0.232)
    assert similarity_to_distance(99.99) < 0.3 < similarity_to_distance(99.9)


def test_rates_point_estimates_and_small_groups() -> None:
    vectors = points_at([0.0, 0.3, 1.0, 0.35])
    people = np.array(["a", "a", "b", "c"])
    pairs, _ = group_pairs(vectors, people, [80.0])
    fmr, fnmr = rates(pairs, [80.0], bootstrap=50)
    assert fmr[80.0].value is None and "too small" in fmr[80.0].note  # 3 people
    assert fmr[80.0].errors == 2 and fmr[80.0].trials == 5
    assert fnmr[80.0].value is None


def synthetic_pairs(
    rng: np.random.Generator, people: int, images: int, fmr: float, fnmr: float
) -> _Pairs:
    """Per-identity counts drawn with known rates, and a spread between people (some are
    more often confused than others), which a plain binomial interval would ignore."""
    k = people
    per_person = rng.beta(2, 2 / fmr - 2, size=k)  # mean fmr
    a, b = np.triu_indices(k, 1)
    p = (per_person[a] + per_person[b]) / 2
    hits = rng.binomial(images * images, p)
    keep = hits > 0
    genuine = np.full(k, images * (images - 1) // 2)
    miss_p = rng.beta(2, 2 / fnmr - 2, size=k)
    misses = rng.binomial(genuine, miss_p)[None, :]
    return _Pairs(np.full(k, images), genuine, misses, [(a[keep], b[keep], hits[keep])])


def test_bootstrap_intervals_cover_known_rates() -> None:
    rng = np.random.default_rng(7)
    true_fmr, true_fnmr = 0.01, 0.1
    covered_fmr = covered_fnmr = 0
    runs = 60
    for run in range(runs):
        pairs = synthetic_pairs(rng, 80, 3, true_fmr, true_fnmr)
        fmr, fnmr = rates(pairs, [80.0], bootstrap=300, seed=run)
        covered_fmr += fmr[80.0].low <= true_fmr <= fmr[80.0].high
        covered_fnmr += fnmr[80.0].low <= true_fnmr <= fnmr[80.0].high
    # 95 % intervals: expect about 57 of 60; the bootstrap runs a little narrow at n=80.
    assert covered_fmr >= 0.85 * runs
    assert covered_fnmr >= 0.85 * runs


def test_no_errors_gives_an_upper_bound() -> None:
    pairs = _Pairs(
        np.full(30, 2),
        np.full(30, 1),
        np.zeros((1, 30), dtype=np.int64),
        [(np.array([], int), np.array([], int), np.array([], int))],
    )
    fmr, fnmr = rates(pairs, [99.0], bootstrap=20)
    assert fmr[99.0].upper_bound_only and fmr[99.0].high == pytest.approx(3 / 1740)
    assert fnmr[99.0].value is None  # 30 genuine pairs is below the size rule


def test_wilson_interval() -> None:
    low, high = wilson(10, 100)
    assert low == pytest.approx(0.0552, abs=1e-3) and high == pytest.approx(0.1744, abs=1e-3)
    assert wilson(0, 0) == (0.0, 1.0)


def test_worst_best_ratio() -> None:
    def r(value):
        return Rate(value, None, None, 0, 100, 10)

    assert worst_best_ratio({"x": r(0.02), "y": r(0.001), "z": r(None)})["ratio"] == 20
    assert worst_best_ratio({"x": r(0.02)})["ratio"] is None
    assert worst_best_ratio({"x": r(0.02), "y": r(0.0)})["ratio"] is None


def test_worst_group_threshold_takes_the_strictest_group() -> None:
    class Group:
        def __init__(self, name: str, sims: np.ndarray) -> None:
            self.group = name
            self.calibration = Calibration(similarity_bins(sims), similarity_bins(np.array([])))

    loose = Group("loose", np.linspace(0, 90, 10_000))  # 1e-3 of impostors reach ~89.9
    tight = Group("tight", np.linspace(0, 50, 10_000))
    tiny = Group("tiny", np.linspace(0, 50, 100))  # too few pairs to show 1e-3
    result = worst_group_threshold([loose, tight, tiny], 1e-3)
    assert result["worst_group"] == "loose" and result["threshold"] > 89
    assert result["unmeasurable_groups"] == ["tiny"]


def test_identification_by_hand() -> None:
    # Enrolled: a (gallery 0.0, probe 0.1), c (gallery 2.0, probe 2.6).
    # Not enrolled: b (0.15, close to a), d (5.0, far from all), e (single image, 2.05).
    vectors = points_at([0.0, 0.1, 0.15, 0.9, 2.0, 2.6, 5.0, 6.0, 2.05])
    people = np.array(["a", "a", "b", "b", "c", "c", "d", "d", "e"])
    groups = np.array(["g1", "g1", "g1", "g1", "g2", "g2", "g2", "g2", "g2"])
    s = split(people)
    assert s.gallery.tolist() == [0, 4] and s.mated.tolist() == [1, 5]
    assert s.non_mated.tolist() == [2, 6, 8]
    result = identification(vectors, people, groups, [80.0], min_searches=1)
    # non-mated: b at 0.15 from a (false positive), d far (none), e at 0.05 from c (false).
    assert result.fpir[80.0].value == pytest.approx(2 / 3)
    # mated: a's probe at 0.1 (found), c's at 0.6 from its mate (missed).
    assert result.fnir[80.0].value == pytest.approx(1 / 2)
    assert result.fpir_by_group["g1"][80.0].value == 1.0
    assert result.fnir_by_group["g2"][80.0].value == 1.0


def test_failure_to_acquire_rates() -> None:
    outcomes = (
        [Outcome("x", "A", "F", "0-17", True, True, True)] * 18
        + [Outcome("y", "A", "F", "0-17", False, True, False)]
        + [Outcome("z", "A", "F", "0-17", False, False, False)]
        + [Outcome("w", "B", "M", "60+", True, True, True)] * 5
    )
    cells = failure_rates(outcomes, lambda o: o.race)
    assert cells["A"]["missed"].value == pytest.approx(1 / 20)
    assert cells["A"]["missed_by_detector"].value == pytest.approx(2 / 20)
    assert cells["A"]["gate_rejected"].value is None  # 19 faces found: under the size rule
    assert cells["B"]["missed"].value is None and "too small" in cells["B"]["missed"].note
