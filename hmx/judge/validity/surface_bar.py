"""The learned-surface bar: is the judge better than what the pairs' surface alone ranks?

Three baselines score the same pairs as the judge:

- ``unigram``: a logistic model on which words each reply contains, fitted per criterion on the
  judge's fit pairs (:mod:`hmx.judge.validity.words_baseline`);
- ``bigram``: the same on words and adjacent word pairs (it sees some word order);
- ``fluency``: the reply's log-probability after the user's message under the judge's own model,
  no rubric (:mod:`hmx.judge.validity.fluency`).

The fit pairs are the judge's own when it was fitted on pairs (a probe's recorded pairs); for a judge
fitted on none they are what :func:`baseline_fit` names: an explicit file, else the validated
file's ``dev`` split when another split is validated, else the validated pairs themselves, cross-fitted
over :data:`FOLDS` folds of messages (no pair is scored by a model fitted on its message).

**The rule.** A judge counts as valid on a split only where its accuracy beats the best of these
baselines by at least :data:`MARGIN` and the 95% interval of the paired difference (judge minus that
baseline, pair by pair, resampled by message: :func:`paired_difference_interval`) excludes zero.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hmx.judge.validity.accuracy import Validity, outcome
from hmx.judge.validity.words_baseline import fit_words, words_outcomes
from hmx.rubrics.pairs import LabelledPair, PairError, load_pairs
from hmx.rubrics.schema import Rubric

MARGIN = 0.10  # the judge must beat the best surface baseline by this much on a split
FOLDS = 5
BASELINES = ("unigram", "bigram", "fluency")


def paired_difference_interval(
    first: Sequence[float], second: Sequence[float], clusters: Sequence[str], draws: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """Mean of ``first - second`` pair by pair and its percentile 95% interval, resampling whole clusters
    (a message's pairs together: they share a prompt, so they are not independent)."""
    groups: dict[str, list[float]] = {}
    for a, b, key in zip(first, second, clusters, strict=True):
        groups.setdefault(key, []).append(a - b)
    if not groups:
        return float("nan"), float("nan"), float("nan")
    sums = [(sum(d), len(d)) for d in groups.values()]
    rng, n = random.Random(seed), len(sums)
    means = []
    for _ in range(draws):
        picked = rng.choices(sums, k=n)
        means.append(sum(s for s, _ in picked) / sum(k for _, k in picked))
    means.sort()
    total = sum(s for s, _ in sums) / sum(k for _, k in sums)
    return total, means[int(0.025 * draws)], means[int(0.975 * draws) - 1]


def surface_outcomes(pairs: Sequence[LabelledPair], fit: Sequence[LabelledPair] | None, ngrams: int) -> list[float]:
    """Per pair, the bag-of-n-grams baseline's outcome: fitted on ``fit``, or cross-fitted by message when None."""
    if fit is not None:
        return words_outcomes(fit_words(fit, ngrams=ngrams), pairs, ngrams)
    messages = list(dict.fromkeys(p.prompt for p in pairs))
    fold = {m: i % FOLDS for i, m in enumerate(messages)}
    out = [0.5] * len(pairs)
    for f in range(min(FOLDS, len(messages))):
        train = [p for p in pairs if fold[p.prompt] != f]
        held = [i for i, p in enumerate(pairs) if fold[p.prompt] == f]
        if not train:
            continue
        scored = words_outcomes(fit_words(train, ngrams=ngrams), [pairs[i] for i in held], ngrams)
        for i, o in zip(held, scored, strict=True):
            out[i] = o
    return out


def baseline_fit(
    rubric: Rubric,
    pairs_file: str | Path,
    splits: Sequence[str | None],
    judge_fit: Sequence[LabelledPair] | None = None,
    explicit: tuple[str, str | None] | None = None,
) -> tuple[list[LabelledPair] | None, str]:
    """The pairs the surface baselines are fitted on, and a line saying which (None: cross-fitted)."""
    if judge_fit is not None:
        return list(judge_fit), f"the judge's own {len(judge_fit)} fit pairs"
    if explicit is not None:
        path, split = explicit
        fit = load_pairs(path, rubric, split)
        return fit, f"{len(fit)} pairs of {path}" + (f" (split {split})" if split else "")
    if "dev" not in splits and None not in splits:
        try:
            fit = load_pairs(pairs_file, rubric, "dev")
        except PairError:  # the file has no dev split
            fit = []
        if fit:
            return fit, f"the {len(fit)} dev pairs of {pairs_file}"
    return None, f"cross-fitted over {FOLDS} folds of the validated pairs' messages"


@dataclass
class BaselineRow:
    criterion: str
    pairs: int
    judge: float
    unigram: float
    bigram: float
    fluency: float | None


@dataclass
class SurfaceBar:
    """The baselines beside the judge on one split, the margin over the best and the verdict."""

    split: str
    fit: str
    rows: list[BaselineRow]  # per criterion, then "(all)"
    best: str
    best_accuracy: float
    margin: float
    ci_low: float
    ci_high: float
    valid: bool
    fluency_prefers_rejected: float | None  # share of pairs where fluency ranks the rejected reply higher
    outcomes: dict[str, list[float]] = field(default_factory=dict, repr=False)

    def as_dict(self) -> dict:
        out = asdict(self)
        out.pop("outcomes")
        return out

    def metrics(self, prefix: str = "judge/validity") -> dict[str, float]:
        """``<prefix>/surface/{unigram,bigram,fluency,margin,margin_ci_low,margin_ci_high,valid}``."""
        overall = self.rows[-1]
        out = {f"{prefix}/surface/{name}": getattr(overall, name) for name in BASELINES}
        out |= {
            f"{prefix}/surface/margin": self.margin,
            f"{prefix}/surface/margin_ci_low": self.ci_low,
            f"{prefix}/surface/margin_ci_high": self.ci_high,
            f"{prefix}/surface/valid": float(self.valid),
        }
        return {k: float(v) for k, v in out.items() if v is not None}


def judge_outcomes(validity: Validity) -> list[float]:
    """Per pair (in the validated order) 1/0.5/0 from the judge's recorded scores."""
    return [outcome(row["chosen"], row["rejected"]) for row in validity.scores]


def surface_bar(
    validity: Validity,
    pairs: Sequence[LabelledPair],
    fit: Sequence[LabelledPair] | None,
    fit_note: str,
    fluency: Sequence[float] | None,
    split: str = "(all)",
) -> SurfaceBar:
    """The baselines on ``pairs`` (``fluency``: per-pair outcomes, or None when not measured) and the rule."""
    judge = judge_outcomes(validity)
    outcomes = {"judge": judge, "unigram": surface_outcomes(pairs, fit, 1), "bigram": surface_outcomes(pairs, fit, 2)}
    if fluency is not None:
        outcomes["fluency"] = list(fluency)

    def row(name: str, keep: list[int]) -> BaselineRow:
        mean = lambda key: statistics.fmean(outcomes[key][i] for i in keep) if key in outcomes else None  # noqa: E731
        return BaselineRow(name, len(keep), mean("judge"), mean("unigram"), mean("bigram"), mean("fluency"))  # type: ignore[arg-type]

    criteria = list(dict.fromkeys(p.criterion for p in pairs))
    rows = [row(c, [i for i, p in enumerate(pairs) if p.criterion == c]) for c in criteria]
    rows.append(row("(all)", list(range(len(pairs)))))
    overall = rows[-1]
    best = max((name for name in BASELINES if name in outcomes), key=lambda name: getattr(overall, name))
    _, low, high = paired_difference_interval(judge, outcomes[best], [p.prompt for p in pairs])
    margin = overall.judge - getattr(overall, best)
    share = None if fluency is None else sum(o == 0.0 for o in fluency) / len(fluency)
    valid = margin >= MARGIN - 1e-9 and low > 0
    return SurfaceBar(split, fit_note, rows, best, getattr(overall, best), margin, low, high, valid, share, outcomes)


def format_bar(bar: SurfaceBar, mode: str) -> str:
    """The baselines beside the judge, the margin and the verdict, as lines under the validity table."""
    lines = [
        f"surface baselines on split {bar.split} (bag of words fitted on {bar.fit}; fluency: log P(reply | message),"
        " same model, no rubric)",
        f"{'criterion':<16}{'pairs':>6}{'judge':>8}{'unigram':>9}{'bigram':>8}{'fluency':>9}",
    ]
    for r in bar.rows:
        fluency = "-" if r.fluency is None else f"{r.fluency:.2f}"
        lines.append(f"{r.criterion:<16}{r.pairs:>6}{r.judge:>8.3f}{r.unigram:>9.2f}{r.bigram:>8.2f}{fluency:>9}")
    if bar.fluency_prefers_rejected is not None:
        lines.append(f"fluency prefers the rejected reply in {bar.fluency_prefers_rejected:.0%} of these pairs")
    verdict = "VALID" if bar.valid else "NOT VALID"
    lines.append(
        f"{verdict} ({mode} judge, split {bar.split}): margin over the best baseline "
        f"({bar.best} {bar.best_accuracy:.2f}) {bar.margin:+.3f}, "
        f"95% CI [{bar.ci_low:+.2f}, {bar.ci_high:+.2f}] (paired, resampled by message); the bar"
        f" is a margin >= {MARGIN:.2f} with an interval above 0"
    )
    return "\n".join(lines)
