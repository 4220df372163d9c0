"""From descriptor distance to a 0-100 similarity, and from a similarity to its false match rate.

The similarity is a fixed logistic map of the Euclidean distance d between two descriptors::

    similarity = 100 / (1 + exp((d - 0.6) / 0.04))

It is monotone (smaller distance, higher similarity), puts dlib's published decision threshold
d = 0.6 at 50, and spreads the range where genuine and impostor pairs meet (d 0.4-0.6) over
50-99. It was fixed before measuring and is *not* a probability.

What a similarity means is measured, not assumed: :class:`Calibration` holds, for a grid of
similarities, how many different-person (impostor) pairs of LFW reached each one. The shipped
table is ``data/calibration.json``; ``faceledger eval calibrate`` regenerates it.

Other models (SFace) have their own :class:`ScoreScale`, placed so that a similarity means the
false match rate it means under dlib's (see :func:`matched_scale`): a floor of 99 is the same
risk of a false match whichever model a collection uses. Each model's table is shipped beside
dlib's (``data/calibration-<model>.json``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

SIMILARITY_MIDPOINT = 0.6
SIMILARITY_SCALE = 0.04
GRID_STEP = 0.05  # similarity points per calibration bin
GRID_SIZE = round(100 / GRID_STEP) + 1


@dataclass(frozen=True)
class ScoreScale:
    """Descriptor distance <-> similarity 0-100 for one model.

    ``logit(similarity / 100)`` is piecewise linear in the distance through the knots and runs
    on along the first and last segments beyond them, so the map is smooth where it was
    measured, monotone everywhere and invertible. dlib's scale (:data:`DLIB_SCALE`) is the
    fixed logistic: two knots on one line.
    """

    distances: tuple[float, ...]  # strictly increasing
    logits: tuple[float, ...]  # strictly decreasing

    def __post_init__(self) -> None:
        d, g = np.asarray(self.distances), np.asarray(self.logits)
        if len(d) < 2 or len(d) != len(g) or np.any(np.diff(d) <= 0) or np.any(np.diff(g) >= 0):
            raise ValueError("a score scale needs 2+ knots, distances rising and logits falling")

    def similarity(self, distance: np.ndarray | float) -> np.ndarray | float:
        logit = _extended(distance, self.distances, self.logits)
        result = 100.0 / (1.0 + np.exp(-np.clip(logit, -700, 700)))
        return float(result) if np.ndim(result) == 0 else result

    def distance(self, similarity: float) -> float:
        """The distance at which a pair reaches ``similarity`` (0 < s < 100)."""
        if not 0.0 < similarity < 100.0:
            raise ValueError("similarity must be strictly between 0 and 100")
        logit = math.log(similarity / (100.0 - similarity))
        return float(_extended(logit, self.logits[::-1], self.distances[::-1]))

    def to_json(self) -> dict[str, list[float]]:
        return {"distances": list(self.distances), "logits": list(self.logits)}

    @classmethod
    def from_json(cls, data: dict[str, list[float]]) -> ScoreScale:
        return cls(tuple(map(float, data["distances"])), tuple(map(float, data["logits"])))


def _extended(x: np.ndarray | float, xs: Sequence[float], ys: Sequence[float]) -> np.ndarray:
    """Linear interpolation through (xs, ys), xs increasing, continued along the end segments."""
    x = np.asarray(x, dtype=np.float64)
    low = (ys[1] - ys[0]) / (xs[1] - xs[0])
    high = (ys[-1] - ys[-2]) / (xs[-1] - xs[-2])
    y = np.interp(x, xs, ys)
    y = np.where(x < xs[0], ys[0] + (x - xs[0]) * low, y)
    return np.where(x > xs[-1], ys[-1] + (x - xs[-1]) * high, y)


DLIB_SCALE = ScoreScale((SIMILARITY_MIDPOINT, SIMILARITY_MIDPOINT + SIMILARITY_SCALE), (0.0, -1.0))


def distance_to_similarity(distance: np.ndarray | float) -> np.ndarray | float:
    """dlib's descriptor distance -> similarity 0-100 (see the module docstring)."""
    return DLIB_SCALE.similarity(distance)


