"""FaceEngine: detect, align, score and embed faces, and compare them.

Pure functions of their inputs apart from the models loaded in the constructor: no storage, no
HTTP. Box convention: pixels of the orientation-corrected image, ``left, top, width, height``,
origin top-left (see :mod:`faceledger.vision.types`).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from pathlib import Path

import dlib
import numpy as np

from faceledger.errors import InvalidParameterError
from faceledger.imaging import ImageLimits, load_image
from faceledger.vision.models import get_spec, model_path
from faceledger.vision.quality import measure_quality, score_to_confidence
from faceledger.vision.similarity import Calibration, distance_to_similarity
from faceledger.vision.types import Box, Face, Match, Point, Quality

ImageInput = np.ndarray | str | Path | bytes

CHIP_SIZE = 150
CHIP_PADDING = 0.25
DETECTORS = ("hog", "cnn")
# Auto upsampling: the most doublings (at most 2) that keep the image under this many pixels.
# HOG's window is 80 px, so each doubling halves the smallest face it can find.
AUTO_UPSAMPLE_PIXELS = 2_000_000


class FaceEngine:
    """The face engine.

    Args:
        detector: ``"hog"`` (dlib's HOG + SVM; fast, frontal faces) or ``"cnn"`` (dlib's MMOD
            CNN; finds turned and small faces, about 20-80 times slower on the CPU).
        upsample: how many times to double the image before detecting; ``None`` chooses per image
            (see :data:`AUTO_UPSAMPLE_PIXELS`). More finds smaller faces and costs ~4x per step.
        cnn_fallback: with the HOG detector, run the CNN detector on images where HOG finds
            nothing. Costs time only on those images.
        flip_fusion: embed each face and its mirror image and average the two descriptors.
            Doubles embedding time; on LFW it lowers errors (see the README).
        jitter: dlib's random jittering, averaged over this many copies (0 = off). Slow; dlib's
            jitter is random, so results are not reproducible when it is on.
        calibration: the similarity -> false-match-rate table; the shipped one by default.
    """

    def __init__(
        self,
        *,
        detector: str = "hog",
        upsample: int | None = None,
        cnn_fallback: bool = False,
        flip_fusion: bool = True,
        jitter: int = 0,
        calibration: Calibration | None = None,
        limits: ImageLimits | None = None,
    ) -> None:
        if detector not in DETECTORS:
            raise InvalidParameterError(f"detector must be one of {DETECTORS}, not {detector!r}")
        if upsample is not None and not 0 <= upsample <= 3:
            raise InvalidParameterError("upsample must be between 0 and 3")
        if not 0 <= jitter <= 100:
            raise InvalidParameterError("jitter must be between 0 and 100")
        self.detector = detector
        self.upsample = upsample
        self.cnn_fallback = cnn_fallback
        self.flip_fusion = flip_fusion
        self.jitter = jitter
        self.limits = limits or ImageLimits()
        self.calibration = calibration if calibration is not None else Calibration.load()
        self._hog = dlib.get_frontal_face_detector()
        self._cnn = (
            dlib.cnn_face_detection_model_v1(str(model_path("cnn")))
            if detector == "cnn" or cnn_fallback
            else None
        )
        self._shape = dlib.shape_predictor(str(model_path("landmarks5")))
        self._descriptor = dlib.face_recognition_model_v1(str(model_path("resnet128")))

    @property
    def fingerprint(self) -> str:
        """Identifies everything that changes an embedding: model files and embedding options."""
        return self.fingerprint_for(self.flip_fusion, self.jitter)

    @staticmethod
    def fingerprint_for(flip_fusion: bool, jitter: int) -> str:
        key = "|".join(
            [
                get_spec("resnet128").sha256,
                get_spec("landmarks5").sha256,
                f"chip={CHIP_SIZE}/{CHIP_PADDING}",
                f"flip={flip_fusion}",
                f"jitter={jitter}",
            ]
        )
        return hashlib.sha256(key.encode()).hexdigest()[:16]

    def load(self, image: ImageInput) -> np.ndarray:
        """An RGB uint8 array from an array, a path or encoded bytes."""
        if isinstance(image, np.ndarray):
            if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
                raise InvalidParameterError("image arrays must be RGB uint8 (height, width, 3)")
            return np.ascontiguousarray(image)
        return load_image(image, self.limits)

    def auto_upsample(self, image: np.ndarray) -> int:
        if self.upsample is not None:
            return self.upsample
        pixels = image.shape[0] * image.shape[1]
        steps = 0
        while steps < 2 and pixels * 4 ** (steps + 1) <= AUTO_UPSAMPLE_PIXELS:
            steps += 1
        return steps

    def detect(self, image: ImageInput) -> list[Face]:
        """Find faces; each has a box, 5 landmarks, confidence and quality, but no embedding.

        Faces are ordered largest first. Returns an empty list when there is no face.
        """
        rgb = self.load(image)
        return [face for face, _ in self._detect_with_chips(rgb)]

    def embed(self, image: ImageInput, faces: Sequence[Face | Box]) -> list[Face]:
        """Descriptors for the given faces (or bare boxes, which get landmarks first)."""
        rgb = self.load(image)
        located = [
            f if isinstance(f, Face) else self._locate(rgb, f, 0.0, "given")[0] for f in faces
        ]
        chips = [self._chip(rgb, f.box, f.landmarks) for f in located]
        return [f.with_embedding(v) for f, v in zip(located, self._describe(chips), strict=True)]

    def analyze(self, image: ImageInput) -> list[Face]:
        """Detect and embed every face, largest first."""
        rgb = self.load(image)
        found = self._detect_with_chips(rgb)
        vectors = self._describe([chip for _, chip in found])
        return [face.with_embedding(v) for (face, _), v in zip(found, vectors, strict=True)]

    def compare(self, a: Face | np.ndarray, b: Face | np.ndarray) -> Match:
        """How alike two embedded faces (or two descriptors) are."""
        return self.match_for_distance(float(np.linalg.norm(_vector(a) - _vector(b))))

    def match_for_distance(self, distance: float) -> Match:
        """The Match for a descriptor distance already measured (e.g. by a vector index)."""
        similarity = float(distance_to_similarity(distance))
        fmr, bound = self.calibration.false_match_rate(similarity)
        return Match(round(similarity, 4), round(distance, 6), fmr, bound)

    # -- internals ---------------------------------------------------------------------------

    def _detect_with_chips(self, rgb: np.ndarray) -> list[tuple[Face, np.ndarray]]:
        upsample = self.auto_upsample(rgb)
        if self.detector == "cnn":
            found = self._run_cnn(rgb, upsample)
        else:
            found = self._run_hog(rgb, upsample)
            if not found and self.cnn_fallback:
                found = self._run_cnn(rgb, max(upsample, 1))
        found.sort(key=lambda item: -item[0].area)
        return [self._locate(rgb, box, score, name) for box, score, name in found]

    def _run_hog(self, rgb: np.ndarray, upsample: int) -> list[tuple[Box, float, str]]:
        rects, scores, _ = self._hog.run(rgb, upsample, 0.0)
        return [(_box(r), float(s), "hog") for r, s in zip(rects, scores, strict=True)]

    def _run_cnn(self, rgb: np.ndarray, upsample: int) -> list[tuple[Box, float, str]]:
        assert self._cnn is not None
        return [(_box(d.rect), float(d.confidence), "cnn") for d in self._cnn(rgb, upsample)]

    def _locate(
        self, rgb: np.ndarray, box: Box, score: float, detector: str
    ) -> tuple[Face, np.ndarray]:
        shape = self._shape(rgb, _rect(box))
        landmarks = tuple(Point(float(p.x), float(p.y)) for p in shape.parts())
        chip = self._chip(rgb, box, landmarks)
        confidence = score_to_confidence(score) if detector != "given" else 0.0
        quality: Quality = measure_quality(rgb, box, landmarks, chip, confidence)
        face = Face(
            box=box,
            landmarks=landmarks,
            confidence=round(confidence, 3),
            score=round(score, 4),
            detector=detector,
            quality=quality,
        )
        return face, chip

    def _chip(self, rgb: np.ndarray, box: Box, landmarks: tuple[Point, ...]) -> np.ndarray:
        shape = dlib.full_object_detection(
            _rect(box), [dlib.point(round(p.x), round(p.y)) for p in landmarks]
        )
        return dlib.get_face_chip(rgb, shape, CHIP_SIZE, CHIP_PADDING)

    def _describe(self, chips: list[np.ndarray]) -> list[np.ndarray]:
        if not chips:
            return []
        batch = list(chips)
        if self.flip_fusion:
            batch += [np.ascontiguousarray(c[:, ::-1]) for c in chips]
        raw = np.asarray(
            self._descriptor.compute_face_descriptor(batch, self.jitter), dtype=np.float32
        )
        if self.flip_fusion:
            raw = (raw[: len(chips)] + raw[len(chips) :]) / 2.0
        return list(raw)


def _box(rect: dlib.rectangle) -> Box:
    # dlib rectangles are inclusive of their right and bottom pixel.
    return Box(float(rect.left()), float(rect.top()), float(rect.width()), float(rect.height()))


def _rect(box: Box) -> dlib.rectangle:
    return dlib.rectangle(
        round(box.left),
        round(box.top),
        round(box.right) - 1,
        round(box.bottom) - 1,
    )


def _vector(x: Face | np.ndarray) -> np.ndarray:
    if isinstance(x, Face):
        if x.embedding is None:
            raise InvalidParameterError("the face has no embedding; call FaceEngine.embed first")
        return x.embedding
    vector = np.asarray(x, dtype=np.float32)
    if vector.shape != (128,) or not math.isfinite(float(vector.sum())):
        raise InvalidParameterError("a descriptor is 128 finite numbers")
    return vector
