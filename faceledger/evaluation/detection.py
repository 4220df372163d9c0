"""Detection recall on sets where the faces are known: LFW (one subject per image, centred),
UTKFace crops (one face each, with race, gender and age band), dlib's hand-labelled photos, and
1280x720 frames with LFW faces of 40-200 px pasted at known places on a photo with no people.

A face counts as found when a detection's centre lies inside its true box and the detection's
width is within a factor of two of the box's: boxes of different detectors are drawn differently,
so this asks "was this face found", not "how tight is the box".
"""

from __future__ import annotations

import csv
import random
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from faceledger.evaluation.embedder import CENTRE_BOX
from faceledger.imaging import load_image
from faceledger.vision import Box

FRAME_SIZE = (1280, 720)
PASTED_SIZES = (40, 200)  # smallest and largest pasted face, px wide
FACES_PER_FRAME = 8


@dataclass(frozen=True)
class Sample:
    """One image and the faces in it; ``group`` labels it for per-group counts."""

    name: str
    load: Callable[[], np.ndarray]
    faces: tuple[Box, ...]
    group: str = "all"


def found(truth: Box, detections: Sequence[Box]) -> bool:
    return any(truth.same_face(box) for box in detections)


def _file(path: Path) -> Callable[[], np.ndarray]:
    return lambda: load_image(path)


def lfw_samples(lfw_dir: Path, count: int, seed: int = 0) -> list[Sample]:
    """``count`` LFW images drawn at random; the subject's box is the centre box (LFW's
    deep-funneled images are aligned on the subject)."""
    files = sorted((lfw_dir / "images").glob("*/*.jpg"))
    random.Random(seed).shuffle(files)
    return [Sample(f.name, _file(f), (_centre_box(250, 250),)) for f in files[:count]]


def _centre_box(width: int, height: int) -> Box:
    left, top, size_w, size_h = CENTRE_BOX
    return Box(left * width, top * height, size_w * width, size_h * height)


def utkface_samples(utkface_dir: Path) -> list[Sample]:
    """Every UTKFace crop (200x200, one face filling most of it), grouped by race, gender and
    age band. The crop is the face (about 130-215 px wide by HOG's boxes)."""
    with (utkface_dir / "labels.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    truth = Box(25, 25, 150, 150)
    return [
        Sample(
            r["file"],
            _file(utkface_dir / "images" / r["file"]),
            (truth,),
            f"{r['race']}|{r['gender']}|{r['age_band']}",
        )
        for r in rows
    ]


def dlib_labelled_samples(faces_dir: Path) -> list[Sample]:
    """dlib's example photos with their hand-labelled boxes (``ignore`` boxes left out)."""
    samples = []
    for name in ("training.xml", "testing.xml"):
        root = ET.parse(faces_dir / name).getroot()
        for image in root.iter("image"):
            boxes = tuple(
                Box(*(float(b.get(k, 0)) for k in ("left", "top", "width", "height")))
                for b in image.iter("box")
                if b.get("ignore") != "1"
            )
            file = faces_dir / str(image.get("file"))
            samples.append(Sample(file.name, _file(file), boxes))
    return samples


def pasted_frames(lfw_dir: Path, background: Path, frames: int, seed: int = 0) -> list[Sample]:
    """1280x720 frames of ``background`` with faces cut from LFW images pasted on a grid, each
    scaled so the face is 40-200 px wide (sizes spread evenly, positions jittered in a cell)."""
    rng = random.Random(seed)
    files = sorted((lfw_dir / "images").glob("*/*.jpg"))
    scene = Image.open(background).convert("RGB").resize(FRAME_SIZE, Image.Resampling.BILINEAR)
    smallest, largest = PASTED_SIZES
    sizes = np.linspace(smallest, largest, frames * FACES_PER_FRAME)
    order = list(range(len(sizes)))
    rng.shuffle(order)
    samples = []
    for frame in range(frames):
        widths = [float(sizes[i]) for i in order[frame * FACES_PER_FRAME :][:FACES_PER_FRAME]]
        placements = list(_placements(widths, rng))
        chosen = rng.sample(files, len(placements))
        samples.append(
            Sample(
                f"pasted-{frame:02d}",
                _pasted(scene, chosen, placements),
                tuple(face for _, face in placements),
                group="|".join(f"{w:.0f}" for w in widths),
            )
        )
    return samples


# The patch cut from an LFW image: its centre box with a quarter of its size added on each side.
PATCH_MARGIN = 0.25


def _patch_box(width: int, height: int) -> Box:
    face = _centre_box(width, height)
    margin_w, margin_h = face.width * PATCH_MARGIN, face.height * PATCH_MARGIN
    return Box(
        face.left - margin_w,
        face.top - margin_h,
        face.width + 2 * margin_w,
        face.height + 2 * margin_h,
    )


def _placements(face_widths: list[float], rng: random.Random) -> Iterator[tuple[int, Box]]:
    """Each patch's side in the frame and its face's box: two rows of four cells, each patch
    jittered inside its cell."""
    cell_w, cell_h = FRAME_SIZE[0] // 4, FRAME_SIZE[1] // 2
    for index, face_width in enumerate(face_widths):
        side = round(face_width * (1 + 2 * PATCH_MARGIN))
        column, row = index % 4, index // 4
        left = column * cell_w + rng.randint(0, max(0, cell_w - side))
        top = row * cell_h + rng.randint(0, max(0, cell_h - side))
        margin = side * PATCH_MARGIN / (1 + 2 * PATCH_MARGIN)
        yield side, Box(left + margin, top + margin, side - 2 * margin, side - 2 * margin)


def _pasted(
    scene: Image.Image, files: list[Path], placements: list[tuple[int, Box]]
) -> Callable[[], np.ndarray]:
    def build() -> np.ndarray:
        frame = scene.copy()
        for file, (side, face) in zip(files, placements, strict=True):
            crop = _patch_box(250, 250)
            patch = (
                Image.open(file)
                .convert("RGB")
                .crop((round(crop.left), round(crop.top), round(crop.right), round(crop.bottom)))
            )
            margin = side * PATCH_MARGIN / (1 + 2 * PATCH_MARGIN)
            patch = patch.resize((side, side), Image.Resampling.BILINEAR)
            frame.paste(patch, (round(face.left - margin), round(face.top - margin)))
        return np.asarray(frame)

    return build
