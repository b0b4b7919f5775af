"""``hmx eval``: the evaluation suite on a base model or a trained run, read top to bottom.

hmx eval run_dir=outputs/runs/<run>               the run's model + adapter; results in <run>/eval/
hmx eval model=qwen3-4b suite=full                a base model, every document (GPU)
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import hydra
from lm_eval.models.huggingface import HFLM
from omegaconf import DictConfig
from tqdm.auto import tqdm
from transformers import set_seed

from hmx.config import ConfigError, JudgeConfig, node_dict, typed_node
from hmx.config_renames import renamed_overrides
from hmx.errors import command_errors
from hmx.evaluation.benchmarks import run_benchmarks
from hmx.evaluation.expression import load_instrument, run_expression
from hmx.evaluation.instrument import describe, instrument_config, reward_judge, shared_with_reward, summary_line
from hmx.evaluation.report import write_report
from hmx.evaluation.suite import suite_config
from hmx.evaluation.sycophancy import DIRECTIONS, run_sycophancy
from hmx.evaluation.target import load_target, resolve_target
from hmx.evaluation.tasks.datasets import data_source
from hmx.judge.modes.external import check_reachable
from hmx.judge.registry import build_judge, scoring_config
from hmx.resources import CONF_DIR, warn_shadowed_configs
from hmx.rubrics.loading import load_checked


def run(cfg: DictConfig) -> Path:
    """Evaluate once; returns the results file."""
    started = time.monotonic()
    # Everything that can be wrong with the input fails here, before any model runs.
    target, suite = resolve_target(cfg), suite_config(cfg)
    data_cfg, judge_cfg = typed_node(cfg, "data"), typed_node(cfg, "judge")
    rubric_cfg = typed_node(cfg, "rubric")
    rubric = load_checked(rubric_cfg.path, rubric_cfg.extra)  # rubric.extra's criteria too; forward, as written
    root, origin = data_source(cfg.data_dir)
    data_dir = str(root) if root else None
    if suite.benchmarks or suite.sycophancy.enabled:
        print(f"hmx eval: benchmark data from {origin}", flush=True)
    set_seed(cfg.seed)
    model, tokenizer = load_target(target)
    if suite.expression.enabled:
        criteria = ", ".join(c.name + " (guard)" * c.guard for c in rubric.criteria)
        print(f"hmx eval: expression scored by {rubric.source} (forward): {criteria}", flush=True)
        # the judge builds (labels single tokens, examples readable) before any benchmark runs
        build_judge(rubric, tokenizer, scoring_config(judge_cfg))
        if judge_cfg.source == "external":
            check_reachable(judge_cfg.external)  # a wrong URL fails here, not as blank scores at the end
    judges = expression_judges(suite, judge_cfg, target, rubric, model, tokenizer)
    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=suite.batch_size)

    metrics: dict[str, dict[str, Any]] = {}
    samples: dict[str, int] = {}
    records: dict[str, list[dict]] = {}
    details: dict[str, Any] = {}
    stages = ["benchmarks"] * bool(suite.benchmarks)
    stages += ["sycophancy"] * suite.sycophancy.enabled + ["expression"] * suite.expression.enabled
    progress = tqdm(stages, desc="hmx eval", unit="stage")
    for stage in progress:
        progress.set_postfix_str(stage)
        if stage == "benchmarks":
            bench = run_benchmarks(lm, suite, data_dir)
            metrics |= {name: asdict(metric) for name, metric in bench.metrics.items()}
            samples |= bench.samples
            records |= bench.records
            details["lm_eval"] = bench.details
        elif stage == "sycophancy":
            syco = run_sycophancy(lm, tokenizer, data_dir, suite.sycophancy.limit, suite.sycophancy.seed)
            metrics |= {f"sycophancy/{k}": _metric(v, DIRECTIONS[k]) for k, v in syco.metrics.items()}
            samples["sycophancy"], records["sycophancy"] = len(syco.records), syco.records
        else:
            expr = run_expression(model, tokenizer, rubric, judge_cfg, data_cfg, suite.expression, target.cache_dir)
            check_endpoint_scored(expr.metrics, judge_cfg)
            metrics |= {f"expression/{k}": _metric(v, "higher") for k, v in expr.metrics.items()}
            samples["expression"], records["expression"] = len(expr.records), expr.records

    results = {
        "label": target.label,
        "model": target.model.name_or_path,
        "adapter": str(target.adapter.adapter_dir) if target.adapter else None,
        "data_dir": data_dir,
        "rubric": rubric.name,
        "rubric_criteria": [c.name for c in rubric.criteria],  # rubric.path's, then rubric.extra's
        "suite": node_dict(suite),  # a judge node as the config has it (judge.probe.head)
        "seed": cfg.seed,
        "seconds": time.monotonic() - started,
        "samples": samples,
        "metrics": metrics,
        "details": details,
        "expression_judges": judges,  # what measured expression/*, and what the instrument shares with the reward
    }
    path = write_report(target.out_dir, results, records)
    print(f"\nhmx: evaluation finished → {path.parent} (results.json, results.md)", flush=True)
    return path


def check_endpoint_scored(metrics: dict[str, float], judge_cfg: JudgeConfig) -> None:
    """An external judge that scored no answer at all (every request failed) fails the eval: no blank scores."""
    endpoint = [value for key, value in metrics.items() if key.startswith("endpoint/")]
    if endpoint and not any(math.isfinite(value) for value in endpoint):
        raise ConfigError(
            f"config field 'judge.external.base_url': the external judge at {judge_cfg.external.base_url} scored "
            "none of the answers (every request failed or did not parse; the warnings above say why: a key, "
            "a model name, a server error); nothing written"
        )


def expression_judges(
    suite: Any, judge_cfg: Any, target: Any, rubric: Any, model: Any, tokenizer: Any
) -> dict[str, Any] | None:
    """The expression judges as results.json records them; the instrument is built and checked now."""
    if not suite.expression.enabled:
        return None
    judges: dict[str, Any] = {"self": describe(judge_cfg)}
    instrument = suite.expression.judge
    if instrument is not None:
        load_instrument(suite.expression, rubric, model, tokenizer, target.cache_dir)  # a bad head fails here
        reward, source = reward_judge(judge_cfg, target.adapter.run_dir if target.adapter else None)
        shares = shared_with_reward(instrument, reward, suite.expression.judge_model, target.model)
        judges["instrument"] = {**describe(instrument_config(instrument)), "shares_with_reward": shares}
        judges["reward"] = {**describe(reward), "from": source}
        print(summary_line(shares, source), flush=True)
    return judges


def _metric(value: float, better: str) -> dict[str, Any]:
    return {"value": value, "better": better, "stderr": None}


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="eval")
def main(cfg: DictConfig) -> None:
    warn_shadowed_configs()  # a user's config named like one of hmx's is never read: say so
    with command_errors("eval"):
        run(cfg)


if __name__ == "__main__":
    sys.argv[1:] = renamed_overrides(sys.argv[1:])  # a deprecated judge key still overrides (one release)
    main()
