"""The reward-hacking audit of every training run: does the reward still read meaning?

A monitor of the self-judge's reward pass (:class:`hmx.rewards.self_judge.SelfJudgeRewards`), like
the drift monitor: it gets the policy, the steps done (TRL's ``trainer_state``) and TRL's
``log_metric``, so its metrics join the row of the rewards they audit, averaged over ranks, in
metrics.jsonl and W&B. The signals (docs/training.md, "Reward-hacking audit"):

- ``audit/base_agreement``: Spearman rank correlation, over this step's own completions, between
  the rewarding judge's scores and the frozen base judge's (adapter off), per criterion, averaged
  over criteria. 1 by construction with ``judge.weights=base`` (logged as 1, no extra pass).
- ``audit/lexical_index``: out-of-sample R² (clipped to [0, 1]) of a ridge regression of the
  within-group reward (the judge's weighted total minus its group's mean) on within-group-centred
  unigram counts, fitted on the last ``audit.window`` steps' completions, with whole groups held
  out (5-fold GroupKFold). 1: a bag of words explains every reward difference GRPO learns from.
- ``audit/minimal_accuracy``: the policy-weights judge's pairwise accuracy on minimal pairs
  (``audit.pairs``/``audit.split``), every ``audit.minimal_steps`` steps from step 0, and once more on the
  final weights when the run ends (:meth:`RewardAudit.final_pass`, its own row at the last step). At step 0 no
  update has been made and LoRA's B matrices are zero, so the policy is the loaded model: when
  ``rubrics/records/judge_checks.yaml`` records this pass for exactly this judge, weights, pairs and
  precision (content hashes, :mod:`hmx.judge.validity.records`), its recorded accuracy is the first
  value (and the line says so); every later pass is computed.
- ``audit/reward_spread``: mean over groups of the judge total's standard deviation, over the
  total's range (sum over criteria of |weight| x (max - min)); near zero, GRPO has no signal.
- ``audit/seconds``: the audit's own time in the step (mostly its judge passes).

Every rank makes the same judge calls at the same steps (the base pass scores the rank's own
completions through the judge's call schedule; the minimal pairs are the same on every rank), so
the audit is ZeRO-3 safe. The thresholds are checked on rank 0 by :class:`AuditAlarms`.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase, TrainerCallback

from hmx.config import AuditConfig, ConfigError, JudgeConfig
from hmx.judge.panel import spearman
from hmx.judge.protocol import Judge
from hmx.judge.registry import build_judge
from hmx.judge.validity.accuracy import Validity, validate
from hmx.judge.validity.preflight import progress_bar
from hmx.judge.validity.records import CheckRecords, recorded_validity
from hmx.resources import RUBRICS_DIR
from hmx.rubrics.pairs import LabelledPair, load_pairs
from hmx.rubrics.schema import Rubric
from hmx.tracking import is_main_process

SIGNALS = ("base_agreement", "lexical_index", "minimal_accuracy", "reward_spread")
MIN_LEXICAL_GROUPS = 4  # groups (prompts with >= 2 scored completions) in the window before a fit
LEXICAL_FOLDS = 5
RIDGE_ALPHAS = tuple(float(a) for a in np.logspace(-2, 3, 11))
WORD_PATTERN = r"(?u)\b\w+\b"  # single-character words too ("I")
Batch = tuple[list[str], list[str], torch.Tensor]  # prompts, completions, the reward judge's raw scores [N, C]


def audit_pairs(cfg: AuditConfig, rubric: Rubric, rubric_file: str | Path) -> list[LabelledPair]:
    """The minimal pairs of ``audit.pairs`` (checked now); ``auto``: the rubric's shipped ones, else none."""
    source = audit_pair_source(cfg, rubric_file)
    return load_pairs(source[0], rubric, source[1]) if source else []


