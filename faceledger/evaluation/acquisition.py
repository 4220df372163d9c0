"""Failure to acquire: how often the detector misses a face, and how often the quality gate
drops one, per race x gender x age band, on UTKFace's labelled face crops."""

from __future__ import annotations

import csv
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from faceledger.errors import DatasetError
from faceledger.evaluation.fairness import Rate, wilson
from faceledger.vision import FaceEngine, QualityLevel, gate_reasons


@dataclass(frozen=True)
class Outcome:
    file: str
    race: str
    gender: str
    age_band: str
    found_by_detector: bool  # the engine's own detector, before any CNN fallback
    found: bool  # by the detector or, where it found none, the CNN detector
    gate_passed: bool


_engine: FaceEngine | None = None


def _init() -> None:
    global _engine
    _engine = FaceEngine(cnn_fallback=True)


def _detect(job: tuple[str, str, str, str]) -> Outcome:
    assert _engine is not None
    path, race, gender, age_band = job
    faces = _engine.detect(path)
    primary = any(f.detector == _engine.detector for f in faces)
    passed = bool(faces) and not gate_reasons(faces[0].quality, QualityLevel.AUTO)
    return Outcome(Path(path).name, race, gender, age_band, primary, bool(faces), passed)


def read_labels(utkface_dir: Path, limit: int | None = None) -> list[tuple[str, str, str, str]]:
    labels = utkface_dir / "labels.csv"
    if not labels.is_file():
        raise DatasetError(f"no UTKFace labels at {labels}")
    with labels.open() as handle:
        rows = list(csv.DictReader(handle))
    jobs = [
        (str(utkface_dir / "images" / r["file"]), r["race"], r["gender"], r["age_band"])
        for r in rows
    ]
    return jobs[:limit] if limit else jobs


def run_detection(
    jobs: list[tuple[str, str, str, str]],
    workers: int = 2,
    progress: Callable[[int], None] | None = None,
) -> list[Outcome]:
    with ProcessPoolExecutor(
        max_workers=workers, initializer=_init, mp_context=multiprocessing.get_context("spawn")
    ) as pool:
        outcomes = []
        for outcome in pool.map(_detect, jobs, chunksize=16):
            outcomes.append(outcome)
            if progress:
                progress(1)
    return outcomes


def failure_rates(
    outcomes: list[Outcome], key: Callable[[Outcome], str], min_images: int = 20
) -> dict[str, dict[str, Rate]]:
    """Per cell: miss rate (after the CNN fallback), the detector's own miss rate, and the AUTO
    gate's rejection rate among faces found; Wilson 95 % intervals."""
    cells: dict[str, list[Outcome]] = {}
    for outcome in outcomes:
        cells.setdefault(key(outcome), []).append(outcome)
    result = {}
    for cell, items in sorted(cells.items()):
        found = [o for o in items if o.found]
        result[cell] = {
            "missed": _rate(sum(not o.found for o in items), len(items), min_images),
            "missed_by_detector": _rate(
                sum(not o.found_by_detector for o in items), len(items), min_images
            ),
            "gate_rejected": _rate(sum(not o.gate_passed for o in found), len(found), min_images),
        }
    return result


def _rate(errors: int, trials: int, min_trials: int) -> Rate:
    if trials < min_trials:
        return Rate(None, None, None, errors, trials, trials, note=f"too small: {trials} images")
    low, high = wilson(errors, trials)
    return Rate(errors / trials, low, high, errors, trials, trials, upper_bound_only=errors == 0)
