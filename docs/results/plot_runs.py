"""Figures of the pilot (docs/results/pilot.md) from two run directories (forward and reverse) of `hmx train`.

python docs/results/plot_runs.py outputs/runs/smol-forward outputs/runs/smol-reverse docs/results
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

CRITERIA = ("feelings", "intentions", "self_awareness")


def rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]


def series(data: list[dict], key: str) -> tuple[list[int], list[float]]:
    points = [(row["step"], row[key]) for row in data if key in row]
    return [p[0] for p in points], [p[1] for p in points]


def main(forward: str, reverse: str, out: str) -> None:
    runs = {"forward": rows(Path(forward)), "reverse": rows(Path(reverse))}
    colors = {"forward": "tab:blue", "reverse": "tab:red"}
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
    for ax, criterion in zip(axes, CRITERIA, strict=False):
        for arm, data in runs.items():
            ax.plot(*series(data, f"judge/{criterion}/score"), color=colors[arm], label=f"{arm}: policy's score")
            drift = series(data, f"judge/drift/{criterion}/policy")
            if drift[0]:
                ax.plot(*drift, "o--", color=colors[arm], alpha=0.6, label=f"{arm}: fixed probes")
        ax.set_title(f"judge score: {criterion} (1-5)")
        ax.set_xlabel("step")
    axes[0].legend(fontsize=7)
    for arm, data in runs.items():
        axes[3].plot(*series(data, "completions/mean_length"), color=colors[arm], label=arm)
    axes[3].set_title("mean completion length (tokens)")
    axes[3].set_xlabel("step")
    axes[3].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(Path(out) / "smollm2_curves.png", dpi=110)

    fig, ax = plt.subplots(figsize=(5, 3.4))
    for arm, data in runs.items():
        ax.plot(*series(data, "judge/drift/gap"), "o-", color=colors[arm], label=arm)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_title("judge drift: policy − base score on fixed probes")
    ax.set_xlabel("step")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(Path(out) / "smollm2_drift.png", dpi=110)


if __name__ == "__main__":
    main(*sys.argv[1:4])
