"""Uncertainty of a change between two arms (sets of runs: one per seed): intervals and tests, chosen by simulation.

A trained model is one random draw per seed, so the seed is the unit of replication. For each
metric, each run's value is recomputed on the items every run of both arms shares
(:mod:`hmx.evaluation.items`), or read from results.json where a metric has no per-item rows. The
interval is of the *change*, arm minus baseline, in the metric's units (:mod:`hmx.evaluation.compare`
turns it into a relative change in the good direction). With ``K`` arm runs and ``B`` baseline runs:

- ``K ≥ 2, B = 1``: **paired t over seeds**. Each seed's change against the baseline run, a
  t-interval and t-test with ``K − 1`` degrees of freedom. The baseline run is held fixed (a base
  model evaluated greedily is deterministic): the interval is of the arm's mean over seeds.
- ``K ≥ 2, B ≥ 2``: **Welch t over seeds** (both arms' seed values; Welch–Satterthwaite df).
- ``K = 1, B ≥ 2``: the same paired t with the roles swapped, *conditional on the arm's one run*.
- ``K = B = 1``: **t over item clusters** (delta method: each cluster's linearised contribution to
  the change, ``C − 1`` df): an interval over items only, *conditional on these two runs* (a
  second seed may differ by more). Without per-item rows: no interval.

The sign-flip test on the seed changes (exact; it needs no normality, but with ``K`` seeds its
smallest two-sided p is ``2 / 2^K``: 0.5 at 2 seeds, 0.25 at 3) is reported beside the t-test as
``p_signflip``. The calibration suite (``tests/unit/test_calibration.py``,
``benchmarks/compare_calibration.py``) checks the false-positive rate and coverage of these choices.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from hmx.evaluation.items import FORMULAS, Items

LEVEL = 0.95


@dataclass
class Interval:
    low: float  # 95% interval of the change (arm − baseline), in the metric's units
    high: float
    p_value: float  # two-sided test of no change
    method: str  # paired-t-seeds | welch-t-seeds | paired-t-seeds-conditional | t-clusters-conditional
    df: float
    items: int = 0  # items shared by every run of both arms (0: no per-item rows)
    clusters: int = 0  # item clusters (0: no per-item rows)
    effect_size: float = math.nan  # standardised: mean change / its standard deviation (seeds, or clusters)
    p_signflip: float | None = None  # exact sign-flip test on the seed changes (paired designs)
    seed_sd: float | None = None  # standard deviation of the seed changes (power analysis)
    item_se: float | None = None  # mean over seeds of each seed change's item-level standard error (power analysis)

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


def shared_keys(base_items: list[Items], arm_items: list[Items]) -> list[str]:
    """The items every run of both arms has, sorted."""
    return sorted(set.intersection(*(set(run.rows) for run in [*base_items, *arm_items])))


def cluster_sums(runs: list[Items], keys: list[str]) -> tuple[np.ndarray, list[str]]:
    """Components summed per cluster: ``[runs, clusters, components]`` and the cluster keys (first-seen order)."""
    names = list(dict.fromkeys(runs[0].clusters[k] for k in keys))
    index = {name: i for i, name in enumerate(names)}
    where = np.array([index[runs[0].clusters[k]] for k in keys])
    out = []
    for run in runs:
        values = np.array([run.rows[k] for k in keys], dtype=np.float64)
        sums = np.zeros((len(names), values.shape[1]))
        np.add.at(sums, where, values)
        out.append(sums)
    return np.stack(out), names


def signflip_p(gains: np.ndarray) -> float | None:
    """Exact two-sided sign-flip test of mean zero on the seed changes (every sign pattern, K ≤ 16)."""
    k = len(gains)
    if k < 2 or k > 16:
        return None
    signs = np.array(list(itertools.product((1.0, -1.0), repeat=k)))
    means = np.abs(signs @ gains) / k
    observed = abs(gains.mean())
    return float(np.mean(means >= observed - 1e-12 * max(1.0, observed)))


def paired_t(gains: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """t-interval (95%) and two-sided t-test p of mean zero over the last axis (seeds), vectorised over the others.

    Seeds that agree exactly (sd 0: frequent with two seeds and few 0/1 items) leave the seed
    variance unknown: the interval is unbounded and p = 1 (the calibration suite found a zero-width
    interval there doubling the false-positive rate).
    """
    k = gains.shape[-1]
    mean, sd = gains.mean(axis=-1), gains.std(axis=-1, ddof=1)
    se = sd / math.sqrt(k)
    half = np.where(se > 0, stats.t.ppf(0.5 + LEVEL / 2, k - 1) * se, np.inf)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(se > 0, 2 * stats.t.sf(np.abs(mean) / np.where(se > 0, se, 1.0), k - 1), 1.0)
    return mean - half, mean + half, p


def _one_sample(gains: np.ndarray, method: str) -> Interval:
    k = len(gains)
    mean, sd = float(gains.mean()), float(gains.std(ddof=1))
    low, high, p = (float(x) for x in paired_t(gains))
    effect = mean / sd if sd > 0 else math.nan
    return Interval(low, high, p, method, k - 1, effect_size=effect, seed_sd=sd)


def seed_interval(base_values: np.ndarray, arm_values: np.ndarray) -> Interval | None:
    """The interval and test over seeds (see the module docstring); None with one run per arm."""
    k, b = len(arm_values), len(base_values)
    if k >= 2 and b == 1:
        gains = arm_values - base_values[0]
        row = _one_sample(gains, "paired-t-seeds")
        row.p_signflip = signflip_p(gains)
        return row
    if k == 1 and b >= 2:
        gains = arm_values[0] - base_values
        row = _one_sample(gains, "paired-t-seeds-conditional")
        row.p_signflip = signflip_p(gains)
        return row
    if k >= 2 and b >= 2:
        arm, base = arm_values, base_values
        va, vb = arm.var(ddof=1) / k, base.var(ddof=1) / b
        diff = float(arm.mean() - base.mean())
        if va + vb == 0:  # as in paired_t: no variance to go on
            return Interval(-math.inf, math.inf, 1.0, "welch-t-seeds", k + b - 2)
        df = (va + vb) ** 2 / (va**2 / (k - 1) + vb**2 / (b - 1))
        half = stats.t.ppf(0.5 + LEVEL / 2, df) * math.sqrt(va + vb)
        p = float(stats.ttest_ind(arm, base, equal_var=False).pvalue)
        pooled = math.sqrt((arm.var(ddof=1) + base.var(ddof=1)) / 2)
        return Interval(diff - half, diff + half, p, "welch-t-seeds", df, effect_size=diff / pooled)
    return None


def linearised_change(base: np.ndarray, arm: np.ndarray, formula: str) -> tuple[float, np.ndarray]:
    """The change ``f(arm) − f(base)`` on cluster sums ``[C, m]`` and each cluster's linearised part ``[C]``.

    Delta method: ``f`` is scale-free, so the change is a function of the clusters' mean components;
    its gradient there (central differences) times each cluster's components gives values whose
    standard error over clusters is the change's.
    """
    f = FORMULAS[formula]
    x = np.concatenate([arm, base], axis=1)  # [C, 2m]
    m = arm.shape[1]
    centre = x.mean(axis=0)
    gain = lambda v: f(v[..., :m]) - f(v[..., m:])  # noqa: E731
    steps = 1e-6 * np.maximum(np.abs(centre), 1e-3)
    grad = np.array([(gain(centre + e) - gain(centre - e)) / (2 * e[i]) for i, e in enumerate(np.diag(steps))])
    return float(gain(centre)), x @ np.nan_to_num(grad)


def cluster_interval(base: np.ndarray, arm: np.ndarray, formula: str) -> Interval | None:
    """t-interval over item clusters of the change between two single runs (cluster sums ``[C, m]`` each)."""
    clusters = base.shape[0]
    if clusters < 2:
        return None
    point, parts = linearised_change(base, arm, formula)
    if not math.isfinite(point):
        return None
    se = float(parts.std(ddof=1)) / math.sqrt(clusters)
    df = clusters - 1
    if se == 0:  # every cluster changed alike (e.g. two identical runs): no variance to go on
        return Interval(-math.inf, math.inf, 1.0, "t-clusters-conditional", df, clusters=clusters)
    half = stats.t.ppf(0.5 + LEVEL / 2, df) * se
    p = float(2 * stats.t.sf(abs(point) / se, df))
    effect = point / (se * math.sqrt(clusters))
    return Interval(point - half, point + half, p, "t-clusters-conditional", df, clusters=clusters, effect_size=effect)


def item_se(base: np.ndarray, arm: np.ndarray, formula: str) -> float:
    """Item-level standard error of one run's change over the baseline run (delta method over clusters)."""
    _, parts = linearised_change(base, arm, formula)
    return float(parts.std(ddof=1)) / math.sqrt(len(parts))


