"""What every judge mode returns (:class:`Verdicts`) and the state it scores in (:func:`judging`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch


@dataclass
class Verdicts:
    """Judge output for N completions × C criteria."""

    scores: torch.Tensor  # [N, C] expected raw score on the criterion's scale (NaN where invalid)
    label_probs: list[list[list[float]]]  # [N][C][levels] probabilities renormalised over the labels
    label_mass: torch.Tensor  # [N, C] probability the model put on any label before renormalising


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
