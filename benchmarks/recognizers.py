"""dlib's descriptor against SFace (with and without flip fusion, and in int8) on LFW, for the
fairness issue: accuracy on LFW view 2, and at each system's own threshold for an overall false
match rate of 1e-3 (all LFW impostor pairs), the false non-match rate and the false match rate
within each gender and race group (impostor pairs inside the group), with 95 % bootstrap
intervals over people, as the audit computes them. The groups' labels are the audit's
(per-image gender lists, a third-party race annotation of 866 people); no label is used for
anything but measuring.

    python benchmarks/recognizers.py [--bootstrap 200] [--out out/recognizers.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from faceledger.config import get_settings
from faceledger.evaluation import lfw
from faceledger.evaluation.audit import RACE_GROUPS, gender_labels, race_labels
from faceledger.evaluation.embedder import Pipeline, embed_images
from faceledger.evaluation.fairness import group_pairs, group_stats
from faceledger.evaluation.verification import evaluate_lfw
from faceledger.vision.similarity import distance_to_similarity

TARGET = 1e-3
SYSTEMS = {
    "dlib": (Pipeline(), distance_to_similarity),
    "sface": (Pipeline(recognizer="sface", flip_fusion=False), None),
    "sface+flip": (Pipeline(recognizer="sface"), None),
    "sface-int8": (Pipeline(recognizer="sface-int8", flip_fusion=False), None),
}


def unit_similarity(distance: np.ndarray) -> np.ndarray:
    """Unit vectors: distance 0..2 onto 0..100 (cosine similarity, rescaled)."""
    return 100.0 * (1.0 - np.asarray(distance) / 2.0)


def measure(name: str, pipeline: Pipeline, similarity, root: Path, bootstrap: int) -> dict:
    settings = get_settings()
    started = time.perf_counter()
    view2 = evaluate_lfw(root, pipeline=pipeline, cache_dir=settings.cache_dir, workers=2)
    images = lfw.all_images(root)
    run = embed_images(root / "images", images, pipeline, cache_dir=settings.cache_dir)
    vectors = np.stack([run.results[i].vector for i in images])
    people = np.array([lfw.identity_of(i) for i in images])
    gender, race = gender_labels(root, images), race_labels(root, people)
    similarity = similarity or unit_similarity
    _, calibration = group_pairs(vectors, people, [], similarity=similarity)
    threshold = calibration.threshold_for_fmr(TARGET)
    assert threshold is not None
    row: dict = {
        "system": name,
        "lfw_view2_accuracy": round(view2.accuracy_mean, 4),
        "lfw_view2_std": round(view2.accuracy_std, 4),
        "threshold_at_overall_fmr_1e-3": threshold,
    }
    overall = group_stats("all", vectors, people, [threshold], bootstrap, similarity)
    row["overall"] = _rates(overall, threshold)
    for label, names in (("gender", ["F", "M"]), ("race", list(RACE_GROUPS))):
        labels = gender if label == "gender" else race
        row[label] = {
            group: _rates(
                group_stats(
                    group,
                    vectors[labels == group],
                    people[labels == group],
                    [threshold],
                    bootstrap,
                    similarity,
                ),
                threshold,
            )
            for group in names
            if (labels == group).sum() >= 2
        }
    row["seconds"] = round(time.perf_counter() - started, 1)
    return row


def _rates(stats, threshold: float) -> dict:
    fmr, fnmr = stats.fmr[threshold], stats.fnmr[threshold]
    return {
        "people": stats.identities,
        "fmr": fmr.value,
        "fmr_ci": [fmr.low, fmr.high],
        "fmr_over_target": None if fmr.value is None else round(fmr.value / TARGET, 2),
        "fnmr": fnmr.value,
        "fnmr_ci": [fnmr.low, fnmr.high],
        "note": fmr.note or fnmr.note,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--bootstrap", type=int, default=200)
    parser.add_argument("--out", type=Path, default=Path("out/recognizers.json"))
    args = parser.parse_args()
    root = lfw.resolve_lfw_dir(get_settings().eval_data)
    rows = []
    for name in args.systems.split(","):
        pipeline, similarity = SYSTEMS[name]
        rows.append(measure(name, pipeline, similarity, root, args.bootstrap))
        print(json.dumps(rows[-1]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
