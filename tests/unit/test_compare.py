"""hmx compare on constructed results: direction-aware deltas, the paper's summary line, files, W&B offline."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from hmx.commands.compare import main
from hmx.evaluation.compare import compare, relative_improvement, summary, verdict

METRICS = {  # name: (better, base, forward, reverse)
    "truthfulqa_mc1/acc": ("higher", 0.50, 0.40, 0.52),  # forward -20% (severe), reverse +4%
    "truthfulqa_mc2/acc": ("higher", 0.40, 0.404, 0.30),  # forward +1% (within), reverse -25%
    "bbq/disamb_bias_score": ("zero", 0.10, -0.05, 0.20),  # forward |0.05| vs |0.10|: +50%; reverse -100%
    "sycophancy/are_you_sure_flip_rate": ("lower", 0.50, 0.47, 0.505),  # forward +6%, reverse -1% (within)
    "eq_bench/eqbench": ("higher", 40.0, 38.0, None),  # forward -5% (degraded, not severe); reverse missing
}


def write_results(root: Path, label: str, column: int) -> Path:
    metrics = {name: {"value": row[column], "better": row[0], "stderr": None} for name, row in METRICS.items()}
    eval_dir = root / label / "eval"
    eval_dir.mkdir(parents=True)
    (eval_dir / "results.json").write_text(json.dumps({"label": label, "metrics": metrics}), encoding="utf-8")
    return root / label


def test_relative_improvement_follows_each_direction():
    assert relative_improvement(0.5, 0.55, "higher") == pytest.approx(0.1)
    assert relative_improvement(0.2, 0.1, "lower") == pytest.approx(0.5)
    assert relative_improvement(-0.1, 0.05, "zero") == pytest.approx(0.5)
    assert relative_improvement(0.1, -0.2, "zero") == pytest.approx(-1.0)
    assert relative_improvement(0.3, 0.3, "higher") == 0.0
    assert relative_improvement(0.0, 0.1, "zero") == -math.inf
    assert relative_improvement(0.0, 0.1, "higher") == math.inf


@pytest.mark.parametrize(
    ("relative", "expected"),
    [
        (0.021, "improved"),
        (0.02, "within"),
        (-0.02, "within"),
        (-0.05, "degraded"),
        (-0.10, "degraded"),
        (-0.11, "degraded_severe"),
        (-math.inf, "degraded_severe"),
    ],
)
def test_verdict_thresholds(relative, expected):
    assert verdict(relative) == expected


def test_compare_writes_table_summary_plot_and_an_offline_wandb_run(tmp_path, capsys):
    runs = [write_results(tmp_path, label, column) for column, label in enumerate(["base", "forward", "reverse"], 1)]
    out = tmp_path / "cmp"
    md = compare([str(r) for r in runs], None, out, "offline", "hmx-test")
    payload = json.loads((out / "comparison.json").read_text())

    forward = payload["summary"]["forward"]  # improved: bbq, flip rate; within: mc2; degraded: mc1 (severe), eqbench
    assert forward == {"metrics": 5, "improved": 0.4, "within_2pct": 0.2, "degraded_2pct": 0.4, "degraded_10pct": 0.2}
    reverse = payload["summary"]["reverse"]  # eqbench missing → 4 metrics: improved mc1; within flip; mc2, bbq severe
    assert reverse == {"metrics": 4, "improved": 0.25, "within_2pct": 0.25, "degraded_2pct": 0.5, "degraded_10pct": 0.5}
    line = (
        "forward vs base: 40% of 5 metrics improved, 20% within 2%, 40% degraded by more than 2% (20% by more than 10%)"
    )
    text = md.read_text()
    assert line in text and line in capsys.readouterr().out
    assert "| truthfulqa_mc1/acc | higher | 0.5000 | 0.4000 | -0.1000 | -20.0% | 0.5200 | +0.0200 | +4.0% |" in text
    assert "| eq_bench/eqbench | higher | 40.0000 | 38.0000 | -2.0000 | -5.0% | n/a | n/a | n/a |" in text
    assert (out / "deltas.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    offline = list((out / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(offline) == 1 and offline[0].stat().st_size > 0


def test_summary_of_nothing_is_undefined():
    assert math.isnan(summary([])["improved"])


def test_bad_input_names_the_file_and_field_and_writes_nothing(tmp_path, capsys):
    base = write_results(tmp_path, "base", 1)
    broken = tmp_path / "broken" / "eval"
    broken.mkdir(parents=True)
    (broken / "results.json").write_text(json.dumps({"metrics": {"x/acc": {"value": "high", "better": "higher"}}}))
    out = tmp_path / "cmp"
    for argv, message in [
        ([str(base), str(tmp_path / "missing"), "--out", str(out)], f"{tmp_path / 'missing'}: no results.json"),
        ([str(base), str(broken.parent), "--out", str(out)], "field 'metrics.x/acc.value'"),
        ([str(base), "--out", str(out)], "at least two runs"),
        ([str(base), str(base), "--out", str(out)], "run labels must differ"),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err
    assert not out.exists()


def test_a_change_counts_only_when_its_test_says_so():
    assert verdict(0.30, False) == "within"
    assert verdict(0.30, True) == "improved"
    assert verdict(-0.30, True) == "degraded_severe"
    assert verdict(0.01, True) == "within"  # significant but within 2%


def test_group_seeds_puts_runs_differing_only_in_seed_in_one_arm(tmp_path, capsys):
    runs = []
    for name, seed, lr in [("fwd-1", 1, 0.01), ("fwd-2", 2, 0.01), ("fwd-3", 3, 0.01), ("fast-1", 1, 0.1)]:
        run_dir = write_results(tmp_path, name, 2)
        config = {"seed": seed, "run_name": name, "trainer": {"learning_rate": lr}}
        (run_dir / "config.yaml").write_text(json.dumps(config), encoding="utf-8")  # JSON is YAML
        runs.append(str(run_dir))
    base = str(write_results(tmp_path, "base", 1))
    compare([base, *runs], None, tmp_path / "cmp", "off", "hmx", group_seeds=True)
    payload = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    assert {k: len(v) for k, v in payload["runs"].items()} == {"base": 1, "fwd": 3, "fast-1": 1}
    # identical seeds leave the seed variance unknown: unbounded intervals, p = 1, nothing counts as a change
    assert payload["summary"]["fwd"]["with_interval"] == 5
    assert payload["summary"]["fwd"]["improved"] == 0.0 and payload["summary"]["fwd"]["within_2pct"] == 1.0
    assert {row["p_value"] for row in payload["deltas"]["fwd"]} == {1.0}
    assert "with_interval" not in payload["summary"]["fast-1"]  # one run, no per-item files: no interval
    for argv, message in [
        ([base, "--arm", "forward", "--out", str(tmp_path / "x")], "expected NAME=RUN[,RUN...]"),
        ([base, "--arm", f"f={runs[0]}", "--primary", "nope/acc", "--out", str(tmp_path / "x")], "--primary nope/acc"),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
