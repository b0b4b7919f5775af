"""``hmx compare --power REL``: how many seeds and items a study needs, from a pilot comparison.

The pilot's per-seed changes (an arm of K ≥ 2 seeds against one baseline run) give their
variance ``sd²``; each seed's item-level standard error ``se`` (delta method over item clusters,
:mod:`hmx.evaluation.intervals`) gives the part of it that more items would shrink. So the seed
variance is ``σ²_seed = max(0, sd² − se²)`` and a study with ``K`` seeds and ``C`` clusters
(``C₀`` in the pilot) has per-seed changes of variance ``σ²_seed + se² · C₀ / C``. Its power to
detect a relative change ``REL`` (``|baseline| · REL`` in the metric's units) is that of the paired
t-test over seeds at α = 0.05, two-sided (statsmodels' ``TTestPower``). A pilot of one run per arm
has no seed variance: it gives the item clusters needed *conditional on a run* only, and says so.
Secondary metrics adjusted for multiplicity (Holm) need more than the α = 0.05 shown.

Pilot variances are noisy (with 3 seeds, ``sd`` is within a factor of about 2): read the
numbers as the order of magnitude of a design, not a guarantee.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from scipy import stats
from statsmodels.stats.power import TTestPower

from hmx.config import ConfigError
from hmx.evaluation.arms import build_arms
from hmx.evaluation.compare import ALPHA, Delta, check_out_dir, deltas
from hmx.evaluation.report import jsonable

TARGET = 0.8
SEEDS = (2, 3, 5, 10, 20)
SCALES = (1, 2, 4)  # items (clusters) as multiples of the pilot's
MAX_SEEDS = 100


@dataclass
class Power:
    arm: str
    metric: str
    primary: bool
    baseline: float
    detect: float  # the change to detect, in the metric's units (|baseline| · REL)
    pilot_seeds: int
    pilot_clusters: int
    seed_sd: float | None  # σ_seed estimated from the pilot (None: one run per arm)
    item_se: float | None  # a seed's item-level standard error at the pilot's clusters
    power: dict[str, float]  # "K seeds × s·items" → power
    seeds_needed: dict[str, int | None]  # "s·items" → smallest K with 80% power (None: more than MAX_SEEDS)
    clusters_needed: int | None = None  # one run per arm: item clusters for 80% power, conditional on the run
    note: str = ""


def _power(effect: float, nobs: int) -> float:
    if nobs < 2 or not math.isfinite(effect):
        return math.nan
    return float(TTestPower().power(effect_size=effect, nobs=nobs, alpha=ALPHA, alternative="two-sided"))


def plan(arm: str, row: Delta, relative: float) -> Power | None:
    """The power of designs around the pilot's for one metric; None where the pilot has no variance to go on."""
    detect = abs(row.baseline) * relative
    clusters = row.clusters or row.items
    out = Power(arm, row.metric, row.primary, row.baseline, detect, row.runs, clusters, None, row.item_se, {}, {})
    if row.method == "paired-t-seeds" and row.seed_sd is not None:
        item_var = (row.item_se or 0.0) ** 2
        seed_var = max(0.0, row.seed_sd**2 - item_var)
        out.seed_sd = math.sqrt(seed_var)
        for scale in SCALES if row.item_se is not None else (1,):
            sd = math.sqrt(seed_var + item_var / scale)
            effect = detect / sd if sd > 0 else math.inf
            for k in SEEDS:
                out.power[f"{k} seeds x {scale} items"] = _power(effect, k)
            needed = next((k for k in range(2, MAX_SEEDS + 1) if _power(effect, k) >= TARGET), None)
            out.seeds_needed[f"{scale} items"] = needed
        if row.item_se is None:
            out.note = "no per-item rows: only the number of seeds can be planned"
        return out
    if row.method == "t-clusters-conditional" and row.change_low is not None and row.change_high is not None:
        se = (row.change_high - row.change_low) / (2 * stats.t.ppf(0.975, row.df or 1))
        unit_sd = se * math.sqrt(clusters)
        if unit_sd <= 0:
            return None
        out.item_se = se
        for scale in SCALES:
            out.power[f"1 seed x {scale} items"] = _power(detect / unit_sd, clusters * scale)
        out.clusters_needed = next((c for c in range(2, 200 * clusters) if _power(detect / unit_sd, c) >= TARGET), None)
        out.note = "one run per arm: seed variance unknown; clusters needed conditional on these runs (run ≥ 2 seeds)"
        return out
    return None


def markdown(plans: list[Power], relative: float) -> str:
    lines = [
        f"# hmx compare --power {relative:g}",
        "",
        f"Power of a paired t-test over seeds (α = {ALPHA}, two-sided) to detect a relative change of "
        f"{100 * relative:g}%, from this pilot's seed and item variances (hmx/evaluation/power.py).",
        "",
        "| arm | metric | change to detect | pilot seeds | pilot clusters | σ seed | item se | seeds for 80% "
        "(×1 / ×2 / ×4 items) | note |",
        "|---|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for p in plans:
        need = " / ".join(
            "n/a" if key not in p.seeds_needed else (str(p.seeds_needed[key] or f">{MAX_SEEDS}"))
            for key in (f"{s} items" for s in SCALES)
        )
        if p.clusters_needed is not None or not p.seeds_needed:
            need = f"clusters: {p.clusters_needed or 'n/a'}"
        sd = "n/a" if p.seed_sd is None else f"{p.seed_sd:.4g}"
        se = "n/a" if p.item_se is None else f"{p.item_se:.4g}"
        name = p.metric + (" (primary)" if p.primary else "")
        cells = [p.arm, name, f"{p.detect:.4g}", str(p.pilot_seeds), str(p.pilot_clusters), sd, se, need, p.note]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_power(
    paths: list[str],
    labels: list[str] | None,
    out_dir: Path,
    arms: list[str] | None,
    group_seeds: bool,
    relative: float,
    primary: str | None = None,
) -> Path:
    """power.md and power.json in ``out_dir``: per arm and metric, the seeds (and items) for 80% power."""
    if not math.isfinite(relative) or relative <= 0:
        raise ConfigError(f"--power: a relative change above 0 (e.g. 0.05 for 5%), got {relative}")
    check_out_dir(out_dir)
    groups = build_arms(paths, arms or [], labels, group_seeds)
    if len(groups) < 2:
        raise ConfigError("hmx compare --power: give a pilot of at least two runs or arms (the first is the baseline)")
    plans = []
    for arm in groups[1:]:
        for row in deltas(groups[0], arm):
            row.primary = row.metric == primary
            planned = plan(arm.label, row, relative)
            if planned is not None:
                plans.append(planned)
    out_dir.mkdir(parents=True, exist_ok=True)
    text = markdown(plans, relative)
    (out_dir / "power.json").write_text(json.dumps(jsonable([asdict(p) for p in plans]), indent=2) + "\n")
    (out_dir / "power.md").write_text(text, encoding="utf-8")
    print(text + f"hmx: power → {out_dir} (power.md, power.json)")
    return out_dir / "power.md"
