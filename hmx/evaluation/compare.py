"""``hmx compare RUN…``: per-metric deltas between evaluated runs, the paper's summary line, plots, W&B.

The first RUN is the baseline (e.g. ``base forward reverse``). For every metric both runs have,
the change is measured in the metric's good direction (``higher``; ``lower``; ``zero``: a smaller
magnitude is better) and relative to the baseline's magnitude: ``+3%`` means 3% better. A run's
summary is the share of metrics improved by more than 2%, within 2%, degraded by more than 2%,
and degraded by more than 10% (a subset of the previous), as in the HMX-feel paper.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hmx.config import ConfigError
from hmx.errors import command_errors
from hmx.evaluation.plots import format_relative, plot_deltas
from hmx.evaluation.report import jsonable, load_results

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


def relative_improvement(baseline: float, value: float, better: str) -> float:
    """How much better ``value`` is than ``baseline``, as a fraction of the baseline's magnitude."""
    gain = {"higher": value - baseline, "lower": baseline - value, "zero": abs(baseline) - abs(value)}[better]
    if gain == 0:
        return 0.0
    scale = abs(baseline)
    return gain / scale if scale > 0 else math.copysign(math.inf, gain)


def verdict(relative: float) -> str:
    if relative > WITHIN:
        return "improved"
    if relative >= -WITHIN:
        return "within"
    return "degraded_severe" if relative < -SEVERE else "degraded"


def deltas(baseline: dict[str, Any], run: dict[str, Any]) -> list[Delta]:
    """One delta per metric with a finite value in both results (baseline's direction), in baseline order."""
    rows = []
    for name, base_metric in baseline["metrics"].items():
        metric = run["metrics"].get(name)
        if metric is None or base_metric["value"] is None or metric["value"] is None:
            continue
        old, new = float(base_metric["value"]), float(metric["value"])
        relative = relative_improvement(old, new, base_metric["better"])
        rows.append(Delta(name, base_metric["better"], old, new, new - old, relative, verdict(relative)))
    return rows


def summary(rows: list[Delta]) -> dict[str, float]:
    """Shares of metrics improved (>2%), within 2%, degraded (>2%) and degraded by more than 10%."""
    n = len(rows)
    count = {v: sum(r.verdict == v for r in rows) for v in ("improved", "within", "degraded", "degraded_severe")}
    share = (lambda k: k / n) if n else (lambda k: math.nan)
    return {
        "metrics": n,
        "improved": share(count["improved"]),
        "within_2pct": share(count["within"]),
        "degraded_2pct": share(count["degraded"] + count["degraded_severe"]),
        "degraded_10pct": share(count["degraded_severe"]),
    }


def summary_line(label: str, baseline_label: str, shares: dict[str, float]) -> str:
    pct = {k: f"{100 * v:.0f}%" if math.isfinite(v) else "n/a" for k, v in shares.items() if k != "metrics"}
    return (
        f"{label} vs {baseline_label}: {pct['improved']} of {shares['metrics']:.0f} metrics improved, "
        f"{pct['within_2pct']} within 2%, {pct['degraded_2pct']} degraded by more than 2% "
        f"({pct['degraded_10pct']} by more than 10%)"
    )


def _fmt(value: float) -> str:
    return f"{value:.4f}"


def markdown(labels: list[str], runs: list[dict[str, Any]], table: dict[str, list[Delta]], lines: list[str]) -> str:
    """Per-metric table (values, deltas, relative improvement) and the summary lines."""
    head = ["metric", "better", labels[0]] + [h for label in labels[1:] for h in (label, "Δ", "rel.")]
    out = [f"# hmx compare: {', '.join(labels)}", "", *[f"- {line}" for line in lines], ""]
    out += ["| " + " | ".join(head) + " |", "|" + "---|" * 2 + "---:|" * (len(head) - 2)]
    for name, base_metric in runs[0]["metrics"].items():
        cells = [name, base_metric["better"], "n/a" if base_metric["value"] is None else _fmt(base_metric["value"])]
        for label in labels[1:]:
            row = next((r for r in table[label] if r.metric == name), None)
            cells += [_fmt(row.value), f"{row.change:+.4f}", format_relative(row.relative)] if row else ["n/a"] * 3
        out.append("| " + " | ".join(cells) + " |")
    out += ["", "Relative change is measured in each metric's good direction: + is better. "]
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
    rows = [
        [d["metric"], d["better"], label, d["baseline"], d["value"], d["change"], d["relative"]]
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


def compare(paths: list[str], labels: list[str] | None, out_dir: Path, wandb_mode: str, project: str) -> Path:
    """Read the runs' results, write comparison.{md,json} and deltas.png into ``out_dir``; returns the md file."""
    if len(paths) < 2:
        raise ConfigError("hmx compare: give at least two runs (the first is the baseline)")
    runs = [load_results(path) for path in paths]
    labels = labels or [run["label"] for run in runs]
    if len(labels) != len(runs):
        raise ConfigError(f"--labels: {len(labels)} labels for {len(runs)} runs")
    if len(set(labels)) != len(labels):
        raise ConfigError(f"run labels must differ, got {labels}; pass --labels base,forward,reverse")
    table = {label: deltas(runs[0], run) for label, run in zip(labels[1:], runs[1:], strict=True)}
    shares = {label: summary(rows) for label, rows in table.items()}
    lines = [summary_line(label, labels[0], shares[label]) for label in labels[1:]]
    payload = {
        "baseline": labels[0],
        "runs": {label: run["path"] for label, run in zip(labels, runs, strict=True)},
        "summary": shares,
        "deltas": {label: [asdict(row) for row in rows] for label, rows in table.items()},
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    png = plot_deltas(table, labels[0], out_dir / "deltas.png")
    (out_dir / "comparison.json").write_text(json.dumps(jsonable(payload), indent=2) + "\n", encoding="utf-8")
    md = out_dir / "comparison.md"
    md.write_text(markdown(labels, runs, table, lines), encoding="utf-8")
    log_wandb(wandb_mode, project, out_dir, labels, payload, png)
    print("\n".join(lines + [f"hmx: comparison → {out_dir} (comparison.md, comparison.json, deltas.png)"]))
    return md


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="hmx compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", metavar="RUN", help="run directories, eval folders or results.json")
    parser.add_argument("--labels", help="comma-separated names for the runs (default: their directory names)")
    parser.add_argument("--out", help="output folder (default: outputs/compare/<timestamp>)")
    parser.add_argument("--wandb", default="auto", choices=["auto", "online", "offline", "off"], help="W&B mode")
    parser.add_argument("--project", default="hmx", help="W&B project")
    args = parser.parse_args(argv)
    out_dir = Path(args.out or Path("outputs/compare") / time.strftime("%Y-%m-%d_%H-%M-%S")).expanduser()
    labels = args.labels.split(",") if args.labels else None
    with command_errors("compare"):
        compare(args.runs, labels, out_dir.resolve(), args.wandb, args.project)
