"""FaceEngine: detect, align, score and embed faces, and compare them.

Pure functions of their inputs apart from the models loaded in the constructor: no storage, no
HTTP. Box convention: pixels of the orientation-corrected image, ``left, top, width, height``,
origin top-left (see :mod:`faceledger.vision.types`).
"""

from __future__ import annotations

import hashlib
import math
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import dlib
import numpy as np
from PIL import Image

from faceledger.config import get_settings
from faceledger.errors import InvalidParameterError
from faceledger.imaging import ImageLimits, load_image
from faceledger.vision.dnn import sface
from faceledger.vision.dnn.runtime import (
    OnnxDescriptor,
    OnnxMmodDetector,
    OnnxSface,
    OnnxYunetDetector,
    default_threads,
)
from faceledger.vision.dnn.sface_int8 import RANGES_SHA256
from faceledger.vision.dnn.yunet import YunetFace, regions_around
from faceledger.vision.models import FACE_MODELS, face_model, get_spec, model_path
from faceledger.vision.quality import measure_quality, score_to_confidence
from faceledger.vision.similarity import Calibration
from faceledger.vision.types import Box, Face, Match, Point, Quality

ImageInput = np.ndarray | str | Path | bytes
T = TypeVar("T")
R = TypeVar("R")

CHIP_SIZE = 150
CHIP_PADDING = 0.25
DETECTORS = ("yunet", "hog", "cnn")
BACKENDS = ("onnx", "dlib")
# dlib's ResNet (aligned on dlib's 5-point landmarks) or SFace, in float32 or int8 (aligned on
# YuNet's five points).
RECOGNIZERS = ("dlib", "sface", "sface-int8")
SFACE_RECOGNIZERS = ("sface", "sface-int8")
# Detection is sized by the smallest face that must be found, not by the image: by default
# Rekognition's documented floor, a 40x40 face (in a 1920x1080 image).
MIN_FACE_PX = 40
# HOG's window is 80 px: each doubling of the image halves the smallest face it finds.
HOG_WINDOW_PX = 80
# YuNet finds faces down to about 20 px, with better scores from ~28 px: an image is scaled by
# YUNET_FACE_PX / min_face_px (0.7 at the default 40), but never below YUNET_MIN_SIDE px on its
# long side, where the network is cheap anyway. Measured with benchmarks/detection.py on 160 faces
# of 40-200 px pasted on 1280x720 frames, score >= 0.85: at 20 px 154 found, 24 ms per frame; at
# 28 px 159 found, 32 ms (HOG at upsample 1: 159, 293 ms).
YUNET_FACE_PX = 28
YUNET_MIN_SIDE = 640
# YuNet's score is the geometric mean of its class and objectness outputs. Detections scoring
# YUNET_THRESHOLD or more are faces; those from YUNET_CONFIRM_FROM up count only where dlib's
# MMOD CNN, or else its HOG detector (at score CONFIRM_HOG_SCORE), run on twice the box scaled so
# the face is CONFIRM_FACE_PX wide, finds a face there too (~8 ms each; at most CONFIRM_MOST per
# image, best scores first). Measured (benchmarks/detection.py, README): a single cut at
# OpenCV's 0.6 gave false faces in video frames (dark patches, a hand), at 0.85 a dog in dlib's
# dogs.jpg (0.86), while at 0.9 small and turned real faces were lost (36 of dlib's 43
# hand-labelled faces; people in three-quarter view in the Hamilton clip score 0.85-0.88). HOG
# alone as the checker dropped the turned faces, the CNN alone a face filling a UTKFace crop;
# with both, every true face of 0.7-0.9 in those sets was kept and every false one dropped, the
# dog included. Chosen on those sets, so the figures flatter it.
YUNET_THRESHOLD = 0.9
YUNET_CONFIRM_FROM = 0.7
CONFIRM_FACE_PX = 90
CONFIRM_HOG_SCORE = -0.2
CONFIRM_MOST = 32
# analyze_many embeds faces in batches of this many while other images are still being detected.
EMBED_BATCH = 16
# Pixel budgets: what each detector may see after scaling. An image above the budget is
# downscaled before detection (and never upsampled), so one request's cost is bounded whatever
# the image. Measured on 2 cores (README, "Bounded cost"): HOG takes ~0.07 s and little memory
# per megapixel, so a 12 MP phone photo runs at full size; the MMOD CNN takes ~130 MB and ~0.3 s
# per megapixel, so it never sees more than 2 MP (LFW's 250 px images upsampled twice are 1 MP);
# YuNet ~75 ms and ~46 MB per megapixel on one thread (4 MP: 0.3 s, +183 MB).
HOG_MAX_PIXELS = 12_000_000
CNN_MAX_PIXELS = 2_000_000
YUNET_MAX_PIXELS = 4_000_000


