"""The accuracy and fairness audit: one run, one JSON document (rendered to HTML by
:mod:`faceledger.evaluation.report`). Uses the engine through the embedding cache, never a store.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from faceledger import __version__
from faceledger.errors import DatasetError
from faceledger.evaluation import lfw
from faceledger.evaluation.acquisition import failure_rates, read_labels, run_detection
from faceledger.evaluation.embedder import Pipeline, embed_images
from faceledger.evaluation.fairness import (
    GroupStats,
    group_stats,
    worst_best_ratio,
    worst_group_threshold,
)
from faceledger.evaluation.fsn import out_of_fold_offsets
from faceledger.evaluation.identification import identification
from faceledger.evaluation.verification import evaluate_lfw
from faceledger.vision.models import FACE_MODELS, face_model
from faceledger.vision.similarity import GRID_STEP, Calibration

POLICY_FLOORS = (80.0, 95.0, 99.0)
TARGET_FMRS = (1e-2, 1e-3, 1e-4)
RACE_GROUPS = ("caucasian", "african", "latino", "eastasian", "asianindian")
FSN_CLUSTERS = 25  # make bench-fairness measured 10-100: none narrowed the race differential


@dataclass
class AuditOptions:
    data: Path  # the evaluation data root (lfw/, utkface/)
    cache_dir: Path | None
    workers: int = 2
    bootstrap: int = 500
    folds: list[int] | None = None  # LFW view-2 folds for verification; None = all 10
    subset: bool = False  # fairness and identification on the protocol's images only
    utkface_limit: int | None = None
    gallery_sizes: list[int | None] = field(default_factory=lambda: [100, 300, None])
    face_model: str = "sface-int8"  # the model audited: a recognizer's name or a version
    compare_models: bool = True  # also measure every face model side by side


Progress = Callable[[str, int | None], Callable[[int], None]]


def _quiet(_: str, __: int | None) -> Callable[[int], None]:
    return lambda _n: None


def run_audit(options: AuditOptions, progress: Progress = _quiet) -> dict[str, Any]:
    root = lfw.resolve_lfw_dir(options.data)
    pipeline = Pipeline.for_model(options.face_model)
    # The model's own table and scale: thresholds are similarities as its collections see them.
    shipped = Calibration.load(recognizer=pipeline.recognizer)
    similarity = shipped.scale.similarity
    # 1. Verification, LFW's own protocol.
    verification = evaluate_lfw(
        root,
        pipeline=pipeline,
        folds=options.folds,
        cache_dir=options.cache_dir,
        workers=options.workers,
        progress=progress("LFW view 2", None),
    )
    # 2. All images (or the protocol's, for a quick run), embedded once and cached.
    pairs = lfw.read_pairs(root / "protocol" / "pairs.txt")
    if options.subset:
        chosen = {p.fold for p in pairs} if options.folds is None else set(options.folds)
        images = sorted({x for p in pairs if p.fold in chosen for x in (p.first, p.second)})
    else:
        images = lfw.all_images(root)
    vectors = _descriptors(root, images, pipeline, options, progress("LFW images", len(images)))
    people = np.array([lfw.identity_of(i) for i in images])
    gender = gender_labels(root, images)
    race = race_labels(root, people)
    thresholds = list(POLICY_FLOORS) + [
        t for t in (shipped.threshold_for_fmr(f) for f in TARGET_FMRS) if t is not None
    ]

    # 3. Differentials, impostors within each group.
    def groups_of(labels: np.ndarray, names: list[str]) -> list[GroupStats]:
        return [
            group_stats(
                name,
                vectors[labels == name],
                people[labels == name],
                thresholds,
                bootstrap=options.bootstrap,
                similarity=similarity,
            )
            for name in names
            if (labels == name).sum() >= 2
        ]

    by_gender = groups_of(gender, ["F", "M"])
    by_race = groups_of(race, list(RACE_GROUPS))
    overall = group_stats(
        "all", vectors, people, thresholds, bootstrap=options.bootstrap, similarity=similarity
    )

    # 4. Identification, several gallery sizes.
    ident = []
    race_or_none = np.where(np.isin(race, RACE_GROUPS), race, "unlabelled")
    for size in options.gallery_sizes:
        result = identification(vectors, people, gender, thresholds, size, similarity=similarity)
        if any(done["gallery_size"] == result.gallery_size for done in ident):
            continue  # fewer people than asked for: this size was already measured
        by_race_result = identification(
            vectors, people, race_or_none, thresholds, size, similarity=similarity
        )
        ident.append(
            {
                "gallery_size": result.gallery_size,
                "mated_searches": result.mated_searches,
                "non_mated_searches": result.non_mated_searches,
                "fpir": _rates(result.fpir),
                "fnir": _rates(result.fnir),
                "fpir_by_gender": {g: _rates(r) for g, r in result.fpir_by_group.items()},
                "fnir_by_gender": {g: _rates(r) for g, r in result.fnir_by_group.items()},
                "fpir_by_race": {g: _rates(r) for g, r in by_race_result.fpir_by_group.items()},
                "fnir_by_race": {g: _rates(r) for g, r in by_race_result.fnir_by_group.items()},
            }
        )

    # 5. Failure to acquire on UTKFace.
    acquisition: dict[str, Any] = {"note": "UTKFace not found"}
    utk = Path(options.data) / "utkface"
    if (utk / "labels.csv").is_file():
        jobs = read_labels(utk, options.utkface_limit)
        outcomes = run_detection(jobs, options.workers, progress("UTKFace", len(jobs)))
        acquisition = {
            "images": len(outcomes),
            "by_race": _cells(failure_rates(outcomes, lambda o: o.race)),
            "by_gender": _cells(failure_rates(outcomes, lambda o: o.gender)),
            "by_age_band": _cells(failure_rates(outcomes, lambda o: o.age_band)),
            "by_race_gender_age": _cells(
                failure_rates(outcomes, lambda o: f"{o.race} / {o.gender} / {o.age_band}")
            ),
        }

    # 6. Every face model side by side, each at its own overall 1e-3 threshold.
    # The audited model once more with label-free score normalisation (FSN, shipped off), so
    # the report shows what it would change.
    audited = face_model(options.face_model).version
    sides = [(v, None) for v in FACE_MODELS] + [(audited, FSN_CLUSTERS)]
    labels = {"gender": gender, "race": race}
    models = [
        _model_side(
            version, version == audited, fsn, root, images, people, labels, options, progress
        )
        for version, fsn in (sides if options.compare_models else [])
    ]

    # 7. Thresholds from the worst measured group, not the average.
    groups = by_gender + by_race
    calibration = {f"{t:g}": worst_group_threshold(groups, t) for t in (1e-3, 1e-4)}
    return {
        "faceledger_version": __version__,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "data": {
            "lfw_images": len(images),
            "lfw_people": len(set(people.tolist())),
            "gender_labelled_images": int(np.isin(gender, ["F", "M"]).sum()),
            "race_labelled_people": len(set(people[np.isin(race, RACE_GROUPS)])),
            "subset": options.subset,
        },
        "pipeline": asdict(pipeline),
        "face_model_version": face_model(options.face_model).version,
        "thresholds": thresholds,
        "verification": verification.to_json(),
        "overall": _group_json(overall),
        "by_gender": [_group_json(g) for g in by_gender],
        "by_race": [_group_json(g) for g in by_race],
        "ratios": {
            "gender": _ratios(by_gender, thresholds),
            "race": _ratios(by_race, thresholds),
        },
        "identification": ident,
        "acquisition": acquisition,
        "worst_group_calibration": calibration,
        "det": {g.group: _det(g.calibration) for g in [overall, *by_gender, *by_race]},
        "models": models,
        "limits": LIMITS,
    }


def _descriptors(
    root: Path,
    images: list[str],
    pipeline: Pipeline,
    options: AuditOptions,
    advance: Callable[[int], None],
) -> np.ndarray:
    run = embed_images(
        root / "images",
        images,
        pipeline,
        cache_dir=options.cache_dir,
        workers=options.workers,
        progress=advance,
    )
    return np.stack([run.results[i].vector for i in images])


def _model_side(
    version: str,
    audited: bool,
    fsn_clusters: int | None,
    root: Path,
    images: list[str],
    people: np.ndarray,
    labels: dict[str, np.ndarray],
    options: AuditOptions,
    progress: Progress,
) -> dict[str, Any]:
    """One face model on the audit's images: its threshold for an overall FMR of 1e-3 (on its
    own scale), each group's FMR and FNMR there, and its DET curves; with ``fsn_clusters``,
    after fair score normalisation (offsets out of fold)."""
    pipeline = Pipeline.for_model(version)
    advance = progress(f"LFW images, {version}", len(images))
    vectors = _descriptors(root, images, pipeline, options, advance)
    similarity = Calibration.load(recognizer=pipeline.recognizer).scale.similarity
    offsets = None if fsn_clusters is None else out_of_fold_offsets(vectors, people, fsn_clusters)
    overall = group_stats("all", vectors, people, [50.0], 20, similarity, offsets)
    threshold = overall.calibration.threshold_for_fmr(1e-3)
    label = version if fsn_clusters is None else f"{version} + FSN k={fsn_clusters} (off)"
    side: dict[str, Any] = {
        "version": label,
        "audited": audited and fsn_clusters is None,
        "threshold_1e-3": threshold,
    }
    stats = []
    for kind, names in labels.items():
        wanted = ("F", "M") if kind == "gender" else RACE_GROUPS
        for name in wanted:
            mask = names == name
            if mask.sum() >= 2 and threshold is not None:
                stats.append(
                    group_stats(
                        name,
                        vectors[mask],
                        people[mask],
                        [threshold],
                        options.bootstrap,
                        similarity,
                        None if offsets is None else offsets[mask],
                    )
                )
    side["groups"] = {
        g.group: {"fmr": asdict(g.fmr[threshold]), "fnmr": asdict(g.fnmr[threshold])}
        for g in stats
        if threshold is not None
    }
    side["det"] = {g.group: _det(g.calibration) for g in [overall, *stats]}
    return side


LIMITS = [
    "LFW is news photos of public figures, mostly white and male; its faces are easier than "
    "surveillance or casual photos, so absolute error rates here are optimistic.",
    "Gender labels are per image (hand-checked lists); race labels cover 866 LFW people only, "
    "from a third-party annotation, and few of them are not white: per-group figures for small "
    "groups carry wide intervals, and groups below the size rules get no figure at all.",
    "Race and gender categories are social constructs recorded by annotators, not facts read "
    "from faces; faceledger never infers them.",
    "Intervals are 95 % bootstrap intervals over people (verification) or Wilson intervals "
    "(identification, acquisition). Where no error was seen, the figure is an upper bound (3/n).",
    "UTKFace crops are tight, aligned faces; failure to acquire on full scenes will be higher.",
]


def gender_labels(root: Path, images: list[str]) -> np.ndarray:
    path = root / "annotations" / "gender" / "lfw_gender_per_image.csv"
    if not path.is_file():
        raise DatasetError(f"no gender annotations at {path}")
    with path.open() as handle:
        labels = {row["image"]: row["gender"] for row in csv.DictReader(handle)}
    # Images missing from the lists, or listed without a label, are "unlabelled".
    return np.array([labels.get(i.split("/", 1)[1]) or "unlabelled" for i in images])


def race_labels(root: Path, people: np.ndarray) -> np.ndarray:
    path = root / "annotations" / "race" / "lfw_race_dict.json"
    if not path.is_file():
        raise DatasetError(f"no race annotations at {path}")
    labels = json.loads(path.read_text())
    return np.array([labels.get(p, "unlabelled") for p in people.tolist()])


def _rates(rates: dict[float, Any]) -> dict[str, Any]:
    return {f"{t:g}": asdict(r) for t, r in rates.items()}


def _cells(cells: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {cell: {m: asdict(r) for m, r in rates.items()} for cell, rates in cells.items()}


def _group_json(g: GroupStats) -> dict[str, Any]:
    return {
        "group": g.group,
        "images": g.images,
        "identities": g.identities,
        "impostor_pairs": g.impostor_pairs,
        "genuine_pairs": g.genuine_pairs,
        "fmr": _rates(g.fmr),
        "fnmr": _rates(g.fnmr),
    }


def _ratios(groups: list[GroupStats], thresholds: list[float]) -> dict[str, Any]:
    return {
        f"{t:g}": {
            "fmr": worst_best_ratio({g.group: g.fmr[t] for g in groups}),
            "fnmr": worst_best_ratio({g.group: g.fnmr[t] for g in groups}),
        }
        for t in thresholds
    }


def _det(calibration: Calibration) -> dict[str, list[float]]:
    """FMR and FNMR at every grid similarity where both are defined (for DET curves)."""
    imp, gen = calibration.impostor_counts, calibration.genuine_counts
    if imp.sum() == 0 or gen.sum() == 0:
        return {"similarity": [], "fmr": [], "fnmr": []}
    fmr = np.cumsum(imp[::-1])[::-1] / imp.sum()
    fnmr = 1.0 - np.cumsum(gen[::-1])[::-1] / gen.sum()
    keep = np.nonzero((fmr > 0) & (fnmr > 0))[0][::5]
    return {
        "similarity": [round(float(i) * GRID_STEP, 2) for i in keep],
        "fmr": fmr[keep].tolist(),
        "fnmr": fnmr[keep].tolist(),
    }
