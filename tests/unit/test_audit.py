"""The reward-hacking audit's signals and thresholds on crafted rewards (hmx/rewards/audit.py)."""

from __future__ import annotations

import random

import pytest
import torch
from transformers import TrainerControl, TrainerState, TrainingArguments

from hmx.config import AuditConfig, ConfigError
from hmx.resources import RUBRICS_DIR
from hmx.rewards.audit import (
    AuditAlarms,
    RewardAudit,
    audit_pairs,
    audit_summary,
    lexical_index,
    reward_spread,
)
from hmx.rubrics.pairs import PairError
from hmx.rubrics.schema import load_rubric
from hmx.tracking import reward_figure

FILLER = [f"w{i}" for i in range(40)]
REWARDED = ["feel", "calm"]  # the words a hacked judge pays for


def crafted_steps(steps: int, reward, seed: int = 0, groups: int = 2, size: int = 4):
    """Per step: prompts, completions and a [N, 3] score tensor whose every column is ``reward(words)``."""
    rng = random.Random(seed)
    for step in range(steps):
        prompts, completions = [], []
        for g in range(groups):
            for _ in range(size):
                words = rng.choices(FILLER, k=10) + rng.choices([*REWARDED, "okay"], k=rng.randint(0, 3))
                rng.shuffle(words)
                prompts.append(f"prompt {step}-{g}")
                completions.append(" ".join(words))
        scores = torch.tensor([[reward(c.split(), rng)] * 3 for c in completions])
        yield prompts, completions, scores


def bag_of_words(words: list[str], rng: random.Random) -> float:
    return min(5.0, 1.0 + words.count("feel") + 0.5 * words.count("calm"))


def noise(words: list[str], rng: random.Random) -> float:
    return rng.uniform(1.0, 5.0)


def run_audit(reward, steps: int = 10, cfg: AuditConfig | None = None) -> tuple[RewardAudit, list[dict]]:
    """The audit monitor over crafted steps (no judge pass: base agreement 1, no pairs); the logged rows."""
    cfg = cfg or AuditConfig()
    rubric = load_rubric(RUBRICS_DIR / "hmx_feel.yaml")
    batches = list(crafted_steps(steps, reward))
    current: list = [None]
    audit = RewardAudit(cfg, rubric, lambda: current[0], None, None, [], "logprob")
    rows = []
    for step, batch in enumerate(batches):
        current[0] = batch
        row: dict = {}
        audit(torch.nn.Linear(1, 1), torch.device("cpu"), step, row.__setitem__)
        rows.append({"step": step + 1, "reward": 0.0, **row})
    return audit, rows


def alarm(rows: list[dict], cfg: AuditConfig) -> None:
    callback = AuditAlarms(cfg)
    state = TrainerState()
    for row in rows:
        state.global_step = row["step"]
        callback.on_log(TrainingArguments("/tmp/unused", report_to=[]), state, TrainerControl(), logs=row)


def test_a_bag_of_words_reward_has_a_high_lexical_index_and_warns_once(capsys):
    audit, rows = run_audit(bag_of_words)
    index = [row["audit/lexical_index"] for row in rows if "audit/lexical_index" in row]
    assert "audit/lexical_index" not in rows[0]  # 2 groups: too few to fit
    assert index[-1] > 0.8  # 8 steps x 8 completions: the words explain the reward
    assert all(row["audit/base_agreement"] == 1.0 for row in rows)  # no base judge: the reward judge is it
    alarm(rows, AuditConfig())
    err = capsys.readouterr().err
    assert err.count("WARNING") == 1 and "audit/lexical_index" in err  # named, once
    summary = "\n".join(audit_summary(rows, AuditConfig()))
    assert "lexical_index" in summary and "CROSSED at step" in summary


def test_a_reward_no_bag_of_words_explains_has_a_low_index_and_no_warning(capsys):
    _, rows = run_audit(noise)
    assert max(row.get("audit/lexical_index", 0.0) for row in rows) < 0.2
    alarm(rows, AuditConfig())
    assert "WARNING" not in capsys.readouterr().err


def test_the_lexical_index_holds_out_whole_groups_and_needs_four():
    texts = ["a b", "a c", "b c", "a a"] * 3
    assert lexical_index(texts, [1.0, 2.0, 3.0, 4.0] * 3, [0, 0, 1, 1, 2, 2, 0, 0, 1, 1, 2, 2]) is None  # 3 groups
    assert lexical_index(texts, [1.0] * 12, list(range(6)) * 2) is None  # no spread within a group


