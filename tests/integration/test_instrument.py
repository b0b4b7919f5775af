"""``hmx eval`` with an instrument independent of the reward (``suite.expression.judge``), on the tiny model.

The reward's head is the session's probe (fitted on 9 dev pairs: 3 user messages x 3 criteria); the
instrument's is fitted here on 9 test pairs (other user messages): results.json records that they
share no head, adapter or message; the reward's own head as instrument is recorded as not independent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from hmx.config import ConfigError
from hmx.evaluation.run import run
from hmx.resources import CONF_DIR, RUBRICS_DIR

EXPRESSION_ONLY = [
    "suite.benchmarks=[]",
    "suite.sycophancy.enabled=false",
    "suite.expression.limit=4",
    "suite.expression.max_new_tokens=12",
]


@pytest.fixture(scope="module")
def test_half_probe(tmp_path_factory, cache_dir) -> Path:
    """A tiny-model head fitted on 9 pairs of the test split (messages the dev-fitted head never saw)."""
    from hmx.cli import main

    folder = tmp_path_factory.mktemp("instrument")
    rows = [json.loads(line) for line in (RUBRICS_DIR / "hmx_feel.pairs.jsonl").read_text().splitlines()]
    pairs = folder / "test.jsonl"
    pairs.write_text("".join(json.dumps(row) + "\n" for row in [r for r in rows if r["split"] == "test"][:9]))
    out = folder / "tiny.test-half.safetensors"
    fit = ["rubric", "fit-probe", "--rubric", "hmx_feel", "--model", "tiny", "--cache-dir", str(cache_dir)]
    with pytest.raises(SystemExit) as done:
        main([*fit, "--pairs", str(pairs), "--out", str(out)])
    assert done.value.code == 0
    return out


def evaluate(out: Path, cache_dir: Path, reward: Path, instrument: Path, *extra: str) -> dict:
    overrides = [f"paths.cache_dir={cache_dir}", f"output_dir={out}", *EXPRESSION_ONLY]
    overrides += ["judge=probe", f"judge.probe={reward}", "+judge@suite.expression.judge=probe"]
    overrides += [f"suite.expression.judge.probe={instrument}", *extra]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("eval", overrides)
    return json.loads(run(cfg).read_text())


def test_an_instrument_fitted_on_the_other_half_is_recorded_independent(
    tmp_path, cache_dir, tiny_probe, test_half_probe, capsys
):
    results = evaluate(tmp_path / "base", cache_dir, tiny_probe, test_half_probe)
    metrics = results["metrics"]
    for name in ("feelings", "intentions", "self_awareness", "overall"):
        assert 1.0 <= metrics[f"expression/instrument/{name}"]["value"] <= 5.0
    assert metrics["expression/instrument/overall"] != metrics["expression/self/overall"]  # another head
    judges = results["expression_judges"]
    shares = judges["instrument"]["shares_with_reward"]
    assert shares == {
        "mode": True,
        "head": False,
        "adapter": False,
        "base_weights": True,
        "training_messages": 0,
        "independent": True,
    }
    assert judges["instrument"]["weights"] == "base" and judges["instrument"]["fitted_on"]["pairs"].endswith(
        "test.jsonl"
    )
    assert judges["reward"]["probe_sha256"] != judges["instrument"]["probe_sha256"]
    items = [json.loads(line) for line in (tmp_path / "base" / "expression.jsonl").read_text().splitlines()]
    assert len(items) == 4 and all("instrument/overall" in row for row in items)
    assert "expression instrument independent of the reward: shares head no, adapter no" in capsys.readouterr().out


def test_the_rewards_own_head_as_instrument_is_recorded_as_not_independent(tmp_path, cache_dir, tiny_probe, smoke_run):
    # a trained run: the reward is read from the run's config.yaml (logprob there), then the eval's probe as reward
    run_results = evaluate(tmp_path / "run", cache_dir, tiny_probe, tiny_probe, f"run_dir={smoke_run}")
    run_shares = run_results["expression_judges"]["instrument"]["shares_with_reward"]
    assert run_results["expression_judges"]["reward"]["from"].endswith("config.yaml")
    assert run_shares["mode"] is False and run_shares["head"] is False and run_shares["independent"] is True
    results = evaluate(tmp_path / "base", cache_dir, tiny_probe, tiny_probe)
    shares = results["expression_judges"]["instrument"]["shares_with_reward"]
    assert shares["head"] is True and shares["training_messages"] == 3 and shares["independent"] is False
    # the same head on the same (base) weights: the instrument's scores are the reward judge's own
    metrics = results["metrics"]
    assert metrics["expression/instrument/overall"]["value"] == pytest.approx(
        metrics["expression/self/overall"]["value"]
    )


def test_a_head_for_another_model_fails_before_any_benchmark(tmp_path, cache_dir, tiny_probe):
    shipped = RUBRICS_DIR / "probes" / "hmx_feel.smollm2-135m.safetensors"
    with pytest.raises(ConfigError, match="hmx_feel.smollm2-135m.safetensors"):
        evaluate(tmp_path / "bad", cache_dir, tiny_probe, shipped)
    assert not (tmp_path / "bad" / "results.json").exists()