def similarity_to_distance(similarity: float) -> float:
    """The inverse map: the dlib distance at which a pair reaches ``similarity``."""
    return DLIB_SCALE.distance(similarity)


def bin_index(similarities: np.ndarray | float) -> np.ndarray:
    """Grid bin of each similarity: bin i holds [i * step, (i + 1) * step)."""
    # The small nudge keeps grid values such as 49.9 in their own bin despite float division.
    index = np.floor(np.asarray(similarities, dtype=np.float64) / GRID_STEP + 1e-9)
    return np.clip(index.astype(np.int64), 0, GRID_SIZE - 1)


def similarity_bins(similarities: np.ndarray) -> np.ndarray:
    """Count similarities into the calibration grid."""
    return np.bincount(bin_index(similarities).ravel(), minlength=GRID_SIZE)


@dataclass(frozen=True)
class Calibration:
    """Measured error rates over a similarity grid.

    ``impostor_counts[i]`` / ``genuine_counts[i]``: pairs whose similarity fell in bin i.
    """

    impostor_counts: np.ndarray
    genuine_counts: np.ndarray
    description: dict[str, object] = field(default_factory=dict)
    scale: ScoreScale = DLIB_SCALE  # how the model's distances became these similarities

    @property
    def n_impostor(self) -> int:
        return int(self.impostor_counts.sum())

    @property
    def n_genuine(self) -> int:
        return int(self.genuine_counts.sum())

    def _at_or_above(self, counts: np.ndarray, similarity: float) -> int:
        # Counting the whole bin that holds `similarity` overstates the rate a little: the
        # estimate errs toward more false matches, never fewer.
        return int(counts[int(bin_index(similarity)) :].sum())

    def false_match_rate(self, similarity: float) -> tuple[float, bool]:
        """(estimated FMR at ``similarity``, whether it is only an upper bound).

        When no impostor pair reached the similarity, the rate is the 95 % upper bound 3/N
        (the "rule of three") and the flag is True.
        """
        n = self.n_impostor
        if n == 0:
            return 1.0, True
        hits = self._at_or_above(self.impostor_counts, similarity)
        if hits == 0:
            return 3.0 / n, True
        return hits / n, False

    def false_non_match_rate(self, similarity: float) -> float:
        """Share of same-person pairs scoring below ``similarity``."""
        n = self.n_genuine
        if n == 0:
            return float("nan")
        return 1.0 - self._at_or_above(self.genuine_counts, similarity) / n

    def threshold_for_fmr(self, target: float) -> float | None:
        """Lowest grid similarity whose measured FMR is at most ``target``.

        None when the calibration has too few impostor pairs to show that rate (N < 3/target).
        """
        n = self.n_impostor
        if n == 0 or target * n < 3:
            return None
        tail = np.cumsum(self.impostor_counts[::-1])[::-1]  # pairs at or above each bin
        ok = np.nonzero(tail <= target * n)[0]
        return round(float(ok[0]) * GRID_STEP, 4) if ok.size else None

    def similarity_at_fmr(self, fmr: float, min_pairs: int = 30) -> float | None:
        """The similarity at which the measured FMR falls to ``fmr``, interpolated in log FMR
        between grid edges; None when fewer than ``min_pairs`` impostor pairs would show it."""
        n = self.n_impostor
        if n == 0 or fmr * n < min_pairs:
            return None
        tail = np.cumsum(self.impostor_counts[::-1])[::-1] / n  # share at or above each edge
        below = np.nonzero(tail <= fmr)[0]
        if below.size == 0 or below[0] == 0:
            return None
        i = int(below[0])
        high, low = math.log(tail[i - 1]), math.log(max(tail[i], 1e-300))
        step = (high - math.log(fmr)) / (high - low) if high > low else 0.0
        return (i - 1 + step) * GRID_STEP

    def to_json(self) -> dict[str, object]:
        return {
            "grid_step": GRID_STEP,
            "description": self.description,
            "scale": self.scale.to_json(),
            "n_impostor": self.n_impostor,
            "n_genuine": self.n_genuine,
            "thresholds_for_fmr": {
                f"{t:g}": self.threshold_for_fmr(t) for t in (1e-2, 1e-3, 1e-4, 1e-5, 1e-6)
            },
            # Sparse: most bins are empty.
            "impostor_counts": _sparse(self.impostor_counts),
            "genuine_counts": _sparse(self.genuine_counts),
        }

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=1) + "\n")

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Calibration:
        if data.get("grid_step") != GRID_STEP:
            raise ValueError("calibration grid does not match this version of faceledger")
        return cls(
            impostor_counts=_dense(data["impostor_counts"]),  # type: ignore[arg-type]
            genuine_counts=_dense(data["genuine_counts"]),  # type: ignore[arg-type]
            description=dict(data.get("description", {})),  # type: ignore[call-overload]
            scale=ScoreScale.from_json(data["scale"]) if "scale" in data else DLIB_SCALE,  # type: ignore[arg-type]
        )

    @classmethod
    def load(cls, path: Path | None = None, *, recognizer: str = "dlib") -> Calibration:
        """The calibration at ``path``, or the one shipped with the package for ``recognizer``."""
        if path is None:
            name = shipped_calibration_name(recognizer)
            text = resources.files("faceledger.vision").joinpath(f"data/{name}")
            return cls.from_json(json.loads(text.read_text()))
        return cls.from_json(json.loads(Path(path).read_text()))

    @classmethod
    def empty(cls) -> Calibration:
        zeros = np.zeros(GRID_SIZE, dtype=np.int64)
        return cls(zeros, zeros.copy(), {"note": "no calibration loaded"})


