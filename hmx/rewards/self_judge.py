"""The self-judge as TRL reward functions: one per criterion, so TRL logs ``rewards/<name>/mean``.

All criteria of a batch are scored in one judge pass (the first criterion's call fills a
cache keyed by the batch's text; the others read it). A non-finite score is counted in
``judge/invalid`` and the completions table's ``judge_invalid`` column, and is given its group's
mean score (:mod:`hmx.rewards.faults`: no advantage either way); it never crashes a run.

Monitors (the drift monitor, the reward-hacking audit, the side-effect probes) run once per reward
pass, after the judge, with the policy, the step count from TRL's ``trainer_state`` and TRL's
``log_metric``: the public hooks GRPOTrainer hands every reward function, so their metrics join
the row of the rewards they sit next to, averaged over ranks, without touching the trainer's private state.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from hmx.chat_template import message_text
from hmx.judge.protocol import Judge
from hmx.judge.verdicts import Verdicts
from hmx.rewards.faults import fill_invalid, invalid_per_row

LogMetric = Callable[[str, float], None]
Monitor = Callable[[torch.nn.Module, torch.device, int, LogMetric], None]  # model, device, steps done, log_metric


class SelfJudgeRewards:
    """Shared state behind the per-criterion reward functions."""

    def __init__(self, judge: Judge):
        self.judge = judge
        self.model: torch.nn.Module | None = None
        self.device = torch.device("cpu")
        self._key: int | None = None
        self._verdicts: Verdicts | None = None
        self.invalid_total = 0
        self._pending: dict[str, float] = {}  # logged with the next judge pass (judge/validity/*)
        self.monitors: list[Monitor] = []  # run after each fresh judge pass, in order, on every rank
        self.last: tuple[list[str], list[str], torch.Tensor] | None = None  # the pass's prompts, completions, scores

    def log_once(self, metrics: dict[str, float]) -> None:
        """Metrics handed to TRL's ``log_metric`` with the next judge pass (they join that step's row)."""
        self._pending.update(metrics)

    def bind(self, model: torch.nn.Module, device: torch.device) -> None:
        """Give the judge the policy it scores with (the trainer's model: no second copy)."""
        self.model, self.device = model, device

    def verdicts(
        self,
        prompts: Sequence[Any],
        completions: Sequence[Any],
        log_metric: Callable | None,
        log_extra: Callable | None = None,
    ) -> Verdicts:
        prompt_texts = [message_text(p) for p in prompts]
        completion_texts = [message_text(c) for c in completions]
        key = hash((tuple(prompt_texts), tuple(completion_texts)))
        if key != self._key or self._verdicts is None:
            if self.model is None:
                raise RuntimeError("the self-judge has no model: call bind() after building the trainer")
            self._verdicts = self.judge.score(self.model, prompt_texts, completion_texts, self.device)
            self._key = key
            self.last = (prompt_texts, completion_texts, self._verdicts.scores)
            if log_metric is not None:
                self._log(self._verdicts, log_metric)
                for name, value in self.judge.last_metrics.items():  # external judge, panel
                    log_metric(name, value)
                for name, value in self._pending.items():
                    log_metric(name, value)
                self._pending.clear()
            if log_extra is not None:
                log_extra("judge_invalid", invalid_per_row(self._verdicts.scores.tolist()))
        return self._verdicts

    def run_monitors(self, trainer_state: Any, log_metric: LogMetric | None) -> None:
        """Each monitor, in order, with the policy, the optimizer steps done and TRL's ``log_metric``."""
        if trainer_state is None or log_metric is None or self.model is None:
            return
        for monitor in self.monitors:
            monitor(self.model, self.device, trainer_state.global_step, log_metric)

    def _log(self, verdicts: Verdicts, log_metric: Callable) -> None:
        invalid = int((~torch.isfinite(verdicts.scores)).sum())
        self.invalid_total += invalid
        log_metric("judge/invalid", float(invalid))
        log_metric("judge/label_mass", float(verdicts.label_mass.mean()))
        for j, criterion in enumerate(self.judge.rubric.criteria):
            column = verdicts.scores[:, j]
            finite = column[torch.isfinite(column)]
            if finite.numel():
                log_metric(f"judge/{criterion.name}/score", float(finite.mean()))

    def reward_functions(self) -> list[Callable[..., list[float | None]]]:
        """One function per criterion, named after it; rewards are oriented (reverse flips them)."""
        functions = []
        for index, criterion in enumerate(self.judge.rubric.criteria):

            def reward(prompts, completions, _index=index, _criterion=criterion, **kwargs) -> list[float | None]:
                verdicts = self.verdicts(prompts, completions, kwargs.get("log_metric"), kwargs.get("log_extra"))
                if _index == 0:  # once per reward pass: TRL calls every reward function once per batch
                    self.run_monitors(kwargs.get("trainer_state"), kwargs.get("log_metric"))
                filled = fill_invalid(verdicts.scores[:, _index].tolist(), [message_text(p) for p in prompts])
                return [None if s is None else _criterion.oriented(s) for s in filled]

            reward.__name__ = criterion.name
            functions.append(reward)
        return functions

    def weights(self) -> list[float]:
        return [criterion.weight for criterion in self.judge.rubric.criteria]
