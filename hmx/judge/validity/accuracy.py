"""Does the judge discriminate? Pairwise accuracy on labelled pairs, with what a cheap heuristic gets.

For each pair the judge scores both replies on the pair's criterion (raw score, before a
reversed criterion is flipped); the pair counts 1 when the chosen reply scores higher, 0.5 on a
tie (within :data:`TIE`), 0 otherwise; a fault (NaN) counts as a tie. Reported per criterion and
over all pairs:

- ``accuracy`` with a 95% interval that treats pairs sharing a message as one cluster
  (:func:`accuracy_interval`: Wilson's score interval at the clusters' effective sample size;
  one message serves several criteria, and the swap split reuses the shift replies);
- ``tie_rate``; ``label_mass`` (mean probability on the labels; 1 where a mode reads no label);
- ``spread``: standard deviation of the scores given (a judge that gives everything 2.75 has none);
- ``shorter_accuracy`` on the pairs whose chosen reply is the shorter one (a judge that prefers
  length fails there);
- the same pairs ranked by two surface heuristics, ``first_person`` (more first-person words wins)
  and ``length`` (the longer reply wins): a judge that does no better than these is not judging.
"""

from __future__ import annotations

import math
import re
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch
from scipy import stats

from hmx.judge.protocol import Judge
from hmx.rubrics.pairs import LabelledPair
from hmx.rubrics.schema import Rubric

TIE = 1e-4  # scores closer than this (on the criterion's scale) are a tie
CHANCE_MARGIN = 0.05  # an interval reaching below 0.5 + this is "at chance"
_FIRST_PERSON = re.compile(r"\b(i|i'm|i'd|i'll|i've|me|my|mine|myself)\b", re.IGNORECASE)


def first_person_count(text: str) -> int:
    return len(_FIRST_PERSON.findall(text.replace("\u2019", "'")))


def outcome(chosen: float, rejected: float) -> float:
    """1 when chosen is above rejected, 0.5 for a tie or a fault, 0 below."""
    if chosen != chosen or rejected != rejected or abs(chosen - rejected) <= TIE:
        return 0.5
    return 1.0 if chosen > rejected else 0.0


def _cluster_variance(values: Sequence[float], clusters: Sequence[object]) -> tuple[float, float, int]:
    """Mean, cluster-robust variance of the mean (sums per cluster), and the number of clusters."""
    n = len(values)
    mean = sum(values) / n
    sums: dict[object, float] = {}
    sizes: dict[object, int] = {}
    for value, cluster in zip(values, clusters, strict=True):
        sums[cluster] = sums.get(cluster, 0.0) + value
        sizes[cluster] = sizes.get(cluster, 0) + 1
    c = len(sums)
    if c < 2:
        return mean, math.nan, c
    spread = sum((sums[k] - sizes[k] * mean) ** 2 for k in sums)
    return mean, c / (c - 1) * spread / n**2, c


def accuracy_interval(
    outcomes: Sequence[float], clusters: Sequence[object] | None = None, level: float = 0.95
) -> tuple[float, float]:
    """Interval of the mean outcome (1 right, 0.5 tie, 0 wrong) with pairs clustered (e.g. by message).

    Wilson's score interval at the effective sample size ``n / deff``, where the design effect
    ``deff`` (at least 1) is the cluster-robust variance of the mean over the independent-pairs
    variance ``p(1 − p) / n`` (Kish). Wilson's interval stays inside [0, 1] and never collapses:
    every pair right gives a lower bound below 1 (a bootstrap gives [1, 1] there).
    """
    n = len(outcomes)
    if n == 0:
        return math.nan, math.nan
    clusters = list(range(n)) if clusters is None else list(clusters)
    p, robust, _ = _cluster_variance(outcomes, clusters)
    independent = p * (1 - p) / n
    deff = robust / independent if independent > 0 and math.isfinite(robust) else 1.0
    n_eff = n / max(1.0, deff)
    z = float(stats.norm.ppf(0.5 + level / 2))
    centre = (p + z * z / (2 * n_eff)) / (1 + z * z / n_eff)
    half = z / (1 + z * z / n_eff) * math.sqrt(p * (1 - p) / n_eff + z * z / (4 * n_eff**2))
    return max(0.0, centre - half), min(1.0, centre + half)


