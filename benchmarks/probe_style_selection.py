"""How the head of ``judge=probe_style`` was chosen (docs/rubrics.md, "A probe for style and minimal pairs").

``python -m benchmarks.probe_style_selection --work DIR [--out HEAD.safetensors]`` reads probe features of the
main, minimal and generated dev pairs (as :mod:`benchmarks.probe_minimal_selection`, the same cache) and of the
style dev pairs (rubrics/train/hmx_feel.style.pairs.jsonl) through SmolLM2-135M once, runs the grid fixed in
docs/rubrics.md before any figure (data S0 / S1 × the 7 candidate layers × C), 5-fold CV by message over the
main, minimal and style dev messages (generated pairs always fitted, never scored), prints every row, applies
the rule and with ``--out`` writes the chosen head fitted on all its dev pairs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.probe_minimal_selection import FILES as MINIMAL_FILES
from benchmarks.probe_minimal_selection import LAYERS, features, grid, write_head
from hmx.judge.validity.probe_fit import PairFeatures

STYLE_FILE = "train/hmx_feel.style.pairs.jsonl"
SCORED = ("main", "minimal", "style")
THRESHOLDS = {"main": 0.93, "minimal": 0.85, "style": 0.90}


def datasets(f: dict[str, PairFeatures]) -> dict[str, list[tuple[str, PairFeatures, bool]]]:
    base = [("main", f["main"], True), ("minimal", f["minimal"], True), ("style", f["style"], True)]
    return {"S0": [*base, ("generated", f["generated"], False)], "S1": [*base, ("generated", f["generated"], True)]}


def choose(cv: dict[tuple[str, int, float], dict[str, float]]) -> tuple[tuple[str, int, float], bool]:
    """The rule: the largest min over the scored files among heads meeting every threshold (ties: smaller C, then
    lower layer); when none meets them, the largest min overall. Returns the choice and whether it met them."""

    def key(item: tuple[tuple[str, int, float], dict[str, float]]) -> tuple[float, float, int]:
        (_, layer, c), r = item
        return (min(r.values()), -c, -layer)

    meeting = {h: r for h, r in cv.items() if all(r[s] >= t for s, t in THRESHOLDS.items())}
    pool = meeting or cv
    return max(pool.items(), key=key)[0], bool(meeting)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", required=True, help="folder for the cached features")
    parser.add_argument("--out", help="write the chosen head here (.safetensors)")
    args = parser.parse_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    sets = datasets(features(work, {**MINIMAL_FILES, "style": STYLE_FILE}))
    cv = grid(sets, SCORED, 0)
    (name, layer, c), met = choose(cv)
    print(f"chosen: {name} layer {layer} C {c} ({'meets' if met else 'does NOT meet'} the dev thresholds {THRESHOLDS})")
    if args.out:
        keys = {f"cv_accuracy_{s}": s for s in SCORED}
        selection = f"docs/rubrics.md, 'A probe for style and minimal pairs' (candidate {name}, CV on dev)"
        rows = {lay: cv[(name, lay, c)] for lay in LAYERS}
        write_head(args.out, sets[name], layer, c, rows, [*MINIMAL_FILES.values(), STYLE_FILE], keys, selection)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