class FaceEngine:
    """The face engine. Safe to call from several threads at once (on the ONNX backend calls
    run in parallel; dlib's own networks are taken one call at a time).

    Args:
        detector: ``"yunet"`` (YuNet, a small CNN: the default; finds small and turned faces,
            a few ms per photo), ``"hog"`` (dlib's HOG + SVM; frontal faces) or ``"cnn"``
            (dlib's MMOD CNN; on ONNX Runtime about 0.1 s per 720p frame).
        min_face_px: the smallest face (in the image's pixels) detection must find; it decides
            how much each detector scales the image (see :data:`MIN_FACE_PX`). Smaller costs
            more: HOG ~4x per halving.
        yunet_threshold: the YuNet score at which a detection is a face without the CNN's
            confirmation (see :data:`YUNET_THRESHOLD`).
        upsample: for HOG and the CNN, how many times to double the image; ``None`` derives it
            from ``min_face_px`` (HOG's window is 80 px).
        cnn_fallback: with YuNet or HOG, run the CNN detector on images where they find
            nothing. Costs time only on those images.
        flip_fusion: embed each face and its mirror image and average the two descriptors.
            Doubles embedding time; on LFW it lowers errors (see the README).
        jitter: dlib's random jittering, averaged over this many copies (0 = off). Slow; dlib's
            jitter is random, so results are not reproducible when it is on.
        calibration: the similarity -> false-match-rate table; the shipped one by default.
        backend: where the two neural networks (the ResNet descriptor and the MMOD detector)
            run: ``"onnx"`` (ONNX Runtime, graphs built from dlib's own weight files; the same
            numbers to ~1e-6, many times faster) or ``"dlib"`` (dlib itself, the reference).
            HOG detection and the 5-point landmarks run on dlib either way.
        threads: ONNX Runtime threads per call; all this process's cores by default. Give
            ``cores // processes`` when several engines run side by side.
        model_cache: where built ONNX graphs are kept (``FACELEDGER_CACHE_DIR``/onnx by default).
    """

    def __init__(
        self,
        *,
        detector: str = "yunet",
        min_face_px: int = MIN_FACE_PX,
        yunet_threshold: float = YUNET_THRESHOLD,
        upsample: int | None = None,
        cnn_fallback: bool = False,
        flip_fusion: bool = True,
        jitter: int = 0,
        calibration: Calibration | None = None,
        limits: ImageLimits | None = None,
        backend: str = "onnx",
        threads: int | None = None,
        model_cache: Path | None = None,
        recognizer: str = "dlib",
    ) -> None:
        if backend not in BACKENDS:
            raise InvalidParameterError(f"backend must be one of {BACKENDS}, not {backend!r}")
        if backend == "onnx" and jitter:
            raise InvalidParameterError("jitter is dlib's random augmentation: use backend='dlib'")
        if threads is not None and not 1 <= threads <= 256:
            raise InvalidParameterError("threads must be between 1 and 256")
        if recognizer not in RECOGNIZERS:
            raise InvalidParameterError(f"recognizer must be one of {RECOGNIZERS}")
        if recognizer in SFACE_RECOGNIZERS and backend != "onnx":
            raise InvalidParameterError("SFace runs on ONNX Runtime only (backend='onnx')")
        if detector not in DETECTORS:
            raise InvalidParameterError(f"detector must be one of {DETECTORS}, not {detector!r}")
        if not 0.0 < yunet_threshold <= 1.0:
            raise InvalidParameterError("yunet_threshold must be between 0 and 1")
        if not 8 <= min_face_px <= 4096:
            raise InvalidParameterError("min_face_px must be between 8 and 4096")
        if upsample is not None and not 0 <= upsample <= 3:
            raise InvalidParameterError("upsample must be between 0 and 3")
        if not 0 <= jitter <= 100:
            raise InvalidParameterError("jitter must be between 0 and 100")
        self.detector = detector
        self.recognizer = recognizer
        self.min_face_px = min_face_px
        self.yunet_threshold = yunet_threshold
        self.upsample = upsample
        self.cnn_fallback = cnn_fallback
        self.flip_fusion = flip_fusion
        self.jitter = jitter
        self.limits = limits or ImageLimits()
        self.calibration = (
            calibration if calibration is not None else Calibration.load(recognizer=recognizer)
        )
        self.backend = backend
        self.threads = threads or default_threads()
        # dlib's HOG detector keeps per-image state in the object, so concurrent calls each take
        # one from this pool (building one costs ~200 ms); its run() releases the GIL, which is
        # what lets analyze_many use every core.
        self._hogs: queue.SimpleQueue = queue.SimpleQueue()
        self._hogs.put(dlib.get_frontal_face_detector())
        # dlib's own networks keep state in the object: one call at a time (backend "dlib").
        self._dlib_lock = threading.Lock()
        self._shape = dlib.shape_predictor(str(model_path("landmarks5")))
        needs_cnn = detector in ("cnn", "yunet") or cnn_fallback  # YuNet: to confirm
        if backend == "dlib":
            self._cnn = dlib_cnn(model_path("cnn")) if needs_cnn else None
            self._descriptor = dlib_descriptor(model_path("resnet128"))
        else:
            cache = model_cache or get_settings().cache_dir
            self._cnn = OnnxMmodDetector(cache, self.threads) if needs_cnn else None
            # An SFace engine never runs dlib's descriptor, so does not load it.
            self._descriptor = OnnxDescriptor(cache, self.threads) if recognizer == "dlib" else None
        # YuNet always runs on ONNX Runtime (dlib has no such network), on one thread per call:
        # it is small (2 ms for a 250 px photo), and images and requests run side by side
        # (analyze_many's detection threads, the server's concurrent requests), so more
        # threads per call would only make them fight over the same cores.
        cache = model_cache or get_settings().cache_dir
        # SFace is aligned on YuNet's points: faces found otherwise are looked at again by it.
        self._uses_sface = recognizer in SFACE_RECOGNIZERS
        needs_yunet = detector == "yunet" or self._uses_sface
        self._yunet = OnnxYunetDetector(cache, 1) if needs_yunet else None
        self._sface = OnnxSface(cache, self.threads, recognizer) if self._uses_sface else None

    @classmethod
    def for_model(cls, name: str, **options: Any) -> FaceEngine:
        """The engine of a face model (``sface``, ``dlib`` or a version in ``FACE_MODELS``);
        ``options`` configure detection and threads."""
        model = face_model(name)
        return cls(recognizer=model.recognizer, flip_fusion=model.flip_fusion, **options)

    @property
    def fingerprint(self) -> str:
        """Identifies everything that changes an embedding: model files and embedding options."""
        return self.fingerprint_for(self.flip_fusion, self.jitter, self.backend, self.recognizer)

    @staticmethod
    def fingerprint_for(
        flip_fusion: bool, jitter: int, backend: str = "onnx", recognizer: str = "dlib"
    ) -> str:
        if recognizer in SFACE_RECOGNIZERS:
            # The int8 graph is made from the same weights and the shipped activation ranges.
            ranges = [RANGES_SHA256] if recognizer == "sface-int8" else []
            key = "|".join(
                [recognizer, get_spec("sface").sha256, *ranges, get_spec("yunet").sha256]
            )
            key += f"|flip={flip_fusion}"
            return hashlib.sha256(key.encode()).hexdigest()[:16]
        parts = [
            get_spec("resnet128").sha256,
            get_spec("landmarks5").sha256,
            f"chip={CHIP_SIZE}/{CHIP_PADDING}",
            f"flip={flip_fusion}",
            f"jitter={jitter}",
        ]
        # The ONNX graph computes dlib's numbers to ~1e-6, but not bit for bit: cached results
        # of one backend are not passed off as the other's.
        key = "|".join([*parts, f"backend={backend}"] if backend != "dlib" else parts)
        return hashlib.sha256(key.encode()).hexdigest()[:16]

    @staticmethod
    def detection_fingerprint(detector: str, min_face_px: int = MIN_FACE_PX) -> str:
        """Identifies what decides which faces are found and where, for caches of results
        (the embedding fingerprint does not change when only detection does)."""
        rules = [
            detector,
            f"min_face_px={min_face_px}",
            f"yunet={get_spec('yunet').sha256[:16]}/{YUNET_FACE_PX}/{YUNET_MIN_SIDE}",
            f"threshold={YUNET_THRESHOLD}/{YUNET_CONFIRM_FROM}",
            f"confirm={CONFIRM_FACE_PX}/{CONFIRM_HOG_SCORE}/{CONFIRM_MOST}",
            f"hog={HOG_WINDOW_PX}",
        ]
        return hashlib.sha256("|".join(rules).encode()).hexdigest()[:16]

    def load(self, image: ImageInput) -> np.ndarray:
        """An RGB uint8 array from an array, a path or encoded bytes."""
        if isinstance(image, np.ndarray):
            if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
                raise InvalidParameterError("image arrays must be RGB uint8 (height, width, 3)")
            return np.ascontiguousarray(image)
        return load_image(image, self.limits)

    def auto_upsample(self) -> int:
        """Doublings (at most 2) that bring ``min_face_px`` up to HOG's 80 px window."""
        if self.upsample is not None:
            return self.upsample
        return min(2, max(0, math.ceil(math.log2(HOG_WINDOW_PX / self.min_face_px))))

    def yunet_scale(self, height: int, width: int) -> float:
        """The factor YuNet's input is scaled by: the smallest face sought to YUNET_FACE_PX,
        images under YUNET_MIN_SIDE px left alone, never above the pixel budget."""
        scale = min(2.0, YUNET_FACE_PX / self.min_face_px)
        scale = max(scale, min(1.0, YUNET_MIN_SIDE / max(height, width)))
        return min(scale, math.sqrt(YUNET_MAX_PIXELS / (height * width)))

    def detect(self, image: ImageInput) -> list[Face]:
        """Find faces; each has a box, 5 landmarks, confidence and quality, but no embedding.

        Faces are ordered largest first. Returns an empty list when there is no face.
        """
        rgb = self.load(image)
        return [face for face, _ in self._detect_with_chips(rgb)]

    def detect_many(
        self,
        images: Iterable[ImageInput],
        *,
        cnn_fallback: bool | None = None,
        seen: SeenBoxes | None = None,
        small: Sequence[np.ndarray | None] | None = None,
        near: Sequence[Sequence[Box] | None] | None = None,
    ) -> list[list[Face]]:
        """:meth:`detect` for many images on ``threads`` threads (no descriptors: a caller
        that needs only some of them asks :meth:`embed` for those). ``seen``: consecutive
        frames of one video, in order; what the CNN check said of a box in the frames before
        holds for a box in about the same place (see :class:`SeenBoxes`). ``small``: each
        image already scaled for YuNet (by :meth:`yunet_scale`), where the caller has one.
        ``near``: for an image, YuNet looks only around these boxes (the faces of the frame
        before), not at the whole image."""
        images = list(images)
        heard: list[list[tuple[Box, bool]]] = [[] for _ in images]

        def detect(item: tuple[int, ImageInput]) -> list[Face]:
            index, image = item
            return [
                face
                for face, _ in self._detect_with_chips(
                    self.load(image),
                    cnn_fallback,
                    seen,
                    heard[index],
                    small[index] if small else None,
                    crops=False,
                    near=near[index] if near else None,
                )
            ]

        workers = min(self.threads, len(images))
        with ThreadPoolExecutor(workers) if workers > 1 else _InlineExecutor() as pool:
            found = list(pool.map(detect, enumerate(images)))
        if seen is not None:
            seen.remember(heard)  # after the batch: its frames never see each other's verdicts
        return found

    def embed(self, image: ImageInput, faces: Sequence[Face | Box]) -> list[Face]:
        """Descriptors for the given faces (or bare boxes, which get landmarks first)."""
        return self.embed_many([(image, faces)])[0]

    def embed_many(
        self, items: Sequence[tuple[ImageInput, Sequence[Face | Box]]]
    ) -> list[list[Face]]:
        """:meth:`embed` for many images, every face in one batch."""
        located: list[list[Face]] = []
        chips: list[np.ndarray] = []
        for image, faces in items:
            rgb = self.load(image)
            here = [
                f if isinstance(f, Face) else self._locate(rgb, f, 0.0, "given")[0] for f in faces
            ]
            if self._uses_sface:
                pairs = [self.sface_crop(rgb, f) for f in here]
                here = [f for f, _ in pairs]
                chips += [crop for _, crop in pairs]
            else:
                chips += [self._chip(rgb, f.box, f.landmarks) for f in here]
            located.append(here)
        vectors = iter(self._describe(chips))
        return [[f.with_embedding(next(vectors)) for f in here] for here in located]

    def analyze(self, image: ImageInput, *, cnn_fallback: bool | None = None) -> list[Face]:
        """Detect and embed every face, largest first. ``cnn_fallback`` overrides the engine's
        setting for this call (video turns it off: neighbouring frames find the face)."""
        return self.analyze_many([image], cnn_fallback=cnn_fallback)[0]

    def analyze_many(
        self, images: Iterable[ImageInput], *, cnn_fallback: bool | None = None
    ) -> list[list[Face]]:
        """:meth:`analyze` for many images: decoded and detected on ``threads`` threads while
        the faces found so far are embedded in batches."""
        images = list(images)
        results: list[list[Face]] = [[] for _ in images]
        pending: list[tuple[int, Face, np.ndarray]] = []

        def detect(image: ImageInput) -> list[tuple[Face, np.ndarray]]:
            return self._detect_with_chips(self.load(image), cnn_fallback)

        def embed_pending() -> None:
            vectors = self._describe([chip for _, _, chip in pending])
            for (index, face, _), vector in zip(pending, vectors, strict=True):
                results[index].append(face.with_embedding(vector))
            pending.clear()

        workers = min(self.threads, len(images))
        with ThreadPoolExecutor(workers) if workers > 1 else _InlineExecutor() as pool:
            for index, found in enumerate(pool.map(detect, images)):
                pending.extend((index, face, chip) for face, chip in found)
                if len(pending) >= EMBED_BATCH:
                    embed_pending()
        embed_pending()
        return results

    def compare(self, a: Face | np.ndarray, b: Face | np.ndarray) -> Match:
        """How alike two embedded faces (or two descriptors) are."""
        return self.match_for_distance(float(np.linalg.norm(_vector(a) - _vector(b))))

    def match_for_distance(self, distance: float) -> Match:
        """The Match for a descriptor distance already measured (e.g. by a vector index)."""
        similarity = float(self.calibration.scale.similarity(distance))
        fmr, bound = self.calibration.false_match_rate(similarity)
        return Match(round(similarity, 4), round(distance, 6), fmr, bound)

    def max_distance(self, similarity: float) -> float:
        """The descriptor distance at which a pair reaches ``similarity`` (0-100) on this
        engine's scale: what a vector index is asked for."""
        if similarity <= 0.0:
            return float("inf")
        if similarity >= 100.0:
            return 0.0
        return self.calibration.scale.distance(similarity)

    @property
    def model_version(self) -> str:
        """The face model this engine's descriptors belong to (see ``FACE_MODELS``)."""
        for model in FACE_MODELS.values():
            if (model.recognizer, model.flip_fusion) == (self.recognizer, self.flip_fusion):
                return model.version
        return f"{self.recognizer}-flip/custom" if self.flip_fusion else f"{self.recognizer}/custom"

    # -- internals ---------------------------------------------------------------------------

    def _detect_with_chips(
        self,
        rgb: np.ndarray,
        cnn_fallback: bool | None = None,
        seen: SeenBoxes | None = None,
        heard: list[tuple[Box, bool]] | None = None,
        small: np.ndarray | None = None,
        crops: bool = True,
        near: Sequence[Box] | None = None,
    ) -> list[tuple[Face, np.ndarray]]:
        """Each face found and the crop its descriptor is made from (without ``crops``, for
        callers that describe few of the faces, that of dlib's landmarks only)."""
        fallback = self.cnn_fallback if cnn_fallback is None else cnn_fallback
        points: dict[Box, tuple[Point, ...]] = {}
        if self.detector == "yunet":
            found = self._run_yunet(rgb, seen, heard, points, small, near)
            if not found and fallback and self._cnn is not None:
                found = self._within_budget(rgb, self._run_cnn, CNN_MAX_PIXELS, min_upsample=1)
        elif self.detector == "cnn":
            found = self._within_budget(rgb, self._run_cnn, CNN_MAX_PIXELS)
        else:
            found = self._within_budget(rgb, self._run_hog, HOG_MAX_PIXELS)
            if not found and fallback and self._cnn is not None:
                found = self._within_budget(rgb, self._run_cnn, CNN_MAX_PIXELS, min_upsample=1)
        found.sort(key=lambda item: -item[0].area)
        located = []
        for box, score, name in found:
            face, chip = self._locate(rgb, box, score, name)
            if box in points:
                face = replace(face, keypoints=points[box])
            if self._uses_sface and crops:
                face, chip = self.sface_crop(rgb, face)
            elif self._uses_sface and not face.keypoints:
                face = replace(face, keypoints=self._keypoints_near(rgb, face.box))
            located.append((face, chip))
        return located

    def sface_crop(self, rgb: np.ndarray, face: Face) -> tuple[Face, np.ndarray]:
        """The face (with YuNet's five points, found now when another detector found it) and
        its 112x112 crop aligned for SFace."""
        if not face.keypoints:
            face = replace(face, keypoints=self._keypoints_near(rgb, face.box))
        points = np.array([(p.x, p.y) for p in face.keypoints])
        return face, sface.aligned_crop(rgb, points)

    def _keypoints_near(self, rgb: np.ndarray, box: Box) -> tuple[Point, ...]:
        """YuNet's points for a face another detector found: YuNet run on twice the box, the
        detection closest to it; failing that, points placed from dlib's landmarks."""
        assert self._yunet is not None
        height, width = rgb.shape[:2]
        side = max(2, math.ceil(2 * max(box.width, box.height)))
        left, top = max(0, round(box.center.x - side / 2)), max(0, round(box.center.y - side / 2))
        part = rgb[top : min(height, top + side), left : min(width, left + side)]
        scale = min(2.0, 160 / max(part.shape[:2]))
        found = self._yunet(_scaled(part, scale), 0.5) if min(part.shape[:2]) > 8 else []
        best = max(
            found,
            key=lambda f: box.iou(
                Box(
                    left + f.box[0] / scale,
                    top + f.box[1] / scale,
                    f.box[2] / scale,
                    f.box[3] / scale,
                )
            ),
            default=None,
        )
        if best is not None:
            return tuple(Point(left + x / scale, top + y / scale) for x, y in best.landmarks)
        return _points_from_eyes(self._locate(rgb, box, 0.0, "given")[0].landmarks)

    def _within_budget(
        self,
        rgb: np.ndarray,
        run: Callable[[np.ndarray, int], list[tuple[Box, float, str]]],
        budget: int,
        min_upsample: int = 0,
    ) -> list[tuple[Box, float, str]]:
        """Run a detector on at most ``budget`` pixels: fewer upsamplings than asked for when
        they would exceed it, a downscaled copy when the image itself does. Boxes come back in
        the image's own pixels."""
        pixels = rgb.shape[0] * rgb.shape[1]
        upsample = max(self.auto_upsample(), min_upsample)
        while upsample > 0 and pixels * 4**upsample > budget:
            upsample -= 1
        if pixels <= budget:
            return run(rgb, upsample)
        factor = math.ceil(math.sqrt(pixels / budget))
        return [
            (Box(b.left * factor, b.top * factor, b.width * factor, b.height * factor), s, name)
            for b, s, name in run(box_downscale(rgb, factor), 0)
        ]

    def _run_yunet(
        self,
        rgb: np.ndarray,
        seen: SeenBoxes | None = None,
        heard: list[tuple[Box, bool]] | None = None,
        points: dict[Box, tuple[Point, ...]] | None = None,
        small: np.ndarray | None = None,
        near: Sequence[Box] | None = None,
    ) -> list[tuple[Box, float, str]]:
        """YuNet's faces: sure ones as they are, doubtful ones (YUNET_CONFIRM_FROM up to the
        threshold) where the CNN check agrees, or, in a video, where it agreed with a box in
        about the same place in the frames just before (``seen``; verdicts go to ``heard``).
        ``near``: only around these boxes (see :meth:`detect_many`)."""
        assert self._yunet is not None
        height, width = rgb.shape[:2]
        scale = self.yunet_scale(height, width)
        if abs(scale - 1.0) <= 0.05:
            scaled = rgb
        elif small is not None and abs(small.shape[1] - width * scale) <= 1:
            scaled = small  # made by the video decoder's scaler
        else:
            scaled = _scaled(rgb, scale)
        sx, sy = width / scaled.shape[1], height / scaled.shape[0]
        threshold = min(YUNET_CONFIRM_FROM, self.yunet_threshold)
        if near is None:
            faces = self._yunet(scaled, threshold)
        else:
            boxes = [(b.left / sx, b.top / sy, b.width / sx, b.height / sy) for b in near]
            faces = self._yunet.near(scaled, regions_around(boxes, *scaled.shape[:2]), threshold)
        found, checked = [], 0
        for face in faces:
            box = landmark_box(face, sx, sy)
            verdict: bool | None = True
            if face.score < self.yunet_threshold:
                verdict = seen.verdict(box) if seen is not None else None
                if verdict is None:
                    checked += 1
                    if checked > CONFIRM_MOST:
                        continue
                    verdict = self._confirmed(rgb, box)
            if heard is not None:
                heard.append((box, verdict))
            if verdict:
                found.append((box, face.score, "yunet"))
                if points is not None:
                    points[box] = tuple(Point(x * sx, y * sy) for x, y in face.landmarks)
        return found

    def _confirmed(self, rgb: np.ndarray, box: Box) -> bool:
        """Whether dlib's MMOD CNN, or else its HOG detector, finds a face of about ``box``'s
        size centred inside it, looking at twice the box scaled so the face is CONFIRM_FACE_PX
        wide: for the CNN black beyond the image's edges (a face filling the photo still needs
        a margin), for HOG only the image (black edges spoil its gradients)."""
        height, width = rgb.shape[:2]
        side = max(2, math.ceil(2 * box.width))
        left, top = round(box.center.x - side / 2), round(box.center.y - side / 2)
        columns = slice(max(0, left), min(width, left + side))
        rows = slice(max(0, top), min(height, top + side))
        if columns.stop - columns.start < 2 or rows.stop - rows.start < 2:
            return False
        scale = CONFIRM_FACE_PX / box.width

        def agrees(found: list[tuple[Box, float, str]], x0: int, y0: int) -> bool:
            return any(
                box.same_face(
                    Box(x0 + o.left / scale, y0 + o.top / scale, o.width / scale, o.height / scale)
                )
                for o, _, _ in found
            )

        view = np.zeros((side, side, 3), np.uint8)
        part = rgb[rows, columns]
        view[rows.start - top : rows.stop - top, columns.start - left : columns.stop - left] = part
        if agrees(self._run_cnn(_scaled(view, scale), 0), left, top):
            return True
        found = self._run_hog(_scaled(part, scale), 0, threshold=CONFIRM_HOG_SCORE)
        return agrees(found, columns.start, rows.start)

    def _run_hog(
        self, rgb: np.ndarray, upsample: int, threshold: float = 0.0
    ) -> list[tuple[Box, float, str]]:
        try:
            hog = self._hogs.get_nowait()
        except queue.Empty:
            hog = dlib.get_frontal_face_detector()
        try:
            rects, scores, _ = hog.run(rgb, upsample, threshold)
        finally:
            self._hogs.put(hog)
        return [(_box(r), float(s), "hog") for r, s in zip(rects, scores, strict=True)]

    def _run_cnn(self, rgb: np.ndarray, upsample: int) -> list[tuple[Box, float, str]]:
        assert self._cnn is not None
        if isinstance(self._cnn, OnnxMmodDetector):
            return [(_box_from(*d.rect), d.score, "cnn") for d in self._cnn(rgb, upsample)]
        with self._dlib_lock:
            found = self._cnn(rgb, upsample)
        return [(_box(d.rect), float(d.confidence), "cnn") for d in found]

    def _locate(
        self, rgb: np.ndarray, box: Box, score: float, detector: str
    ) -> tuple[Face, np.ndarray]:
        shape = self._shape(rgb, _rect(box))
        landmarks = tuple(Point(float(p.x), float(p.y)) for p in shape.parts())
        chip = self._chip(rgb, box, landmarks)
        if detector == "yunet":
            confidence = 100.0 * score
        else:
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
        batch = np.stack(chips)
        if self.flip_fusion:
            batch = np.concatenate([batch, batch[:, :, ::-1]])
        if self._sface is not None:
            raw = self._sface(np.ascontiguousarray(batch))
            if self.flip_fusion:
                raw = raw[: len(chips)] + raw[len(chips) :]
                raw = raw / np.linalg.norm(raw, axis=1, keepdims=True)
            return list(raw)
        if isinstance(self._descriptor, OnnxDescriptor):
            raw = self._descriptor(np.ascontiguousarray(batch))
        else:
            with self._dlib_lock:
                raw = np.asarray(
                    self._descriptor.compute_face_descriptor(list(batch), self.jitter),
                    dtype=np.float32,
                )
        if self.flip_fusion:
            raw = (raw[: len(chips)] + raw[len(chips) :]) / 2.0
        return list(raw)


