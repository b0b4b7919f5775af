"""Uncertainty of a change between two arms (sets of runs: one per seed): bootstrap intervals, McNemar's test.

**Bootstrap over items and seeds** (paired): each replicate draws the items with replacement (the
same draw for both arms, so item difficulty cancels) and, within each arm, its runs with
replacement; an arm's value is the mean over its drawn runs of the metric on the drawn items.
The interval is the 2.5th-97.5th percentile of the replicate gains (the change measured in the
metric's good direction). A metric without per-item results is resampled over seeds only, and
has no interval when both arms hold a single run.

**McNemar's exact test** for accuracies (0/1 per item): the discordant items b (baseline right,
arm wrong) and c (baseline wrong, arm right), p = two-sided binomial tail of min(b, c) in b + c
at 1/2. With several runs per arm an item's outcome is its majority over the runs (ties dropped).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hmx.evaluation.items import Items

CHUNK = 4_000_000  # replicate x item cells per block: bounds memory on the full BBQ (58k items)


@dataclass
class Interval:
    low: float  # 2.5th percentile of the gain (good direction: > 0 is better)
    high: float  # 97.5th percentile
    items: int  # items shared by every run of both arms (0: seeds only)
    replicates: int

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


def gain(baseline: np.ndarray, value: np.ndarray, better: str) -> np.ndarray:
    """The change in the metric's good direction (``zero``: a smaller magnitude is better)."""
    if better == "higher":
        return value - baseline
    if better == "lower":
        return baseline - value
    return np.abs(baseline) - np.abs(value)


def shared_keys(base_items: list[Items], arm_items: list[Items]) -> list[str]:
    """The items every run of both arms has, sorted."""
    return sorted(set.intersection(*(set(run) for run in [*base_items, *arm_items])))


def _item_matrix(runs: list[Items], keys: list[str]) -> tuple[np.ndarray, np.ndarray]:
    num = np.array([[run[k][0] for k in keys] for run in runs], dtype=np.float64)
    den = np.array([[run[k][1] for k in keys] for run in runs], dtype=np.float64)
    return num, den


def _arm_values(num: np.ndarray, den: np.ndarray, counts: np.ndarray, picks: np.ndarray) -> np.ndarray:
    """Per replicate: mean over the picked runs of sum(num)/sum(den) with items weighted by their draw counts."""
    with np.errstate(invalid="ignore", divide="ignore"):
        per_run = (counts @ num.T) / (counts @ den.T)  # [B, runs]
    return np.take_along_axis(per_run, picks, axis=1).mean(axis=1)


def bootstrap(
    base_values: list[float],
    arm_values: list[float],
    better: str,
    base_items: list[Items] | None,
    arm_items: list[Items] | None,
    replicates: int,
    rng: np.random.Generator,
) -> Interval | None:
    """Paired bootstrap interval of the gain over items and seeds (seeds only without per-item results)."""
    keys = shared_keys(base_items, arm_items) if base_items and arm_items else []
    if not keys:
        if len(base_values) < 2 and len(arm_values) < 2:
            return None
        base = np.array(base_values)[rng.integers(0, len(base_values), (replicates, len(base_values)))].mean(1)
        arm = np.array(arm_values)[rng.integers(0, len(arm_values), (replicates, len(arm_values)))].mean(1)
        return _interval(gain(base, arm, better), 0, replicates)
    assert base_items is not None and arm_items is not None
    matrices = [_item_matrix(base_items, keys), _item_matrix(arm_items, keys)]
    gains = []
    block = max(1, CHUNK // len(keys))
    for start in range(0, replicates, block):
        size = min(block, replicates - start)
        draws = rng.integers(0, len(keys), (size, len(keys)))
        counts = np.zeros((size, len(keys)))
        np.add.at(counts, (np.arange(size)[:, None], draws), 1.0)
        values = []
        for num, den in matrices:
            picks = rng.integers(0, num.shape[0], (size, num.shape[0]))
            values.append(_arm_values(num, den, counts, picks))
        gains.append(gain(values[0], values[1], better))
    return _interval(np.concatenate(gains), len(keys), replicates)


def _interval(gains: np.ndarray, items: int, replicates: int) -> Interval | None:
    finite = gains[np.isfinite(gains)]
    if len(finite) < 0.9 * replicates:  # e.g. a flip rate with no initially correct answer in most draws
        return None
    low, high = np.percentile(finite, [2.5, 97.5])
    return Interval(float(low), float(high), items, replicates)


def majority(runs: list[Items], keys: list[str]) -> dict[str, int]:
    """Each item's majority outcome over the runs (0/1); items with a tie are left out."""
    outcome = {}
    for key in keys:
        mean = sum(run[key][0] for run in runs) / len(runs)
        if mean != 0.5:
            outcome[key] = int(mean > 0.5)
    return outcome


def mcnemar(base_items: list[Items], arm_items: list[Items]) -> tuple[int, int, float] | None:
    """Exact McNemar test on paired 0/1 outcomes: (b baseline-only right, c arm-only right, two-sided p)."""
    keys = shared_keys(base_items, arm_items)
    base, arm = majority(base_items, keys), majority(arm_items, keys)
    shared = [k for k in keys if k in base and k in arm]
    if not shared:
        return None
    b = sum(base[k] == 1 and arm[k] == 0 for k in shared)
    c = sum(base[k] == 0 and arm[k] == 1 for k in shared)
    n = b + c
    if n == 0:
        return b, c, 1.0
    tail = sum(math.comb(n, i) for i in range(min(b, c) + 1)) / 2**n
    return b, c, min(1.0, 2 * tail)
