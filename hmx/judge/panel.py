"""A judge panel (``judge.panel=true``): the same rows scored by the self-judge, the frozen base judge
and the external judge, and how far they agree.

The reward still comes from one judge (``judge.source``: the external one, or the self-judge with
``judge.weights``); the panel scores each batch with all three and logs, per criterion and per pair,
the Spearman rank correlation of their scores over the batch's rows:

- ``judge/panel/<criterion>/self_base``: the self-judge (adapter on) vs the frozen base judge
  (the same weights, adapter off): how far training moved the judge;
- ``judge/panel/<criterion>/self_external`` and ``…/base_external``: each vs the external judge,
  an outside reference that training cannot move.

NaN where a pair has fewer than three finite scores in common or one side is constant. The
panel's cost is two self-judge passes on top of the reward judge; the self passes keep their fixed
call schedule (every rank scores its own rows with the same N), so the panel is ZeRO-3 safe.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import pandas as pd
import torch

from hmx.config import JudgeConfig
from hmx.judge.protocol import Judge, JudgeBase
from hmx.judge.verdicts import Verdicts
from hmx.rubrics.schema import Rubric

MEMBERS = ("self", "base", "external")


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rho over the pairs where both scores are finite (average ranks for ties); NaN when undefined."""
    pairs = [(x, y) for x, y in zip(a, b, strict=True) if math.isfinite(x) and math.isfinite(y)]
    if len(pairs) < 3:
        return math.nan
    left, right = pd.Series([x for x, _ in pairs]), pd.Series([y for _, y in pairs])
    if left.nunique() < 2 or right.nunique() < 2:
        return math.nan
    return float(left.corr(right, method="spearman"))


def agreement(rubric: Rubric, scores: dict[str, torch.Tensor]) -> dict[str, float]:
    """``judge/panel/<criterion>/<a>_<b>`` for every pair of members and criterion."""
    metrics = {}
    for j, criterion in enumerate(rubric.criteria):
        for a, b in itertools.combinations([m for m in MEMBERS if m in scores], 2):
            metrics[f"judge/panel/{criterion.name}/{a}_{b}"] = spearman(
                scores[a][:, j].tolist(), scores[b][:, j].tolist()
            )
    return metrics


class JudgePanel(JudgeBase):
    """A :class:`~hmx.judge.protocol.Judge` whose verdicts are the reward judge's; the others are compared.

    Every hook of the protocol is forwarded: those about the policy's model (``texts``, ``verdict_tokens``,
    ``check_model``, ``attach_vllm``, ``with_weights``) to the self-judge members, ``last_metrics`` from
    the external member and the agreement of the last batch.
    """

    def __init__(self, self_judge: Judge, external: Judge, cfg: JudgeConfig):
        self.rubric, self.cfg = self_judge.rubric, cfg
        self.self_judge = self_judge
        self.members: dict[str, Judge] = {
            "self": self_judge.with_weights("policy"),
            "base": self_judge.with_weights("base"),
            "external": external,
        }
        self.reward = "external" if cfg.source == "external" else ("base" if cfg.weights == "base" else "self")
        self.last_metrics: dict[str, float] = {}

    def texts(self, prompts: Sequence[str], completions: Sequence[str]) -> list[str]:
        """The self-judge's inputs: the ones that must fit the policy's context."""
        return self.self_judge.texts(prompts, completions)

    def verdict_tokens(self) -> int:
        return self.self_judge.verdict_tokens()

    def check_model(self, model: torch.nn.Module) -> None:
        self.self_judge.check_model(model)
        for name in ("self", "base"):
            self.members[name].check_model(model)

    def attach_vllm(self, vllm_generation: Any) -> str:
        """The self member takes the engine where it can; the base member never can (vLLM holds the merged
        policy weights, the adapter cannot be switched off there), so it is not asked (no warning each run)."""
        return self.members["self"].attach_vllm(vllm_generation)

    def with_weights(self, weights: str) -> Judge:
        """The self-judge with ``weights``: no external member, no second panel (the drift monitor's judges)."""
        return self.self_judge.with_weights(weights)

    def score(
        self, model: torch.nn.Module, prompts: Sequence[str], completions: Sequence[str], device: torch.device
    ) -> Verdicts:
        verdicts = {name: judge.score(model, prompts, completions, device) for name, judge in self.members.items()}
        self.last_metrics = {
            **self.members["external"].last_metrics,
            **agreement(self.rubric, {name: v.scores for name, v in verdicts.items()}),
        }
        return verdicts[self.reward]