def _points_from_eyes(landmarks: tuple[Point, ...]) -> tuple[Point, ...]:
    """SFace's five points placed from dlib's eye corners alone: the template moved, turned and
    scaled so its eyes land on the eyes' centres (dlib's points 2-3 are the eye on the image's
    left, 0-1 the other)."""
    left = np.mean([(p.x, p.y) for p in landmarks[2:4]], axis=0)
    right = np.mean([(p.x, p.y) for p in landmarks[0:2]], axis=0)
    source, target = sface.TEMPLATE[0], sface.TEMPLATE[1]
    turn = complex(*(right - left)) / complex(*(target - source))
    moved = [complex(*(p - source)) * turn + complex(*left) for p in sface.TEMPLATE]
    return tuple(Point(z.real, z.imag) for z in moved)


def _scaled(rgb: np.ndarray, scale: float) -> np.ndarray:
    size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR))


def landmark_box(face: YunetFace, sx: float = 1.0, sy: float = 1.0) -> Box:
    """The box dlib's 5-point landmark model expects (it was trained on dlib's HOG boxes) for a
    YuNet face, from YuNet's eyes and mouth corners and box size, in image pixels (``sx``,
    ``sy``: image pixels per detector pixel).

    Fitted by least squares on 2,000 LFW faces found by both detectors; on 400 others the
    descriptors from these boxes differ from those from HOG's boxes by 0.033 on average, about
    as much as moving HOG's box by 4 px does (0.031). benchmarks/landmark_box.py refits it
    (its coefficients come out within 0.01 of these) and measures both figures.
    """
    points = np.asarray(face.landmarks, dtype=np.float64) * (sx, sy)
    eyes = (points[0] + points[1]) / 2
    mouth = (points[3] + points[4]) / 2
    eye_to_mouth = float(np.linalg.norm(mouth - eyes))
    eye_to_eye = float(np.linalg.norm(points[0] - points[1]))
    middle = (eyes + mouth) / 2
    centre_x = middle[0] + 0.100 * eye_to_mouth - 0.202 * eye_to_eye
    centre_y = middle[1] - 0.281 * eye_to_mouth + 0.237 * eye_to_eye
    size = 0.652 * face.box[2] * sx + 0.362 * face.box[3] * sy
    return Box(float(centre_x - size / 2), float(centre_y - size / 2), float(size), float(size))


