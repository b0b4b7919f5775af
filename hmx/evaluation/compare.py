"""What ``hmx compare RUN…`` computes: per-metric deltas between evaluated arms, the paper's summary line, plots, W&B.

An arm is one run or several (one per seed: ``--arm forward=runA,runB,runC``, or ``--group-seeds``
to group runs whose training config differs only in seed); the first arm is the baseline (e.g.
``base forward reverse``). An arm's value is the mean over its runs. For every metric both arms
have, the change is measured in the metric's good direction (``higher``; ``lower``; ``zero``: a
smaller magnitude is better) and relative to the baseline's magnitude: ``+3%`` means 3% better,
with a paired bootstrap 95% interval over items and seeds and, for accuracies, McNemar's exact
test (``hmx.evaluation.intervals``). An arm's summary is the share of metrics improved by more
than 2%, within 2%, degraded by more than 2%, and degraded by more than 10% (a subset of the
previous), as in the HMX-feel paper; a change counts as improved or degraded only when its
interval excludes zero (a metric without an interval, e.g. single runs with no per-item data,
is counted by its point change and the line says how many).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hmx.config import ConfigError
from hmx.evaluation.arms import Arm, build_arms
from hmx.evaluation.intervals import Interval, bootstrap, mcnemar
from hmx.evaluation.items import is_binary
from hmx.evaluation.plots import format_relative, plot_deltas
from hmx.evaluation.report import jsonable

WITHIN = 0.02  # |relative change| at most 2%: "within 2%"
SEVERE = 0.10  # degraded by more than 10%


@dataclass
class Delta:
    metric: str
    better: str
    baseline: float
    value: float
    change: float  # value - baseline
    relative: float  # improvement relative to |baseline| (signed: > 0 is better; ±inf from a zero baseline)
    verdict: str  # improved | within | degraded | degraded_severe
    runs: int = 1  # runs (seeds) in the arm
    baseline_runs: int = 1
    relative_low: float | None = None  # 95% bootstrap interval of ``relative``; None: no interval
    relative_high: float | None = None
    items: int = 0  # items the interval resampled (0: seeds only)
    p_value: float | None = None  # McNemar's exact test (accuracies with per-item results)
    discordant: tuple[int, int] | None = None  # (baseline-only right, arm-only right) items


def relative_improvement(baseline: float, value: float, better: str) -> float:
    """How much better ``value`` is than ``baseline``, as a fraction of the baseline's magnitude."""
    gain = {"higher": value - baseline, "lower": baseline - value, "zero": abs(baseline) - abs(value)}[better]
    if gain == 0:
        return 0.0
    scale = abs(baseline)
    return gain / scale if scale > 0 else math.copysign(math.inf, gain)


def verdict(relative: float, interval: Interval | None = None) -> str:
    """The paper's bins; with an interval, a change beyond 2% counts only when the interval excludes zero."""
    significant = interval is None or interval.excludes_zero
    if relative > WITHIN and significant:
        return "improved"
    if relative >= -WITHIN or not significant:
        return "within"
    return "degraded_severe" if relative < -SEVERE else "degraded"


def arm_value(arm: Arm, name: str) -> list[float]:
    """The metric's finite values over the arm's runs."""
    values = [run["metrics"].get(name, {}).get("value") for run in arm.runs]
    return [float(v) for v in values if v is not None and math.isfinite(v)]


