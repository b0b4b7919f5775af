"""A learned surface baseline for judges fitted on labelled pairs: bag of words.

A judge fitted on pairs (probe mode) must beat more than the fixed heuristics of
:mod:`hmx.judge.validity.accuracy` (first-person count, length): a logistic regression on which words
each reply contains, fitted per criterion on the *same* pairs (and the same cross pairs) and
scored on the validated ones, is what any text classifier gets from those labels without reading
the rubric or the model. A judge no better than it has learned the pair file's vocabulary; a
pair set on which it scores high is lexically easy, and cannot show more than that.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from dataclasses import replace

import torch

from hmx.judge.validity.accuracy import Validity, outcome
from hmx.judge.validity.probe_fit import cross_pairs, logistic_head
from hmx.rubrics.pairs import LabelledPair

_WORD = re.compile(r"[a-z0-9']+")


def words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower().replace("\u2019", "'")))


Heads = dict[str, tuple[dict[str, int], torch.Tensor]]  # criterion -> (vocabulary, logistic head)


def fit_words(fit: Sequence[LabelledPair], cross: bool = True, c: float = 0.1) -> Heads:
    """Per criterion: the fit pairs' vocabulary and a logistic head on the difference of word presence."""
    rows = [*fit, *(cross_pairs(fit) if cross else [])]
    heads = {}
    for criterion in sorted({p.criterion for p in rows}):
        members = [p for p in rows if p.criterion == criterion]
        seen = set().union(*(words(p.chosen) | words(p.rejected) for p in members))
        vocab = {w: i for i, w in enumerate(sorted(seen))}
        diffs = torch.stack([presence(p.chosen, vocab) - presence(p.rejected, vocab) for p in members])
        heads[criterion] = (vocab, logistic_head(diffs, c))
    return heads


def presence(text: str, vocab: dict[str, int]) -> torch.Tensor:
    vector = torch.zeros(len(vocab))
    for word in words(text) & vocab.keys():
        vector[vocab[word]] = 1.0
    return vector


def words_outcomes(heads: Heads, pairs: Sequence[LabelledPair]) -> list[float]:
    """1/0.5/0 per pair: does the bag-of-words head put the chosen reply above the rejected one? (0.5 if unfitted)"""
    out = []
    for p in pairs:
        if p.criterion not in heads:
            out.append(0.5)
            continue
        vocab, weight = heads[p.criterion]
        out.append(outcome(float(presence(p.chosen, vocab) @ weight), float(presence(p.rejected, vocab) @ weight)))
    return out


def with_words_baseline(validity: Validity, pairs: Sequence[LabelledPair], fit: Sequence[LabelledPair]) -> Validity:
    """``validity`` with each row's ``words`` accuracy: the bag-of-words baseline fitted on ``fit``."""
    results = words_outcomes(fit_words(fit), pairs)
    by_criterion = {
        row.criterion: statistics.fmean(o for o, p in zip(results, pairs, strict=True) if p.criterion == row.criterion)
        for row in validity.criteria
    }
    criteria = [replace(row, words=by_criterion[row.criterion]) for row in validity.criteria]
    return replace(validity, criteria=criteria, overall=replace(validity.overall, words=statistics.fmean(results)))
