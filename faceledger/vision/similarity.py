"""From descriptor distance to a 0-100 similarity, and from a similarity to its false match rate.

The similarity is a fixed logistic map of the Euclidean distance d between two descriptors::

    similarity = 100 / (1 + exp((d - 0.6) / 0.04))

It is monotone (smaller distance, higher similarity), puts dlib's published decision threshold
d = 0.6 at 50, and spreads the range where genuine and impostor pairs meet (d 0.4-0.6) over
50-99. It was fixed before measuring and is *not* a probability.

What a similarity means is measured, not assumed: :class:`Calibration` holds, for a grid of
similarities, how many different-person (impostor) pairs of LFW reached each one. The shipped
table is ``data/calibration.json``; ``faceledger eval calibrate`` regenerates it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

SIMILARITY_MIDPOINT = 0.6
SIMILARITY_SCALE = 0.04
GRID_STEP = 0.05  # similarity points per calibration bin
GRID_SIZE = round(100 / GRID_STEP) + 1


def distance_to_similarity(distance: np.ndarray | float) -> np.ndarray | float:
    """Descriptor distance -> similarity 0-100 (see the module docstring)."""
    z = np.clip(
        (np.asarray(distance, dtype=np.float64) - SIMILARITY_MIDPOINT) / SIMILARITY_SCALE, -700, 700
    )
    result = 100.0 / (1.0 + np.exp(z))
    return float(result) if np.ndim(result) == 0 else result


def similarity_to_distance(similarity: float) -> float:
    """The inverse map: the distance at which a pair reaches ``similarity`` (0 < s < 100)."""
    if not 0.0 < similarity < 100.0:
        raise ValueError("similarity must be strictly between 0 and 100")
    return SIMILARITY_MIDPOINT + SIMILARITY_SCALE * math.log(100.0 / similarity - 1.0)


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

    def to_json(self) -> dict[str, object]:
        return {
            "grid_step": GRID_STEP,
            "description": self.description,
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
        )

    @classmethod
    def load(cls, path: Path | None = None) -> Calibration:
        """The calibration at ``path``, or the one shipped with the package."""
        if path is None:
            text = resources.files("faceledger.vision").joinpath("data/calibration.json")
            return cls.from_json(json.loads(text.read_text()))
        return cls.from_json(json.loads(Path(path).read_text()))

    @classmethod
    def empty(cls) -> Calibration:
        zeros = np.zeros(GRID_SIZE, dtype=np.int64)
        return cls(zeros, zeros.copy(), {"note": "no calibration loaded"})


def _sparse(counts: np.ndarray) -> dict[str, int]:
    return {str(i): int(c) for i, c in enumerate(counts) if c}


def _dense(sparse: dict[str, int]) -> np.ndarray:
    counts = np.zeros(GRID_SIZE, dtype=np.int64)
    for index, count in sparse.items():
        counts[int(index)] = count
    return counts
