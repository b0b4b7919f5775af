"""What every judge mode returns (:class:`Verdicts`) and the state it scores in (:func:`judging`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from hmx.rubrics.schema import Rubric


@dataclass
class Verdicts:
    """Judge output for N completions × C criteria."""

    scores: torch.Tensor  # [N, C] expected raw score on the criterion's scale (NaN where invalid)
    label_probs: list[list[list[float]]]  # [N][C][levels] probabilities renormalised over the labels
    label_mass: torch.Tensor  # [N, C] probability the model put on any label before renormalising


def on_scale(rubric: Rubric, unit: torch.Tensor) -> torch.Tensor:
    """``[N, C]`` values in [0, 1] mapped onto each criterion's range: 0 → its lowest value, 1 → its highest."""
    low = torch.tensor([min(c.values) for c in rubric.criteria], device=unit.device)
    high = torch.tensor([max(c.values) for c in rubric.criteria], device=unit.device)
    return low + (high - low) * unit


@contextlib.contextmanager
def judging(model: torch.nn.Module, weights: str) -> Iterator[None]:
    """Eval mode, no grad, and the adapter disabled when ``weights == 'base'`` (a frozen judge)."""
    was_training = model.training
    model.eval()
    disable_adapter = getattr(model, "disable_adapter", None)
    adapter_off = disable_adapter() if weights == "base" and disable_adapter else contextlib.nullcontext()
    try:
        with torch.no_grad(), adapter_off:
            yield
    finally:
        model.train(was_training)