def deltas(baseline: Arm, arm: Arm, replicates: int = 2000, seed: int = 0) -> list[Delta]:
    """One delta per metric with a finite value in both arms (baseline's direction), in baseline order."""
    rows = []
    for name, base_metric in baseline.runs[0]["metrics"].items():
        old_values, new_values = arm_value(baseline, name), arm_value(arm, name)
        if not old_values or not new_values:
            continue
        better = base_metric["better"]
        old, new = sum(old_values) / len(old_values), sum(new_values) / len(new_values)
        relative = relative_improvement(old, new, better)
        base_items = [items[name] for items in baseline.items if name in items]
        arm_items = [items[name] for items in arm.items if name in items]
        per_item = len(base_items) == len(baseline.runs) and len(arm_items) == len(arm.runs)
        rng = np.random.default_rng([seed, *name.encode()])  # the same draws whatever the order of metrics
        interval = bootstrap(
            old_values, new_values, better, base_items if per_item else None, arm_items if per_item else None,
            replicates, rng,
        )  # fmt: skip
        row = Delta(name, better, old, new, new - old, relative, verdict(relative, interval))
        row.runs, row.baseline_runs = len(arm.runs), len(baseline.runs)
        if interval is not None and old != 0:
            row.relative_low, row.relative_high = interval.low / abs(old), interval.high / abs(old)
            row.items = interval.items
        elif interval is not None:  # a zero baseline: only the bounds' signs are relative changes
            bounds = (0.0 if v == 0 else math.copysign(math.inf, v) for v in (interval.low, interval.high))
            row.relative_low, row.relative_high = bounds
        if per_item and is_binary(base_items + arm_items):
            test = mcnemar(base_items, arm_items)
            if test is not None:
                row.discordant, row.p_value = (test[0], test[1]), test[2]
        rows.append(row)
    return rows


def summary(rows: list[Delta]) -> dict[str, float]:
    """Shares of metrics improved (>2%), within 2%, degraded (>2%) and degraded by more than 10%."""
    n = len(rows)
    count = {v: sum(r.verdict == v for r in rows) for v in ("improved", "within", "degraded", "degraded_severe")}
    share = (lambda k: k / n) if n else (lambda k: math.nan)
    shares = {
        "metrics": n,
        "improved": share(count["improved"]),
        "within_2pct": share(count["within"]),
        "degraded_2pct": share(count["degraded"] + count["degraded_severe"]),
        "degraded_10pct": share(count["degraded_severe"]),
    }
    with_interval = sum(r.relative_low is not None for r in rows)
    if with_interval:  # absent for single runs without per-item results: the line reads as before
        shares |= {"with_interval": with_interval, "runs": max(r.runs for r in rows)}
        shares["baseline_runs"] = max(r.baseline_runs for r in rows)
    return shares


def summary_line(label: str, baseline_label: str, shares: dict[str, float]) -> str:
    counts = ("metrics", "with_interval", "runs", "baseline_runs")
    pct = {k: f"{100 * v:.0f}%" if math.isfinite(v) else "n/a" for k, v in shares.items() if k not in counts}
    within = "within 2%" if "with_interval" not in shares else "within 2% or not significant"
    line = (
        f"{label} vs {baseline_label}: {pct['improved']} of {shares['metrics']:.0f} metrics improved, "
        f"{pct['within_2pct']} {within}, {pct['degraded_2pct']} degraded by more than 2% "
        f"({pct['degraded_10pct']} by more than 10%)"
    )
    if "with_interval" in shares:
        missing = shares["metrics"] - shares["with_interval"]
        line += (
            f"; {shares['runs']:.0f} run(s) vs {shares['baseline_runs']:.0f}, a change counts only where its 95% "
            f"interval (bootstrap over items and seeds) excludes zero; {missing:.0f} metric(s) without an interval"
        )
    return line


def _fmt(value: float) -> str:
    return f"{value:.4f}"


def _interval_cell(row: Delta) -> str:
    if row.relative_low is None or row.relative_high is None:
        return "n/a"
    return f"[{format_relative(row.relative_low)}, {format_relative(row.relative_high)}]"


def _p_cell(row: Delta) -> str:
    return "n/a" if row.p_value is None else f"{row.p_value:.3g}"


