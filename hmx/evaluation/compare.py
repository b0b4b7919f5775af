"""What ``hmx compare RUN…`` computes: per-metric deltas between evaluated arms, the paper's summary line, plots, W&B.

An arm is one run or several (one per seed: ``--arm forward=runA,runB,runC``, or ``--group-seeds``
to group runs whose training config differs only in seed); the first arm is the baseline (e.g.
``base forward reverse``). An arm's value is the mean over its runs. For every metric both arms
have, the change is measured in the metric's good direction (``higher``; ``lower``; ``zero``: a
smaller magnitude is better) and relative to the baseline's magnitude: ``+3%`` means 3% better,
with a 95% interval and a test of no change over seeds, or over item clusters between single
runs (:mod:`hmx.evaluation.intervals`). ``--primary METRIC`` is tested alone; the other metrics'
p-values are adjusted together (Holm, or Benjamini-Hochberg with ``--adjust bh``). An arm's
summary is the share of metrics improved by more than 2%, within 2%, degraded by more than 2%,
and degraded by more than 10% (a subset of the previous), as in the HMX-feel paper; a change
counts as improved or degraded only when its adjusted p < 0.05 (a metric without a test, e.g.
single runs with no per-item data, is counted by its point change and the line says how many).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hmx.config import ConfigError
from hmx.evaluation.arms import Arm, build_arms
from hmx.evaluation.intervals import Interval, change_interval, shared_keys
from hmx.evaluation.items import Items, is_binary
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
    relative_low: float | None = None  # 95% interval of ``relative``; None: no interval
    relative_high: float | None = None
    items: int = 0  # items shared by every run of both arms (0: no per-item rows)
    p_value: float | None = None  # the raw two-sided test of no change (``method``)
    discordant: tuple[int, int] | None = None  # single runs, 0/1 items: (baseline-only right, arm-only right)
    change_low: float | None = None  # 95% interval of ``change`` (metric units)
    change_high: float | None = None
    clusters: int = 0  # item clusters (BBQ templates, questions, prompts) the item-level interval resamples
    method: str | None = None  # hmx.evaluation.intervals: paired-t-seeds, welch-t-seeds, t-clusters-conditional…
    conditional: str | None = None  # what the interval holds fixed, where it cannot vary it (one run)
    df: float | None = None  # the t distribution's degrees of freedom
    effect_size: float | None = None  # standardised effect: mean change / its sd (over seeds, or clusters)
    p_signflip: float | None = None  # exact sign-flip test on the seed changes (2 seeds: p ≥ 0.5, 3: p ≥ 0.25)
    p_adjusted: float | None = None  # ``p_value`` adjusted for the arm's secondary metrics (``adjustment``)
    adjustment: str | None = None  # holm | bh | none (the --primary metric, tested alone)
    primary: bool = False
    seed_sd: float | None = None  # sd of the per-seed changes (for --power)
    item_se: float | None = None  # item-level standard error of one seed's change (for --power)


ALPHA = 0.05
ADJUST = {"holm": "holm", "bh": "fdr_bh"}  # --adjust → statsmodels' multipletests method
ADJUST_NAMES = {"holm": "Holm", "bh": "Benjamini-Hochberg"}
CONDITIONAL = {
    "paired-t-seeds-conditional": "conditional on the arm's one run (its seed variance not estimated)",
    "t-clusters-conditional": "conditional on these two runs: items only (a second seed may differ by more)",
}


def relative_improvement(baseline: float, value: float, better: str) -> float:
    """How much better ``value`` is than ``baseline``, as a fraction of the baseline's magnitude."""
    gain = {"higher": value - baseline, "lower": baseline - value, "zero": abs(baseline) - abs(value)}[better]
    if gain == 0:
        return 0.0
    scale = abs(baseline)
    return gain / scale if scale > 0 else math.copysign(math.inf, gain)


