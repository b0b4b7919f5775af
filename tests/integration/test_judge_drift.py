"""Judge drift monitor in a real tiny training run: probes scored with base and policy weights, gap logged."""

from __future__ import annotations

import json

import pytest
import torch

from hmx.config import ConfigError, JudgeConfig
from hmx.judge.modes.logprob import LogprobJudge
from hmx.resources import RUBRICS_DIR
from hmx.rewards.drift import PROBES, JudgeDriftMonitor, drift_judges, drift_scores, load_probes
from hmx.rubrics.schema import load_rubric
from hmx.runs import load_adapter_model, load_run_tokenizer, locate_run
from hmx.train import run


class Capture(JudgeDriftMonitor):
    """Keeps the trainer's monitor instance reachable from the test (it records its own history)."""

    instances: list[JudgeDriftMonitor] = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        Capture.instances.append(self)


@pytest.mark.slow  # a real training run or process: make test, not make test-fast
def test_drift_is_logged_and_matches_a_fresh_scoring(make_cfg, monkeypatch):
    monkeypatch.setattr("hmx.train.JudgeDriftMonitor", Capture)
    cfg = make_cfg(
        "debug=smoke",
        "judge.drift_steps=1",
        "trainer.max_steps=3",
        "trainer.learning_rate=0.05",
        "trainer.save_steps=2",
    )
    run_dir = run(cfg)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    logged = [r for r in rows if "judge/drift/gap" in r]
    assert [r["step"] for r in logged] == [1, 2, 3]  # in the rows of the rewards that judge gave
    monitor = Capture.instances[-1]
    assert [step for step, _ in monitor.history] == [0, 1, 2]  # updates behind the judge at each pass
    assert monitor.history[0][1]["judge/drift/gap"] == pytest.approx(0.0, abs=1e-6)  # LoRA B starts at zero
    first, last = monitor.history[0][1], monitor.history[-1][1]
    names = [c.name for c in load_rubric(RUBRICS_DIR / "hmx_feel.yaml").criteria]
    for name in names:  # the base weights never train: their scores on the fixed probes cannot move
        assert first[f"judge/drift/{name}/base"] == pytest.approx(last[f"judge/drift/{name}/base"], abs=1e-5)
    gap = sum(last[f"judge/drift/{n}/policy"] - last[f"judge/drift/{n}/base"] for n in names) / len(names)
    assert last["judge/drift/gap"] == pytest.approx(gap, abs=1e-5)
    assert logged[-1]["judge/drift/gap"] == pytest.approx(last["judge/drift/gap"], abs=1e-5)

    # re-score the probes from the checkpoint after 2 updates: the last logged values are its judge's
    trained = locate_run(run_dir / "checkpoint-2")
    rubric, tokenizer = load_rubric(RUBRICS_DIR / "hmx_feel.yaml"), load_run_tokenizer(trained)
    judges = drift_judges(rubric, tokenizer, JudgeConfig())
    assert isinstance(judges["base"], LogprobJudge) and judges["base"].cfg.weights == "base"
    with torch.autocast("cpu", dtype=torch.bfloat16):  # as in training: TRL's bf16 default autocasts on CPU too
        again = drift_scores(judges, load_adapter_model(trained), PROBES, torch.device("cpu"))
    for key, value in last.items():
        assert again[key] == pytest.approx(value, abs=0.02), key  # bf16 resolution at 2-4 is 1/64
    assert last["judge/drift/gap"] != 0.0  # two real LoRA steps moved the policy's judgement


def test_probe_file_errors_name_file_line_and_field(tmp_path):
    probes = tmp_path / "probes.jsonl"
    probes.write_text('{"prompt": "hi", "completion": "hello"}\n{"prompt": "hi"}\n')
    with pytest.raises(ConfigError, match=rf"{probes}:2: judge\.drift_probes: field 'completion'"):
        load_probes(str(probes))
    with pytest.raises(ConfigError, match="judge.drift_probes.*not found"):
        load_probes(str(tmp_path / "none.jsonl"))
    probes.write_text('{"prompt": "hi", "completion": "hello"}\n')
    assert load_probes(str(probes)) == [("hi", "hello")]