def box_downscale(rgb: np.ndarray, factor: int, rows: int = 256) -> np.ndarray:
    """Each ``factor`` x ``factor`` block averaged into one pixel (pixel (i, j) of the result
    covers exactly rows ``factor*i`` to ``factor*i + factor - 1`` of the image, so boxes scale
    back by ``factor``). Works in strips of ``rows`` output rows, so the only large allocation
    is the result itself."""
    height, width = rgb.shape[0] // factor, rgb.shape[1] // factor
    out = np.empty((height, width, 3), dtype=np.uint8)
    area = factor * factor
    for top in range(0, height, rows):
        bottom = min(height, top + rows)
        block = rgb[top * factor : bottom * factor, : width * factor]
        total = np.zeros((bottom - top, width, 3), dtype=np.uint32)
        for dy in range(factor):
            for dx in range(factor):
                total += block[dy::factor, dx::factor]
        out[top:bottom] = (total + area // 2) // area
    return out


class SeenBoxes:
    """What YuNet's doubtful detections turned out to be in the last ``frames`` frames of one
    video: a face (a sure detection, or one the CNN check confirmed) or not. In the next frames
    a box in about the same place (IoU >= ``overlap``) is taken as the same thing without the
    check, which is most of the cost of analysing every frame."""

    def __init__(self, frames: int = 25, overlap: float = 0.5) -> None:
        self.frames, self.overlap = frames, overlap
        self._entries: list[tuple[int, Box, bool]] = []
        self._frame = 0

    def verdict(self, box: Box) -> bool | None:
        for _, earlier, verdict in reversed(self._entries):
            if box.iou(earlier) >= self.overlap:
                return verdict
        return None

    def remember(self, frames: Sequence[Sequence[tuple[Box, bool]]]) -> None:
        """The verdicts of consecutive frames, in order."""
        for verdicts in frames:
            self._frame += 1
            self._entries += [(self._frame, box, verdict) for box, verdict in verdicts]
        self._entries = [e for e in self._entries if e[0] > self._frame - self.frames]


class _InlineExecutor:
    """ThreadPoolExecutor's map, run in the calling thread (one thread: no pool to start)."""

    def __enter__(self) -> _InlineExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def map(self, function: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        return map(function, items)


def _box(rect: dlib.rectangle) -> Box:
    return _box_from(rect.left(), rect.top(), rect.right(), rect.bottom())


def _box_from(left: int, top: int, right: int, bottom: int) -> Box:
    # dlib rectangles are inclusive of their right and bottom pixel.
    return Box(float(left), float(top), float(right - left + 1), float(bottom - top + 1))


def _rect(box: Box) -> dlib.rectangle:
    return dlib.rectangle(
        round(box.left),
        round(box.top),
        round(box.right) - 1,
        round(box.bottom) - 1,
    )


def dlib_cnn(path: Path) -> dlib.cnn_face_detection_model_v1:
    return dlib.cnn_face_detection_model_v1(str(path))


def dlib_descriptor(path: Path) -> dlib.face_recognition_model_v1:
    return dlib.face_recognition_model_v1(str(path))


def _vector(x: Face | np.ndarray) -> np.ndarray:
    if isinstance(x, Face):
        if x.embedding is None:
            raise InvalidParameterError("the face has no embedding; call FaceEngine.embed first")
        return x.embedding
    vector = np.asarray(x, dtype=np.float32)
    if vector.shape != (128,) or not math.isfinite(float(vector.sum())):
        raise InvalidParameterError("a descriptor is 128 finite numbers")
    return vector
