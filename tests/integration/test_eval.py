"""``hmx eval`` on the tiny model: every benchmark, the probes and the expression score on a few items;
its benchmark numbers equal lm-eval's own command line on the same model and data; a trained run's
adapter is evaluated; bad input fails cleanly."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from hmx.config import ConfigError
from hmx.evaluation.benchmarks import EU_BOTH, HEADLINE_METRICS
from hmx.evaluation.run import run
from hmx.evaluation.suite import BENCHMARK_TASKS
from hmx.evaluation.sycophancy import DIRECTIONS
from hmx.evaluation.tasks import TASKS_DIR
from hmx.evaluation.tasks.datasets import data_root
from hmx.resources import CONF_DIR
from hmx.rubrics.loading import load_checked

pytestmark = pytest.mark.skipif(data_root(None) is None, reason="../shared/data is not next to this checkout")

LIMIT = 8
SMALL = [  # the same small suite for the base model and the trained run, so their numbers are comparable
    f"suite.limit={LIMIT}",
    "suite.batch_size=8",
    f"suite.sycophancy.limit={LIMIT}",
    "suite.expression.limit=4",
    "suite.expression.max_new_tokens=16",
]
CRITERIA = ("feelings", "intentions", "self_awareness")


def eval_cfg(cache_dir: Path, *overrides: str):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("eval", [f"paths.cache_dir={cache_dir}", *overrides])


@pytest.fixture(scope="module")
def base_eval(tmp_path_factory, cache_dir) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("eval") / "base"
    path = run(eval_cfg(cache_dir, f"output_dir={out}", *SMALL))
    assert path == out / "results.json"
    return out, json.loads(path.read_text())


def test_suite_writes_every_metric_as_json_and_markdown(base_eval):
    out, results = base_eval
    metrics = results["metrics"]
    expected = [f"{bench}/{m}" for bench, names in HEADLINE_METRICS.items() for m in names]
    expected += [f"sycophancy/{name}" for name in DIRECTIONS]
    expected += [f"expression/self/{c}" for c in (*CRITERIA, "overall")]
    expected += [f"{name}/acc" for name in EU_BOTH]
    assert [name for name in expected if name not in metrics] == []
    assert results["samples"] == {
        **{name: LIMIT for name in [*BENCHMARK_TASKS, *EU_BOTH]},
        "sycophancy": LIMIT,
        "expression": 4,
    }
    for name in expected:
        value = metrics[name]["value"]
        if value is None:  # undefined on this subset (e.g. no initially correct answer to flip)
            assert name == "sycophancy/are_you_sure_flip_rate"
        elif name.startswith("expression/"):
            assert 1.0 <= value <= 5.0, name
        elif name.startswith("eq_bench/"):
            assert 0.0 <= value <= 100.0, name
        elif "bias_score" in name or name.endswith("accuracy_drop"):
            assert -1.0 <= value <= 1.0, name
        else:
            assert 0.0 <= value <= 1.0, name
    assert metrics["bbq/disamb_bias_score"]["better"] == "zero"
    assert metrics["sycophancy/are_you_sure_flip_rate"]["better"] == "lower"
    report = (out / "results.md").read_text()
    assert all(f"| {name} |" in report for name in expected)
    syco = [json.loads(line) for line in (out / "sycophancy.jsonl").read_text().splitlines()]
    first_right = sum(r["first"] == r["correct"] for r in syco) / len(syco)
    assert metrics["sycophancy/accuracy"]["value"] == first_right
    answers = [json.loads(line) for line in (out / "expression.jsonl").read_text().splitlines()]
    assert len(answers) == 4 and all(f"self/{c}" in answers[0] for c in CRITERIA)
    for name in BENCHMARK_TASKS:  # lm-eval's per-document metrics, one row per document, mean = the headline
        items = [json.loads(line) for line in (out / f"{name}.jsonl").read_text().splitlines()]
        assert [row["doc_id"] for row in items] == list(range(LIMIT)), name
        if "acc" in items[0]:
            assert metrics[f"{name}/acc"]["value"] == pytest.approx(sum(r["acc"] for r in items) / LIMIT), name
    for both, (emotion, cause) in EU_BOTH.items():
        rows = {name: [json.loads(line)["acc"] for line in (out / f"{name}.jsonl").open()] for name in (emotion, cause)}
        joint = sum(e * c for e, c in zip(rows[emotion], rows[cause], strict=True)) / LIMIT
        assert metrics[f"{both}/acc"]["value"] == joint <= min(metrics[f"{emotion}/acc"]["value"], 1.0)


def test_benchmarks_equal_lm_eval_command_line(base_eval, tiny_dir, tmp_path):
    tasks = list(BENCHMARK_TASKS.values())  # EmoBench's six tasks (EU emotion, cause; EA; en and zh) included
    command = [
        sys.executable, "-m", "lm_eval",
        "--model", "hf",
        "--model_args", f"pretrained={tiny_dir},dtype=float32",
        "--device", "cpu",
        "--tasks", ",".join(tasks),
        "--include_path", str(TASKS_DIR),
        "--limit", str(LIMIT),
        "--batch_size", "8",
        "--output_path", str(tmp_path),
    ]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    (results_file,) = tmp_path.glob("**/results_*.json")
    cli = json.loads(results_file.read_text())["results"]
    ours = base_eval[1]["details"]["lm_eval"]
    for bench, task in BENCHMARK_TASKS.items():
        theirs = {
            key.removesuffix(",none"): value
            for key, value in cli[task].items()
            if key.endswith(",none") and isinstance(value, (int, float)) and math.isfinite(value)
        }
        assert ours[bench] == theirs, bench  # every digit of every number, EmoBench's acc and acc_norm included


def test_a_trained_run_is_evaluated_with_its_adapter(base_eval, smoke_run, cache_dir, tmp_path):
    run_dir = tmp_path / "smoke"  # the session's trained run (tests/conftest.py), copied: eval writes into it
    shutil.copytree(smoke_run, run_dir)
    path = run(eval_cfg(cache_dir, f"run_dir={run_dir}", *SMALL, "suite.benchmarks=[truthfulqa_mc2]"))
    assert path == run_dir / "eval" / "results.json"
    results = json.loads(path.read_text())
    assert results["adapter"] == str(run_dir / "adapter") and results["label"] == "smoke"
    base = base_eval[1]["metrics"]
    benchmarks = {*HEADLINE_METRICS, *EU_BOTH}
    assert set(results["metrics"]) == {name for name in base if name.split("/")[0] not in benchmarks} | {
        "truthfulqa_mc2/acc"
    }
    # LoRA weights moved in training, so the same prompts get other scores than the base model's
    changed = [
        c
        for c in CRITERIA
        if results["metrics"][f"expression/self/{c}"]["value"] != base[f"expression/self/{c}"]["value"]
    ]
    assert changed, "the adapter made no difference: was it loaded?"
    assert results["metrics"]["truthfulqa_mc2/acc"]["value"] != base["truthfulqa_mc2/acc"]["value"]


def test_external_judge_scores_the_answers_with_a_second_model(base_eval, cache_dir, tmp_path):
    """The external judge (a model preset placed at its key) is loaded separately; here it is the same tiny model,
    so its scores equal the self-judge's."""
    only_expression = ["suite.benchmarks=[]", "suite.sycophancy.enabled=false"]
    external = ["+model@suite.expression.external_judge=tiny"]
    path = run(eval_cfg(cache_dir, f"output_dir={tmp_path / 'ext'}", *SMALL, *only_expression, *external))
    metrics = json.loads(path.read_text())["metrics"]
    assert set(metrics) == {f"expression/{judge}/{c}" for judge in ("self", "external") for c in (*CRITERIA, "overall")}
    for c in (*CRITERIA, "overall"):
        assert metrics[f"expression/external/{c}"]["value"] == pytest.approx(metrics[f"expression/self/{c}"]["value"])
        assert metrics[f"expression/self/{c}"]["value"] == base_eval[1]["metrics"][f"expression/self/{c}"]["value"]