def relative_bounds(baseline: float, low: float, high: float, better: str) -> tuple[float, float]:
    """The interval of the relative improvement from the change's interval [low, high] (baseline held fixed).

    For ``zero`` (a smaller magnitude is better) it is the image of the value's interval under
    ``(|b| − |v|) / |b|``: its best end is a value at zero when the interval crosses it.
    """
    ends = [relative_improvement(baseline, baseline + c, better) for c in (low, high)]
    if better == "zero" and baseline + low <= 0 <= baseline + high:
        ends.append(relative_improvement(baseline, 0.0, better))
    return min(ends), max(ends)


def verdict(relative: float, significant: bool | None = None) -> str:
    """The paper's bins; with a test (``significant`` not None) a change beyond 2% counts only if significant."""
    counts = significant is None or significant
    if relative > WITHIN and counts:
        return "improved"
    if relative >= -WITHIN or not counts:
        return "within"
    return "degraded_severe" if relative < -SEVERE else "degraded"


def arm_value(arm: Arm, name: str) -> list[float]:
    """The metric's finite values over the arm's runs."""
    values = [run["metrics"].get(name, {}).get("value") for run in arm.runs]
    return [float(v) for v in values if v is not None and math.isfinite(v)]


def discordant(base: Items, arm: Items) -> tuple[int, int]:
    """Items only the baseline gets right, and only the arm (single runs, 0/1 outcomes)."""
    keys = shared_keys([base], [arm])
    b = sum(base.rows[k][0] == 1 and arm.rows[k][0] == 0 for k in keys)
    c = sum(base.rows[k][0] == 0 and arm.rows[k][0] == 1 for k in keys)
    return b, c


def _measure(row: Delta, interval: Interval, old: float) -> None:
    row.change_low, row.change_high = interval.low, interval.high
    row.relative_low, row.relative_high = relative_bounds(old, interval.low, interval.high, row.better)
    row.p_value, row.method, row.df = interval.p_value, interval.method, interval.df
    row.items, row.clusters, row.p_signflip = interval.items, interval.clusters, interval.p_signflip
    row.effect_size = interval.effect_size if math.isfinite(interval.effect_size) else None
    row.conditional = CONDITIONAL.get(interval.method)
    row.seed_sd, row.item_se = interval.seed_sd, interval.item_se


def deltas(baseline: Arm, arm: Arm) -> list[Delta]:
    """One delta per metric with a finite value in both arms (baseline's direction), in baseline order.

    Values are each arm's mean over its runs on the items they share (results.json's values
    where a metric has no per-item rows); verdicts wait for :func:`adjust`.
    """
    rows = []
    for name, base_metric in baseline.runs[0]["metrics"].items():
        old_values, new_values = arm_value(baseline, name), arm_value(arm, name)
        if not old_values or not new_values:
            continue
        better = base_metric["better"]
        base_items = [items[name] for items in baseline.items if name in items]
        arm_items = [items[name] for items in arm.items if name in items]
        per_item = len(base_items) == len(baseline.runs) and len(arm_items) == len(arm.runs)
        if not per_item or len({t.formula for t in base_items + arm_items}) != 1:
            base_items, arm_items = [], []
        old, new, interval = change_interval(old_values, new_values, base_items or None, arm_items or None)
        relative = relative_improvement(old, new, better)
        row = Delta(name, better, old, new, new - old, relative, verdict(relative))
        row.runs, row.baseline_runs = len(arm.runs), len(baseline.runs)
        if interval is not None:
            _measure(row, interval, old)
        if len(base_items) == len(arm_items) == 1 and is_binary(base_items + arm_items):
            row.discordant = discordant(base_items[0], arm_items[0])
        rows.append(row)
    return rows


def adjust(rows: list[Delta], primary: str | None, method: str) -> None:
    """Adjusted p-values and verdicts: the primary metric tested alone, the others by Holm or BH together."""
    from statsmodels.stats.multitest import multipletests

    secondary = [r for r in rows if r.p_value is not None and r.metric != primary]
    if secondary:
        adjusted = multipletests([r.p_value for r in secondary], alpha=ALPHA, method=ADJUST[method])[1]
        for row, p in zip(secondary, adjusted, strict=True):
            row.p_adjusted, row.adjustment = float(p), method
    for row in rows:
        if row.metric == primary:
            row.primary = True
            if row.p_value is not None:
                row.p_adjusted, row.adjustment = row.p_value, "none"
        significant = None if row.p_adjusted is None else row.p_adjusted < ALPHA
        row.verdict = verdict(row.relative, significant)


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
    with_interval = sum(r.p_adjusted is not None for r in rows)
    if with_interval:  # absent for single runs without per-item results: the line reads as before
        shares |= {"with_interval": with_interval, "runs": max(r.runs for r in rows)}
        shares["baseline_runs"] = max(r.baseline_runs for r in rows)
    return shares