def difference_interval(
    a: Sequence[float], b: Sequence[float], clusters: Sequence[object] | None = None, level: float = 0.95
) -> tuple[float, float]:
    """Interval of ``mean(a) − mean(b)`` for two judges' outcomes on the same pairs (paired, clustered).

    A t-interval over clusters (``C − 1`` df) on the cluster-robust variance of the paired
    differences. Where the two agree on every pair the variance is zero: the interval is then
    ``±3 / C`` (the rule of three on the share of clusters where they could differ), not [0, 0].
    """
    if len(a) != len(b):
        raise ValueError(f"difference_interval: {len(a)} outcomes against {len(b)}")
    if not a:
        return math.nan, math.nan
    diffs = [x - y for x, y in zip(a, b, strict=True)]
    clusters = list(range(len(diffs))) if clusters is None else list(clusters)
    mean, robust, c = _cluster_variance(diffs, clusters)
    if c < 2 or not math.isfinite(robust):
        return -1.0, 1.0
    if robust == 0:
        return mean - 3 / c, mean + 3 / c
    half = float(stats.t.ppf(0.5 + level / 2, c - 1)) * math.sqrt(robust)
    return max(-1.0, mean - half), min(1.0, mean + half)


@dataclass
class CriterionValidity:
    criterion: str
    pairs: int
    accuracy: float
    ci_low: float
    ci_high: float
    tie_rate: float
    label_mass: float
    spread: float
    shorter_pairs: int
    shorter_accuracy: float | None
    first_person: float  # accuracy of "more first-person words wins" on the same pairs
    length: float  # accuracy of "the longer reply wins" on the same pairs
    words: float | None = None  # a bag-of-words baseline fitted on the judge's own fit pairs (probe mode)

    @property
    def at_chance(self) -> bool:
        return self.ci_low < 0.5 + CHANCE_MARGIN


@dataclass
class Validity:
    rubric: str
    mode: str
    model: str
    criteria: list[CriterionValidity]
    overall: CriterionValidity
    seconds: float = 0.0
    scores: list[dict] = field(default_factory=list)  # per pair: criterion, chosen, rejected (for inspection)

    def as_dict(self) -> dict:
        return asdict(self)

    def metrics(self, prefix: str = "judge/validity") -> dict[str, float]:
        """Flat metrics for a logger: ``judge/validity/<criterion>/accuracy`` … and ``…/accuracy`` overall."""
        out = {}
        for row in [*self.criteria, self.overall]:
            base = prefix if row is self.overall else f"{prefix}/{row.criterion}"
            for key in ("accuracy", "ci_low", "ci_high", "tie_rate", "spread", "shorter_accuracy", "words"):
                value = getattr(row, key)
                if value is not None:
                    out[f"{base}/{key}"] = float(value)
        return out


def summarise(
    name: str, pairs: Sequence[LabelledPair], chosen: Sequence[float], rejected: Sequence[float], mass: Sequence[float]
) -> CriterionValidity:
    """The validity figures for one criterion's pairs (or all pairs) from their scores."""
    outcomes = [outcome(c, r) for c, r in zip(chosen, rejected, strict=True)]
    shorter = [o for o, p in zip(outcomes, pairs, strict=True) if len(p.chosen) < len(p.rejected)]
    low, high = accuracy_interval(outcomes, [p.prompt for p in pairs])
    given = [s for s in [*chosen, *rejected] if s == s]
    heuristic = lambda f: statistics.fmean(outcome(f(p.chosen), f(p.rejected)) for p in pairs)  # noqa: E731
    return CriterionValidity(
        criterion=name,
        pairs=len(pairs),
        accuracy=statistics.fmean(outcomes),
        ci_low=low,
        ci_high=high,
        tie_rate=sum(o == 0.5 for o in outcomes) / len(outcomes),
        label_mass=statistics.fmean(mass) if mass else float("nan"),
        spread=statistics.pstdev(given) if len(given) > 1 else 0.0,
        shorter_pairs=len(shorter),
        shorter_accuracy=statistics.fmean(shorter) if shorter else None,
        first_person=heuristic(first_person_count),
        length=heuristic(len),
    )


