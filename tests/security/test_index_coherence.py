"""Every process sees every committed face (finding 6 of the hardening issue): faces indexed by
the CLI on a running server's data directory are found by the server's very next search, and
faces the CLI erases are never returned again. Before, each process's index saw only its own
writes: 0 of 10 were found until a restart."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from faceledger.store.feed import FollowingIndexes, prune_changes
from tests.api.conftest import Api, lfw_image, lfw_people, open_api
from tests.security.server_process import cli


@pytest.fixture(scope="module")
def running(tmp_path_factory, shared_engine):
    data_dir = tmp_path_factory.mktemp("coherence")
    services, client = open_api(data_dir, shared_engine)
    with client:
        yield Api(client, data_dir), services, data_dir
    services.close()


def search(api: Api, image: Path) -> list[str]:
    response = api.search("shared", image, threshold=0, max_faces=4096)
    assert response.status_code == 200, response.text
    return [m["face"]["external_image_id"] for m in response.json()["matches"]]


def test_the_server_finds_what_the_cli_indexed_and_never_what_it_erased(running, tmp_path) -> None:
    api, services, data_dir = running
    assert api.client.post(
        "/v1/collections", json={"collection_id": "shared"}, headers=api.admin
    ).status_code in (200, 201)
    people = lfw_people(10)
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in people:
        shutil.copy(lfw_image(name, 1), folder / f"{name}.jpg")
    assert search(api, lfw_image(people[0], 2)) == []  # the server's index is warm and empty
    rebuilds = services.indexes.rebuilds

    indexed = cli(
        data_dir, "index", "shared", str(folder), "--policy", "test-open", "--json", check=False
    )
    assert indexed.returncode == 0, indexed.stderr
    found = 0
    for name in people:
        matches = search(api, lfw_image(name, 2))  # another photo of the same person
        found += bool(matches) and matches[0] == name
    assert found >= 9  # a different photo of each person: the model's own misses allowed
    assert all(name in search(api, lfw_image(name, 1)) for name in people)  # the same photo

    for name in people[:5]:
        erased = cli(
            data_dir, "erase", "--external-image-id", name, "--collection", "shared", check=False
        )
        assert erased.returncode == 0, erased.stderr
    for name in people:
        returned = search(api, lfw_image(name, 1))
        assert all(r not in returned for r in people[:5])
        if name not in people[:5]:
            assert returned[0] == name
    # The server caught up from the change feed; it never had to rebuild from scratch.
    assert services.indexes.rebuilds == rebuilds


def test_a_lagging_index_whose_changes_were_pruned_rebuilds(running) -> None:
    api, services, _ = running
    other = FollowingIndexes(services.db)  # another process's indexes
    other.rebuild()
    before = len(other.current("shared"))
    for number in (1, 2):
        indexed = api.index("shared", lfw_image(lfw_people(12)[11], number), f"late{number}")
        assert indexed.status_code == 200, indexed.text
    with services.db.write() as session:
        prune_changes(session, keep=0)  # keeps only the newest change: late1's is gone
    rebuilds = other.rebuilds
    assert len(other.current("shared")) == before + 2
    assert other.rebuilds == rebuilds + 1
