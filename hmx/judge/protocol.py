"""The judge's face: the :class:`Judge` protocol every mode, the panel and the external judge implement,
and :class:`JudgeBase`, the no-op default of every hook, which the modes inherit.

Every hook the trainer, generation checks, evaluation, the drift monitor and the panel use is declared
here; no caller probes a judge with ``getattr`` or ``isinstance``. The panel
(:class:`hmx.judge.panel.JudgePanel`) forwards each hook to the members it concerns.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, Protocol, TypeVar

import torch

from hmx.config import JudgeConfig, parse_node
from hmx.judge.verdicts import Verdicts
from hmx.rubrics.schema import Rubric

T = TypeVar("T")


def node_options(cfg: JudgeConfig, node: str, schema: type[T]) -> T:
    """The typed options of the node ``judge.<node>`` (``schema``'s defaults where ``cfg`` has none): an unknown key,
    a wrong type, a non-finite float or a value below its floor is a ConfigError naming ``judge.<node>.<key>``.
    A mode reads its own options through this; everything above the modes through hmx.judge.registry.options."""
    return parse_node(schema, cfg.nodes.get(node), f"judge.{node}")


class Judge(Protocol):
    """Scores N completions on every criterion of ``rubric`` with a model's own weights."""

    rubric: Rubric  # the criteria scored, in the order of the verdicts' columns
    cfg: JudgeConfig  # the config it was built from (``weights``: policy or base)
    independent_criteria: bool  # a criterion's score ignores the others: validity may score one at a time

    @property
    def last_metrics(self) -> Mapping[str, float]:
        """Metrics of the last batch, logged with its rewards (the external judge's, the panel's agreement)."""
        ...

    def score(
        self, model: torch.nn.Module, prompts: Sequence[str], completions: Sequence[str], device: torch.device
    ) -> Verdicts: ...

    def texts(self, prompts: Sequence[str], completions: Sequence[str]) -> list[str]:
        """The inputs it feeds the policy's model (they must fit its context); [] for an outside judge."""
        ...

    def verdict_tokens(self) -> int:
        """Tokens one verdict adds after its input: 1 for a score read from logits, more when it writes text."""
        ...

    def check_model(self, model: torch.nn.Module) -> None:
        """Refuse a model the judge cannot score with (raise ConfigError); called before the run directory."""
        ...

    def attach_vllm(self, vllm_generation: Any) -> str:
        """Hand it TRL's vLLM engine (``trainer.vllm_generation`` or None); returns the engine it will use."""
        ...

    def with_weights(self, weights: str) -> Judge:
        """The same self-judge scoring with ``weights`` (``policy`` or ``base``); no outside judge, no copy
        of the model (the drift monitor and the panel's members)."""
        ...


class JudgeBase:
    """The no-op default of every hook of :class:`Judge`; a mode overrides what it needs."""

    rubric: Rubric
    cfg: JudgeConfig
    independent_criteria = False
    last_metrics: Mapping[str, float] = MappingProxyType({})

    def score(
        self, model: torch.nn.Module, prompts: Sequence[str], completions: Sequence[str], device: torch.device
    ) -> Verdicts:
        raise NotImplementedError(f"{type(self).__name__} scores nothing")  # every mode overrides it

    def texts(self, prompts: Sequence[str], completions: Sequence[str]) -> list[str]:
        return []

    def verdict_tokens(self) -> int:
        return 1

    def check_model(self, model: torch.nn.Module) -> None:
        return None

    def attach_vllm(self, vllm_generation: Any) -> str:
        return "transformers"  # it generates no text: nothing to run on vLLM

    def with_weights(self, weights: str) -> Judge:
        if weights == self.cfg.weights:
            return self
        variant = copy.copy(self)  # shares the tokenized templates; the weights are switched per call
        variant.cfg = dataclasses.replace(self.cfg, weights=weights)
        return variant
