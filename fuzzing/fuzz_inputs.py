"""A coverage-guided fuzz target (atheris) over every reader of untrusted input: the image
decoder and its JPEG structure check, the JSON and base64 readers, SigV4 parsing and checking,
and the Rekognition request validator. The first byte picks the reader; the rest is its input.
Any exception other than faceledger's own errors is a crash.

    make fuzz                      # FUZZ_SECONDS (default 1800) over every reader
    .venv/bin/python fuzzing/fuzz_inputs.py -max_total_time=60 fuzzing/corpus
"""

from __future__ import annotations

import contextlib
import json
import sys

import atheris

with atheris.instrument_imports():
    from faceledger.api.payload import decode_base64, parse_json_object
    from faceledger.api.rekognition import sigv4
    from faceledger.api.rekognition.validation import SPECS, validate
    from faceledger.errors import FaceledgerError
    from faceledger.imaging import ImageLimits, decode_image
    from faceledger.imaging.jpeg import read_layout

LIMITS = ImageLimits(max_bytes=2_000_000, max_pixels=4_000_000, min_side=8)
ACTIONS = sorted(SPECS)


def image(data: bytes) -> None:
    read_layout(data)
    rgb = decode_image(data, LIMITS)
    assert rgb.ndim == 3 and rgb.shape[2] == 3 and rgb.shape[0] * rgb.shape[1] <= 4_000_000


def payload(data: bytes) -> None:
    value = parse_json_object(data)
    assert isinstance(value, dict)


def base64_text(data: bytes) -> None:
    decode_base64(data.decode("utf-8", "replace"), "image")


def authorization(data: bytes) -> None:
    text = data.decode("utf-8", "replace")
    header, _, date = text.partition("\n")
    signed = sigv4.parse_authorization({"authorization": header, "x-amz-date": date})
    sigv4.verify(
        signed, "secret", method="POST", path="/", query="", headers={"host": "h"}, body=data
    )


def rekognition(data: bytes) -> None:
    if not data:
        return
    action = ACTIONS[data[0] % len(ACTIONS)]
    try:
        body = json.loads(data[1:])
    except (ValueError, RecursionError):
        return
    if isinstance(body, dict):
        validate(action, body)


READERS = (image, payload, base64_text, authorization, rekognition)


def test_one_input(data: bytes) -> None:
    if not data:
        return
    reader = READERS[data[0] % len(READERS)]
    with contextlib.suppress(FaceledgerError):  # a clear refusal is the contract
        reader(data[1:])


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
