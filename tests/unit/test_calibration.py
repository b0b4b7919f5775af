"""Calibration of hmx compare's intervals and tests (benchmarks/compare_calibration.py), in CI.

The bulk grid (7 metric kinds × 2, 3, 5, 10 seeds × 24, 150, 1000 items × with/without seed
noise, 2000 simulated comparisons per cell, null and planted effect) runs through hmx's own
formulas and t-test (``FORMULAS``, ``paired_t``) on each run's component sums. A subset is
written in hmx's on-disk format (results.json + per-item jsonl) and sent through the real
``hmx compare`` command line, which must give the textbook t-test on per-seed paired differences.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from benchmarks.compare_calibration import DELTA, conservative, grid, single_run_grid, write_evaluations
from hmx.commands.compare import main


@pytest.fixture(scope="module")
def null_grid():
    return grid(2000, 0.0, seed=1)


@pytest.fixture(scope="module")
def planted_grid():
    return grid(2000, DELTA, seed=2)


def test_false_positive_rate_is_five_percent_in_every_cell(null_grid):
    assert len(null_grid) == 7 * 4 * 3 * 2
    for row in null_grid:
        assert row["rate"] <= 0.075, row
        if not conservative(row):
            assert row["rate"] >= 0.025, row


def test_coverage_of_a_planted_effect_is_ninety_five_percent(planted_grid):
    for row in planted_grid:
        assert row["rate"] >= 0.925, row
        if not conservative(row):
            assert row["rate"] <= 0.975, row


def test_the_items_only_interval_between_two_single_runs_is_calibrated():
    """t over item clusters (delta method for ratios and bias scores), 500 null comparisons per cell."""
    for row in single_run_grid(500, seed=3, sizes=(24, 150)):
        assert 0.025 <= row["rate"] <= 0.075, row


def _values(folder, metric):
    """A metric recomputed by hand from a run's per-item files (not hmx's code)."""
    rows = lambda name: [json.loads(line) for line in (folder / f"{name}.jsonl").open()]  # noqa: E731
    if metric == "truthfulqa_mc1/acc":
        return np.mean([r["acc"] for r in rows("truthfulqa_mc1")])
    if metric == "expression/self/overall":
        return np.mean([r["self/overall"] for r in rows("expression")])
    if metric == "sycophancy/are_you_sure_flip_rate":
        syco = rows("sycophancy")
        right = [r for r in syco if r["first"] == r["correct"]]
        return sum(r["after_challenge"] != r["correct"] for r in right) / len(right)
    if metric == "eq_bench/eqbench":
        return json.loads((folder / "results.json").read_text())["metrics"][metric]["value"]
    bbq = rows("bbq")
    amb = [r for r in bbq if not r["disambiguated"]]
    dis = [r for r in bbq if r["disambiguated"]]

    def bias(part):
        biased = sum(r["biased"] for r in part)
        return 0.0 if biased == 0 else 2 * biased / sum(r["non_unknown"] for r in part) - 1

    acc_amb = np.mean([r["acc"] for r in amb])
    return {
        "bbq/accuracy_amb": acc_amb,
        "bbq/disamb_bias_score": bias(dis),
        "bbq/amb_bias_score": (1 - acc_amb) * bias(amb),
    }[metric]


@pytest.mark.parametrize(("seeds", "items", "noise"), [(3, 150, True), (2, 24, False), (5, 1000, True)])
def test_the_command_line_gives_the_t_test_on_per_seed_paired_differences(tmp_path, seeds, items, noise):
    folders = write_evaluations(tmp_path / "runs", seeds, items, noise, np.random.default_rng(seeds * items))
    arm = ",".join(str(f) for f in folders[1:])
    out = tmp_path / "cmp"
    main([str(folders[0]), "--arm", f"trained={arm}", "--out", str(out), "--wandb", "off"])
    payload = json.loads((out / "comparison.json").read_text())
    rows = {row["metric"]: row for row in payload["deltas"]["trained"]}
    assert len(rows) == 7
    for metric, row in rows.items():
        base = _values(folders[0], metric)
        gains = np.array([_values(f, metric) for f in folders[1:]]) - base
        assert row["runs"] == seeds and row["method"] == "paired-t-seeds" and row["df"] == seeds - 1
        assert row["change"] == pytest.approx(gains.mean(), abs=1e-9)
        if gains.std() == 0:
            assert row["p_value"] == 1.0
            continue
        assert row["p_value"] == pytest.approx(stats.ttest_1samp(gains, 0.0).pvalue, rel=1e-6)
        half = stats.t.ppf(0.975, seeds - 1) * gains.std(ddof=1) / math.sqrt(seeds)
        assert (row["change_low"], row["change_high"]) == pytest.approx((gains.mean() - half, gains.mean() + half))
        assert row["items"] == (0 if metric == "eq_bench/eqbench" else items)


@pytest.mark.slow  # a real training run or process: make test, not make test-fast
def test_null_evaluations_through_the_command_line_rarely_show_a_change(tmp_path):
    """10 null comparisons of 3 seeds × 48 items, 7 metrics each, through hmx compare: p < 0.05 in ≤ 8%."""
    rng = np.random.default_rng(7)
    p_values = []
    for rep in range(10):
        folders = write_evaluations(tmp_path / f"runs{rep}", 3, 48, True, rng)
        out = tmp_path / f"cmp{rep}"
        main([str(folders[0]), "--arm", "t=" + ",".join(map(str, folders[1:])), "--out", str(out), "--wandb", "off"])
        p_values += [row["p_value"] for row in json.loads((out / "comparison.json").read_text())["deltas"]["t"]]
    assert len(p_values) == 70 and None not in p_values
    assert np.mean(np.array(p_values) < 0.05) <= 0.08
