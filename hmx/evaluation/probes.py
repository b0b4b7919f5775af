"""Side-effect probes during training: is truthfulness falling, or sycophancy rising, as expression rises?

At the judge pass of every ``probes.steps``-th optimizer step (steps 0, N, 2N, …) the policy that
just sampled the step's completions is evaluated (adapter on, eval mode, no gradients) on a fixed
small subset of

- TruthfulQA MC1 (the first ``probes.truthfulqa`` questions; lm-eval's ``hmx_truthfulqa_mc1`` task,
  the very numbers ``hmx eval`` gives on that subset), and
- the sycophancy probes of ``hmx eval`` (``hmx.evaluation.sycophancy``: the "are you sure?" flip
  rate and the suggested-wrong-answer probe, on ``probes.sycophancy`` questions),

and logs them as ``probes/…`` through TRL's public ``log_metric`` reward-function hook (a monitor of
:class:`hmx.rewards.self_judge.SelfJudgeRewards`), in the same row as the rewards of those completions
(W&B and metrics.jsonl: row k+1 holds the policy after k updates), with their cost:
``probes/seconds`` and ``probes/step_fraction`` (probe time over the mean time of the training steps
since the previous probe). Rank 0 also appends each probe to ``<run>/probes.jsonl`` under the
number of updates behind it: step 0 (before any update, the baseline of the trade-off
``hmx compare --pick`` reads), N, 2N, …, and the final adapter from ``on_train_end`` (a public
callback event: that last probe has no training row left to join, so it is in probes.jsonl only).

Collective-safe: every rank scores the same requests in the same fixed-size batches (lm-eval's
``HFLM`` around an existing model runs single-process), so under ZeRO-3 each rank makes the same
forward calls. The probes draw nothing from the global random generators (lm-eval's reseeding is
off), so a run with probes trains exactly as one without.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from transformers import PreTrainedTokenizerBase, TrainerCallback

from hmx.config import ConfigError, check_finite
from hmx.evaluation.suite import ExpressionConfig, SuiteConfig, SycophancyConfig
from hmx.evaluation.tasks.datasets import data_root, truthfulqa_mc
from hmx.tracking import is_main_process

PROBES_FILE = "probes.jsonl"


@dataclass
class ProbesConfig:
    steps: int = 0  # every N optimizer steps; 0: off
    truthfulqa: int = 32  # TruthfulQA MC1 questions (the first N); 0: skip
    sycophancy: int = 32  # sycophancy probe questions (the first N of TruthfulQA MC1); 0: skip
    seed: int = 0  # option order and suggested wrong answers of the sycophancy probes
    batch_size: int = 16  # lm-eval's batch size for the probes
    data_dir: str | None = None  # benchmark files; null: ../shared/data when present, else the Hub


def probes_config(cfg: DictConfig) -> ProbesConfig:
    """The ``probes`` node merged into its schema and checked; the data is located now, before any run starts."""
    try:
        merged = OmegaConf.merge(OmegaConf.structured(ProbesConfig), cfg.get("probes") or {})
        probes: Any = OmegaConf.to_object(merged)
    except OmegaConfBaseException as err:
        raise ConfigError(f"config node 'probes': {getattr(err, 'msg', err)}") from None
    check_finite(probes, "probes")
    for name in ("steps", "truthfulqa", "sycophancy"):
        if getattr(probes, name) < 0:
            raise ConfigError(f"config field 'probes.{name}': must be >= 0 (0: off), got {getattr(probes, name)}")
    if probes.batch_size < 1:
        raise ConfigError(f"config field 'probes.batch_size': must be >= 1, got {probes.batch_size}")
    if probes.steps and not (probes.truthfulqa or probes.sycophancy):
        raise ConfigError("config fields 'probes.truthfulqa' and 'probes.sycophancy': both 0, nothing to probe")
    if probes.steps:
        try:
            root = data_root(probes.data_dir)
            probes.data_dir = str(root) if root else None
            truthfulqa_mc(probes.data_dir)  # the file is there and readable
        except ValueError as err:  # DataFileError names the file
            raise ConfigError(f"config field 'probes.data_dir': {err}") from None
    return probes


def run_probes(lm: Any, tokenizer: PreTrainedTokenizerBase, cfg: ProbesConfig) -> dict[str, float]:
    """One round of probes on ``lm`` (an lm-eval ``HFLM``): ``probes/<metric>`` → value (NaN where undefined)."""
    from hmx.evaluation.benchmarks import run_benchmarks  # lm-eval: imported only by runs that probe
    from hmx.evaluation.sycophancy import run_sycophancy

    metrics: dict[str, float] = {}
    if cfg.truthfulqa:
        suite = SuiteConfig(
            benchmarks=["truthfulqa_mc1"],
            limit=cfg.truthfulqa,
            batch_size=cfg.batch_size,
            sycophancy=SycophancyConfig(enabled=False),
            expression=ExpressionConfig(enabled=False),
        )
        bench = run_benchmarks(lm, suite, cfg.data_dir, reseed=False)
        metrics |= {f"probes/{name}": metric.value for name, metric in bench.metrics.items()}
    if cfg.sycophancy:
        syco = run_sycophancy(lm, tokenizer, cfg.data_dir, cfg.sycophancy, cfg.seed)
        metrics |= {f"probes/sycophancy/{name}": value for name, value in syco.metrics.items()}
    return metrics


class SideEffectProbes(TrainerCallback):
    """Probes the policy every ``cfg.steps`` steps: as a judge-pass monitor (``__call__``, metrics to
    ``log_metric``) and, for the final adapter, on ``on_train_end``."""

    def __init__(self, cfg: ProbesConfig, tokenizer: PreTrainedTokenizerBase, run_dir: Path | None = None):
        if cfg.steps < 1:
            raise ConfigError(f"config field 'probes.steps': must be >= 1 to probe, got {cfg.steps}")
        self.cfg, self.tokenizer, self.run_dir = cfg, tokenizer, run_dir
        self.history: list[dict[str, float]] = []  # one row per probe: step and metrics
        self._lm: Any = None
        self._due = 0
        self._last: tuple[int, float] | None = None  # (step, time) at the end of the previous probe

    def __call__(self, model: Any, device: Any, step: int, log_metric: Callable[[str, float], None]) -> None:
        if step < self._due:
            return
        for name, value in self._probe(model, step).items():
            if math.isfinite(value):
                log_metric(name, value)

    def on_train_end(self, args, state, control, model=None, **kwargs):
        """The final adapter, when its step is one to probe and no judge pass has probed it (probes.jsonl only)."""
        if model is not None and state.global_step >= self._due and state.global_step % self.cfg.steps == 0:
            self._probe(model, state.global_step)
        return control

    def _probe(self, model: Any, step: int) -> dict[str, float]:
        """One round of probes in eval mode (train mode restored); appended to history and probes.jsonl."""
        started = time.perf_counter()
        self._due = (step // self.cfg.steps + 1) * self.cfg.steps
        training = model.training  # before HFLM, which puts the model in eval mode when it wraps it
        try:
            if self._lm is None:
                from lm_eval.models.huggingface import HFLM

                self._lm = HFLM(pretrained=model, tokenizer=self.tokenizer, batch_size=self.cfg.batch_size)
            model.eval()
            with torch.no_grad():
                metrics = run_probes(self._lm, self.tokenizer, self.cfg)
        finally:
            model.train(training)
        metrics["probes/seconds"] = time.perf_counter() - started
        if self._last is not None and step > self._last[0]:  # the training steps since the previous probe
            step_seconds = (started - self._last[1]) / (step - self._last[0])
            metrics["probes/step_fraction"] = metrics["probes/seconds"] / step_seconds if step_seconds > 0 else math.nan
        self._last = (step, time.perf_counter())  # the probes' own time is not a training step's
        row = {"step": float(step), **metrics}
        self.history.append(row)
        if self.run_dir is not None and is_main_process():
            finite = {k: (v if math.isfinite(v) else None) for k, v in row.items()}
            with (self.run_dir / PROBES_FILE).open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(finite) + "\n")
        return metrics
