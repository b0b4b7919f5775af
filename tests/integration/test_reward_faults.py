"""Reward faults injected into a real training run: NaN/inf judge logits, a judge that ties every completion.

The fault is real: a forward hook on the policy poisons the logits of the judge's own forward
calls (the model is in eval mode only while it judges), so the scores pass through the real
judge, the real reward functions and TRL's advantage computation.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import torch
from transformers import TrainerCallback

from hmx.judge.modes.logprob import forward_calls
from hmx.rewards.faults import fill_invalid
from hmx.train import run

CRITERIA = 3  # hmx_feel
COMPLETIONS = 8  # debug=smoke: per_device_train_batch_size
JUDGE_BATCH = 16  # conf/judge/logprob.yaml


class JudgeFault(TrainerCallback):
    """Applies ``poison`` to the logits of every scoring call of the judge ([units, criteria, vocab]).

    A scoring call keeps logits at per-row score positions (``logits_to_keep`` a tensor); the
    one call per judge pass that encodes the shared rubric prefix keeps one position and is left alone.
    """

    def __init__(self, poison: Callable[[torch.Tensor], None]):
        self.poison = poison
        self.calls = 0

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        def hook(module, args, kwargs, output):
            scoring = isinstance(kwargs.get("logits_to_keep"), torch.Tensor)
            if not module.training and scoring:  # only the judge runs the policy in eval mode
                self.calls += 1
                self.poison(output.logits)
            return output

        model.register_forward_hook(hook, with_kwargs=True)


def nan_and_inf(logits: torch.Tensor) -> None:
    logits[0] = float("nan")  # every criterion of the call's first completion
    logits[1, 0] = float("inf")  # the first criterion of its second completion


def all_equal(logits: torch.Tensor) -> None:
    logits.zero_()  # uniform over the labels: every completion gets the same expected score


def faulty_run(make_cfg, poison) -> tuple[Path, JudgeFault, list[dict], pd.DataFrame]:
    fault = JudgeFault(poison)
    # the poison hooks every forward call of the reward pass; the audit's own judge passes are left out
    audit_off = ("audit.steps=0", "audit.minimal_steps=0")
    cfg = make_cfg("debug=smoke", "logger=none", "trainer.log_completions=true", "run_name=faulty", *audit_off)
    run_dir = run(cfg, callbacks=[fault])
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    table = pd.concat(pd.read_parquet(p) for p in sorted((run_dir / "completions").glob("*.parquet")))
    assert (run_dir / "adapter" / "adapter_model.safetensors").is_file() and not (run_dir / "FAILED").exists()
    return run_dir, fault, [r for r in rows if "reward" in r], table


@pytest.mark.slow  # a real training run or process: make test, not make test-fast
def test_nan_and_infinite_judge_scores_are_counted_neutral_and_training_goes_on(make_cfg):
    _, fault, steps, table = faulty_run(make_cfg, nan_and_inf)
    calls_per_step = forward_calls(COMPLETIONS, CRITERIA, JUDGE_BATCH) - 1  # scoring calls: less the prefix's
    assert len(steps) == 3 and fault.calls == 3 * calls_per_step
    for row in steps:
        assert row["judge/invalid"] == (CRITERIA + 1) * calls_per_step  # counted
        assert math.isfinite(row["reward"]) and row["grad_norm"] > 0  # training goes on, gradients flow
    assert set(table["judge_invalid"]) == {0, 1, CRITERIA}  # the completions table marks each faulty row
    whole = table[table["judge_invalid"] == CRITERIA]
    assert len(whole) == 3 * calls_per_step
    # a completion the judge could not score at all moves nothing (its group's mean on every criterion) ...
    assert whole["advantage"].abs().max() < 1e-3
    for criterion in ("feelings", "intentions", "self_awareness"):
        assert whole[criterion].notna().all()
    # ... while the others still get a learning signal
    assert table[table["judge_invalid"] == 0]["advantage"].abs().max() > 0.1


@pytest.mark.slow  # a real training run or process: make test, not make test-fast
def test_groups_with_equal_rewards_get_no_advantage_and_are_counted(make_cfg):
    _, fault, steps, table = faulty_run(make_cfg, all_equal)
    assert fault.calls > 0 and len(steps) == 3
    for row in steps:
        assert row["frac_reward_zero_std"] == 1.0  # TRL counts the tied groups
        assert row["judge/invalid"] == 0
        assert row["reward"] == pytest.approx(3 * 3.0)  # uniform over labels 1-5: expected score 3 per criterion
    assert (table["advantage"] == 0).all()


def test_fill_invalid_uses_the_group_mean_or_none():
    nan, inf = float("nan"), float("inf")
    scores = [1.0, nan, 3.0, inf, nan, 2.0]
    groups = ["a", "a", "a", "b", "b", "c"]
    assert fill_invalid(scores, groups) == [1.0, 2.0, 3.0, None, None, 2.0]
