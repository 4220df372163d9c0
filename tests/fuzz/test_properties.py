"""Property-based tests of every reader of untrusted input: whatever the bytes, the answer is a
result or one of faceledger's own errors, never a crash. ``make fuzz`` runs the same contracts
for longer (``fuzzing/``)."""

from __future__ import annotations

import base64
import json

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from faceledger.api.payload import decode_base64, parse_json_object
from faceledger.api.rekognition import sigv4
from faceledger.api.rekognition.validation import SPECS, validate
from faceledger.errors import AuthenticationError, InvalidImageError, InvalidParameterError
from faceledger.imaging import ImageLimits, decode_image
from faceledger.imaging.jpeg import read_layout
from fuzzing.seed_corpus import sample_images

LIMITS = ImageLimits(max_bytes=2_000_000, max_pixels=4_000_000, min_side=8)
FAST = settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))


SEEDS = sample_images()


@st.composite
def damaged_images(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 8))):
        position = draw(st.integers(0, len(data) - 1))
        data[position] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(data)))
    return bytes(data[: cut if draw(st.booleans()) else len(data)])


def decodes_or_refuses(data: bytes) -> None:
    try:
        rgb = decode_image(data, LIMITS)
    except InvalidImageError as error:
        assert error.code in InvalidImageError.CODES and error.message
        return
    assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
    assert rgb.shape[0] * rgb.shape[1] <= LIMITS.max_pixels


@FAST
@given(damaged_images())
def test_damaged_images_decode_or_are_refused(data: bytes) -> None:
    decodes_or_refuses(data)
    layout = read_layout(data)
    assert layout is None or layout.blocks >= 0


@FAST
@given(st.binary(max_size=4096))
def test_arbitrary_bytes_decode_or_are_refused(data: bytes) -> None:
    decodes_or_refuses(data)
    read_layout(data)


@FAST
@given(st.binary(max_size=2048))
def test_json_bodies_parse_or_are_refused(raw: bytes) -> None:
    try:
        value = parse_json_object(raw)
    except InvalidParameterError as error:
        assert error.message
    else:
        assert isinstance(value, dict)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=30,
)


@FAST
@given(st.dictionaries(st.text(max_size=12), json_values, max_size=5))
def test_json_objects_round_trip(value: dict) -> None:
    assert parse_json_object(json.dumps(value).encode()) == json.loads(json.dumps(value))


@FAST
@given(st.binary(max_size=512), st.lists(st.integers(0, 600), max_size=6), st.booleans())
def test_base64_with_breaks_and_data_urls(data: bytes, breaks: list[int], as_url: bool) -> None:
    text = base64.b64encode(data).decode()
    for at in sorted(breaks, reverse=True):
        text = text[:at] + "\n" + text[at:]
    if as_url:
        text = "data:image/jpeg;base64," + text
    if data:
        assert decode_base64(text, "image") == data


@FAST
@given(st.text(max_size=300))
def test_arbitrary_base64_text_decodes_or_is_refused(text: str) -> None:
    try:
        decode_base64(text, "image")
    except InvalidParameterError as error:
        assert error.message.startswith("image:")


header_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=200)


@FAST
@given(header_text, header_text)
def test_authorization_headers_parse_or_are_refused(authorization: str, date: str) -> None:
    try:
        signed = sigv4.parse_authorization({"authorization": authorization, "x-amz-date": date})
    except AuthenticationError as error:
        assert error.message
        return
    try:
        sigv4.verify(
            signed,
            "secret",
            method="POST",
            path="/",
            query="",
            headers={"authorization": authorization, "x-amz-date": date, "host": "h"},
            body=b"{}",
        )
    except AuthenticationError as error:
        assert error.message


@FAST
@given(
    st.sampled_from(sorted(SPECS)),
    st.dictionaries(
        st.sampled_from(
            [
                "CollectionId",
                "Image",
                "MaxFaces",
                "FaceIds",
                "NextToken",
                "UserId",
                "FaceMatchThreshold",
                "Attributes",
                "QualityFilter",
                "Bogus",
                "FaceId",
                "MaxResults",
                "ExternalImageId",
                "SourceImage",
                "TargetImage",
                "Tags",
            ]
        ),
        json_values,
        max_size=6,
    ),
)
def test_rekognition_validation_accepts_or_names_the_problem(action: str, body: dict) -> None:
    try:
        validate(action, body)
    except InvalidParameterError as error:
        assert error.message and "Traceback" not in error.message


@st.composite
def multipart_bodies(draw: st.DrawFn) -> tuple[bytes, str]:
    boundary = draw(st.text("abcdefXYZ0123456789-", min_size=1, max_size=30))
    parts = []
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from(["image", "threshold", "purpose", "x", "", '"; evil="']))
        payload = draw(st.binary(max_size=200) | st.sampled_from(SEEDS[:2]))
        filename = draw(st.sampled_from(['; filename="a.jpg"', "", '; filename="\\u0000"']))
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"{filename}'
        parts.append(head.encode() + b"\r\n\r\n" + payload + b"\r\n")
    ending = draw(st.sampled_from([f"--{boundary}--\r\n".encode(), b"", b"--"]))
    declared = draw(st.sampled_from([boundary, boundary + "x", ""]))
    return b"".join(parts) + ending, f"multipart/form-data; boundary={declared}"


@FAST
@given(multipart_bodies())
def test_multipart_bodies_get_a_clear_answer(api, body: tuple[bytes, str]) -> None:
    raw, content_type = body
    response = api.client.post(
        "/v1/detect", content=raw, headers={**api.operator, "Content-Type": content_type}
    )
    assert response.status_code < 500, response.text
    assert "error" in response.json() or response.status_code == 200
