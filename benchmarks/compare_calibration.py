"""Calibration of ``hmx compare``'s intervals and tests by simulation: false-positive rate and coverage.

``python benchmarks/compare_calibration.py [--reps 2000] [--out docs-table.md]`` prints the table of
docs/evaluation.md; ``tests/unit/test_calibration.py`` checks its bounds in CI.

Each simulated evaluation is a baseline run (held fixed, as a base model evaluated greedily is)
and an arm of K seeds. A seed moves each item away from the baseline's outcome with item-level
noise, plus, "with seed noise", a seed effect shared by all its items (mean zero under the null).
Under the null the arm's expected metric equals the baseline's *exactly* (flips in both
directions balance), so a calibrated 95% interval excludes zero 5% of the time; with a planted
effect ``delta`` it covers ``delta`` 95% of the time. Metric kinds:

- ``accuracy``: 0/1 per item (TruthfulQA, EmoBench);
- ``score``: a 1-5 expression score per prompt (item noise sd 0.5, seed sd 0.1);
- ``flip_rate``: a ratio, flips over the initially correct answers (sycophancy);
- ``bbq_context_acc``: BBQ's ambiguous-context accuracy (half the items, clusters of 4 per template);
- ``bbq_bias_disamb``: ``S_DIS = 2 · biased / non-unknown − 1`` on the disambiguated half;
- ``bbq_bias_amb``: ``S_AMB = (1 − acc) · S_DIS`` on the ambiguous half (accuracy and biased answers
  move independently);
- ``no_item_rows``: a metric read from results.json only (no per-item file).

The grid's bulk draws each run's component *sums* (the numbers the per-item files add up to;
the seed-level tests depend on the items only through them) and runs them through hmx's own
``FORMULAS`` and ``paired_t`` (:mod:`hmx.evaluation.intervals`). :func:`write_evaluations` writes
full per-item files in hmx's on-disk format for the subset the test sends through the real
``hmx compare`` command line, which must give the same p-values and intervals.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from hmx.evaluation.intervals import cluster_interval, paired_t
from hmx.evaluation.items import FORMULAS

KINDS = ("accuracy", "score", "flip_rate", "bbq_context_acc", "bbq_bias_disamb", "bbq_bias_amb", "no_item_rows")
SEEDS = (2, 3, 5, 10)
ITEMS = (24, 150, 1000)
SEED_SD = 0.03  # seed effect on a proportion (0.1 on the 1-5 score)
FLIP = 0.2  # share of a run's items that move from the baseline's outcome (each way, balanced)
DELTA = 0.05  # planted effect on a proportion (0.15 on the score)


def moved(ones: int, total: int, shift: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Ones after a seed moves items: ones→0 at rate FLIP, zeros→1 so that E[ones] = ones + total·shift."""
    zeros = total - ones
    back = np.clip((ones * FLIP + total * shift) / max(zeros, 1), 0.0, 1.0)
    return ones - rng.binomial(ones, FLIP, shift.shape) + rng.binomial(zeros, back)


def run_sums(
    kind: str, items: int, shift: np.ndarray, seed_sd: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, float]:
    """Component sums of the baseline ``[1, 1, m]`` and the arm's seeds ``[R, K, m]``, and the change per unit shift.

    ``shift`` ``[R, K]`` is each seed's effect (seed noise plus any planted effect) on the proportion moved.
    """
    r, k = shift.shape
    half = items // 2
    if kind == "accuracy":
        ones = int(0.45 * items)
        return np.array([ones, items], float)[None, None], _stack(moved(ones, items, shift, rng), items), 1.0
    if kind in ("score", "no_item_rows"):  # a 1-5 score per item; a 0-100 score read from results.json only
        scale, level, item_sd = (3.0, 3.0, 0.5) if kind == "score" else (30.0, 40.0, 10.0)
        total = level * items
        arm = total + items * scale * shift + rng.normal(0, item_sd * math.sqrt(items), (r, k))
        return np.array([total, items], float)[None, None], _stack(arm, items), scale
    if kind == "flip_rate":
        right = int(0.6 * items)
        flips = int(0.3 * right)
        return np.array([flips, right], float)[None, None], _stack(moved(flips, right, shift, rng), right), 1.0
    if kind == "bbq_context_acc":
        ones = int(0.4 * half)
        return np.array([ones, half], float)[None, None], _stack(moved(ones, half, shift, rng), half), 1.0
    non_unknown = int(0.8 * half) if kind == "bbq_bias_disamb" else int(0.5 * half)
    biased = int(0.55 * non_unknown)
    arm_biased = moved(biased, non_unknown, shift, rng)
    if kind == "bbq_bias_disamb":
        base = np.array([biased, non_unknown], float)[None, None]
        return base, np.stack([arm_biased, np.full((r, k), non_unknown)], axis=-1).astype(float), 2.0
    acc = int(0.4 * half)  # S_AMB: the ambiguous-context accuracy moves with its own seed noise, no planted effect
    arm_acc = moved(acc, half, rng.normal(0, seed_sd, (r, k)), rng)
    base = np.array([acc, half, biased, non_unknown], float)[None, None]
    arm = np.stack([arm_acc, np.full((r, k), half), arm_biased, np.full((r, k), non_unknown)], axis=-1)
    return base, arm.astype(float), 2 * (1 - acc / half)


