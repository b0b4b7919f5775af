"""The judge's face: the :class:`Judge` protocol every mode, the panel and the external judge implement."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch

from hmx.config import JudgeConfig
from hmx.judge.verdicts import Verdicts
from hmx.rubrics.schema import Rubric


class Judge(Protocol):
    """Scores N completions on every criterion of ``rubric`` with a model's own weights."""

    rubric: Rubric  # the criteria scored, in the order of the verdicts' columns
    cfg: JudgeConfig  # the config it was built from (``weights``: policy or base)

    def score(
        self, model: torch.nn.Module, prompts: Sequence[str], completions: Sequence[str], device: torch.device
    ) -> Verdicts: ...