def shipped_calibration_name(recognizer: str) -> str:
    return "calibration.json" if recognizer == "dlib" else f"calibration-{recognizer}.json"


# The false match rates at which another model's scale is pinned to dlib's: dense where
# thresholds are set (1e-2 .. 1e-6), sparse where only the shape matters.
MATCHED_FMRS = (
    0.9, 0.5, 0.2, 0.1, 5e-2, 2e-2, 1e-2, 5e-3, 2e-3, 1e-3, 5e-4, 2e-4, 1e-4,
    3e-5, 1e-5, 3e-6, 1e-6,
)  # fmt: skip


def matched_scale(
    reference: Calibration,
    distance_at_fmr: Callable[[float], float | None],
    fmrs: Sequence[float] = MATCHED_FMRS,
) -> ScoreScale:
    """A scale for another model on which each similarity has the false match rate it has on
    ``reference`` (dlib's table): for each rate, the model's impostor distance quantile is
    given the similarity at which dlib's impostors reach that rate (quantile matching). Beyond
    the last rate both tables can show, the scale runs on along its last segment."""
    knots: list[tuple[float, float]] = []
    for fmr in fmrs:
        similarity, distance = reference.similarity_at_fmr(fmr), distance_at_fmr(fmr)
        if similarity is None or distance is None or not 0.0 < similarity < 100.0:
            continue
        logit = math.log(similarity / (100.0 - similarity))
        # Keep both strictly monotone: at coarse ends two rates can share a bin.
        if knots and (distance >= knots[-1][0] or logit <= knots[-1][1]):
            continue
        knots.append((distance, logit))
    if len(knots) < 2:
        raise ValueError("too few impostor pairs to match the model's scale to the reference")
    knots.reverse()  # distances rising
    return ScoreScale(tuple(k[0] for k in knots), tuple(k[1] for k in knots))


def _sparse(counts: np.ndarray) -> dict[str, int]:
    return {str(i): int(c) for i, c in enumerate(counts) if c}


def _dense(sparse: dict[str, int]) -> np.ndarray:
    counts = np.zeros(GRID_SIZE, dtype=np.int64)
    for index, count in sparse.items():
        counts[int(index)] = count
    return counts