def summary_line(
    label: str, baseline_label: str, shares: dict[str, float], rows: list[Delta] | None = None, method: str = "holm"
) -> str:
    """The paper's line; with tests, how a change was counted (the test, its adjustment, what is held fixed)."""
    rows = rows or []
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
        tests = sorted({r.method for r in rows if r.method})
        primary = next((r.metric for r in rows if r.primary and r.p_value is not None), None)
        adjusted = f"{ADJUST_NAMES[method]}-adjusted" + (f", primary {primary} alone" if primary else "")
        line += (
            f"; {shares['runs']:.0f} run(s) vs {shares['baseline_runs']:.0f}, a change counts only where its "
            f"test ({', '.join(tests) or 'n/a'}; {adjusted}) gives p < {ALPHA}; "
            f"{missing:.0f} metric(s) without a test"
        )
        if any(r.conditional for r in rows):
            line += "; single-run intervals are conditional on that run"
    return line


def _fmt(value: float) -> str:
    return f"{value:.4f}"


def _interval_cell(row: Delta) -> str:
    if row.relative_low is None or row.relative_high is None:
        return "n/a"
    return f"[{format_relative(row.relative_low)}, {format_relative(row.relative_high)}]"


def _p_cell(row: Delta) -> str:
    return "n/a" if row.p_value is None else f"{row.p_value:.3g}"


def _detail_rows(labels: list[str], table: dict[str, list[Delta]]) -> list[str]:
    """Per arm and metric: the test, what it holds fixed, n seeds, n items/clusters, raw and adjusted p, effect size."""
    out = [
        "| arm | metric | test | seeds (arm/base) | items | clusters | p | p adj. | adjustment | effect size | note |",
        "|---|---|---|---:|---:|---:|---:|---:|---|---:|---|",
    ]
    for label in labels[1:]:
        for row in table[label]:
            if row.method is None:
                continue
            effect = "n/a" if row.effect_size is None else f"{row.effect_size:+.2f}"
            adjusted = "n/a" if row.p_adjusted is None else f"{row.p_adjusted:.3g}"
            cells = [label, row.metric, f"{row.method} (df {row.df:.3g})", f"{row.runs}/{row.baseline_runs}"]
            cells += [str(row.items or "n/a"), str(row.clusters or "n/a"), _p_cell(row), adjusted]
            cells += [row.adjustment or "n/a", effect, ("primary; " if row.primary else "") + (row.conditional or "")]
            out.append("| " + " | ".join(cells) + " |")
    return out


