"""Standard benchmarks through lm-evaluation-harness, used as a library.

lm-eval computes every number: hmx only names its task YAMLs (``hmx/evaluation/tasks``, lm-eval's
own definitions reading the shared data by path), hands it the loaded model through ``HFLM`` and
picks the headline metrics out of lm-eval's results. BBQ's bias scores are lm-eval's own
(``lm_eval.tasks.bbq.utils``: Parrish et al. 2022, S_DIS and S_AMB).

lm-eval's per-document metrics (its logged samples) are kept as per-item records (``<benchmark>.jsonl``:
``doc_id`` and every numeric metric) for ``hmx compare``'s paired tests and intervals. BBQ's records also
hold what its aggregate metrics are built from (``disambiguated``, ``biased``, ``non_unknown``, from
lm-eval's per-document bias tuples) and the template (``category``, ``question_index``), so that its
per-context accuracies and bias scores are rebuilt item by item (:mod:`hmx.evaluation.items`). EmoBench's EU
questions also give ``emobench_eu_both/acc`` (and ``_zh``): the share of scenarios where the emotion and
its cause are both right, the paper's joint EU score, from the two tasks' per-item accuracies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from lm_eval import simple_evaluate
from lm_eval.api.model import LM
from lm_eval.tasks import TaskManager

from hmx.evaluation.suite import BENCHMARK_TASKS, BENCHMARKS, SuiteConfig
from hmx.evaluation.tasks import TASKS_DIR

# suite name → the lm-eval metrics reported as headline numbers (the BENCHMARKS table's rows)
HEADLINE_METRICS = {name: list(benchmark.headline) for name, benchmark in BENCHMARKS.items()}
# joint EmoBench EU score: (emotion task, cause task) → its name; computed when both ran
EU_BOTH = {
    "emobench_eu_both": ("emobench_eu_emotion", "emobench_eu_cause"),
    "emobench_eu_both_zh": ("emobench_eu_emotion_zh", "emobench_eu_cause_zh"),
}
BIAS_SCORES = ("amb_bias_score", "disamb_bias_score")


@dataclass
class Metric:
    value: float
    better: str  # higher | lower | zero (closer to zero is better: the bias scores)
    stderr: float | None = None


@dataclass
class BenchmarkResults:
    metrics: dict[str, Metric] = field(default_factory=dict)  # "<benchmark>/<metric>"
    details: dict[str, dict[str, float]] = field(default_factory=dict)  # every finite lm-eval number per task
    samples: dict[str, int] = field(default_factory=dict)  # documents evaluated per benchmark
    records: dict[str, list[dict]] = field(default_factory=dict)  # per document: doc_id and its numeric metrics


def task_manager(data_dir: str | None) -> TaskManager:
    """lm-eval's task index over hmx's task folder only; ``data_dir`` reaches the dataset loaders as metadata."""
    metadata = {"data_dir": data_dir} if data_dir else None
    return TaskManager(include_path=str(TASKS_DIR), include_defaults=False, metadata=metadata)


def run_benchmarks(lm: LM, suite: SuiteConfig, data_dir: str | None, reseed: bool = True) -> BenchmarkResults:
    """lm-eval's ``simple_evaluate`` on the suite's benchmarks; its numbers, unchanged.

    ``reseed``: lm-eval's default seeding of Python's, NumPy's and torch's global generators (as its
    command line does); off during training, where it would change the run's own random draws.
    """
    if not suite.benchmarks:
        return BenchmarkResults()
    tasks = [BENCHMARK_TASKS[name] for name in suite.benchmarks]
    seeds = {} if reseed else {"random_seed": None, "numpy_random_seed": None, "torch_random_seed": None}
    output = simple_evaluate(
        model=lm,
        tasks=tasks,
        limit=suite.limit,
        task_manager=task_manager(data_dir),
        apply_chat_template=suite.apply_chat_template,
        log_samples=True,  # per-document metrics, for hmx compare's paired tests
        **seeds,
    )
    if output is None:  # only on non-zero ranks under distributed evaluation
        return BenchmarkResults()
    return collect(output, suite.benchmarks)


def collect(output: dict[str, Any], benchmarks: list[str]) -> BenchmarkResults:
    """Headline metrics and details from lm-eval's results dictionary."""
    results = BenchmarkResults()
    for name in benchmarks:
        task = BENCHMARK_TASKS[name]
        numbers = output["results"][task]
        higher = output.get("higher_is_better", {}).get(task, {})
        results.details[name] = {
            key.removesuffix(",none"): float(value)
            for key, value in numbers.items()
            if key.endswith(",none") and _finite(value)
        }
        for metric in HEADLINE_METRICS[name]:
            value = numbers.get(f"{metric},none")
            if not _finite(value):
                continue
            stderr = numbers.get(f"{metric}_stderr,none")
            better = "zero" if metric in BIAS_SCORES else ("higher" if higher.get(metric, True) else "lower")
            results.metrics[f"{name}/{metric}"] = Metric(
                value=float(value), better=better, stderr=float(stderr) if _finite(stderr) else None
            )
        samples = output.get("n-samples", {}).get(task, {})
        results.samples[name] = int(samples.get("effective", samples.get("original", 0)))
        results.records[name] = item_records(output.get("samples", {}).get(task, []))
    for name, (emotion, cause) in EU_BOTH.items():
        if results.records.get(emotion) and results.records.get(cause):
            add_eu_both(results, name, results.records[emotion], results.records[cause])
    return results


def item_records(samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """lm-eval's logged samples reduced to ``doc_id`` and each numeric per-document metric, in document order.

    A BBQ document's bias tuple ``(acc, biased, non_unknown, disambiguated)`` (lm-eval's
    ``disamb_bias_score`` per document) becomes three numeric fields, and its template is kept.
    """
    rows = []
    for sample in sorted(samples, key=lambda s: s["doc_id"]):
        row: dict[str, Any] = {"doc_id": sample["doc_id"]}
        row |= {key: float(sample[key]) for key in sample.get("metrics", []) if _finite(sample.get(key))}
        bias = sample.get("disamb_bias_score")
        if isinstance(bias, (tuple, list)) and len(bias) == 4:
            _, biased, non_unknown, disambiguated = bias
            row |= {"disambiguated": float(bool(disambiguated)), "biased": float(biased)}
            row["non_unknown"] = float(non_unknown)
            doc = sample.get("doc") or {}
            row |= {key: doc[key] for key in ("category", "question_index") if isinstance(doc.get(key), (int, str))}
        rows.append(row)
    return rows


def add_eu_both(results: BenchmarkResults, name: str, emotion: list[dict], cause: list[dict]) -> None:
    """Both EU answers right on the same scenario (documents matched by ``doc_id``: the same rows, same order)."""
    cause_by_doc = {row["doc_id"]: row["acc"] for row in cause}
    rows = [
        {"doc_id": row["doc_id"], "acc": row["acc"] * cause_by_doc[row["doc_id"]]}
        for row in emotion
        if row["doc_id"] in cause_by_doc
    ]
    if not rows:
        return
    value = sum(row["acc"] for row in rows) / len(rows)
    results.metrics[f"{name}/acc"] = Metric(value=value, better="higher")
    results.details[name] = {"acc": value}
    results.samples[name] = len(rows)
    results.records[name] = rows


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
