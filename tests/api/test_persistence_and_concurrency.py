from __future__ import annotations

import threading

from tests.api.conftest import Api, lfw_image, lfw_people, open_api


def test_restart_rebuilds_the_same_index(tmp_path, shared_engine) -> None:
    names = lfw_people(12)
    services, client = open_api(tmp_path, shared_engine)
    with client:
        api = Api(client, tmp_path)
        client.post("/v1/collections", json={"collection_id": "keep"}, headers=api.admin)
        for name in names:
            assert api.index("keep", lfw_image(name, 1), name).status_code == 200
        before = [
            api.search("keep", lfw_image(n, 2), threshold=0, max_faces=5).json()["matches"]
            for n in names[:4]
        ]
        operator = api.operator
    services.close()

    services, client = open_api(tmp_path, shared_engine)
    with client:
        api.client = client
        api.operator = operator
        after = [
            api.search("keep", lfw_image(n, 2), threshold=0, max_faces=5).json()["matches"]
            for n in names[:4]
        ]
    services.close()
    assert len(services.indexes.current("keep")) == len(names)
    strip = [[(m["face"]["face_id"], m["similarity"]) for m in result] for result in before]
    assert strip == [[(m["face"]["face_id"], m["similarity"]) for m in r] for r in after]


def test_eight_threads_index_and_search_without_loss(tmp_path, shared_engine) -> None:
    names = lfw_people(24)
    services, client = open_api(tmp_path, shared_engine)
    with client:
        api = Api(client, tmp_path)
        client.post("/v1/collections", json={"collection_id": "busy"}, headers=api.admin)
        api.index("busy", lfw_image(names[0], 1), names[0])
        errors: list[str] = []

        def indexer(part: list[str]) -> None:
            for name in part:
                response = api.index("busy", lfw_image(name, 2), name, max_faces="1")
                if response.status_code != 200 or len(response.json()["indexed"]) != 1:
                    errors.append(response.text)

        def searcher() -> None:
            for name in names[:6]:
                response = api.search("busy", lfw_image(name, 1), threshold=0)
                if response.status_code != 200:
                    errors.append(response.text)

        threads = [threading.Thread(target=indexer, args=(names[i::4],)) for i in range(4)]
        threads += [threading.Thread(target=searcher) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        described = client.get("/v1/collections/busy", headers=api.operator).json()
        assert described["face_count"] == 1 + len(names)
        assert len(services.indexes.current("busy")) == 1 + len(names)
        verified = client.get("/v1/ledger/verify", headers=api.auditor).json()
        assert verified["ok"], verified
    services.close()
