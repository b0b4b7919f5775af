"""A rubric author's judge: one prompt's completions scored per criterion, with the labels' probabilities."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from hmx.config import JudgeConfig
from hmx.rubrics.schema import Rubric


@dataclass
class CriterionScore:
    """One criterion's verdict on one completion."""

    criterion: str
    score: float | None  # expected score (logprob) or the parsed label's value (generate); None if unparseable
    labels: list[str]
    probs: list[float]  # over the labels (generate: one-hot on the verdict)
    label_mass: float  # logprob: probability on any label before renormalising; generate: 1 if parsed
    rationale: str | None = None  # generate mode
    raw: str | None = None  # generate mode: what the judge wrote


def load_judge_model(
    model: str, cache_dir: str, device: str = "cpu", adapter: str | None = None
) -> tuple[torch.nn.Module, Any]:
    """Policy weights and tokenizer: a run directory (adapter on) or a model (hub id, path, ``tiny``);
    ``adapter``: a tuned judge adapter (``judge.adapter``) merged into the model's weights first."""
    from hmx.models import pick_device
    from hmx.runs import load_weights, run_or_model

    if adapter is not None:
        from hmx.config import ConfigError
        from hmx.judge.tuned_adapter import load_adapter
        from hmx.runs import is_run_path

        if is_run_path(model):
            raise ConfigError(
                f"judge adapter {adapter}: a run directory ({model}) carries its own weights; pass a model"
            )
        load_adapter(adapter)  # a missing or wrong file fails before the model loads
    weights, tokenizer = load_weights(*run_or_model(model, cache_dir), pick_device(device))
    if adapter is not None:
        from hmx.judge.tuned_adapter import merge_judge_adapter

        weights = merge_judge_adapter(weights, adapter)
    return weights, tokenizer


def load_judge_tokenizer(model: str, cache_dir: str) -> Any:
    """The tokenizer of a run directory or a model (hub id, path, ``tiny``), without its weights."""
    from hmx.runs import load_weights_tokenizer, run_or_model

    return load_weights_tokenizer(*run_or_model(model, cache_dir))


def score(
    rubric: Rubric,
    model: torch.nn.Module,
    tokenizer: Any,
    prompt: str,
    completions: Sequence[str],
    cfg: JudgeConfig | None = None,
) -> list[list[CriterionScore]]:
    """Judge each completion of one prompt on every criterion: ``[completion][criterion]``."""
    from hmx.judge.registry import build_judge

    cfg = cfg or JudgeConfig()
    judge = build_judge(rubric, tokenizer, cfg)
    device = next(model.parameters()).device
    verdicts = judge.score(model, [prompt] * len(completions), list(completions), device)
    out = []
    for i in range(len(completions)):
        row = []
        for j, criterion in enumerate(judge.rubric.criteria):
            value = float(verdicts.scores[i, j])
            width = len(verdicts.label_probs[i][j])  # contrastive: P(top), P(bottom); relative: the group share
            named = ["top", "bottom"] if width == 2 else ["share"] if width else []  # probe: no labels read
            labels = criterion.labels if width == len(criterion.labels) else named
            row.append(
                CriterionScore(
                    criterion=criterion.name,
                    score=value if value == value else None,
                    labels=[label.strip() for label in labels],
                    probs=[round(p, 6) for p in verdicts.label_probs[i][j]],
                    label_mass=round(float(verdicts.label_mass[i, j]), 6),
                    rationale=getattr(verdicts, "rationales", None) and verdicts.rationales[i][j],  # type: ignore[attr-defined]
                    raw=getattr(verdicts, "raw", None) and verdicts.raw[i][j],  # type: ignore[attr-defined]
                )
            )
        out.append(row)
    return out