def audit_pair_source(cfg: AuditConfig, rubric_file: str | Path) -> tuple[str, str | None] | None:
    """The file and split of ``audit.pairs``/``audit.split`` (``auto`` resolved); None when off."""
    check_audit(cfg)
    if cfg.minimal_steps == 0 or cfg.pairs is None:
        return None
    path, split = cfg.pairs, cfg.split
    if path == "auto":
        stem = Path(rubric_file).stem
        candidates = [
            (RUBRICS_DIR / f"{stem}.minimal.pairs.jsonl", "dev"),
            (RUBRICS_DIR / f"{stem}.shift.pairs.jsonl", "minimal"),
        ]
        found = [(file, default) for file, default in candidates if file.is_file()]
        if not found:
            return None
        path, split = str(found[0][0]), (found[0][1] if split == "auto" else split)
    elif split == "auto":
        split = None
    return path, split


def untrained(model: torch.nn.Module) -> bool:
    """Whether the policy is still the loaded model: every LoRA B matrix zero (peft's default start) and
    present on this rank (a ZeRO-3 shard holds none: then it cannot tell, and says no)."""
    lora_b = [p for name, p in model.named_parameters() if "lora_B" in name]
    return all(p.numel() > 0 and not bool(p.detach().any()) for p in lora_b)


def check_audit(cfg: AuditConfig) -> None:
    """Threshold ranges (the integer floors are checked with the node)."""
    for key in ("min_base_agreement", "max_lexical_index", "max_minimal_drop", "min_reward_spread"):
        value = getattr(cfg, key)
        low = -1.0 if key == "min_base_agreement" else 0.0  # a rank correlation
        if not (math.isfinite(value) and low <= value <= 1.0):
            raise ConfigError(f"config field 'audit.{key}': must be a number within [{low:g}, 1], got {value}")


def judge_totals(scores: torch.Tensor, rubric: Rubric) -> list[float]:
    """Each row's judge reward: the weighted sum of its oriented scores (NaN when a score is a fault)."""
    totals = []
    for row in scores.tolist():
        total = sum(c.weight * c.oriented(s) for c, s in zip(rubric.criteria, row, strict=True))
        totals.append(total if math.isfinite(total) else math.nan)
    return totals


def reward_range(rubric: Rubric) -> float:
    return sum(abs(c.weight) * (c.max_value - c.min_value) for c in rubric.criteria)


def groups_of(prompts: Sequence[str], totals: Sequence[float]) -> dict[str, list[int]]:
    """Row indices per prompt (a GRPO group on this rank), finite rewards only, groups of >= 2."""
    groups: dict[str, list[int]] = {}
    for index, (prompt, total) in enumerate(zip(prompts, totals, strict=True)):
        if math.isfinite(total):
            groups.setdefault(prompt, []).append(index)
    return {prompt: rows for prompt, rows in groups.items() if len(rows) >= 2}


def reward_spread(prompts: Sequence[str], totals: Sequence[float], span: float) -> float | None:
    """Mean over groups of the reward's sample standard deviation, over ``span``; None without a group."""
    groups = groups_of(prompts, totals)
    if not groups or span <= 0:
        return None
    return statistics.fmean(statistics.stdev([totals[i] for i in rows]) for rows in groups.values()) / span


def lexical_index(texts: Sequence[str], rewards: Sequence[float], group_ids: Sequence[Any]) -> float | None:
    """Cross-validated R² (clipped to [0, 1]) of within-group rewards on within-group unigram counts.

    Rewards and counts are centred on their group's mean (GRPO learns from differences within a
    group); folds hold out whole groups (a group's centred rows are not independent of each
    other). None with fewer than
    :data:`MIN_LEXICAL_GROUPS` groups or no reward variance.
    """
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import RidgeCV
    from sklearn.metrics import r2_score
    from sklearn.model_selection import GroupKFold, cross_val_predict

    labels = np.asarray([str(g) for g in group_ids])
    distinct = sorted(set(labels))
    y = np.asarray(rewards, dtype=float)
    if len(distinct) < MIN_LEXICAL_GROUPS:
        return None
    try:
        counts = CountVectorizer(token_pattern=WORD_PATTERN).fit_transform(texts).toarray().astype(float)
    except ValueError:  # no word in any completion
        return None
    for group in distinct:
        rows = labels == group
        y[rows] -= y[rows].mean()
        counts[rows] -= counts[rows].mean(axis=0)
    if float(np.sum(y**2)) <= 1e-12:
        return None
    folds = GroupKFold(n_splits=min(LEXICAL_FOLDS, len(distinct)))
    predicted = cross_val_predict(RidgeCV(alphas=RIDGE_ALPHAS, fit_intercept=False), counts, y, groups=labels, cv=folds)
    return float(min(1.0, max(0.0, r2_score(y, predicted))))


