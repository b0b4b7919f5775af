"""The pre-registered study (docs/preregistration.md) into docs/results/prereg/: its per-item files and figures.

  python docs/results/prereg/collect.py --runs outputs/runs --evals outputs/prereg   # copy the files, then draw
  python docs/results/prereg/collect.py                                               # draw from the copies

Copies each evaluation folder (results.json, expression.jsonl, results.md: what `hmx compare` reads) into
eval/<name>/ and each run's metrics.jsonl, before_after.md, judge_checks.yaml and config.yaml into runs/<name>/.
Writes audit.png (the reward-hacking audit of every run, step by step, and its reward), audit.md (per run: its
changes beside the audit), completions.md (the answers chosen by the pre-registered rule), primary.md (the two
primary tests from hmx compare's comparison.json, Holm over the two) and secondary.md (the registered family, Holm
over exactly it).
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
EVAL_FILES = ("results.json", "expression.jsonl", "results.md")
RUN_FILES = ("metrics.jsonl", "before_after.md", "judge_checks.yaml", "config.yaml")
PRIMARY = "instrument/overall"
CRITERIA = ("feelings", "intentions", "self_awareness")
AUDIT = (
    ("reward", "reward (3-15; reverse: 18 - score)"),
    ("audit/lexical_index", "lexical index"),
    ("audit/base_agreement", "agreement with the frozen judge"),
    ("audit/minimal_accuracy", "policy judge on minimal dev pairs"),
)


def copy(runs: Path, evals: Path) -> None:
    for folder in sorted(evals.iterdir()):
        if (folder / "results.json").is_file():
            (HERE / "eval" / folder.name).mkdir(parents=True, exist_ok=True)
            for name in EVAL_FILES:
                shutil.copy(folder / name, HERE / "eval" / folder.name / name)
    for run in sorted(runs.glob("[fr]*-s1[0-9][0-9]")):
        if (run / "adapter").is_dir():  # finished
            (HERE / "runs" / run.name).mkdir(parents=True, exist_ok=True)
            for name in RUN_FILES:
                shutil.copy(run / name, HERE / "runs" / run.name / name)


@functools.cache
def answers(name: str) -> list[dict]:
    """An evaluation's per-prompt rows (expression.jsonl), read once."""
    path = HERE / "eval" / name / "expression.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@functools.cache
def metrics(name: str) -> list[dict]:
    """A run's metrics.jsonl rows, read once."""
    return [json.loads(line) for line in (HERE / "runs" / name / "metrics.jsonl").read_text().splitlines()]


def arms() -> dict[str, list[str]]:
    """The evaluated seeds of each arm (a run counts when both its run and its evaluation finished)."""
    done = {p.name for p in (HERE / "runs").iterdir()} & {p.name for p in (HERE / "eval").iterdir()}
    return {arm: sorted(n for n in done if n.startswith(arm + "-")) for arm in ("fwd", "rev")}


def difference(name: str, base: float) -> float:
    return statistics.fmean(row[PRIMARY] for row in answers(name)) - base


