"""A learned surface baseline for judges fitted on labelled pairs: bag of words (and of word pairs).

A judge fitted on pairs (probe mode) must beat more than the fixed heuristics of
:mod:`hmx.judge.validity.accuracy` (first-person count, length): a logistic regression on which words
each reply contains, fitted per criterion on the *same* pairs (and the same cross pairs) and
scored on the validated ones, is what any text classifier gets from those labels without reading
the rubric or the model. A judge no better than it has learned the pair file's vocabulary; a
pair set on which it scores high is lexically easy, and cannot show more than that.

``ngrams=1`` reads which words occur (the unigram baseline); ``ngrams=2`` adds which adjacent word
pairs occur (unigram+bigram), so it also sees some word order: on minimal pairs (the same multiset
of words) the unigram baseline ties every pair, the bigram one need not.
"""

from __future__ import annotations

import itertools
import re
import statistics
from collections.abc import Sequence
from dataclasses import replace

import torch

from hmx.judge.validity.accuracy import Validity, outcome
from hmx.judge.validity.probe_fit import cross_pairs, logistic_head
from hmx.rubrics.pairs import LabelledPair

_WORD = re.compile(r"[a-z0-9']+")


def word_list(text: str) -> list[str]:
    """The words of ``text``: lower-cased runs of letters, digits and apostrophes (other punctuation dropped)."""
    return _WORD.findall(text.lower().replace("\u2019", "'"))


def words(text: str) -> set[str]:
    return set(word_list(text))


def grams(text: str, ngrams: int = 1) -> set[str]:
    """The words of ``text`` and, with ``ngrams=2``, its adjacent word pairs (``"not happy"``)."""
    tokens = word_list(text)
    out = set(tokens)
    if ngrams >= 2:
        out |= {f"{a} {b}" for a, b in itertools.pairwise(tokens)}
    return out


Heads = dict[str, tuple[dict[str, int], torch.Tensor]]  # criterion -> (vocabulary, logistic head)


def fit_words(fit: Sequence[LabelledPair], cross: bool = True, c: float = 0.1, ngrams: int = 1) -> Heads:
    """Per criterion: the fit pairs' vocabulary (words, or words and word pairs) and a logistic head on the
    difference of their presence."""
    rows = [*fit, *(cross_pairs(fit) if cross else [])]
    heads = {}
    for criterion in sorted({p.criterion for p in rows}):
        members = [p for p in rows if p.criterion == criterion]
        seen = set().union(*(grams(p.chosen, ngrams) | grams(p.rejected, ngrams) for p in members))
        vocab = {w: i for i, w in enumerate(sorted(seen))}
        diffs = torch.stack([presence(p.chosen, vocab, ngrams) - presence(p.rejected, vocab, ngrams) for p in members])
        heads[criterion] = (vocab, logistic_head(diffs, c))
    return heads


def presence(text: str, vocab: dict[str, int], ngrams: int = 1) -> torch.Tensor:
    vector = torch.zeros(len(vocab))
    for word in grams(text, ngrams) & vocab.keys():
        vector[vocab[word]] = 1.0
    return vector


def words_outcomes(heads: Heads, pairs: Sequence[LabelledPair], ngrams: int = 1) -> list[float]:
    """1/0.5/0 per pair: does the bag-of-words head put the chosen reply above the rejected one? (0.5 if unfitted)"""
    out = []
    for p in pairs:
        if p.criterion not in heads:
            out.append(0.5)
            continue
        vocab, weight = heads[p.criterion]
        chosen, rejected = presence(p.chosen, vocab, ngrams), presence(p.rejected, vocab, ngrams)
        out.append(outcome(float(chosen @ weight), float(rejected @ weight)))
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
