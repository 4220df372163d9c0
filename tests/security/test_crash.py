"""Crash consistency: a real server is killed with SIGKILL while several clients index at once,
at several moments. After each restart no acknowledged face is missing, the database, the
index and the ledger agree, and the ledger verifies against every head published before."""

from __future__ import annotations

import json
import threading

import httpx
import pytest

from tests.api.conftest import lfw_image, lfw_people
from tests.security.server_process import ServerProcess, cli, list_faces, prepare

COLLECTION = "crash"
CLIENTS = 3


def index_until_killed(url: str, token: str, images: list, acknowledged: dict, stop) -> None:
    """Index ``images``; face ids the server acknowledged go into ``acknowledged``."""
    headers = {"Authorization": f"Bearer {token}"}
    for name, path in images:
        if stop.is_set():
            return
        try:
            with path.open("rb") as handle:
                response = httpx.post(
                    f"{url}/v1/collections/{COLLECTION}/faces",
                    files={"image": handle},
                    # One face per image (its largest), the face a search by the image
                    # uses: some LFW photos show a second person in the background.
                    data={"external_image_id": name, "max_faces": "1"},
                    headers=headers,
                    timeout=60,
                )
        except httpx.HTTPError:
            acknowledged.setdefault("(cut)", 0)
            acknowledged["(cut)"] += 1  # the server died mid-request: not acknowledged
            return
        if response.status_code == 200:
            for face in response.json()["indexed"]:
                acknowledged[face["face"]["face_id"]] = name


@pytest.mark.parametrize("rounds", [(4, 12, 25)])
def test_no_acknowledged_face_is_lost_when_the_server_is_killed(tmp_path, rounds) -> None:
    data_dir = tmp_path / "data"
    token = prepare(data_dir, COLLECTION)
    people = lfw_people(60)
    images = [(f"{n}-{k}", lfw_image(n, k)) for n in people for k in (1, 2)]
    acknowledged: dict[str, str] = {}
    cursor, cut_total = 0, 0
    for kill_after in rounds:
        server = ServerProcess(data_dir).start()
        stop = threading.Event()
        batch = images[cursor : cursor + 3 * kill_after]
        cursor += len(batch)
        shares = [batch[i::CLIENTS] for i in range(CLIENTS)]
        before = len(acknowledged)
        threads = [
            threading.Thread(
                target=index_until_killed, args=(server.url, token, share, acknowledged, stop)
            )
            for share in shares
        ]
        for thread in threads:
            thread.start()
        while len(acknowledged) < before + kill_after and any(t.is_alive() for t in threads):
            threading.Event().wait(0.02)
        server.kill()  # mid-flight: other requests are in progress
        stop.set()
        for thread in threads:
            thread.join(60)
        cut = acknowledged.pop("(cut)", 0)
        cut_total = cut_total + cut
        check_consistent(data_dir, token, acknowledged)
    print(
        f"crash rounds {len(rounds)}: {len(acknowledged)} faces acknowledged, none lost; "
        f"{cut_total} requests cut by the kills"
    )
    assert cut_total >= 1  # the kills did land while requests were in flight
    assert len(acknowledged) >= sum(rounds)


def check_consistent(data_dir, token: str, acknowledged: dict[str, str]) -> None:
    server = ServerProcess(data_dir).start()
    try:
        headers = {"Authorization": f"Bearer {token}"}
        listed = list_faces(server.url, headers, COLLECTION)
        missing = set(acknowledged) - set(listed)
        assert not missing, f"acknowledged faces lost: {sorted(missing)[:5]}"
        # The index agrees with the database: every stored face is found by its own image.
        sample = list(listed.items())[:: max(1, len(listed) // 8)]
        for face_id, external in sample:
            name, number = external.rsplit("-", 1)
            with lfw_image(name, int(number)).open("rb") as handle:
                found = httpx.post(
                    f"{server.url}/v1/collections/{COLLECTION}/search",
                    files={"image": handle},
                    data={"threshold": "99", "max_faces": "4096"},
                    headers=headers,
                    timeout=60,
                ).json()
            assert face_id in {m["face"]["face_id"] for m in found["matches"]}
    finally:
        server.stop()
    # The ledger: intact, every published head still in the chain, every stored face indexed
    # by an event (and no event names a face that is not stored: nothing here deletes).
    verified = cli(data_dir, "ledger", "verify", "--json", check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert json.loads(verified.stdout)["heads_checked"] >= 1
    exported = cli(data_dir, "ledger", "export").stdout.splitlines()
    indexed = {
        face_id
        for line in exported
        for face_id in json.loads(line)["event"]["results"].get("indexed_face_ids", [])
        if json.loads(line)["event"]["operation"] == "IndexFaces"
    }
    assert indexed == set(listed)