def _stack(numerator: np.ndarray, denominator: int) -> np.ndarray:
    return np.stack([numerator, np.full(numerator.shape, denominator)], axis=-1).astype(float)


FORMULA = {"bbq_bias_disamb": "bias_disamb", "bbq_bias_amb": "bias_amb"}
BINARY = ("accuracy", "flip_rate", "bbq_context_acc", "bbq_bias_disamb", "bbq_bias_amb")


def conservative(row: dict) -> bool:
    """0/1 items with two seeds, or three seeds on 24 items (12-15 in a BBQ or flip-rate denominator).

    The seed changes take few distinct values, seeds often agree exactly (the seed variance is then
    unknown: p = 1, an unbounded interval) and the t-test is conservative: below 5%, never above.
    """
    return row["kind"] in BINARY and (row["seeds"] == 2 or (row["seeds"] == 3 and row["items"] == 24))


def simulate(
    kind: str, seeds: int, items: int, seed_noise: bool, delta: float, reps: int, rng: np.random.Generator
) -> dict[str, float]:
    """False-positive rate (delta 0) or coverage of the planted change, and the mean interval width."""
    seed_sd = SEED_SD if seed_noise else 0.0
    shift = rng.normal(0.0, seed_sd, (reps, seeds)) + delta
    base, arm, per_shift = run_sums(kind, items, shift, seed_sd, rng)
    f = FORMULAS[FORMULA.get(kind, "ratio")]
    low, high, p = paired_t(f(arm) - f(base)[..., :1])
    if delta == 0:
        return {"rate": float(np.mean(p < 0.05)), "width": float(np.mean(high - low))}
    truth = delta * per_shift
    return {"rate": float(np.mean((low <= truth) & (truth <= high))), "width": float(np.mean(high - low))}


def grid(reps: int, delta: float, seed: int = 0) -> list[dict]:
    """Every kind × seeds × items × (with, without seed noise): the false-positive rate or coverage."""
    rng = np.random.default_rng(seed)
    rows = []
    for kind in KINDS:
        for seeds in SEEDS:
            for items in ITEMS:
                for noise in (True, False):
                    result = simulate(kind, seeds, items, noise, delta, reps, rng)
                    rows.append({"kind": kind, "seeds": seeds, "items": items, "seed_noise": noise, **result})
    return rows


SINGLE_KINDS = ("accuracy", "score", "flip_rate", "bbq_context_acc", "bbq_bias_disamb", "bbq_bias_amb")


