"""`hmx rubric validate`'s intervals: pairs sharing a message cluster; an all-right judge is not [1.00, 1.00]."""

from __future__ import annotations

import numpy as np
import pytest

from hmx.judge.validity.accuracy import accuracy_interval, difference_interval


def test_accuracy_intervals_cluster_by_message_and_never_collapse_at_one():
    low, high = accuracy_interval([1.0] * 30)  # every pair right: the bootstrap said [1.00, 1.00]
    assert 0.85 < low < 0.95 and high == pytest.approx(1.0)
    # 3 criteria per message: pairs of one message are one cluster; when they agree the interval widens
    outcomes = [1.0] * 24 + [0.0] * 6
    by_message = [i // 3 for i in range(24)] + [8 + i // 3 for i in range(6)]
    independent, clustered = accuracy_interval(outcomes), accuracy_interval(outcomes, by_message)
    assert clustered[0] < independent[0] < 0.8 < independent[1] < clustered[1]


def test_accuracy_interval_covers_over_clustered_simulations():
    """10 messages × 3 criteria, the judge's accuracy varying by message: 95% intervals cover ≥ 92.5%."""
    rng = np.random.default_rng(0)
    truth = 4 / 5.5  # mean of Beta(4, 1.5)
    covered = 0
    for _ in range(1000):
        p_message = rng.beta(4, 1.5, 10)
        draws = [float(rng.random() < p) for p in p_message for _ in range(3)]
        low, high = accuracy_interval(draws, [i // 3 for i in range(30)])
        covered += low <= truth <= high
    assert covered / 1000 >= 0.925


def test_difference_of_two_judges_is_paired_and_clustered():
    outcomes = [1.0] * 24 + [0.0] * 6
    by_message = [i // 3 for i in range(24)] + [8 + i // 3 for i in range(6)]
    same = difference_interval(outcomes, outcomes, by_message)  # identical judges: not a zero-width [0, 0]
    assert same[0] < 0 < same[1]
    better = difference_interval([1.0] * 30, outcomes, by_message)
    assert better[0] <= 0.2 <= better[1]