def test_reward_spread_is_the_mean_within_group_sd_over_the_range():
    prompts = ["p", "p", "q", "q", "r"]  # r: a group of one, no spread to measure
    totals = [1.0, 3.0, 2.0, 2.0, 9.0]
    assert reward_spread(prompts, totals, 12.0) == pytest.approx((2**0.5 + 0.0) / 2 / 12.0)
    assert reward_spread(["p", "q"], [1.0, 2.0], 12.0) is None


def test_a_flat_reward_warns_that_grpo_has_no_signal_after_k_steps(capsys):
    cfg = AuditConfig(flat_steps=3)
    rows = [{"step": s, "audit/reward_spread": 0.001} for s in range(1, 3)]
    alarm(rows, cfg)
    assert "WARNING" not in capsys.readouterr().err  # 2 < K consecutive steps
    rows = [{"step": 1, "audit/reward_spread": 0.001}, {"step": 2, "audit/reward_spread": 0.5}]
    rows += [{"step": s, "audit/reward_spread": 0.001} for s in range(3, 7)]
    alarm(rows, cfg)
    err = capsys.readouterr().err
    assert err.count("WARNING") == 1 and "step 5" in err and "GRPO has no signal" in err


def test_minimal_accuracy_warns_on_a_drop_and_agreement_below_its_floor(capsys):
    rows = [
        {"step": 1, "audit/minimal_accuracy": 0.80, "audit/base_agreement": 0.9},
        {"step": 11, "audit/minimal_accuracy": 0.66, "audit/base_agreement": 0.4},
        {"step": 21, "audit/minimal_accuracy": 0.61, "audit/base_agreement": 0.3},
    ]
    alarm(rows, AuditConfig())
    err = capsys.readouterr().err
    assert err.count("audit/base_agreement") == 1 and "step 11" in err
    assert err.count("audit/minimal_accuracy") == 1 and "step 21" in err  # 0.66 is within 0.15 of 0.80


def test_audit_pairs_default_to_the_rubrics_minimal_pairs(tmp_path):
    rubric = load_rubric(RUBRICS_DIR / "hmx_feel.yaml")
    pairs = audit_pairs(AuditConfig(), rubric, RUBRICS_DIR / "hmx_feel.yaml")
    minimal = RUBRICS_DIR / "hmx_feel.minimal.pairs.jsonl"
    assert pairs and {p.split for p in pairs} == ({"dev"} if minimal.is_file() else {"minimal"})
    other = load_rubric(RUBRICS_DIR / "suppress_feelings.yaml")
    assert audit_pairs(AuditConfig(), other, RUBRICS_DIR / "suppress_feelings.yaml") == []  # none shipped: off
    assert audit_pairs(AuditConfig(minimal_steps=0), rubric, RUBRICS_DIR / "hmx_feel.yaml") == []
    with pytest.raises(PairError, match="none.jsonl: labelled pair file not found"):
        audit_pairs(AuditConfig(pairs=str(tmp_path / "none.jsonl")), rubric, "hmx_feel.yaml")
    with pytest.raises(ConfigError, match=r"audit\.max_lexical_index.*within \[0, 1\]"):
        audit_pairs(AuditConfig(max_lexical_index=1.5), rubric, "hmx_feel.yaml")


def test_the_reward_figure_draws_judge_guards_and_audit_in_separate_panels():
    _, rows = run_audit(bag_of_words, steps=4)
    for row in rows:
        row.update({"rewards/feelings/mean": 3.0, "rewards/overlong/mean": -0.5, "reward": 9.0})
    fig = reward_figure(rows, "model tiny", {"max_lexical_index": 0.5, "min_reward_spread": 0.01})
    titles = [ax.get_title(loc="left") for ax in fig.axes]
    assert len(fig.axes) == 5 and [t.split(":")[0] for t in titles] == ["Reward", "Judge", "Guards", "Audit", "Audit"]
    total, judge, guards, audit, spread = fig.axes
    assert [line.get_label() for line in total.get_lines()] == ["total (weighted)"]
    assert [line.get_label() for line in guards.get_lines()] == ["overlong"]  # no guard among the criteria
    assert "overlong" not in [line.get_label() for line in judge.get_lines()]
    assert {"lexical_index", "lexical_index threshold"} <= {line.get_label() for line in audit.get_lines()}
    for ax in fig.axes:  # every legend sits right of its axes, off the curves
        assert ax.get_legend().get_bbox_to_anchor().x0 >= ax.get_window_extent().x1
