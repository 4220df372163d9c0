"""The LFW verification benchmark: embed the protocol's images, score its pairs, report."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from faceledger.evaluation import lfw
from faceledger.evaluation.embedder import EmbedRun, Pipeline, embed_images
from faceledger.evaluation.metrics import accuracy_at, k_fold_accuracy, roc_auc, tar_at_far
from faceledger.vision.similarity import Calibration


@dataclass
class LfwReport:
    pairs: int
    folds: int
    images: int
    accuracy_mean: float
    accuracy_std: float
    fold_accuracies: list[float]
    fold_thresholds_distance: list[float]
    roc_auc: float
    tar_at_far_1e3: float
    threshold_at_far_1e3_distance: float
    accuracy_at_default_threshold: float
    default_threshold_distance: float
    no_face_images: int
    detected_by: dict[str, int]
    no_face_handling: str
    computed_images: int
    cached_images: int
    seconds: float
    images_per_second: float
    pipeline: dict[str, object] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def pair_distances(pairs: list[lfw.Pair], run: EmbedRun) -> np.ndarray:
    first = np.stack([run.results[p.first].vector for p in pairs])
    second = np.stack([run.results[p.second].vector for p in pairs])
    return np.linalg.norm(first - second, axis=1)


def evaluate_lfw(
    data: Path | str | None = None,
    *,
    pipeline: Pipeline | None = None,
    folds: list[int] | None = None,
    cache_dir: Path | None = None,
    workers: int = 2,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> LfwReport:
    """Run LFW view 2. ``folds`` (0-based) restricts it to some folds: thresholds are then chosen
    among the chosen folds only (with one fold, the k-fold figure is that fold at a threshold
    fitted on itself, so read ``accuracy_at_default_threshold`` instead)."""
    pipeline = pipeline or Pipeline()
    root = lfw.resolve_lfw_dir(data)
    pairs = lfw.read_pairs(root / "protocol" / "pairs.txt")
    if folds is not None:
        pairs = [p for p in pairs if p.fold in set(folds)]
    images = sorted({p.first for p in pairs} | {p.second for p in pairs})
    if on_total:
        on_total(len(images))
    run = embed_images(
        root / "images", images, pipeline, cache_dir=cache_dir, workers=workers, progress=progress
    )
    distances = pair_distances(pairs, run)
    scores = -distances  # higher = more alike, as the metrics expect
    same = np.array([p.same for p in pairs])
    fold_ids = np.array([p.fold for p in pairs])
    result = k_fold_accuracy(scores, same, fold_ids)
    tar, threshold = tar_at_far(scores, same, 1e-3)
    # The model's own scale: the "default" threshold is similarity 50 (dlib's distance 0.6).
    scale = Calibration.load(recognizer=pipeline.recognizer).scale
    default = scale.distance(50.0)
    return LfwReport(
        pairs=len(pairs),
        folds=len(np.unique(fold_ids)),
        images=len(images),
        accuracy_mean=result.mean,
        accuracy_std=result.std,
        fold_accuracies=result.accuracies,
        fold_thresholds_distance=[-t for t in result.thresholds],
        roc_auc=roc_auc(scores, same),
        tar_at_far_1e3=tar,
        threshold_at_far_1e3_distance=-threshold,
        accuracy_at_default_threshold=accuracy_at(scores, same, -default),
        default_threshold_distance=default,
        no_face_images=run.count("centre"),
        detected_by={m: run.count(m) for m in ("yunet", "hog", "cnn", "centre")},
        no_face_handling="images where no detector finds a face are embedded from a fixed "
        "centre box (LFW deep-funneled images are centred) and kept in every figure",
        computed_images=run.computed,
        cached_images=run.cached,
        seconds=round(run.seconds, 2),
        images_per_second=round(run.images_per_second, 2),
        pipeline=asdict(pipeline)
        | {
            "similarity_at_fold_thresholds": [
                round(float(scale.similarity(-t)), 2) for t in result.thresholds
            ]
        },
    )
