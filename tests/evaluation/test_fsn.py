"""Fair score normalisation: what it promises, checked on real descriptors."""

from __future__ import annotations

import numpy as np
import pytest

from faceledger.evaluation.fairness import group_pairs
from faceledger.evaluation.fsn import fit_fsn, impostor_quantile, out_of_fold_offsets
from tests.conftest import LFW, require


@pytest.fixture(scope="module")
def lfw_sface(lfw_cache) -> tuple[np.ndarray, np.ndarray]:
    """SFace descriptors of the first 1,200 LFW images (every image of those people)."""
    from faceledger.evaluation import lfw
    from faceledger.evaluation.embedder import Pipeline, embed_images

    root = lfw.resolve_lfw_dir(require(LFW).parent)
    images = lfw.all_images(root)[:1200]
    run = embed_images(
        root / "images", images, Pipeline.for_model("sface"), cache_dir=lfw_cache, workers=2
    )
    vectors = np.stack([run.results[i].vector for i in images]).astype(np.float64)
    return vectors, np.array([lfw.identity_of(i) for i in images])


def test_offsets_bring_each_cluster_to_the_global_risk(lfw_sface) -> None:
    """Scored through the real adjustment (each pair's distance plus its faces' mean offset),
    every cluster's own impostor pairs reach the target rate at the global threshold, where
    before some clusters were several times riskier: FSN's promise, no labels involved."""
    vectors, people = lfw_sface
    target = 1e-2
    model = fit_fsn(vectors, people, 4, target_fmr=target)
    overall = impostor_quantile(vectors, people, target)
    labels = np.argmin(((vectors[:, None, :] - model.centroids[None]) ** 2).sum(-1), axis=1)

    def linear(d: np.ndarray) -> np.ndarray:
        return 100.0 - 40.0 * d  # monotone, so a threshold is a distance

    threshold = float(linear(np.float64(overall)))
    before, after = [], []
    for j in range(4):
        members = labels == j
        if impostor_quantile(vectors[members], people[members], target) is None:
            continue
        for offsets, out in ((None, before), (model.offsets_of(vectors[members]), after)):
            pairs, table = group_pairs(
                vectors[members], people[members], [threshold], similarity=linear, offsets=offsets
            )
            out.append(int(pairs.hits[0][2].sum()) / table.n_impostor)
    assert len(after) >= 2
    assert max(before) > 2 * target  # clusters of real faces differ in risk
    for rate in after:
        assert rate == pytest.approx(target, rel=0.05)


def test_out_of_fold_offsets_never_see_the_person(lfw_sface) -> None:
    vectors, people = lfw_sface
    offsets = out_of_fold_offsets(vectors, people, 3, folds=3, target_fmr=1e-2)
    assert offsets.shape == (len(vectors),) and np.all(np.isfinite(offsets))
    # Deterministic, and an adjusted pair distance is the plain one plus the mean offset.
    again = out_of_fold_offsets(vectors, people, 3, folds=3, target_fmr=1e-2)
    assert np.array_equal(offsets, again)
    plain, _ = group_pairs(vectors[:50], people[:50], [50.0])
    shifted, _ = group_pairs(vectors[:50], people[:50], [50.0], offsets=np.full(50, 10.0))
    assert shifted.misses[0].sum() == sum(
        n * (n - 1) // 2 for n in plain.images_per_identity
    )  # every genuine pair pushed beyond any match
