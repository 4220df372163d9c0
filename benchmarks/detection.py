"""Detection recall and cost, per set, for the detectors faceledger offers, one thread each.

Sets (faceledger.evaluation.detection): LFW images (subject found), UTKFace crops by race,
gender and age band, dlib's hand-labelled photos, and 1280x720 frames with LFW faces of
40-200 px pasted on a photo with no people (dlib's dogs.jpg). "before" is the engine as it was
before the smallest-face rule: HOG at the most doublings (at most 2) that keep the image under
2 MP, with the CNN fallback. YuNet's score cut is swept on the same detections.

    python benchmarks/detection.py [--lfw 1000] [--frames 20] [--data DIR]
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from faceledger.config import get_settings
from faceledger.evaluation import detection
from faceledger.evaluation.detection import Sample
from faceledger.vision import Face, FaceEngine

THRESHOLDS = (0.6, 0.7, 0.8, 0.9)


def before_engine() -> Callable[[object], list[Face]]:
    engines = [
        FaceEngine(detector="hog", upsample=u, cnn_fallback=True, threads=1) for u in range(3)
    ]

    def detect(image: object) -> list[Face]:
        height, width = image.shape[:2]  # type: ignore[attr-defined]
        steps = 0
        while steps < 2 and height * width * 4 ** (steps + 1) <= 2_000_000:
            steps += 1
        return engines[steps].detect(image)  # type: ignore[arg-type]

    return detect


def count(samples: list[Sample], detect: Callable[[object], list[Face]]) -> dict:
    found: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    extra = 0
    seconds = 0.0
    scores: list[tuple[float, bool]] = []  # for the threshold sweep: (score, matched a face)
    for sample in samples:
        image = sample.load()
        started = time.perf_counter()
        faces = detect(image)
        seconds += time.perf_counter() - started
        boxes = [f.box for f in faces]
        for truth in sample.faces:
            hit = detection.found(truth, boxes)
            for group in _groups(sample):
                found[group][0] += hit
                found[group][1] += 1
        for face in faces:
            matched = any(detection.found(t, [face.box]) for t in sample.faces)
            extra += not matched
            scores.append((face.score, matched))
    return {
        "found": dict(found),
        "extra": extra,
        "ms": 1000 * seconds / len(samples),
        "scores": scores,
    }


def _groups(sample: Sample) -> list[str]:
    if "|" not in sample.group or sample.name.startswith("pasted"):
        return ["all"]
    race, gender, age = sample.group.split("|")
    return ["all", f"race {race}", f"gender {gender}", f"age {age}"]


def sweep(samples: list[Sample], result: dict) -> list[str]:
    """Recall and extra detections of YuNet (no fallback) at each score cut."""
    lines = []
    total = sum(len(s.faces) for s in samples)
    for cut in THRESHOLDS:
        kept = [(score, hit) for score, hit in result["scores"] if score >= cut]
        lines.append(
            f"    YuNet score >= {cut}: {sum(h for _, h in kept)} faces matched of {total} "
            f"(a face matched twice counts twice), {sum(not h for _, h in kept)} extra"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lfw", type=int, default=1000)
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--sets", default="LFW,UTKFace,dlib labelled,pasted 1280x720")
    args = parser.parse_args()
    data = args.data or get_settings().eval_data
    faces_dir = data / "samples" / "dlib" / "faces"
    sets = {
        "LFW": detection.lfw_samples(data / "lfw", args.lfw),
        "UTKFace": detection.utkface_samples(data / "utkface"),
        "dlib labelled": detection.dlib_labelled_samples(faces_dir),
        "pasted 1280x720": detection.pasted_frames(
            data / "lfw", faces_dir / "dogs.jpg", args.frames
        ),
    }
    engines: dict[str, Callable[[object], list[Face]]] = {
        "before (HOG auto + CNN)": before_engine(),
        "HOG, min_face_px 40 + CNN": FaceEngine(
            detector="hog", cnn_fallback=True, threads=1
        ).detect,
        "YuNet (default) + CNN": FaceEngine(cnn_fallback=True, threads=1).detect,
    }
    low_cut = FaceEngine(yunet_threshold=min(THRESHOLDS), threads=1).detect
    chosen = args.sets.split(",")
    for name, samples in [(n, s) for n, s in sets.items() if n in chosen]:
        print(f"\n{name}: {len(samples)} images, {sum(len(s.faces) for s in samples)} faces")
        for label, detect in engines.items():
            result = count(samples, detect)
            worst = min(
                ((g, f / t) for g, (f, t) in result["found"].items() if g != "all"),
                key=lambda item: item[1],
                default=None,
            )
            found, total = result["found"]["all"]
            print(
                f"  {label:28} {found:5d}/{total:<5d} {found / total:7.2%}"
                f"  extra {result['extra']:3d}"
                f"  {result['ms']:7.1f} ms/image"
                + (f"  worst group: {worst[0]} {worst[1]:.1%}" if worst else "")
            )
            groups = sorted(g for g in result["found"] if g != "all")
            if groups:
                print(
                    "    "
                    + ", ".join(
                        f"{g} {result['found'][g][0]}/{result['found'][g][1]}" for g in groups
                    )
                )
        print("\n".join(sweep(samples, count(samples, low_cut))))


if __name__ == "__main__":
    main()
