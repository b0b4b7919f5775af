"""Typed schema of the ``suite`` node (conf/suite/*.yaml): what ``hmx eval`` runs and how much of it."""

from __future__ import annotations

from dataclasses import dataclass, field

from omegaconf import DictConfig

from hmx.config import ConfigError, JudgeConfig, ModelConfig, parse_node


@dataclass(frozen=True)
class Benchmark:
    """One benchmark of ``hmx eval``: its lm-eval task and the metrics reported as headline numbers."""

    task: str  # lm-eval task name: hmx/evaluation/tasks/<task>.yaml
    headline: tuple[str, ...] = ("acc",)  # lm-eval metric names ("<metric>,none" keys of its results)


# The benchmarks, in one table: a new one is its task YAML and one row (suite.benchmarks unset runs them all).
BENCHMARKS: dict[str, Benchmark] = {
    "truthfulqa_mc1": Benchmark("hmx_truthfulqa_mc1"),
    "truthfulqa_mc2": Benchmark("hmx_truthfulqa_mc2"),
    "bbq": Benchmark("hmx_bbq", ("acc", "accuracy_amb", "accuracy_disamb", "amb_bias_score", "disamb_bias_score")),
    "eq_bench": Benchmark("hmx_eq_bench", ("eqbench", "percent_parseable")),
    "emobench_eu_emotion": Benchmark("hmx_emobench_eu_emotion"),
    "emobench_eu_cause": Benchmark("hmx_emobench_eu_cause"),
    "emobench_ea": Benchmark("hmx_emobench_ea"),
    "emobench_eu_emotion_zh": Benchmark("hmx_emobench_eu_emotion_zh"),
    "emobench_eu_cause_zh": Benchmark("hmx_emobench_eu_cause_zh"),
    "emobench_ea_zh": Benchmark("hmx_emobench_ea_zh"),
}
BENCHMARK_TASKS = {name: benchmark.task for name, benchmark in BENCHMARKS.items()}  # suite name → lm-eval task


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
    judge: JudgeConfig | None = (
        None  # a judge node: +judge@suite.expression.judge=probe suite.expression.judge.probe.head=F
    )
    judge_model: ModelConfig | None = None  # the instrument's model; null: the evaluated model's base weights


@dataclass
class SuiteConfig:
    benchmarks: list[str] | None = None  # rows of BENCHMARKS; null (unset): every one; []: none
    limit: int | None = None  # documents per benchmark (lm-eval's --limit); null: all
    batch_size: int = 8  # lm-eval's batch size
    apply_chat_template: bool = False  # lm-eval's default: plain prompts
    sycophancy: SycophancyConfig = field(default_factory=SycophancyConfig)
    expression: ExpressionConfig = field(default_factory=ExpressionConfig)


def suite_config(cfg: DictConfig) -> SuiteConfig:
    """The ``suite`` node merged into its schema; unknown keys, wrong types and unknown benchmarks fail."""
    suite = parse_node(SuiteConfig, cfg.get("suite"), "suite")
    if suite.benchmarks is None:
        suite.benchmarks = list(BENCHMARKS)
    unknown = [name for name in suite.benchmarks if name not in BENCHMARKS]
    if unknown:
        raise ConfigError(f"config field 'suite.benchmarks': unknown {unknown}; choose from {sorted(BENCHMARKS)}")
    for name, value in [
        ("suite.limit", suite.limit),
        ("suite.sycophancy.limit", suite.sycophancy.limit),
        ("suite.expression.limit", suite.expression.limit),
    ]:
        if value is not None and value < 1:
            raise ConfigError(f"config field '{name}': must be at least 1 or null, got {value}")
    return suite