def test_rubric_extra_criteria_are_scored_and_kept_out_of_overall(cache_dir, tmp_path, capsys):
    """``rubric=hmx_feel_honest`` (hmx_feel + extra: honesty_guard): the guard's criteria are scored too."""
    only_expression = ["suite.benchmarks=[]", "suite.sycophancy.enabled=false", "rubric=hmx_feel_honest"]
    results = json.loads(run(eval_cfg(cache_dir, f"output_dir={tmp_path}", *SMALL, *only_expression)).read_text())
    guards = ("honesty", "non_sycophancy")
    assert results["rubric_criteria"] == [*CRITERIA, *guards]
    assert set(results["metrics"]) == {f"expression/self/{c}" for c in (*CRITERIA, *guards, "overall")}
    assert "honesty (guard), non_sycophancy (guard)" in capsys.readouterr().out
    value = {c: results["metrics"][f"expression/self/{c}"]["value"] for c in (*CRITERIA, *guards, "overall")}
    assert all(1 <= value[c] <= 5 for c in guards)
    weights = {c.name: c.weight for c in load_checked("hmx_feel").criteria}  # overall: the non-guard criteria only
    overall = sum(weights[c] * value[c] for c in CRITERIA) / sum(weights.values())
    assert value["overall"] == pytest.approx(overall)


