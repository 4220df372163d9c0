"""Label-free fair score normalisation (FSN) on the default model, measured per group.

    python benchmarks/fair_normalisation.py [--model sface] [--k 10,25,50,100] [--bootstrap 200]

All LFW images (embeddings cached by ``make calibrate``/``make audit``); offsets out of fold
(10 folds of people: each face's offset comes from clusters and thresholds fitted without its
person); thresholds at an overall false match rate of 1e-3 and 1e-4 over every pair, each
variant at its own; group rates on within-group impostor pairs with 95 % bootstrap intervals
over people; LFW view 2 accuracy on the adjusted distances. Writes out/fsn.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from faceledger.config import get_settings
from faceledger.evaluation import lfw
from faceledger.evaluation.audit import RACE_GROUPS, gender_labels, race_labels
from faceledger.evaluation.embedder import Pipeline, embed_images
from faceledger.evaluation.fairness import group_stats
from faceledger.evaluation.fsn import out_of_fold_offsets
from faceledger.evaluation.metrics import k_fold_accuracy
from faceledger.vision.similarity import Calibration

TARGETS = (1e-3, 1e-4)


def measure(
    vectors: np.ndarray,
    people: np.ndarray,
    labels: dict[str, np.ndarray],
    similarity,
    offsets: np.ndarray | None,
    bootstrap: int,
) -> dict:
    overall = group_stats("all", vectors, people, [50.0], 20, similarity, offsets)
    thresholds = [overall.calibration.threshold_for_fmr(t) for t in TARGETS]
    result: dict = {"thresholds": dict(zip(map(str, TARGETS), thresholds, strict=True))}
    groups = {}
    for kind, names in labels.items():
        for name in np.unique(names).tolist():
            if name == "unlabelled":
                continue
            mask = names == name
            g = group_stats(
                name,
                vectors[mask],
                people[mask],
                [t for t in thresholds if t is not None],
                bootstrap,
                similarity,
                None if offsets is None else offsets[mask],
            )
            groups[f"{kind}:{name}"] = {
                "people": g.identities,
                "fmr": {str(t): _rate(r) for t, r in zip(TARGETS, g.fmr.values(), strict=False)},
                "fnmr": {str(t): _rate(r) for t, r in zip(TARGETS, g.fnmr.values(), strict=False)},
            }
    result["groups"] = groups
    return result


def _rate(r) -> dict:
    return {"value": r.value, "low": r.low, "high": r.high, "note": r.note}


def view2_accuracy(root: Path, index: dict[str, int], vectors, offsets) -> float:
    pairs = lfw.read_pairs(root / "protocol" / "pairs.txt")
    a = np.array([index[p.first] for p in pairs])
    b = np.array([index[p.second] for p in pairs])
    d = np.linalg.norm(vectors[a] - vectors[b], axis=1)
    if offsets is not None:
        d = d + (offsets[a] + offsets[b]) / 2.0
    same = np.array([p.same for p in pairs])
    return k_fold_accuracy(-d, same, np.array([p.fold for p in pairs])).mean


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="sface")
    parser.add_argument("--k", default="10,25,50,100")
    parser.add_argument("--bootstrap", type=int, default=200)
    parser.add_argument("--out", type=Path, default=Path("out/fsn.json"))
    args = parser.parse_args()
    settings = get_settings()
    root = lfw.resolve_lfw_dir(settings.eval_data)
    pipeline = Pipeline.for_model(args.model)
    images = lfw.all_images(root)
    run = embed_images(
        root / "images", images, pipeline, cache_dir=settings.cache_dir, workers=settings.workers
    )
    vectors = np.stack([run.results[i].vector for i in images]).astype(np.float64)
    people = np.array([lfw.identity_of(i) for i in images])
    labels = {"gender": gender_labels(root, images), "race": race_labels(root, people)}
    labels["race"] = np.where(np.isin(labels["race"], RACE_GROUPS), labels["race"], "unlabelled")
    similarity = Calibration.load(recognizer=pipeline.recognizer).scale.similarity
    index = {name: i for i, name in enumerate(images)}
    report: dict = {"model": args.model, "images": len(images), "variants": {}}
    variants: list[tuple[str, np.ndarray | None]] = [("none", None)]
    for k in map(int, args.k.split(",")):
        started = time.perf_counter()
        offsets = out_of_fold_offsets(vectors, people, k)
        print(f"k={k}: offsets in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        variants.append((f"fsn k={k}", offsets))
    for name, offsets in variants:
        started = time.perf_counter()
        result = measure(vectors, people, labels, similarity, offsets, args.bootstrap)
        result["lfw_view2_accuracy"] = view2_accuracy(root, index, vectors, offsets)
        report["variants"][name] = result
        print(f"{name}: measured in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        print_variant(name, result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))


def print_variant(name: str, result: dict) -> None:
    print(
        f"\n{name}: LFW view 2 {100 * result['lfw_view2_accuracy']:.2f} %, thresholds "
        f"{result['thresholds']}"
    )
    for group, g in result["groups"].items():
        f3, n3 = g["fmr"].get("0.001", {}), g["fnmr"].get("0.001", {})
        if f3.get("value") is None:
            print(f"  {group:22s} {g['people']:5d} people: {f3.get('note', '')}")
            continue
        print(
            f"  {group:22s} {g['people']:5d} people: FMR/1e-3 {f3['value'] / 1e-3:5.2f}x "
            f"[{f3['low'] / 1e-3:.2f}, {f3['high'] / 1e-3:.2f}]  FNMR "
            + (f"{100 * n3['value']:.2f} %" if n3.get("value") is not None else n3.get("note", ""))
        )


if __name__ == "__main__":
    main()
