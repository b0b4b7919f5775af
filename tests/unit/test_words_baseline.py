"""The learned surface baseline of probe validation: a bag of words fitted on the probe's own pairs."""

from __future__ import annotations

from hmx.judge.validity.accuracy import CriterionValidity, Validity
from hmx.judge.validity.words_baseline import fit_words, with_words_baseline, words_outcomes
from hmx.rubrics.pairs import LabelledPair


def pair(criterion: str, chosen: str, rejected: str, line: int = 0) -> LabelledPair:
    return LabelledPair(f"message {line}", criterion, chosen, rejected, "dev", line)


FIT = [
    pair("feelings", f"I feel glad about {w}.", f"The {w} is fine.", i) for i, w in enumerate(["cats", "rain", "tea"])
]


def test_words_learn_the_fit_vocabulary_and_nothing_else():
    heads = fit_words(FIT, cross=False)
    assert set(heads) == {"feelings"}
    held_out = [pair("feelings", "I feel glad it worked.", "It worked.", 9)]  # the vocabulary carries over
    unseen = [pair("feelings", "Delighted, honestly!", "Noted.", 10)]  # no fitted word in either reply: a tie
    other = [pair("intentions", "I'll check it because it matters.", "Checked.", 11)]  # no head for the criterion
    assert words_outcomes(heads, held_out) == [1.0]
    assert words_outcomes(heads, unseen) == [0.5]
    assert words_outcomes(heads, other) == [0.5]
    reversed_pairs = [pair("feelings", "It worked.", "I feel glad it worked.", 12)]
    assert words_outcomes(heads, reversed_pairs) == [0.0]


def test_the_baseline_fills_each_row_of_a_validity_table():
    row = CriterionValidity("feelings", 2, 0.5, 0.0, 1.0, 0.0, 1.0, 0.1, 0, None, 0.5, 0.5)
    validity = Validity("r", "probe", "m", [row], CriterionValidity(**{**row.__dict__, "criterion": "(all)"}))
    pairs = [pair("feelings", "I feel glad it worked.", "It worked.", 9), pair("feelings", "Noted.", "Delighted!", 10)]
    filled = with_words_baseline(validity, pairs, FIT)
    assert filled.criteria[0].words == 0.75 and filled.overall.words == 0.75  # one right, one tie
    assert "judge/validity/words" in filled.metrics() and validity.overall.words is None  # the input is not changed
