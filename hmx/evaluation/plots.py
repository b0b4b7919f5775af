"""The comparison plot: each metric's relative change against the baseline, one panel per arm, with its 95% interval."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

COLOURS = {"improved": "#2e7d32", "within": "#9e9e9e", "degraded": "#ef6c00", "degraded_severe": "#c62828"}
LEGEND = {
    "improved": "better by >2%",
    "within": "within 2%",
    "degraded": "worse by >2%",
    "degraded_severe": "worse by >10%",
}
CLIP = 0.5  # bars are drawn within ±50%; longer ones are clipped and labelled with their value


def format_relative(value: float, digits: int = 1) -> str:
    """A relative change as a signed percentage (±∞ from a zero baseline)."""
    return ("+∞" if value > 0 else "−∞") if math.isinf(value) else f"{100 * value:+.{digits}f}%"


def plot_deltas(table: dict[str, list[Any]], baseline: str, out: Path) -> Path | None:
    """Horizontal bars of relative improvement (%) per metric; the ±2% band shaded. None without data."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    metrics = list(dict.fromkeys(row.metric for rows in table.values() for row in rows))
    if not metrics:
        return None
    fig, axes = plt.subplots(
        1, len(table), figsize=(4.5 * len(table) + 2.5, 0.32 * len(metrics) + 2.0), dpi=110, sharey=True, squeeze=False
    )
    for ax, (label, rows) in zip(axes[0], table.items(), strict=True):
        by_metric = {row.metric: row for row in rows}
        for y, name in enumerate(metrics):
            row = by_metric.get(name)
            if row is None:
                continue
            shown = max(-CLIP, min(CLIP, row.relative))
            ax.barh(y, 100 * shown, color=COLOURS[row.verdict])
            if abs(row.relative) > CLIP:
                side = "left" if shown > 0 else "right"
                ax.text(100 * shown, y, f" {format_relative(row.relative, 0)} ", va="center", ha=side, fontsize=7)
            low, high = getattr(row, "relative_low", None), getattr(row, "relative_high", None)
            if low is not None and high is not None:  # the 95% interval, clipped like the bars
                low, high = (100 * max(-CLIP, min(CLIP, v)) for v in (low, high))
                ax.plot([low, high], [y, y], color="black", linewidth=1.2, solid_capstyle="butt")
                ax.plot([low, high], [y, y], "|", color="black", markersize=6)
        ax.axvspan(-2, 2, color="#e0e0e0", zorder=0)
        for x in (-10, 10):
            ax.axvline(x, color="#bdbdbd", linestyle=":", linewidth=0.8)
        ax.axvline(0, color="black", linewidth=0.6)
        ax.set_xlim(-100 * CLIP * 1.25, 100 * CLIP * 1.25)
        ax.set_title(f"{label} vs {baseline}")
        ax.set_xlabel("relative change, % (+ is better)")
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].set_yticks(range(len(metrics)), metrics, fontsize=8)
    handles: list[Any] = [Patch(color=COLOURS[key], label=text) for key, text in LEGEND.items()]
    intervals = any(getattr(row, "relative_low", None) is not None for rows in table.values() for row in rows)
    if intervals:  # a change counts only when its interval excludes zero
        handles[1] = Patch(color=COLOURS["within"], label="within 2% or not significant")
        handles.append(Line2D([], [], color="black", marker="|", label="95% interval (t over seeds, or item clusters)"))
    fig.legend(handles=handles, loc="lower center", ncol=3 if intervals else 4, fontsize=8, frameon=False)
    axes[0][0].invert_yaxis()
    fig.tight_layout(rect=(0, 0.08 if intervals else 0.04, 1, 1))
    fig.savefig(out)
    plt.close(fig)
    return out
