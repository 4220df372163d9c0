from __future__ import annotations

import numpy as np
import pytest

from faceledger.errors import DatasetError
from faceledger.evaluation import lfw
from faceledger.evaluation.calibrate import pairwise_histograms
from faceledger.vision.similarity import bin_index, distance_to_similarity
from tests.conftest import LFW, require


def test_read_pairs(tmp_path) -> None:
    path = tmp_path / "pairs.txt"
    path.write_text("2\t1\nAda\t1\t2\nAda\t1\tBob\t3\nCy\t2\t4\nCy\t1\tDee\t1\n")
    pairs = lfw.read_pairs(path)
    assert [(p.fold, p.same) for p in pairs] == [(0, True), (0, False), (1, True), (1, False)]
    assert pairs[1].first == "Ada/Ada_0001.jpg" and pairs[1].second == "Bob/Bob_0003.jpg"


@pytest.mark.parametrize("text", ["", "x y\n", "1\t1\nAda\t1\n", "1\t2\nAda\t1\t2\n"])
def test_malformed_pairs_are_refused(tmp_path, text: str) -> None:
    path = tmp_path / "pairs.txt"
    path.write_text(text)
    with pytest.raises(DatasetError):
        lfw.read_pairs(path)


def test_missing_data_says_where_it_looked(tmp_path) -> None:
    with pytest.raises(DatasetError, match=str(tmp_path)):
        lfw.resolve_lfw_dir(tmp_path)


def test_real_protocol_shape() -> None:
    root = lfw.resolve_lfw_dir(require(LFW).parent)  # the parent folder works too
    pairs = lfw.read_pairs(root / "protocol" / "pairs.txt")
    assert len(pairs) == 6000 and sum(p.same for p in pairs) == 3000
    assert {p.fold for p in pairs} == set(range(10))
    assert all((root / "images" / p.first).is_file() for p in pairs[:50])


def test_pairwise_histograms_match_brute_force() -> None:
    rng = np.random.default_rng(1)
    vectors = rng.normal(0, 0.1, (7, 128))
    identities = np.array(list("aabbbcd"))
    impostor, genuine = pairwise_histograms(vectors, identities, block=3)
    expected_imp, expected_gen = np.zeros_like(impostor), np.zeros_like(genuine)
    for i in range(7):
        for j in range(i + 1, 7):
            s = distance_to_similarity(np.linalg.norm(vectors[i] - vectors[j]))
            target = expected_gen if identities[i] == identities[j] else expected_imp
            target[int(bin_index(s))] += 1
    assert genuine.sum() == 1 + 3 and impostor.sum() == 21 - 4
    assert np.array_equal(impostor, expected_imp) and np.array_equal(genuine, expected_gen)