def test_bad_input_fails_with_the_field_and_writes_nothing(cache_dir, tmp_path, hmx_fails):
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match="run_dir|no such run"):
        run(eval_cfg(cache_dir, f"run_dir={tmp_path / 'missing'}", f"output_dir={out}"))
    err = hmx_fails("eval", "suite.benchmarks=[truthfulqa_mc3]", f"output_dir={out}")
    assert "hmx eval: error: config field 'suite.benchmarks': unknown ['truthfulqa_mc3']" in err
    assert not out.exists()


def test_compare_seeds_intervals_and_t_tests_on_real_evals(base_eval, make_cfg, cache_dir, tmp_path):
    """Two training seeds evaluated for real, compared with the base model: one arm, intervals, t-tests over seeds."""
    from hmx.commands.compare import main
    from hmx.evaluation.compare import compare
    from hmx.train import run as train

    runs = [train(make_cfg("debug=smoke", f"seed={seed}", f"run_name=fwd-{seed}")) for seed in (1, 2)]
    few = [*SMALL, "suite.benchmarks=[truthfulqa_mc1,emobench_eu_emotion]", "suite.expression.enabled=false"]
    for run_dir in runs:
        run(eval_cfg(cache_dir, f"run_dir={run_dir}", *few))
    base = str(base_eval[0])
    md = compare([base, *map(str, runs)], None, tmp_path / "grouped", "off", "hmx", group_seeds=True)
    payload = json.loads((tmp_path / "grouped" / "comparison.json").read_text())
    assert list(payload["runs"]) == ["tiny", "fwd"] and len(payload["runs"]["fwd"]) == 2  # seeds grouped into one arm
    rows = {row["metric"]: row for row in payload["deltas"]["fwd"]}
    assert set(rows) == {"truthfulqa_mc1/acc", "emobench_eu_emotion/acc"} | {f"sycophancy/{k}" for k in DIRECTIONS}
    mc1 = rows["truthfulqa_mc1/acc"]
    assert (mc1["runs"], mc1["baseline_runs"], mc1["items"]) == (2, 1, LIMIT)
    assert mc1["relative_low"] <= mc1["relative_high"]
    # a t-test over the two seeds on each seed's change, recomputed from the per-item files hmx eval wrote
    per_run = [[json.loads(line)["acc"] for line in (Path(r) / "eval" / "truthfulqa_mc1.jsonl").open()] for r in runs]
    base_acc = [json.loads(line)["acc"] for line in (Path(base) / "truthfulqa_mc1.jsonl").open()]
    gains = [sum(run) / len(run) - sum(base_acc) / len(base_acc) for run in per_run]
    assert mc1["method"] == "paired-t-seeds" and mc1["change"] == pytest.approx(sum(gains) / 2)
    assert 0.0 <= mc1["p_value"] <= 1.0 and mc1["p_adjusted"] >= mc1["p_value"]
    for row in rows.values():  # a change beyond 2% counts only when its adjusted test says so
        if row["verdict"] != "within":
            assert row["p_adjusted"] < 0.05
        if row["p_adjusted"] is not None and row["p_adjusted"] >= 0.05:
            assert row["verdict"] == "within"
    text = md.read_text()
    assert "a change counts only where its test (paired-t-seeds; Holm-adjusted) gives p < 0.05" in text
    assert "| metric | better | tiny | fwd | Δ | rel. | 95% CI | p | p adj. |" in text
    # the same arm named on the command line gives the same numbers (the draws are seeded)
    arm = f"fwd={runs[0]},{runs[1]}"
    main([base, "--arm", arm, "--wandb", "off", "--out", str(tmp_path / "a")])
    assert json.loads((tmp_path / "a" / "comparison.json").read_text())["deltas"] == payload["deltas"]
