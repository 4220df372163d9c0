"""Bounded cost per request (finding 1 of the hardening issue). A 116 KB blank 6300x6300 PNG
took a server past 12 GB of memory: the CNN fallback ran on the image upsampled. Now every
detector works within a pixel budget, a JPEG that cannot hold the pixels it claims is refused,
and at most a few requests use the engine at once."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

from faceledger.errors import InvalidImageError, ServiceBusy
from faceledger.imaging import decode_image
from faceledger.imaging.jpeg import read_layout
from faceledger.service.gate import EngineGate
from faceledger.vision import FaceEngine
from faceledger.vision.engine import CNN_MAX_PIXELS, HOG_MAX_PIXELS
from tests.conftest import DATA, DLIB_FACES, EXAMPLES, LFW, require
from tests.security import corpus
from tests.security.server_process import ServerProcess, cli


def test_detectors_never_see_more_than_their_budget(monkeypatch) -> None:
    engine = FaceEngine(detector="hog", cnn_fallback=True)
    seen: list[tuple[str, int, int]] = []

    def spy(name):
        def run(rgb, upsample):
            seen.append((name, rgb.shape[0] * rgb.shape[1] * 4**upsample, upsample))
            return []

        return run

    monkeypatch.setattr(engine, "_run_hog", spy("hog"))
    monkeypatch.setattr(engine, "_run_cnn", spy("cnn"))
    for shape in ((250, 250), (3000, 4000), (6324, 6324), (20000, 80), (100, 100)):
        seen.clear()
        engine.detect(np.zeros((*shape, 3), dtype=np.uint8))
        (hog, hog_pixels, _), (cnn, cnn_pixels, _) = seen
        assert hog == "hog" and hog_pixels <= HOG_MAX_PIXELS, shape
        assert cnn == "cnn" and cnn_pixels <= CNN_MAX_PIXELS, shape
    seen.clear()
    engine.detect(np.zeros((250, 250, 3), dtype=np.uint8))
    assert [s[2] for s in seen] == [1, 1]  # a 40 px face needs one doubling for HOG's 80 px


def test_a_face_in_a_downscaled_image_is_found_in_its_own_pixels() -> None:
    engine = FaceEngine(cnn_fallback=True)
    photo = decode_image(require(EXAMPLES / "obama.jpg").read_bytes())
    small = engine.detect(photo)[0].box
    big = np.kron(photo, np.ones((5, 5, 1), dtype=np.uint8))  # 5x: far over the HOG budget
    assert big.shape[0] * big.shape[1] > HOG_MAX_PIXELS
    found = engine.detect(big)
    assert len(found) == 1
    box = found[0].box
    for a, b in (
        (box.left, small.left * 5),
        (box.top, small.top * 5),
        (box.width, small.width * 5),
    ):
        assert abs(a - b) < 0.1 * small.width * 5


def test_a_jpeg_header_that_lies_is_refused_as_truncated() -> None:
    lie = corpus.lying_jpeg(require(LFW / "images/Tony_Blair/Tony_Blair_0001.jpg"))
    with pytest.raises(InvalidImageError) as caught:
        decode_image(lie)
    assert caught.value.code == "TRUNCATED" and "6000x6000" in caught.value.message


def test_no_real_photo_fails_the_jpeg_size_check() -> None:
    photos = [p for p in DATA.rglob("*.jp*g")] if DATA.exists() else []
    if not photos:
        pytest.skip(f"evaluation data not found at {DATA}")
    step = max(1, len(photos) // 3000)
    checked = 0
    for path in photos[::step]:
        layout = read_layout(path.read_bytes())
        assert layout is not None and layout.holds_claimed_size, path
        checked += 1
    assert checked >= 1000


def test_the_gate_answers_busy_instead_of_queueing_without_end() -> None:
    gate = EngineGate(running=1, waiting=1)
    entered, release = threading.Event(), threading.Event()

    def hold() -> None:
        with gate.slot():
            entered.set()
            release.wait(10)

    holders = [threading.Thread(target=hold) for _ in range(2)]
    holders[0].start()
    entered.wait(5)
    holders[1].start()  # waits for the slot
    time.sleep(0.2)
    with pytest.raises(ServiceBusy) as caught, gate.slot():
        pass
    assert caught.value.retry_after >= 1
    release.set()
    for holder in holders:
        holder.join(5)
    with gate.slot(), gate.slot():  # free again, and re-entrant in one thread
        pass


def test_busy_is_a_503_with_retry_after(api) -> None:
    services = api.client.app.state.services
    gate, services.gate = services.gate, EngineGate(running=1, waiting=0)
    try:
        # Another request holds the only slot.
        with services.gate.slot(), require(EXAMPLES / "obama.jpg").open("rb") as image:
            response = api.client.post("/v1/detect", files={"image": image}, headers=api.operator)
    finally:
        services.gate = gate
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "2"
    assert response.json()["error"]["code"] == "SERVICE_BUSY"


def test_the_bad_input_corpus_against_a_real_server(tmp_path) -> None:
    """Peak server RSS under 1.5 GB, and every answer a clear one, within 30 s (a timeout, to
    catch a hang: no assertion on speed)."""
    inputs = corpus.build(
        require(DLIB_FACES / "dogs.jpg"),
        require(EXAMPLES / "obama.jpg"),
        require(LFW / "images/Tony_Blair/Tony_Blair_0001.jpg"),
    )
    created = cli(tmp_path, "keys", "create", "--role", "operator", "--name", "corpus", "--json")
    headers = {"Authorization": f"Bearer {json.loads(created.stdout)['token']}"}
    server = ServerProcess(tmp_path).start()
    try:
        baseline = server.peak_rss_mb()

        def send(item):
            name, data = item
            response = httpx.post(
                server.url + "/v1/detect", files={"image": ("x", data)}, headers=headers, timeout=30
            )
            return name, response.status_code, response.json()

        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(send, [*inputs.items(), *inputs.items()]))
        peak = server.peak_rss_mb()
    finally:
        server.stop()
    by_name = {name: (status, body) for name, status, body in answers}
    for name, (status, body) in by_name.items():
        assert status in (200, 400, 413, 503), (name, status, body)
    assert by_name["lying JPEG header"][1]["error"]["code"] == "TRUNCATED"
    assert by_name["PNG bomb"][1]["error"]["code"] in ("TOO_MANY_PIXELS", "TRUNCATED")
    assert by_name["12 MP photo with a face"][0] in (200, 503)
    print(f"server RSS: {baseline:.0f} MB at start, peak {peak:.0f} MB over the corpus")
    assert peak < 1500
