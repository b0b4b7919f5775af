"""The blind test's table (docs/rubrics.md, "A blind second test") from the committed outputs in out/.

  python docs/results/judges/blind/collect.py   (writes table.md beside this file)

Each judge's figures on the blind splits, and its minimal accuracy pooled over the first minimal test split and the
blind one (203 pairs), with the interval `hmx rubric validate` uses (Wilson, clustered by message).
"""

from __future__ import annotations

import json
from pathlib import Path

from hmx.judge.validity.accuracy import accuracy_interval, outcome

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[3]
JUDGES = ("probe_style", "probe_minimal", "probe")
FIRST = {  # each judge's one output on the first minimal test split, every pair's scores included
    "probe_style": ROOT / "docs/results/judges/probe_style/test_minimal.json",
    "probe_minimal": HERE / "out/probe_minimal.first_minimal_test.json",
    "probe": HERE / "out/probe.first_minimal_test.json",
}
TARGET = {"minimal": 0.85, "shift": 0.90, "swap": 0.90}


def prompts(path: Path) -> dict[int, str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return {number: json.loads(line)["prompt"] for number, line in enumerate(lines, start=1) if line.strip()}


def pair_outcomes(split: dict, file: Path) -> list[tuple[float, str]]:
    by_line = prompts(file)
    return [(outcome(s["chosen"], s["rejected"]), f"{file.name}:{by_line[s['line']]}") for s in split["scores"]]


def row(judge: str, split: dict) -> str:
    o, bar = split["overall"], split["surface_bar"]
    per = " / ".join(f"{c['accuracy']:.2f}" for c in split["criteria"])
    fluency = f"{bar['rows'][-1]['fluency']:.2f} ({bar['fluency_prefers_rejected']:.0%})"
    target = TARGET[split["split"]]
    cells = [
        judge,
        split["split"],
        str(o["pairs"]),
        f"**{o['accuracy']:.3f}** [{o['ci_low']:.2f}, {o['ci_high']:.2f}]",
        per,
        f"{bar['best']} {bar['best_accuracy']:.2f}",
        fluency,
        f"{bar['margin']:+.2f} [{bar['ci_low']:+.2f}, {bar['ci_high']:+.2f}]",
        "valid" if bar["valid"] else "not valid",
        f"≥ {target:.2f}: {'met' if o['accuracy'] >= target else '**not met**'}",
    ]
    return "| " + " | ".join(cells) + " |"


def main() -> int:
    lines = [
        "| judge | blind split | pairs | accuracy [95% CI] | feel / int / self | best surface baseline "
        "| fluency (prefers rejected) | margin [95% CI] | verdict | target |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    pooled = ["", "| judge | first minimal test | blind minimal | pooled (203 pairs) [95% CI] |", "|---|---|---|---|"]
    for judge in JUDGES:
        splits = json.loads((HERE / "out" / f"{judge}.json").read_text())
        lines += [row(judge, split) for split in splits]
        first = json.loads(FIRST[judge].read_text())
        blind = next(s for s in splits if s["split"] == "minimal")
        both = pair_outcomes(first, ROOT / "rubrics/hmx_feel.minimal.pairs.jsonl") + pair_outcomes(
            blind, ROOT / "rubrics/hmx_feel.blind.pairs.jsonl"
        )
        mean = sum(x for x, _ in both) / len(both)
        low, high = accuracy_interval([x for x, _ in both], [m for _, m in both])
        first_acc, blind_acc = first["overall"]["accuracy"], blind["overall"]["accuracy"]
        pooled.append(f"| {judge} | {first_acc:.3f} | {blind_acc:.3f} | **{mean:.3f}** [{low:.2f}, {high:.2f}] |")
    (HERE / "table.md").write_text("\n".join(lines + pooled) + "\n", encoding="utf-8")
    print("\n".join(lines + pooled))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
