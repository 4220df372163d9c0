"""A collection keeps the face model it was made with, whatever the server's default becomes:
its descriptors are never compared with another model's (issue 16)."""

from __future__ import annotations

import numpy as np
import pytest

from faceledger.config import Settings
from faceledger.errors import InvalidParameterError
from faceledger.service import collections, faces, policy
from faceledger.service.auth import Actor, Role
from faceledger.service.common import Request
from faceledger.service.context import Services
from faceledger.store.schema import FaceRow
from tests.api.conftest import TEST_POLICY, lfw_image, lfw_people
from tests.databases import connect


def open_services(data_dir, model: str) -> tuple[Services, Request]:
    services = Services.open(Settings(data_dir=data_dir, face_model=model))
    policy.put_policy(services, Request(Actor("test", Role.LOCAL), "set up"), TEST_POLICY)
    return services, Request(Actor("test", Role.LOCAL, policy=TEST_POLICY["name"]), "binding test")


def test_changing_the_default_never_rebinds_a_collection(tmp_path) -> None:
    name = lfw_people(3)[1]
    services, request = open_services(tmp_path, "sface")
    collections.create_collection(services, request, "before")
    faces.index_faces(services, request, "before", lfw_image(name, 1).read_bytes(), max_faces=1)
    services.close()

    # The operator switches the server to dlib's model and restarts.
    services, request = open_services(tmp_path, "dlib")
    try:
        assert collections.describe_collection(services, request, "before").face_model_version == (
            "sface-2021dec/1.0"
        )
        made = collections.create_collection(services, request, "after")
        assert made.face_model_version == "dlib-resnet128-flip/1.0"
        # The old collection is still searched with SFace: the same person's other photo
        # scores as SFace scores it, and the result says so.
        probe = lfw_image(name, 2).read_bytes()
        old = faces.search_faces_by_image(services, request, "before", probe, threshold=0)
        assert old.face_model_version == "sface-2021dec/1.0"
        sface = services.engine_for("sface-2021dec/1.0")
        expected = sface.compare(
            sface.analyze(lfw_image(name, 1).read_bytes())[0], sface.analyze(probe)[0]
        )
        assert old.matches[0].similarity == pytest.approx(expected.similarity, abs=0.01)
        # A face indexed into it now is an SFace descriptor too (unit length), not dlib's.
        added = faces.index_faces(services, request, "before", probe, max_faces=1)
        assert added.face_model_version == "sface-2021dec/1.0"
        with services.db.read() as session:
            row = session.get(FaceRow, added.indexed[0].face.face_id)
            vector = np.frombuffer(row.embedding, dtype=np.float32)
        assert float(np.linalg.norm(vector)) == pytest.approx(1.0, abs=1e-4)
    finally:
        services.close()


def test_a_collection_bound_to_an_unknown_model_is_refused_clearly(tmp_path) -> None:
    services, request = open_services(tmp_path, "sface")
    collections.create_collection(services, request, "odd")
    services.close()
    with connect(tmp_path) as db:  # a model this build does not have
        db.execute("UPDATE collections SET face_model_version = 'arcface/9'")
    services, request = open_services(tmp_path, "sface")
    try:
        probe = lfw_image(lfw_people(3)[0], 1).read_bytes()
        with pytest.raises(InvalidParameterError, match="unknown face model 'arcface/9'"):
            faces.index_faces(services, request, "odd", probe)
    finally:
        services.close()