def single_run_items(kind: str, items: int, reps: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two single runs' cluster sums ``[R, C, m]`` each, exchangeable given the items (the null of an items-only test).

    Items are drawn from a population (BBQ: templates of 4 items sharing their parameters, 2
    ambiguous and 2 disambiguated); each run answers them independently with the same probabilities.
    """
    size = 4 if kind.startswith("bbq") else 1
    clusters = max(2, items // size)
    shape = (reps, clusters, size)

    def run(p: np.ndarray, q: np.ndarray, level: np.ndarray) -> np.ndarray:
        if kind == "accuracy":
            return np.stack([rng.random(shape) < p, np.ones(shape)], -1)
        if kind == "score":
            return np.stack([level + rng.normal(0, 0.5, shape), np.ones(shape)], -1)
        if kind == "flip_rate":
            right = rng.random(shape) < p
            return np.stack([right & (rng.random(shape) < q), right], -1)
        amb = np.broadcast_to(np.array([1.0, 1.0, 0.0, 0.0]), shape)
        acc = rng.random(shape) < p
        non_unknown = rng.random(shape) < 0.7
        biased = non_unknown & (rng.random(shape) < q)
        if kind == "bbq_context_acc":
            return np.stack([acc * amb, amb], -1)
        if kind == "bbq_bias_disamb":
            return np.stack([biased * (1 - amb), non_unknown * (1 - amb)], -1)
        return np.stack([acc * amb, amb, biased * amb, non_unknown * amb], -1)

    p = np.broadcast_to(rng.beta(2, 2, (reps, clusters, 1)), shape)
    q = np.broadcast_to(rng.beta(2, 3, (reps, clusters, 1)), shape)
    level = np.broadcast_to(rng.normal(3.0, 0.8, (reps, clusters, 1)), shape)
    base, arm = run(p, q, level).astype(float), run(p, q, level).astype(float)
    return base.sum(axis=2), arm.sum(axis=2)


def single_run_grid(reps: int, seed: int = 0, sizes: tuple[int, ...] = ITEMS) -> list[dict]:
    """False-positive rate of the items-only interval between two single runs (t over clusters, delta method)."""
    rng = np.random.default_rng(seed)
    rows = []
    for kind in SINGLE_KINDS:
        for items in sizes:
            base, arm = single_run_items(kind, items, reps, rng)
            formula = FORMULA.get(kind, "ratio")
            tested = [cluster_interval(b, a, formula) for b, a in zip(base, arm, strict=True)]
            p = np.array([1.0 if t is None else t.p_value for t in tested])
            rows.append({"kind": kind, "items": items, "rate": float(np.mean(p < 0.05))})
    return rows


def table(null: list[dict], planted: list[dict], reps: int) -> str:
    """The markdown table of docs/evaluation.md: FPR (with / without seed noise) and coverage per cell."""
    lines = [
        "| metric kind | seeds | FPR, 24 items | FPR, 150 | FPR, 1000 | coverage, 24 | coverage, 150 "
        "| coverage, 1000 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    cell = {(r["kind"], r["seeds"], r["items"], r["seed_noise"]): r["rate"] for r in null}
    cover = {(r["kind"], r["seeds"], r["items"], r["seed_noise"]): r["rate"] for r in planted}
    for kind in KINDS:
        for seeds in SEEDS:
            fpr = [f"{100 * cell[kind, seeds, n, True]:.1f} / {100 * cell[kind, seeds, n, False]:.1f}" for n in ITEMS]
            cov = [f"{100 * cover[kind, seeds, n, True]:.1f} / {100 * cover[kind, seeds, n, False]:.1f}" for n in ITEMS]
            lines.append(f"| {kind} | {seeds} | " + " | ".join(fpr + cov) + " |")
    lines.append("")
    lines.append(
        f"Percent, with / without seed noise; {reps} simulated comparisons per cell (a rate's standard error is "
        f"about {100 * math.sqrt(0.05 * 0.95 / reps):.1f} points)."
    )
    return "\n".join(lines) + "\n"


# -- full per-item evaluations in hmx's on-disk format, for the command-line subset ---------------------------


def _items(ones: int, total: int, rng: np.random.Generator) -> np.ndarray:
    out = np.zeros(total)
    out[rng.choice(total, ones, replace=False)] = 1.0
    return out


def _move(base: np.ndarray, target: int, rng: np.random.Generator) -> np.ndarray:
    """A copy of 0/1 ``base`` with items moved both ways so that it holds ``target`` ones."""
    out = base.copy()
    ones, zeros = np.flatnonzero(base == 1), np.flatnonzero(base == 0)
    down = rng.binomial(len(ones), FLIP)
    up = target - (len(ones) - down)
    if up < 0 or up > len(zeros):
        down, up = max(0, len(ones) - target), max(0, target - len(ones))
    out[rng.choice(ones, down, replace=False)] = 0.0
    out[rng.choice(zeros, up, replace=False)] = 1.0
    return out


def write_evaluations(root: Path, seeds: int, items: int, seed_noise: bool, rng: np.random.Generator) -> list[Path]:
    """A baseline and ``seeds`` arm runs under the null, each an eval folder (results.json + per-item jsonl)."""
    half = items // 2
    base_acc = _items(int(0.45 * items), items, rng)
    base_score = rng.normal(3.0, 0.8, items)
    right = _items(int(0.6 * items), items, rng)
    base_flip = right * _items(int(0.3 * items), items, rng)
    amb = np.r_[np.ones(half), np.zeros(items - half)]
    bbq_acc = _items(int(0.4 * items), items, rng)
    non_unknown = _items(int(0.6 * items), items, rng)
    biased = non_unknown * _items(int(0.5 * items), items, rng)
    folders = []
    for run in range(seeds + 1):
        sd = SEED_SD if seed_noise and run else 0.0
        u = rng.normal(0, sd, 5)
        if run == 0:
            acc, score, flip, bacc, bias = base_acc, base_score, base_flip, bbq_acc, biased
        else:
            acc = _move(base_acc, int(round(base_acc.sum() + items * u[0])), rng)
            score = base_score + 3 * u[1] + rng.normal(0, 0.5, items)
            flips = _move(base_flip[right == 1], int(round(base_flip.sum() + right.sum() * u[2])), rng)
            flip = base_flip.copy()
            flip[right == 1] = flips
            bacc = _move(bbq_acc, int(round(bbq_acc.sum() + items * u[3])), rng)
            moved_biased = _move(biased[non_unknown == 1], int(round(biased.sum() + non_unknown.sum() * u[4])), rng)
            bias = biased.copy()
            bias[non_unknown == 1] = moved_biased
        folder = root / f"run-{run}" / "eval"
        folder.mkdir(parents=True)
        _write_jsonl(folder / "truthfulqa_mc1.jsonl", [{"doc_id": i, "acc": a} for i, a in enumerate(acc)])
        _write_jsonl(
            folder / "expression.jsonl",
            [{"prompt": f"message {i}", "answer": "…", "self/overall": float(s)} for i, s in enumerate(score)],
        )
        letters = lambda ok: "A" if ok else "B"  # noqa: E731
        syco = [
            {
                "question": f"q{i}",
                "correct": "A",
                "first": letters(right[i]),
                "after_challenge": letters(right[i] and not flip[i]),
                "suggested": "B",
                "under_suggestion": "A",
            }
            for i in range(items)
        ]
        _write_jsonl(folder / "sycophancy.jsonl", syco)
        bbq = [
            {
                "doc_id": i,
                "acc": float(bacc[i]),
                "disambiguated": float(1 - amb[i]),
                "biased": float(bias[i]),
                "non_unknown": float(non_unknown[i]),
                "question_index": i // 4,
                "category": "Age",
            }
            for i in range(items)
        ]
        _write_jsonl(folder / "bbq.jsonl", bbq)
        no_rows = 40.0 + rng.normal(0, 1.0) + (rng.normal(0, 1.0) if seed_noise and run else 0.0)
        metrics = {
            "truthfulqa_mc1/acc": ("higher", float(acc.mean())),
            "expression/self/overall": ("higher", float(score.mean())),
            "sycophancy/are_you_sure_flip_rate": ("lower", float(flip.sum() / right.sum())),
            "bbq/accuracy_amb": ("higher", float((bacc * amb).sum() / amb.sum())),
            "bbq/amb_bias_score": ("zero", 0.0),  # recomputed from the items by hmx compare
            "bbq/disamb_bias_score": ("zero", 0.0),
            "eq_bench/eqbench": ("higher", no_rows),
        }
        results = {
            "label": f"run-{run}",
            "metrics": {name: {"value": value, "better": better} for name, (better, value) in metrics.items()},
        }
        (folder / "results.json").write_text(json.dumps(results), encoding="utf-8")
        folders.append(folder)
    return folders


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=4000, help="simulated comparisons per cell")
    parser.add_argument("--out", help="also write the table here")
    args = parser.parse_args(argv)
    null, planted = grid(args.reps, 0.0, seed=1), grid(args.reps, DELTA, seed=2)
    text = table(null, planted, args.reps)
    single = {(r["kind"], r["items"]): r["rate"] for r in single_run_grid(args.reps // 4, seed=3)}
    text += "\nTwo single runs (items-only interval, conditional on the runs; FPR, %):\n\n"
    text += "| metric kind | 24 items | 150 | 1000 |\n|---|---:|---:|---:|\n"
    for kind in SINGLE_KINDS:
        text += f"| {kind} | " + " | ".join(f"{100 * single[kind, n]:.1f}" for n in ITEMS) + " |\n"
    worst = max(abs(r["rate"] - 0.05) for r in null if not conservative(r))
    cover = max(abs(r["rate"] - 0.95) for r in planted if not conservative(r))
    high = max(r["rate"] for r in null)
    text += (
        f"\nOutside the conservative cells (0/1 items with 2 seeds, or 3 seeds on 24 items) the largest deviation is "
        f"{100 * worst:.1f} points from 5% (FPR) and {100 * cover:.1f} from 95% (coverage); the highest FPR anywhere "
        f"is {100 * high:.1f}%.\n"
    )
    print(text)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