def median_seed(names: list[str], base: float) -> str:
    """The seed whose primary difference is the arm's median (the lower of the two middle ones for an even count)."""
    ranked = sorted(names, key=lambda name: difference(name, base))
    return ranked[(len(ranked) - 1) // 2]


def completions(groups: dict[str, list[str]]) -> str:
    base = statistics.fmean(row[PRIMARY] for row in answers("base"))
    prompts = [json.loads(line) for line in (ROOT / "data/prompts/hmx_prompts.jsonl").read_text().splitlines()]
    chosen = {}
    for row in prompts:  # the first held-out prompt of each rubric criterion's category, in file order
        if row["split"] == "eval" and row["category"] in CRITERIA and row["category"] not in chosen:
            chosen[row["category"]] = row
    shown = {"base": "base"} | {arm: median_seed(names, base) for arm, names in groups.items() if names}
    lines = ["# Completions before and after (docs/preregistration.md: the rule)", ""]
    lines += [f"Median seed by the primary difference: forward {shown.get('fwd')}, reverse {shown.get('rev')}.", ""]
    for category, prompt in chosen.items():
        lines += [f"## {prompt['id']} ({category})", "", f"> {prompt['prompt']}", ""]
        for label, name in shown.items():
            row = next(r for r in answers(name) if r["prompt"] == prompt["prompt"])
            score = f"instrument {row[PRIMARY]:.2f}, self {row['self/overall']:.2f}"
            answer = " ".join(row["answer"].split())  # one line: the answer's line breaks as spaces
            lines += [f"- **{label}** (`{name}`, {score}): {answer}", ""]
    return "\n".join(lines)


def primary(comparison: Path) -> str:
    """The primary metric's row of each arm in hmx compare's comparison.json, and Holm over the two tests."""
    data = json.loads(comparison.read_text())
    tests = [
        (arm, next(row for row in rows if row["primary"])) for arm, rows in data["deltas"].items()
    ]  # one row per arm: the --primary metric, tested alone
    lines = [
        "| arm vs base | seeds | change (1-5), 95% CI | relative, 95% CI | test | p | Holm threshold | rejected |",
        "|---|---:|---|---|---|---:|---:|---|",
    ]
    rejected = True
    for rank, (arm, row) in enumerate(sorted(tests, key=lambda test: test[1]["p_value"])):
        threshold = 0.05 / (len(tests) - rank)
        rejected = rejected and row["p_value"] <= threshold
        change = f"{row['change']:+.3f} [{row['change_low']:+.3f}, {row['change_high']:+.3f}]"
        relative = f"{row['relative']:+.1%} [{row['relative_low']:+.1%}, {row['relative_high']:+.1%}]"
        cells = [arm, str(row["runs"]), change, relative, row["method"], f"{row['p_value']:.4f}", f"{threshold:.3f}"]
        lines.append("| " + " | ".join(cells) + f" | {'yes' if rejected else 'no'} |")
    return "\n".join(lines) + "\n"


SECONDARY = (
    "expression/instrument/feelings",
    "expression/instrument/intentions",
    "expression/instrument/self_awareness",
    "expression/self/overall",
)  # the registered family (amendment 2): Holm over exactly these rows, per arm


def secondary(comparison: Path) -> str:
    """The registered secondary rows of each arm, Holm-adjusted over exactly that family (statsmodels)."""
    from statsmodels.stats.multitest import multipletests

    data = json.loads(comparison.read_text())
    lines = ["| arm | metric | change, 95% CI | relative | p | p Holm (these 4) |", "|---|---|---|---:|---:|---:|"]
    for arm, rows in data["deltas"].items():
        family = [next(row for row in rows if row["metric"] == metric) for metric in SECONDARY]
        adjusted = multipletests([row["p_value"] for row in family], method="holm")[1]
        for row, p_holm in zip(family, adjusted, strict=True):
            change = f"{row['change']:+.3f} [{row['change_low']:+.3f}, {row['change_high']:+.3f}]"
            lines.append(
                f"| {arm} | {row['metric']} | {change} | {row['relative']:+.1%} | {row['p_value']:.4f} | {p_holm:.4f} |"
            )
    return "\n".join(lines) + "\n"


def audit_table(groups: dict[str, list[str]]) -> str:
    """Per run: its change on the instrument and on its own reward judge beside the audit's signals."""
    base = {key: statistics.fmean(row[key] for row in answers("base")) for key in (PRIMARY, "self/overall")}
    lines = [
        "| run | instrument change | self-judge change | lexical index (mean; max) | agreement with the frozen judge "
        "(last) | policy judge on minimal dev pairs (step 0 → step 10) |",
        "|---|---:|---:|---|---:|---|",
    ]
    for name in groups["fwd"] + groups["rev"]:
        rows = metrics(name)
        lexical = [row["audit/lexical_index"] for row in rows if row.get("audit/lexical_index") is not None]
        agreement = [row["audit/base_agreement"] for row in rows if row.get("audit/base_agreement") is not None]
        minimal = [row["audit/minimal_accuracy"] for row in rows if row.get("audit/minimal_accuracy") is not None]
        changes = [statistics.fmean(row[key] for row in answers(name)) - base[key] for key in base]
        cells = [
            name,
            f"{changes[0]:+.3f}",
            f"{changes[1]:+.3f}",
            f"{statistics.fmean(lexical):.3f}; {max(lexical):.3f}" if lexical else "n/a",
            f"{agreement[-1]:.3f}" if agreement else "n/a",
            f"{minimal[0]:.3f} → {minimal[-1]:.3f}" if minimal else "n/a",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(groups: dict[str, list[str]]) -> None:
    fig, axes = plt.subplots(1, len(AUDIT), figsize=(4.2 * len(AUDIT), 3.4), constrained_layout=True)
    for arm, color in (("fwd", "tab:blue"), ("rev", "tab:red")):
        for index, name in enumerate(groups[arm]):
            rows = metrics(name)
            for ax, (key, _) in zip(axes, AUDIT, strict=True):
                points = [(row["step"], row[key]) for row in rows if row.get(key) is not None]
                if points:
                    label = ("forward" if arm == "fwd" else "reverse") if index == 0 else None
                    ax.plot(*zip(*points, strict=True), color=color, alpha=0.6, lw=1.2, label=label)
    for ax, (_, title) in zip(axes, AUDIT, strict=True):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    n = {arm: len(names) for arm, names in groups.items()}
    axes[0].legend(loc="upper left", bbox_to_anchor=(0.0, -0.22), ncol=2, frameon=False)
    fig.suptitle(f"SmolLM2-135M, hmx_feel, probe reward: {n['fwd']} forward and {n['rev']} reverse seeds", fontsize=11)
    fig.savefig(HERE / "audit.png", dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path)
    parser.add_argument("--evals", type=Path)
    parser.add_argument("--comparison", type=Path, default=HERE / "compare" / "comparison.json")
    args = parser.parse_args()
    if args.runs and args.evals:
        copy(args.runs, args.evals)
    groups = arms()
    plot(groups)
    (HERE / "completions.md").write_text(completions(groups))
    (HERE / "audit.md").write_text(audit_table(groups))
    if args.comparison.is_file():
        (HERE / "primary.md").write_text(primary(args.comparison))
        (HERE / "secondary.md").write_text(secondary(args.comparison))
    print({arm: len(names) for arm, names in groups.items()})


if __name__ == "__main__":
    main()