def markdown(labels: list[str], arms: list[Arm], table: dict[str, list[Delta]], lines: list[str]) -> str:
    """Per-metric table (values, deltas, relative improvement, its interval and p) and the summary lines."""
    uncertain = any(r.relative_low is not None or r.p_value is not None for rows in table.values() for r in rows)
    per_arm = ("Δ", "rel.", "95% CI", "p") if uncertain else ("Δ", "rel.")
    head = ["metric", "better", labels[0]] + [h for label in labels[1:] for h in (label, *per_arm)]
    out = [f"# hmx compare: {', '.join(labels)}", "", *[f"- {line}" for line in lines], ""]
    out += ["| " + " | ".join(head) + " |", "|" + "---|" * 2 + "---:|" * (len(head) - 2)]
    for name, base_metric in arms[0].runs[0]["metrics"].items():
        base_values = arm_value(arms[0], name)
        base_cell = _fmt(sum(base_values) / len(base_values)) if base_values else "n/a"
        cells = [name, base_metric["better"], base_cell]
        for label in labels[1:]:
            row = next((r for r in table[label] if r.metric == name), None)
            if row is None:
                cells += ["n/a"] * (1 + len(per_arm))
                continue
            cells += [_fmt(row.value), f"{row.change:+.4f}", format_relative(row.relative)]
            cells += [_interval_cell(row), _p_cell(row)] if uncertain else []
        out.append("| " + " | ".join(cells) + " |")
    out += ["", "Relative change is measured in each metric's good direction: + is better. "]
    if uncertain:
        runs = ", ".join(f"{arm.label} {len(arm.runs)}" for arm in arms)
        out += [
            f"Values are means over each arm's runs ({runs}). 95% CI: paired bootstrap of the relative change over "
            "items and seeds (seeds only where a metric has no per-item results). p: McNemar's exact test on the "
            "items' majority outcome (accuracies only)."
        ]
    return "\n".join(out) + "\n"


def log_wandb(mode: str, project: str, out_dir: Path, labels: list[str], payload: dict[str, Any], png: Path | None):
    """The table, the summary and the plot as one W&B run (``offline`` without a key; ``off``: nothing)."""
    if mode == "off":
        return None
    import wandb

    if mode == "auto":
        mode = "online" if os.environ.get("WANDB_API_KEY") else "offline"
    run = wandb.init(
        project=project,
        name="compare-" + "-".join(labels),
        job_type="compare",
        mode=mode,  # type: ignore[arg-type]
        dir=str(out_dir),
        config={"runs": payload["runs"]},
    )
    columns: list[str | int] = ["metric", "better", "run", "baseline", "value", "change", "relative"]
    columns += ["relative_low", "relative_high", "p_value", "runs"]
    keys = ["baseline", "value", "change", "relative", "relative_low", "relative_high", "p_value", "runs"]
    rows = [
        [d["metric"], d["better"], label, *[d[key] for key in keys]]
        for label, items in payload["deltas"].items()
        for d in items
    ]
    logged: dict[str, Any] = {"comparison": wandb.Table(columns=columns, data=jsonable(rows))}
    if png is not None:
        logged["deltas"] = wandb.Image(str(png))
    run.log(logged)
    for label, shares in payload["summary"].items():
        run.summary.update({f"{label}/{key}": value for key, value in shares.items()})
    run.finish()
    return run


def compare(
    paths: list[str],
    labels: list[str] | None,
    out_dir: Path,
    wandb_mode: str,
    project: str,
    arms: list[str] | None = None,
    group_seeds: bool = False,
    replicates: int = 2000,
    seed: int = 0,
) -> Path:
    """Read the arms' results, write comparison.{md,json} and deltas.png into ``out_dir``; returns the md file."""
    groups = build_arms(paths, arms or [], labels, group_seeds)
    if len(groups) < 2:
        raise ConfigError("hmx compare: give at least two runs or arms (the first is the baseline)")
    if replicates < 100:
        raise ConfigError(f"--bootstrap: at least 100 replicates for a 95% interval, got {replicates}")
    names = [arm.label for arm in groups]
    table = {arm.label: deltas(groups[0], arm, replicates, seed) for arm in groups[1:]}
    shares = {label: summary(rows) for label, rows in table.items()}
    lines = [summary_line(label, names[0], shares[label]) for label in names[1:]]
    payload = {
        "baseline": names[0],
        "runs": {arm.label: [run["path"] for run in arm.runs] for arm in groups},
        "bootstrap": {"replicates": replicates, "seed": seed},
        "summary": shares,
        "deltas": {label: [asdict(row) for row in rows] for label, rows in table.items()},
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    png = plot_deltas(table, names[0], out_dir / "deltas.png")
    (out_dir / "comparison.json").write_text(json.dumps(jsonable(payload), indent=2) + "\n", encoding="utf-8")
    md = out_dir / "comparison.md"
    md.write_text(markdown(names, groups, table, lines), encoding="utf-8")
    log_wandb(wandb_mode, project, out_dir, names, payload, png)
    print("\n".join(lines + [f"hmx: comparison → {out_dir} (comparison.md, comparison.json, deltas.png)"]))
    return md
