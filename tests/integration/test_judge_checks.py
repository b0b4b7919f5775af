"""Recorded judge checks: hmx train reuses the start-up check and the audit's step-0 pass only for exactly this judge.

Real tiny-model runs: the first computes both checks and writes them, with their content hashes, to the run's
judge_checks.yaml; with that file as the record a second run shows the same figures without scoring a pair, and
says so; a changed pair file, or a policy that is not the loaded model at step 0, is computed again.
"""

from __future__ import annotations

import shutil

import pytest
import torch
import yaml

from hmx.judge.validity import records
from hmx.judge.validity.records import CheckRecords, identity_key, weights_digest
from hmx.resources import RUBRICS_DIR
from hmx.tracking import read_metrics
from hmx.train import run

MINIMAL = RUBRICS_DIR / "hmx_feel.shift.pairs.jsonl"  # 18 minimal pairs: a quick audit pass on the tiny model
PAIRS = RUBRICS_DIR / "hmx_feel.pairs.jsonl"


def checked_run(make_cfg, pairs, *extra: str):
    overrides = [f"judge.validate={pairs}", "judge.validate_split=test", "audit.minimal_steps=10"]
    overrides += [f"audit.pairs={MINIMAL}", "audit.split=minimal", "before_after=0", "logger=none"]
    return run(make_cfg("debug=smoke", "trainer.max_steps=1", *overrides, *extra))


def first_row(run_dir):
    return next(r for r in read_metrics(run_dir / "metrics.jsonl") if "reward" in r)


def test_a_recorded_check_is_reused_only_for_exactly_this_judge(make_cfg, tmp_path, monkeypatch, capsys):
    computed = checked_run(make_cfg, PAIRS, "run_name=computed")
    err = capsys.readouterr().err
    assert "judge check: scoring the 75 pairs" in err and "from the record" not in err
    entries = yaml.safe_load((computed / "judge_checks.yaml").read_text())["checks"]
    assert [e["key"]["check"] for e in entries] == ["startup", "audit-step-0"]
    assert all(len(e["key"]["weights"]) == 64 and "reused_from" not in e for e in entries)
    assert entries[1]["validity"]["overall"]["pairs"] == 18 and "bar" in entries[0] and "bar" not in entries[1]

    record = tmp_path / "judge_checks.yaml"  # the run's checks, made the record
    shutil.copy(computed / "judge_checks.yaml", record)
    monkeypatch.setattr(records, "CHECKS", record)
    reused = checked_run(make_cfg, PAIRS, "run_name=reused")
    err = capsys.readouterr().err
    assert f"judge check: figures from the record {record}" in err and "judge check: scoring" not in err
    assert "audit: minimal-pair accuracy at step 0 from the record" in err
    for shown in ("judge validity: rubric hmx_feel, mode logprob", "surface baselines on split test", "VALID (logprob"):
        assert shown in err  # the recorded table, bar and verdict are shown as computed ones are
    a, b = first_row(computed), first_row(reused)
    for name in ("judge/validity/accuracy", "judge/validity/surface/margin", "audit/minimal_accuracy"):
        assert b[name] == pytest.approx(a[name], abs=1e-12), name
    assert b["audit/seconds"] < a["audit/seconds"]  # the pass was not run
    again = yaml.safe_load((reused / "judge_checks.yaml").read_text())["checks"]
    assert [e["reused_from"] for e in again] == [str(record)] * 2

    # a pair file that differs by one byte is not the recorded one; a policy whose LoRA B starts non-zero (peft's
    # random init) is not the loaded model at step 0: both are computed again
    changed = tmp_path / "pairs.jsonl"
    changed.write_text(PAIRS.read_text() + "\n")
    checked_run(make_cfg, changed, "run_name=changed", "+peft.init_lora_weights=false")
    err = capsys.readouterr().err
    assert "judge check: scoring the 75 pairs" in err and "from the record" not in err
    assert "audit: minimal pairs (step 0)" in err  # its progress bar: the pass ran


def test_the_weights_hash_sees_one_changed_number_and_refuses_empty_shards(tiny_model, tiny_tokenizer):
    before = weights_digest(tiny_model)
    weight = next(p for p in tiny_model.parameters() if p.dim() == 2)
    with torch.no_grad():
        weight[0, 0] += 1e-3
        try:
            assert weights_digest(tiny_model) != before
        finally:
            weight[0, 0] -= 1e-3
    assert weights_digest(tiny_model) == before

    class Sharded(torch.nn.Module):  # what a ZeRO-3 rank holds: placeholders, not the weights
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.empty(0))

    assert identity_key(Sharded(), tiny_tokenizer) is None
    assert CheckRecords(Sharded(), tiny_tokenizer, [{"check": "startup"}]).find({}, torch.device("cpu")) is None
