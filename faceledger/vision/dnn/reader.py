"""Read dlib's serialized DNN files into numpy arrays.

dlib writes a network by walking its C++ type: the file says which layer *details* it holds (each
starts with a name such as ``con_4``) but not how tag, skip and add_prev layers are wired, so the
reader takes the network's architecture (see :mod:`.architectures`) and checks the file against
it, byte by byte, to the end.

Encodings (dlib/serialize.h, dlib/cuda/tensor.h):
- integers: one byte ``n | 0x80 if negative`` then ``n`` little-endian magnitude bytes;
- floating point: mantissa and exponent as two such integers, value = mantissa * 2**exponent;
- bool: the character ``'1'`` or ``'0'``; string: an integer length then the bytes;
- tensor: version 2, four integers (samples, k, rows, columns), then raw little-endian float32;
- alias tensor (a shape inside a parameter tensor): version 1 and four integers.

An ``add_layer`` writes its version, then its sub-network, then its details, three bools and three
tensors (x_grad, cached output, params_grad); the one directly over the input writes the input
first and ends with ``grad_final`` and a sample expansion factor. A tag or skip layer writes a
version and its sub-network, nothing else.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from faceledger.errors import ModelFileError

_INF_EXPONENT = 32000  # float_details: 32000 inf, 32001 -inf, 32002 nan


@dataclass
class Layer:
    """One computation. ``kind`` is con, affine, relu, max_pool, avg_pool, fc, add_prev, tag or
    skip; ``attrs`` holds sizes and wiring, ``weights`` the arrays."""

    kind: str
    attrs: dict[str, Any] = field(default_factory=dict)
    weights: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class DlibNetwork:
    """A whole network, layers in execution order (input first)."""

    loss: dict[str, Any]
    input: dict[str, Any]
    layers: list[Layer]


class _Stream:
    def __init__(self, data: bytes, name: str) -> None:
        self.data = data
        self.pos = 0
        self.name = name

    def fail(self, why: str) -> ModelFileError:
        return ModelFileError(f"{self.name}: {why} at byte {self.pos}; not a dlib network we know")

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise self.fail("file ends early (truncated)")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def int(self) -> int:
        head = self.take(1)[0]
        size, negative = head & 0x0F, head & 0x80
        if size > 8 or head & 0x70:
            raise self.fail(f"bad integer header {head:#x}")
        value = int.from_bytes(self.take(size), "little")
        return -value if negative else value

    def float(self) -> float:
        mantissa, exponent = self.int(), self.int()
        if exponent >= _INF_EXPONENT:
            return {0: math.inf, 1: -math.inf}.get(exponent - _INF_EXPONENT, math.nan)
        return math.ldexp(mantissa, exponent)

    def bool(self) -> bool:
        char = self.take(1)
        if char not in (b"0", b"1"):
            raise self.fail(f"bad bool {char!r}")
        return char == b"1"

    def string(self) -> str:
        return self.take(self.int()).decode("latin-1")

    def expect_version(self, allowed: tuple[int, ...], what: str) -> int:
        version = self.int()
        if version not in allowed:
            raise self.fail(f"{what} version {version}, expected one of {allowed}")
        return version

    def tensor(self) -> np.ndarray:
        self.expect_version((2,), "tensor")
        shape = tuple(self.int() for _ in range(4))
        count = math.prod(shape)
        raw = np.frombuffer(self.take(4 * count), dtype="<f4")
        return raw.astype(np.float32).reshape(shape)

    def alias(self) -> tuple[int, int, int, int]:
        self.expect_version((1,), "alias tensor")
        return (self.int(), self.int(), self.int(), self.int())

    def name_in(self, allowed: tuple[str, ...]) -> str:
        name = self.string()
        if name not in allowed:
            raise self.fail(f"found layer {name!r}, expected one of {allowed}")
        return name


def read_network(path: Path, architecture: list[tuple[str, Any]]) -> DlibNetwork:
    """Parse ``path`` as the network ``architecture`` (ops input first, see .architectures)."""
    stream = _Stream(Path(path).read_bytes(), Path(path).name)
    stream.expect_version((1,), "loss layer")
    loss = _read_loss(stream)
    ops = architecture[1:]  # architecture[0] is the input
    for depth, (kind, _) in enumerate(reversed(ops)):
        over_input = depth == len(ops) - 1
        if kind in ("tag", "skip"):
            stream.expect_version((2,) if over_input else (1,), kind)
        else:
            stream.expect_version((3,) if over_input else (2,), "add_layer")
    network_input = _read_input(stream, architecture[0][1])
    layers: list[Layer] = []
    for index, (kind, arg) in enumerate(ops):
        over_input = index == 0
        if kind in ("tag", "skip"):
            layers.append(Layer(kind, {"id": arg}))
            if over_input:
                stream.tensor(), stream.tensor(), stream.bool(), stream.int()
            continue
        layer = _read_details(stream, kind)
        layer.attrs.update(arg or {})
        layers.append(layer)
        stream.bool(), stream.bool(), stream.bool()
        stream.tensor(), stream.tensor(), stream.tensor()
        if over_input:
            stream.int()  # sample expansion factor
    if stream.pos != len(stream.data):
        raise stream.fail(f"{len(stream.data) - stream.pos} bytes left over")
    return DlibNetwork(loss=loss, input=network_input, layers=layers)


def _read_loss(s: _Stream) -> dict[str, Any]:
    name = s.name_in(("loss_metric_2", "loss_mmod_"))
    if name == "loss_metric_2":
        return {"kind": "metric", "margin": s.float(), "distance_threshold": s.float()}
    version = s.expect_version((1, 2, 3, 4), "mmod options")
    if version == 1:
        windows = [(s.int(), s.int(), "")]
    else:
        windows = []
        for _ in range(s.int()):
            s.expect_version((1, 2), "detector window")
            windows.append((s.int(), s.int(), s.string() if version >= 2 else ""))
    options: dict[str, Any] = {
        "kind": "mmod",
        "detector_windows": windows,
        "loss_per_false_alarm": s.float(),
        "loss_per_missed_target": s.float(),
        "truth_match_iou_threshold": s.float(),
        "nms_iou": s.float(),
        "nms_covered": s.float(),
        "ignore_iou": s.float(),
        "ignore_covered": s.float(),
    }
    if version >= 3:
        options["assume_image_pyramid"] = s.int()
    if version >= 4:
        options["bounding_box_regression"] = s.bool()
        options["bbr_lambda"] = s.float()
    if options.get("bounding_box_regression"):
        raise s.fail("MMOD bounding box regression is not supported")
    return options


def _read_input(s: _Stream, expected: str) -> dict[str, Any]:
    if expected == "rgb_sized":
        s.name_in(("input_rgb_image_sized",))
        mean = (s.float(), s.float(), s.float())
        return {"kind": expected, "mean": mean, "rows": s.int(), "columns": s.int()}
    name = s.name_in(("input_rgb_image_pyramid", "input_rgb_image_pyramid2"))
    mean = (s.float(), s.float(), s.float())
    padding, outer = (s.int(), s.int()) if name.endswith("2") else (10, 11)
    return {"kind": expected, "mean": mean, "padding": padding, "outer_padding": outer}


def _read_details(s: _Stream, kind: str) -> Layer:
    reader = _DETAILS.get(kind)
    if reader is None:
        raise s.fail(f"no reader for layer kind {kind!r}")
    return reader(s)


def _split(params: np.ndarray, *shapes: tuple[int, ...]) -> list[np.ndarray]:
    flat, out, start = params.reshape(-1), [], 0
    for shape in shapes:
        size = math.prod(shape)
        out.append(flat[start : start + size].reshape(shape).copy())
        start += size
    return out


def _con(s: _Stream) -> Layer:
    version = s.name_in(("con_4", "con_5", "con_6"))
    params = s.tensor()
    filters = s.int()
    rows, columns, stride_y, stride_x, pad_y, pad_x = (s.int() for _ in range(6))
    filter_shape, bias_shape = s.alias(), s.alias()
    for _ in range(4):
        s.float()  # learning-rate and weight-decay multipliers: training only
    use_bias = s.bool() if version in ("con_5", "con_6") else True
    use_relu = s.bool() if version == "con_6" else False
    if use_relu:
        raise s.fail("convolutions with a fused relu are not supported")
    weight, bias = _split(params, filter_shape, bias_shape)
    if not use_bias:
        bias = np.zeros_like(bias)
    attrs = {
        "filters": filters,
        "kernel": (rows, columns),
        "stride": (stride_y, stride_x),
        "padding": (pad_y, pad_x),
    }
    return Layer("con", attrs, {"weight": weight, "bias": bias.reshape(-1)})


def _affine(s: _Stream) -> Layer:
    version = s.name_in(("affine_", "affine_2", "bn_con2"))
    if version == "bn_con2":
        return _batch_norm_as_affine(s)
    params = s.tensor()
    gamma_shape, beta_shape = s.alias(), s.alias()
    mode = s.int()
    disabled = s.bool() if version == "affine_2" else False
    gamma, beta = _split(params, gamma_shape, beta_shape)
    if disabled:
        gamma, beta = np.ones_like(gamma), np.zeros_like(beta)
    return Layer("affine", {"mode": mode}, {"gamma": gamma, "beta": beta})


def _batch_norm_as_affine(s: _Stream) -> Layer:
    # dlib turns a trained bn_ into an affine_ when it loads one (affine_'s constructor from
    # bn_): gamma / sqrt(running variance + eps) and beta - that * running mean.
    params = s.tensor()
    gamma_shape, beta_shape = s.alias(), s.alias()
    s.tensor(), s.tensor()  # means and inverse stds of the last training batch
    running_means, running_variances = s.tensor(), s.tensor()
    s.int(), s.int()  # number of updates, window size
    for _ in range(4):
        s.float()
    eps = s.float()
    gamma, beta = _split(params, gamma_shape, beta_shape)
    scale = gamma / np.sqrt(running_variances.reshape(gamma.shape) + eps)
    shift = beta - scale * running_means.reshape(beta.shape)
    weights = {"gamma": scale.astype(np.float32), "beta": shift.astype(np.float32)}
    return Layer("affine", {"mode": 0}, weights)  # 0: per channel (dlib CONV_MODE)


def _relu(s: _Stream) -> Layer:
    version = s.name_in(("relu_", "relu_2"))
    disabled = s.bool() if version == "relu_2" else False
    return Layer("relu", {"disabled": disabled})


def _pool(kind: str):
    def read(s: _Stream) -> Layer:
        s.name_in((f"{kind}_2",))
        rows, columns, stride_y, stride_x, pad_y, pad_x = (s.int() for _ in range(6))
        attrs = {"window": (rows, columns), "stride": (stride_y, stride_x)}
        return Layer(kind, {**attrs, "padding": (pad_y, pad_x)})

    return read


def _fc(s: _Stream) -> Layer:
    version = s.name_in(("fc_2", "fc_3"))
    outputs, inputs = s.int(), s.int()
    params = s.tensor()
    weight_shape, bias_shape = s.alias(), s.alias()
    bias_mode = s.int()  # 0: with bias, 1: without
    for _ in range(4):
        s.float()
    use_bias = s.bool() if version == "fc_3" else True
    if bias_mode == 0 and use_bias:
        weight, bias = _split(params, weight_shape, bias_shape)
    else:
        weight, bias = _split(params, weight_shape)[0], np.zeros(outputs, np.float32)
    weight, bias = weight.reshape(inputs, outputs), bias.reshape(-1)
    return Layer("fc", {"outputs": outputs, "inputs": inputs}, {"weight": weight, "bias": bias})


def _add_prev(s: _Stream) -> Layer:
    s.name_in(("add_prev_",))
    return Layer("add_prev")


_DETAILS = {
    "con": _con,
    "affine": _affine,
    "relu": _relu,
    "max_pool": _pool("max_pool"),
    "avg_pool": _pool("avg_pool"),
    "fc": _fc,
    "add_prev": _add_prev,
}
