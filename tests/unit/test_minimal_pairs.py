"""The shipped minimal pairs (rubrics/hmx_feel.minimal.pairs.jsonl): the same words, another meaning.

The rule a bag of words cannot pass: lower-case each reply, keep runs of letters, digits and
apostrophes (every other character, punctuation included, separates words), and the chosen and
rejected replies must be the same multiset of those words.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from hmx.judge.validity.words_baseline import word_list
from hmx.resources import RUBRICS_DIR
from hmx.rubrics.pairs import load_pairs
from hmx.rubrics.schema import load_rubric

MINIMAL = RUBRICS_DIR / "hmx_feel.minimal.pairs.jsonl"
CONTRASTS = {"holder", "fit", "negation", "claim"}


@pytest.fixture(scope="module")
def rubric():
    return load_rubric(RUBRICS_DIR / "hmx_feel.yaml")


def test_word_list_is_the_stated_rule():
    assert word_list("I'm NOT happy,  just… polite!") == ["i'm", "not", "happy", "just", "polite"]
    assert Counter(word_list("I am glad, not sad.")) == Counter(word_list("Not glad; I am sad"))


def test_every_minimal_pair_has_the_same_multiset_of_words(rubric):
    pairs = load_pairs(MINIMAL, rubric)
    differing = [p.line for p in pairs if Counter(word_list(p.chosen)) != Counter(word_list(p.rejected))]
    assert differing == [], f"{MINIMAL.name}: lines whose replies differ in their words: {differing}"


def test_sixty_pairs_per_criterion_split_by_message_and_new_messages(rubric):
    pairs = load_pairs(MINIMAL, rubric)
    per_criterion = Counter(p.criterion for p in pairs)
    assert set(per_criterion) == {c.name for c in rubric.criteria}
    assert min(per_criterion.values()) >= 60
    dev, test = ({p.prompt for p in pairs if p.split == s} for s in ("dev", "test"))
    assert dev and test and not dev & test and {p.split for p in pairs} == {"dev", "test"}
    shipped = {
        json.loads(line)["prompt"]
        for name in ("hmx_feel.pairs.jsonl", "hmx_feel.shift.pairs.jsonl")
        for line in (RUBRICS_DIR / name).read_text(encoding="utf-8").splitlines()
        if line.strip()
    }
    assert not (dev | test) & shipped


def test_each_pair_names_its_contrast_and_every_contrast_is_covered():
    rows = [json.loads(line) for line in MINIMAL.read_text(encoding="utf-8").splitlines() if line.strip()]
    contrasts = Counter(row["note"].split(";")[0].removeprefix("contrast: ") for row in rows)
    assert set(contrasts) == CONTRASTS