def score_replies(
    judge,
    model: torch.nn.Module,
    rows: list[tuple[str, str]],
    device: torch.device,
    chunk: int,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scores ``[R, C]`` and label mass ``[R, C]`` of (prompt, reply) rows, ``chunk`` rows per judge pass."""
    scores, mass = [], []
    if progress:
        progress(0, len(rows))
    for start in range(0, len(rows), chunk):
        part = rows[start : start + chunk]
        verdicts = judge.score(model, [p for p, _ in part], [r for _, r in part], device)
        scores.append(verdicts.scores.float().cpu())
        mass.append(verdicts.label_mass.float().cpu())
        if progress:
            progress(min(start + chunk, len(rows)), len(rows))
    return torch.cat(scores), torch.cat(mass)


def validate(
    build: Callable[[Rubric], Judge],
    rubric: Rubric,
    model: torch.nn.Module,
    pairs: Sequence[LabelledPair],
    device: torch.device,
    mode: str,
    model_name: str,
    chunk: int = 32,
    verbose: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Validity:
    """Score every pair's two replies with the judge ``build(rubric)`` gives and summarise (see the module docstring).

    A judge whose criteria are scored independently (``independent_criteria``) is rebuilt per
    criterion on a one-criterion view of the rubric, so only the pair's criterion is computed;
    others score every criterion of the rubric, as in training, and the pair's column is read.
    """
    import time

    started = time.perf_counter()
    judge = build(rubric)
    names = [c.name for c in rubric.criteria]
    groups: dict[str, list[LabelledPair]] = {name: [p for p in pairs if p.criterion == name] for name in names}
    per_pair: dict[int, tuple[float, float, float]] = {}
    if progress is None and verbose:  # progress(done, total): replies scored, per judge built (criterion view)

        def progress(done: int, total: int) -> None:
            if done:
                print(f"  scored {done}/{total}", file=sys.stderr)

    jobs: list[tuple[Any, int | None, list[LabelledPair]]] = []
    if judge.independent_criteria:
        for name, members in groups.items():
            if members:
                view = replace(rubric, criteria=(rubric.criterion(name),))
                jobs.append((build(view), 0, members))
    else:
        jobs.append((judge, None, list(pairs)))
    for job_judge, column, members in jobs:
        rows = list(dict.fromkeys((p.prompt, reply) for p in members for reply in (p.chosen, p.rejected)))
        index = {row: i for i, row in enumerate(rows)}
        scores, mass = score_replies(job_judge, model, rows, device, chunk, progress)
        for p in members:
            j = names.index(p.criterion) if column is None else column
            c, r = index[(p.prompt, p.chosen)], index[(p.prompt, p.rejected)]
            per_pair[id(p)] = (float(scores[c, j]), float(scores[r, j]), float((mass[c, j] + mass[r, j]) / 2))

    def figures(name: str, members: Sequence[LabelledPair]) -> CriterionValidity:
        chosen, rejected, mass = zip(*(per_pair[id(p)] for p in members), strict=True)
        return summarise(name, members, chosen, rejected, mass)

    criteria = [figures(name, members) for name, members in groups.items() if members]
    overall = figures("(all)", list(pairs))
    detail = [
        {"criterion": p.criterion, "line": p.line, "chosen": per_pair[id(p)][0], "rejected": per_pair[id(p)][1]}
        for p in pairs
    ]
    return Validity(rubric.name, mode, model_name, criteria, overall, time.perf_counter() - started, detail)


def format_table(validity: Validity) -> str:
    """The figures as a fixed-width table, one row per criterion and one for all pairs."""
    head = (
        f"{'criterion':<16}{'pairs':>6}{'accuracy':>10}{'95% CI':>15}{'ties':>7}{'mass':>7}{'spread':>8}"
        f"{'shorter':>13}{'1st-pers':>10}{'length':>8}{'words':>7}"
    )
    lines = [f"judge validity: rubric {validity.rubric}, mode {validity.mode}, model {validity.model}", head]
    for row in [*validity.criteria, validity.overall]:
        shorter = "-" if row.shorter_accuracy is None else f"{row.shorter_accuracy:.2f} ({row.shorter_pairs})"
        lines.append(
            f"{row.criterion:<16}{row.pairs:>6}{row.accuracy:>10.3f}{f'[{row.ci_low:.2f}, {row.ci_high:.2f}]':>15}"
            f"{row.tie_rate:>7.2f}{row.label_mass:>7.2f}{row.spread:>8.3f}{shorter:>13}"
            f"{row.first_person:>10.2f}{row.length:>8.2f}{'-' if row.words is None else f'{row.words:.2f}':>7}"
        )
    if validity.overall.at_chance:
        lines.append(
            f"WARNING: the judge is at chance on these pairs (95% CI reaches {validity.overall.ci_low:.2f} < "
            f"{0.5 + CHANCE_MARGIN:.2f}): rewards from it are close to noise"
        )
    return "\n".join(lines)
