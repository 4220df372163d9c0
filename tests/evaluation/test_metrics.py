from __future__ import annotations

import numpy as np
import pytest

from faceledger.evaluation.metrics import (
    accuracy_at,
    best_threshold,
    k_fold_accuracy,
    roc_auc,
    tar_at_far,
    threshold_at_far,
)

T, F = True, False


def test_accuracy_at_threshold() -> None:
    scores = np.array([0.9, 0.8, 0.3, 0.1])
    same = np.array([T, F, T, F])
    # predictions T, T, F, F -> right, wrong, wrong, right
    assert accuracy_at(scores, same, 0.5) == 0.5
    assert np.isnan(accuracy_at(np.array([]), np.array([], bool), 0.5))


def test_best_threshold_separates() -> None:
    scores = np.array([0.9, 0.8, 0.3, 0.1])
    same = np.array([T, T, F, F])
    threshold = best_threshold(scores, same)
    assert threshold == pytest.approx(0.55)
    assert accuracy_at(scores, same, threshold) == 1.0


def test_k_fold_uses_the_other_folds() -> None:
    # fold 0 tested at the threshold fitted on folds 1+2: candidates -0.8, 0.5, 0.85, 1.9;
    #   0.5 and 0.85 both get 3 of 4 right, the first wins: 0.5 -> fold 0 all right.
    # fold 1 at folds 0+2's threshold 0.85 (all 4 right there) -> 0.8 genuine missed: 0.5.
    # fold 2 at folds 0+1's threshold 0.5 -> 0.8 impostor accepted: 0.5.
    scores = np.array([0.9, 0.1, 0.8, 0.2, 0.9, 0.8])
    same = np.array([T, F, T, F, T, F])
    folds = np.array([0, 0, 1, 1, 2, 2])
    result = k_fold_accuracy(scores, same, folds)
    assert result.accuracies == [1.0, 0.5, 0.5]
    assert result.thresholds == pytest.approx([0.5, 0.85, 0.5])
    assert result.mean == pytest.approx(2 / 3)
    assert result.std == pytest.approx(np.std([1, 0.5, 0.5]))


def test_single_fold_fits_itself() -> None:
    scores = np.array([0.9, 0.1, 0.8, 0.2])
    same = np.array([T, F, T, F])
    assert k_fold_accuracy(scores, same, np.zeros(4, int)).accuracies == [1.0]


def test_roc_auc_hand_computed() -> None:
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    same = np.array([T, F, T, F])
    # genuine beats impostor in 3 of 4 (0.9>0.8, 0.9>0.6, 0.7>0.6; not 0.7>0.8)
    assert roc_auc(scores, same) == pytest.approx(0.75)
    assert roc_auc(np.array([0.5, 0.5]), np.array([T, F])) == pytest.approx(0.5)
    assert np.isnan(roc_auc(np.array([0.5]), np.array([T])))


def test_threshold_and_tar_at_far() -> None:
    impostors = np.arange(1, 11) / 10.0  # 0.1 .. 1.0
    t = threshold_at_far(impostors, 0.1)
    assert 0.9 < t <= 1.0 and np.mean(impostors >= t) == pytest.approx(0.1)
    assert threshold_at_far(impostors, 0.0) > 1.0
    scores = np.concatenate([impostors, [0.95, 0.85, 1.5, 2.0]])
    same = np.array([F] * 10 + [T] * 4)
    tar, threshold = tar_at_far(scores, same, 0.1)
    # genuines at or above the threshold (just over 0.9): 0.95, 1.5, 2.0
    assert threshold == t and tar == pytest.approx(0.75)