def markdown(
    labels: list[str], arms: list[Arm], table: dict[str, list[Delta]], lines: list[str], method: str = "holm"
) -> str:
    """Per-metric table (values, deltas, relative improvement, its interval, raw and adjusted p), details, summary."""
    uncertain = any(r.relative_low is not None or r.p_value is not None for rows in table.values() for r in rows)
    per_arm = ("Δ", "rel.", "95% CI", "p", "p adj.") if uncertain else ("Δ", "rel.")
    head = ["metric", "better", labels[0]] + [h for label in labels[1:] for h in (label, *per_arm)]
    out = [f"# hmx compare: {', '.join(labels)}", "", *[f"- {line}" for line in lines], ""]
    out += ["| " + " | ".join(head) + " |", "|" + "---|" * 2 + "---:|" * (len(head) - 2)]
    for name, base_metric in arms[0].runs[0]["metrics"].items():
        base_values = arm_value(arms[0], name)
        rows = [r for label in labels[1:] for r in table[label] if r.metric == name]
        base = rows[0].baseline if rows else (sum(base_values) / len(base_values) if base_values else None)
        cells = [name, base_metric["better"], "n/a" if base is None else _fmt(base)]
        for label in labels[1:]:
            row = next((r for r in table[label] if r.metric == name), None)
            if row is None:
                cells += ["n/a"] * (1 + len(per_arm))
                continue
            cells += [_fmt(row.value), f"{row.change:+.4f}", format_relative(row.relative)]
            adjusted = "n/a" if row.p_adjusted is None else f"{row.p_adjusted:.3g}"
            cells += [_interval_cell(row), _p_cell(row), adjusted] if uncertain else []
        out.append("| " + " | ".join(cells) + " |")
    out += ["", "Relative change is measured in each metric's good direction: + is better. "]
    if uncertain:
        runs = ", ".join(f"{arm.label} {len(arm.runs)}" for arm in arms)
        out += [
            f"Values are means over each arm's runs ({runs}), recomputed on the items every run shares. 95% CI and "
            "p: a t-interval and t-test over seeds on the per-seed changes (paired with one baseline run: the "
            "baseline held fixed; Welch with several), or, between two single runs, over item clusters (delta "
            "method), conditional on those runs (hmx/evaluation/intervals.py). p adj.: the primary metric alone, "
            f"the others {ADJUST_NAMES[method]}-adjusted together; a change counts only where p adj. < {ALPHA}.",
            "",
            *_detail_rows(labels, table),
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
    columns += ["relative_low", "relative_high", "p_value", "p_adjusted", "method", "runs"]
    keys = ["baseline", "value", "change", "relative", "relative_low", "relative_high", "p_value", "p_adjusted"]
    keys += ["method", "runs"]
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


def check_out_dir(out_dir: Path) -> None:
    """``--out`` must be a folder or not exist yet, under a folder hmx can write (checked before any work)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"--out {out_dir}: exists and is not a folder")
    parent = out_dir
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError(f"--out {out_dir}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"--out {out_dir}: cannot write in {parent}")


def compare(
    paths: list[str],
    labels: list[str] | None,
    out_dir: Path,
    wandb_mode: str,
    project: str,
    arms: list[str] | None = None,
    group_seeds: bool = False,
    primary: str | None = None,
    method: str = "holm",
) -> Path:
    """Read the arms' results, write comparison.{md,json} (and deltas.png) into ``out_dir``; returns the md file."""
    check_out_dir(out_dir)
    if method not in ADJUST:
        raise ConfigError(f"--adjust: one of {sorted(ADJUST)}, got {method!r}")
    groups = build_arms(paths, arms or [], labels, group_seeds)
    if len(groups) < 2:
        raise ConfigError("hmx compare: give at least two runs or arms (the first is the baseline)")
    if primary is not None and not any(primary in run["metrics"] for run in groups[0].runs):
        known = ", ".join(groups[0].runs[0]["metrics"])
        raise ConfigError(f"--primary {primary}: not a metric of the baseline ({known})")
    names = [arm.label for arm in groups]
    table = {arm.label: deltas(groups[0], arm) for arm in groups[1:]}
    for rows in table.values():
        adjust(rows, primary, method)
    shares = {label: summary(rows) for label, rows in table.items()}
    lines = [summary_line(label, names[0], shares[label], table[label], method) for label in names[1:]]
    payload = {
        "baseline": names[0],
        "runs": {arm.label: [run["path"] for run in arm.runs] for arm in groups},
        "tests": {"alpha": ALPHA, "primary": primary, "adjustment": method, "level": 0.95},
        "summary": shares,
        "deltas": {label: [asdict(row) for row in rows] for label, rows in table.items()},
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    png = plot_deltas(table, names[0], out_dir / "deltas.png")
    (out_dir / "comparison.json").write_text(json.dumps(jsonable(payload), indent=2) + "\n", encoding="utf-8")
    md = out_dir / "comparison.md"
    md.write_text(markdown(names, groups, table, lines, method), encoding="utf-8")
    log_wandb(wandb_mode, project, out_dir, names, payload, png)
    written = ", ".join(["comparison.md", "comparison.json"] + (["deltas.png"] if png else []))
    print("\n".join(lines + [f"hmx: comparison → {out_dir} ({written})"]))
    return md
