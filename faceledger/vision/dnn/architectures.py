"""The two dlib networks we run, written as the op sequences their C++ types describe.

A dlib file does not say how tags, skips and add_prev layers connect (that is in the C++ type the
network was trained with), so each network is spelled out here, input first. Ops are
``(kind, arg)``: ``("tag", n)`` remembers the current output as tag n, ``("skip", n)`` makes tag
n's output current again, ``("add_prev", {"tag": n})`` adds tag n's output to the current one.
The reader checks every layer's kind against the file, so a wrong spelling cannot load.
"""

from __future__ import annotations

from typing import Any

Op = tuple[str, Any]


def _conv_affine(relu: bool = True) -> list[Op]:
    ops: list[Op] = [("con", None), ("affine", None)]
    return [*ops, ("relu", None)] if relu else ops


def _residual(down: bool) -> list[Op]:
    # dlib's dnn_face_recognition_ex: ares / ares_down. The block is
    # con(3x3, stride s) affine relu con(3x3) affine; the down variant adds it to a 2x2 average
    # pool of the block's input.
    block = [("tag", 1), *_conv_affine(), *_conv_affine(relu=False)]
    if not down:
        return [*block, ("add_prev", {"tag": 1}), ("relu", None)]
    return [
        *block,
        ("tag", 2),
        ("skip", 1),
        ("avg_pool", None),
        ("add_prev", {"tag": 2}),
        ("relu", None),
    ]


def face_descriptor() -> list[Op]:
    """ResNet-29 of dlib_face_recognition_resnet_model_v1 (150x150 RGB -> 128 numbers)."""
    levels = [
        [False] * 3,  # 32 filters
        [True] + [False] * 3,  # 64
        [True] + [False] * 2,  # 128
        [True] + [False] * 2,  # 256
        [True],  # 256
    ]
    ops: list[Op] = [("input", "rgb_sized"), *_conv_affine(), ("max_pool", None)]
    for level in levels:
        for down in level:
            ops += _residual(down)
    return [*ops, ("avg_pool", None), ("fc", None)]


def mmod_face_detector() -> list[Op]:
    """mmod_human_face_detector: three stride-2 5x5 convolutions, three 5x5, one 9x9 scorer."""
    ops: list[Op] = [("input", "rgb_pyramid")]
    ops += _conv_affine() * 3  # the downsampler
    ops += _conv_affine() * 3  # rcon5 x 3
    return [*ops, ("con", None)]