def mean_agreement(a: torch.Tensor, b: torch.Tensor) -> float | None:
    """Spearman's rho per criterion column, averaged over the criteria where it is defined."""
    rhos = [spearman(a[:, j].tolist(), b[:, j].tolist()) for j in range(a.shape[1])]
    finite = [rho for rho in rhos if math.isfinite(rho)]
    return statistics.fmean(finite) if finite else None


class RewardAudit:
    """The audit monitor: called once per reward pass with the policy, the steps done and ``log_metric``.

    ``batch`` returns the pass's rows and the rewarding judge's raw scores; ``base_judge`` is the
    frozen judge (None: the reward judge is the base judge, agreement 1); ``policy_build`` builds
    the policy-weights judge on a rubric view for the minimal pairs (None: no minimal accuracy).
    """

    def __init__(
        self,
        cfg: AuditConfig,
        rubric: Rubric,
        batch: Callable[[], Batch | None],
        base_judge: Judge | None,
        policy_build: Callable[[Rubric], Judge] | None,
        pairs: Sequence[LabelledPair],
        mode: str,
        records: CheckRecords | None = None,
        record_key: dict[str, Any] | None = None,
    ):
        """``records`` and ``record_key`` (:func:`hmx.judge.validity.records.check_key`): the step-0 minimal-pair
        pass is looked up there, and kept there when computed."""
        self.cfg, self.rubric, self.batch = cfg, rubric, batch
        self.base_judge, self.policy_build, self.pairs, self.mode = base_judge, policy_build, list(pairs), mode
        self.records, self.record_key = records, record_key
        self.window: deque[tuple[list[str], list[float], list[str]]] = deque(maxlen=cfg.window)
        self.history: list[tuple[int, dict[str, float]]] = []  # (steps done, metrics) of each pass
        self._passes = 0
        self._due_agreement = 0
        self._due_minimal = 0

    def __call__(
        self, model: torch.nn.Module, device: torch.device, step: int, log_metric: Callable[[str, float], None]
    ) -> None:
        batch = self.batch()
        if batch is None:
            return
        prompts, completions, scores = batch
        started = time.perf_counter()
        metrics: dict[str, float] = {}
        totals = judge_totals(scores, self.rubric)
        spread = reward_spread(prompts, totals, reward_range(self.rubric))
        if spread is not None:
            metrics["audit/reward_spread"] = spread
        groups = groups_of(prompts, totals)
        self.window.append(
            (
                [completions[i] for rows in groups.values() for i in rows],
                [totals[i] for rows in groups.values() for i in rows],
                [f"{self._passes}:{prompt}" for prompt, rows in groups.items() for _ in rows],
            )
        )
        self._passes += 1
        if self.cfg.steps and step >= self._due_agreement:  # the same steps on every rank (ZeRO-3)
            self._due_agreement = (step // self.cfg.steps + 1) * self.cfg.steps
            metrics.update(self._agreement_and_lexical(model, device, prompts, completions, scores))
        if self.pairs and self.policy_build is not None and self.cfg.minimal_steps and step >= self._due_minimal:
            self._due_minimal = (step // self.cfg.minimal_steps + 1) * self.cfg.minimal_steps
            metrics["audit/minimal_accuracy"] = self._minimal_accuracy(model, device, step)
        metrics["audit/seconds"] = time.perf_counter() - started  # the audit's cost this step (its judge passes)
        self.history.append((step, metrics))
        for name, value in metrics.items():
            log_metric(name, value)

    def final_pass(self, model: torch.nn.Module, device: torch.device, step: int) -> dict[str, float]:
        """``audit/minimal_accuracy`` of the final weights, after the run's last update (every reward pass comes
        before its update, so no pass sees them); {} when the minimal pairs are off. Every rank calls it."""
        if not (self.pairs and self.policy_build is not None and self.cfg.minimal_steps):
            return {}
        metrics = {"audit/minimal_accuracy": self._minimal_accuracy(model, device, step, final=True)}
        self.history.append((step, metrics))
        return metrics

    def _minimal_accuracy(self, model: torch.nn.Module, device: torch.device, step: int, final: bool = False) -> float:
        """The policy-weights judge on the minimal pairs: recorded at step 0 when a record applies, else scored."""
        assert self.policy_build is not None
        records, key = self.records, self.record_key
        first = step == 0 and records is not None and key is not None and untrained(model)
        entry = records.find(key, device) if first and records is not None and key is not None else None
        if entry is not None and records is not None:
            recorded = recorded_validity(entry)
            if is_main_process():
                print(
                    f"hmx train: audit: minimal-pair accuracy at step 0 from the record {records.name} "
                    f"({recorded.overall.accuracy:.3f} on {recorded.overall.pairs} pairs, measured "
                    f"{entry.get('measured')} on the same weights, head, rubric and pairs: their content hashes "
                    "match), not recomputed",
                    file=sys.stderr,
                    flush=True,
                )
            return recorded.overall.accuracy
        where = f"the final weights, after {step} updates" if final else f"step {step}"
        with progress_bar(f"audit: minimal pairs ({where})", enabled=is_main_process()) as progress:
            validity: Validity = validate(
                self.policy_build, self.rubric, model, self.pairs, device, self.mode, "policy", progress=progress
            )
        if first and records is not None and key is not None:
            records.keep(key, device, validity, None)
        return validity.overall.accuracy

    def _agreement_and_lexical(
        self,
        model: torch.nn.Module,
        device: torch.device,
        prompts: list[str],
        completions: list[str],
        scores: torch.Tensor,
    ) -> dict[str, float]:
        metrics: dict[str, float] = {}
        if self.base_judge is None:
            metrics["audit/base_agreement"] = 1.0  # the reward judge is the frozen base judge
        else:  # every rank scores its own rows: the judge's call schedule keeps the counts equal
            base = self.base_judge.score(model, prompts, completions, device).scores.float().cpu()
            rho = mean_agreement(scores.float().cpu(), base)
            if rho is not None:
                metrics["audit/base_agreement"] = rho
        texts = [t for part in self.window for t in part[0]]
        rewards = [r for part in self.window for r in part[1]]
        group_ids = [g for part in self.window for g in part[2]]
        index = lexical_index(texts, rewards, group_ids) if texts else None
        if index is not None:
            metrics["audit/lexical_index"] = index
        return metrics


def build_audit(
    cfg: AuditConfig,
    rubric: Rubric,
    tokenizer: PreTrainedTokenizerBase,
    judge_cfg: JudgeConfig,
    batch: Callable[[], Batch | None],
    pairs: Sequence[LabelledPair],
    records: CheckRecords | None = None,
    record_key: dict[str, Any] | None = None,
) -> RewardAudit:
    """The run's audit: base agreement and minimal pairs need the self-judge (not an external reward)."""
    self_judged = judge_cfg.source == "self"
    alone = dataclasses.replace(judge_cfg, panel=False, source="self")
    base_judge = None
    if self_judged and judge_cfg.weights != "base" and cfg.steps:
        base_judge = build_judge(rubric, tokenizer, dataclasses.replace(alone, weights="base"))
    policy_cfg = dataclasses.replace(alone, weights="policy")
    policy_build = (lambda view: build_judge(view, tokenizer, policy_cfg)) if self_judged else None
    if not self_judged and is_main_process():
        print(
            "hmx train: audit: the reward comes from an external judge; audit/base_agreement and "
            "audit/minimal_accuracy are off (they audit the self-judge)",
            file=sys.stderr,
        )
    kept = pairs if self_judged else []
    return RewardAudit(cfg, rubric, batch, base_judge, policy_build, kept, judge_cfg.mode, records, record_key)


class AuditThresholds:
    """Which signal crossed its threshold, step by step (the same rule live and in the summary)."""

    def __init__(self, cfg: AuditConfig):
        self.cfg = cfg
        self.first_minimal: float | None = None
        self.flat = 0
        self.crossed: dict[str, tuple[int, str]] = {}  # signal -> (step, message), first crossing only

    def update(self, step: int, row: dict[str, Any]) -> list[str]:
        """The signals that cross for the first time in this logged row, with their warning."""
        cfg, found = self.cfg, {}
        if (value := row.get("audit/base_agreement")) is not None and value < cfg.min_base_agreement:
            found["base_agreement"] = (
                f"audit/base_agreement {value:.2f} < {cfg.min_base_agreement}: the rewarding judge ranks the "
                "policy's completions unlike the frozen base judge (the judge is drifting with the policy)"
            )
        if (value := row.get("audit/lexical_index")) is not None and value > cfg.max_lexical_index:
            found["lexical_index"] = (
                f"audit/lexical_index {value:.2f} > {cfg.max_lexical_index}: a bag of words explains most of the "
                "within-group reward differences (the policy may be learning the rubric's vocabulary)"
            )
        if (value := row.get("audit/minimal_accuracy")) is not None:
            if self.first_minimal is None:
                self.first_minimal = value
            elif value < self.first_minimal - cfg.max_minimal_drop:
                found["minimal_accuracy"] = (
                    f"audit/minimal_accuracy {value:.2f} fell more than {cfg.max_minimal_drop} below its first "
                    f"value {self.first_minimal:.2f}: the self-judge reads less meaning as its weights move"
                )
        if (value := row.get("audit/reward_spread")) is not None:
            self.flat = self.flat + 1 if value < cfg.min_reward_spread else 0
            if self.flat >= cfg.flat_steps:
                found["reward_spread"] = (
                    f"audit/reward_spread below {cfg.min_reward_spread} of the reward range for {self.flat} "
                    "consecutive steps: the judge gives a group's completions nearly equal rewards, so GRPO has no "
                    "signal (validate the judge: hmx rubric validate)"
                )
        new = [signal for signal in found if signal not in self.crossed]
        for signal in new:
            self.crossed[signal] = (step, found[signal])
        return [f"step {step}: {found[signal]}" for signal in new]


class AuditAlarms(TrainerCallback):
    """Rank 0: a warning naming the signal the first time it crosses its threshold (docs/training.md)."""

    def __init__(self, cfg: AuditConfig):
        self.thresholds = AuditThresholds(cfg)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs:
            for message in self.thresholds.update(state.global_step, logs):
                print(f"hmx train: WARNING: {message}", file=sys.stderr, flush=True)


def audit_summary(records: Sequence[dict[str, Any]], cfg: AuditConfig) -> list[str]:
    """End-of-run lines: each signal's first and last value, its threshold, and whether it was crossed."""
    thresholds = AuditThresholds(cfg)
    for row in records:
        thresholds.update(int(row.get("step", 0)), row)
    rules = {
        "base_agreement": f"warn below {cfg.min_base_agreement}",
        "lexical_index": f"warn above {cfg.max_lexical_index}",
        "minimal_accuracy": f"warn on a drop of {cfg.max_minimal_drop}",
        "reward_spread": f"warn below {cfg.min_reward_spread} for {cfg.flat_steps} steps",
    }
    lines = []
    for signal in SIGNALS:
        values = [row[f"audit/{signal}"] for row in records if row.get(f"audit/{signal}") is not None]
        if not values:
            continue
        crossed = thresholds.crossed.get(signal)
        verdict = f"CROSSED at step {crossed[0]}" if crossed else "ok"
        lines.append(f"  {signal:<17} {values[0]:.3f} -> {values[-1]:.3f}  ({rules[signal]}: {verdict})")
    return ["audit (docs/training.md#reward-hacking-audit):", *lines] if lines else []
