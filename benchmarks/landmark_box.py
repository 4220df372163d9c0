"""Where dlib's 5-point landmark model should look for a YuNet face: refit the mapping from
YuNet's points and box to a HOG-style box (faceledger.vision.engine.landmark_box), and measure
what it does to descriptors.

    python benchmarks/landmark_box.py [--images 3000] [--fit 2000] [--check 400]

On random LFW images where YuNet and HOG (upsample 1) both find the central face, least squares
fits HOG's box centre (offsets from the middle of eyes and mouth, in units of eye-to-mouth and
eye-to-eye distance) and size (from YuNet's width and height) on the first ``--fit`` images;
on ``--check`` others it reports how far the descriptors from the mapped boxes are from those
from HOG's own boxes, beside how far a 4 px shift of HOG's box moves them.
"""

from __future__ import annotations

import argparse
import random

import numpy as np

from faceledger.config import get_settings
from faceledger.imaging import load_image
from faceledger.vision import Box, FaceEngine
from faceledger.vision.dnn.runtime import OnnxYunetDetector
from faceledger.vision.dnn.yunet import YunetFace
from faceledger.vision.engine import YUNET_CONFIRM_FROM, landmark_box


def central(items: list, centre_of, size: float = 250.0):
    return min(items, key=lambda item: sum(abs(c - size / 2) for c in centre_of(item)))


def features(face: YunetFace) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    points = np.asarray(face.landmarks)
    eyes, mouth = (points[0] + points[1]) / 2, (points[3] + points[4]) / 2
    scales = np.array([np.linalg.norm(mouth - eyes), np.linalg.norm(points[0] - points[1])])
    return (eyes + mouth) / 2, scales, np.array(face.box[2:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--fit", type=int, default=2000)
    parser.add_argument("--check", type=int, default=400)
    args = parser.parse_args()
    files = sorted((get_settings().eval_data / "lfw" / "images").glob("*/*.jpg"))
    random.Random(1).shuffle(files)
    yunet = OnnxYunetDetector(get_settings().cache_dir, 1)
    hog = FaceEngine(detector="hog", upsample=1)
    pairs = []  # (image, YuNet face, HOG face)
    for file in files[: args.images]:
        rgb = load_image(file)
        theirs, ours = hog.detect(rgb), yunet(rgb, YUNET_CONFIRM_FROM)
        if not theirs or not ours:
            continue
        mine = central(ours, lambda f: (f.box[0] + f.box[2] / 2, f.box[1] + f.box[3] / 2))
        reference = central(theirs, lambda f: (f.box.center.x, f.box.center.y))
        if abs(mine.box[0] + mine.box[2] / 2 - reference.box.center.x) < mine.box[2] / 2:
            pairs.append((rgb, mine, reference))
    fit, check = pairs[: args.fit], pairs[args.fit : args.fit + args.check]
    rows = [features(f) for _, f, _ in fit]
    middles = np.array([r[0] for r in rows])
    scales = np.array([r[1] for r in rows])
    sizes = np.array([r[2] for r in rows])
    centres = np.array([(h.box.center.x, h.box.center.y) for _, _, h in fit])
    x, *_ = np.linalg.lstsq(scales, centres[:, 0] - middles[:, 0], rcond=None)
    y, *_ = np.linalg.lstsq(scales, centres[:, 1] - middles[:, 1], rcond=None)
    s, *_ = np.linalg.lstsq(sizes, np.array([h.box.width for _, _, h in fit]), rcond=None)
    print(f"{len(pairs)} faces found by both; fitted on {len(fit)}:")
    print(f"  centre x = middle x + {x[0]:.3f} eye-to-mouth + {x[1]:.3f} eye-to-eye")
    print(f"  centre y = middle y + {y[0]:.3f} eye-to-mouth + {y[1]:.3f} eye-to-eye")
    print(f"  size = {s[0]:.3f} width + {s[1]:.3f} height   (the engine uses its own constants)")
    mapped, shifted = [], []
    for rgb, face, reference in check:
        base = hog.embed(rgb, [reference])[0].embedding
        ours = hog.embed(rgb, [landmark_box(face)])[0].embedding
        b = reference.box
        moved = hog.embed(rgb, [Box(b.left + 4, b.top + 4, b.width, b.height)])[0].embedding
        mapped.append(float(np.linalg.norm(ours - base)))
        shifted.append(float(np.linalg.norm(moved - base)))
    for name, values in (("landmark_box", mapped), ("HOG's box moved 4 px", shifted)):
        print(
            f"  {name:22} descriptor distance to HOG's box, {len(values)} faces: mean "
            f"{np.mean(values):.4f}, p95 {np.percentile(values, 95):.4f}, max {max(values):.3f}"
        )


if __name__ == "__main__":
    main()