def change_interval(
    base_values: list[float],
    arm_values: list[float],
    base_items: list[Items] | None,
    arm_items: list[Items] | None,
) -> tuple[float, float, Interval | None]:
    """The baseline's and the arm's mean values (on the shared items) and the change's interval and test.

    With per-item rows in every run, each run's value is recomputed on the shared items first.
    """
    keys = shared_keys(base_items, arm_items) if base_items and arm_items else []
    if keys:
        assert base_items is not None and arm_items is not None
        formula = base_items[0].formula
        sums, names = cluster_sums([*base_items, *arm_items], keys)
        values = FORMULAS[formula](sums.sum(axis=1))
        base_values, arm_values = list(values[: len(base_items)]), list(values[len(base_items) :])
    base, arm = np.array(base_values, dtype=float), np.array(arm_values, dtype=float)
    means = float(base.mean()), float(arm.mean())
    if not (np.isfinite(base).all() and np.isfinite(arm).all()):
        return *means, None
    interval = seed_interval(base, arm)
    if keys and interval is None:
        interval = cluster_interval(sums[0], sums[1], formula)
    if keys and interval is not None:
        interval.items, interval.clusters = len(keys), len(names)
        if len(base_items or []) == 1 and len(names) >= 2:
            interval.item_se = float(np.mean([item_se(sums[0], s, formula) for s in sums[1:]]))
    return *means, interval
