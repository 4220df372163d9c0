"""Verification metrics over scores where higher means "more likely the same person".

All functions take plain arrays and are checked against hand-computed cases in the tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def accuracy_at(scores: np.ndarray, same: np.ndarray, threshold: float) -> float:
    """Share of pairs decided right when "same" means score >= threshold."""
    if len(scores) == 0:
        return float("nan")
    return float(np.mean((scores >= threshold) == same))


def best_threshold(scores: np.ndarray, same: np.ndarray) -> float:
    """The threshold that maximises accuracy on these pairs (midpoint between scores)."""
    order = np.sort(np.unique(scores))
    candidates = np.concatenate(
        [[order[0] - 1.0], (order[:-1] + order[1:]) / 2.0, [order[-1] + 1.0]]
    )
    # Accuracy for every candidate at once: positives at or above, negatives below.
    pos = np.sort(scores[same])
    neg = np.sort(scores[~same])
    tp = len(pos) - np.searchsorted(pos, candidates, side="left")
    tn = np.searchsorted(neg, candidates, side="left")
    return float(candidates[int(np.argmax(tp + tn))])


@dataclass(frozen=True)
class FoldResult:
    accuracies: list[float]
    thresholds: list[float]

    @property
    def mean(self) -> float:
        return float(np.mean(self.accuracies))

    @property
    def std(self) -> float:
        return float(np.std(self.accuracies))


def k_fold_accuracy(scores: np.ndarray, same: np.ndarray, folds: np.ndarray) -> FoldResult:
    """LFW's protocol: for each fold, choose the threshold on the other folds, test on it.

    With a single fold there are no other folds: the threshold is fitted on that fold itself,
    which flatters the figure.
    """
    accuracies, thresholds = [], []
    single = len(np.unique(folds)) == 1
    for fold in np.unique(folds):
        train = np.ones_like(folds, dtype=bool) if single else folds != fold
        threshold = best_threshold(scores[train], same[train])
        test = folds == fold
        accuracies.append(accuracy_at(scores[test], same[test], threshold))
        thresholds.append(threshold)
    return FoldResult(accuracies, thresholds)


def roc_auc(scores: np.ndarray, same: np.ndarray) -> float:
    """Area under the ROC curve: the chance a random genuine pair outscores a random impostor
    pair (ties count half), by the rank-sum formula."""
    n_pos, n_neg = int(same.sum()), int((~same).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=np.float64)
    sorted_scores = scores[order]
    # Average ranks over ties.
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    average = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(average, counts)
    return float((ranks[same].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def threshold_at_far(impostor_scores: np.ndarray, far: float) -> float:
    """Lowest threshold at which at most ``far`` of impostor scores are >= the threshold."""
    if len(impostor_scores) == 0:
        return float("nan")
    ordered = np.sort(impostor_scores)[::-1]
    allowed = int(np.floor(far * len(ordered)))
    if allowed >= len(ordered):
        return float(ordered[-1])
    # Just above the (allowed+1)-th highest impostor score.
    return float(np.nextafter(ordered[allowed], np.inf))


def tar_at_far(scores: np.ndarray, same: np.ndarray, far: float) -> tuple[float, float]:
    """(true accept rate, threshold) at the given false accept rate."""
    threshold = threshold_at_far(scores[~same], far)
    genuine = scores[same]
    tar = float(np.mean(genuine >= threshold)) if len(genuine) else float("nan")
    return tar, threshold
