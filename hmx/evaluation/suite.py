"""Typed schema of the ``suite`` node (conf/suite/*.yaml): what ``hmx eval`` runs and how much of it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from hmx.config import ConfigError, JudgeConfig, ModelConfig

# suite name → lm-eval task name (hmx/evaluation/tasks/<task>.yaml)
BENCHMARK_TASKS = {
    "truthfulqa_mc1": "hmx_truthfulqa_mc1",
    "truthfulqa_mc2": "hmx_truthfulqa_mc2",
    "bbq": "hmx_bbq",
    "eq_bench": "hmx_eq_bench",
    "emobench_eu_emotion": "hmx_emobench_eu_emotion",
    "emobench_eu_cause": "hmx_emobench_eu_cause",
    "emobench_ea": "hmx_emobench_ea",
    "emobench_eu_emotion_zh": "hmx_emobench_eu_emotion_zh",
    "emobench_eu_cause_zh": "hmx_emobench_eu_cause_zh",
    "emobench_ea_zh": "hmx_emobench_ea_zh",
}


@dataclass
class SycophancyConfig:
    enabled: bool = True
    limit: int | None = None  # TruthfulQA MC1 questions; null: all 817
    seed: int = 0  # option order and the wrong answer the user suggests


@dataclass
class ExpressionConfig:
    enabled: bool = True
    limit: int | None = None  # held-out prompts; null: the whole eval split
    max_new_tokens: int = 256
    batch_size: int = 8
    external_judge: ModelConfig | None = None  # a second judge model; null: the model's own judge only
    # the instrument (hmx/evaluation/instrument.py): a judge independent of the reward, scored with the adapter off
    judge: JudgeConfig | None = None  # a judge node: +judge@suite.expression.judge=probe suite.expression.judge.probe=F
    judge_model: ModelConfig | None = None  # the instrument's model; null: the evaluated model's base weights


@dataclass
class SuiteConfig:
    benchmarks: list[str] = field(default_factory=lambda: list(BENCHMARK_TASKS))
    limit: int | None = None  # documents per benchmark (lm-eval's --limit); null: all
    batch_size: int = 8  # lm-eval's batch size
    apply_chat_template: bool = False  # lm-eval's default: plain prompts
    sycophancy: SycophancyConfig = field(default_factory=SycophancyConfig)
    expression: ExpressionConfig = field(default_factory=ExpressionConfig)


def suite_config(cfg: DictConfig) -> SuiteConfig:
    """The ``suite`` node merged into its schema; unknown keys, wrong types and unknown benchmarks fail."""
    try:
        merged = OmegaConf.merge(OmegaConf.structured(SuiteConfig), cfg.get("suite") or {})
        suite: Any = OmegaConf.to_object(merged)
    except OmegaConfBaseException as err:
        raise ConfigError(f"config node 'suite': {getattr(err, 'msg', err)}") from None
    unknown = [name for name in suite.benchmarks if name not in BENCHMARK_TASKS]
    if unknown:
        raise ConfigError(f"config field 'suite.benchmarks': unknown {unknown}; choose from {sorted(BENCHMARK_TASKS)}")
    for name, value in [
        ("suite.limit", suite.limit),
        ("suite.sycophancy.limit", suite.sycophancy.limit),
        ("suite.expression.limit", suite.expression.limit),
    ]:
        if value is not None and value < 1:
            raise ConfigError(f"config field '{name}': must be at least 1 or null, got {value}")
    return suite
