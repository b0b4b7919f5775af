"""Labelled pair files: the shipped hmx_feel set, graded rows, and errors that name file, line and field."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from hmx.judge.validity.accuracy import first_person_count, outcome, summarise
from hmx.judge.validity.words_baseline import words
from hmx.resources import RUBRICS_DIR
from hmx.rubrics.pairs import PairError, load_pairs
from hmx.rubrics.schema import load_rubric

SHIPPED = RUBRICS_DIR / "hmx_feel.pairs.jsonl"


@pytest.fixture(scope="module")
def rubric():
    return load_rubric(RUBRICS_DIR / "hmx_feel.yaml")


def write(tmp_path, *rows) -> str:
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join(row if isinstance(row, str) else json.dumps(row) for row in rows) + "\n")
    return str(path)


PAIR = {"prompt": "Hi", "criterion": "feelings", "chosen": "I'm glad you wrote.", "rejected": "Hello."}


def test_shipped_set_is_balanced_held_out_and_controls_length(rubric):
    pairs = load_pairs(SHIPPED, rubric)
    assert len(pairs) >= 150
    per_criterion = Counter(p.criterion for p in pairs)
    assert set(per_criterion) == {c.name for c in rubric.criteria}
    assert max(per_criterion.values()) - min(per_criterion.values()) <= 2
    assert sum(len(p.chosen) < len(p.rejected) for p in pairs) >= len(pairs) / 3
    dev, test = load_pairs(SHIPPED, rubric, "dev"), load_pairs(SHIPPED, rubric, "test")
    assert len(dev) + len(test) == len(pairs) and len(test) >= 60
    assert not {p.prompt for p in dev} & {p.prompt for p in test}  # held out by message, not only by row


def test_shipped_shift_set_is_held_out_from_the_main_set_and_swaps_criteria(rubric):
    shift = load_pairs(RUBRICS_DIR / "hmx_feel.shift.pairs.jsonl", rubric)
    assert Counter(p.split for p in shift) == {"shift": 36, "swap": 33, "minimal": 18}
    assert not {p.prompt for p in shift} & {p.prompt for p in load_pairs(SHIPPED, rubric)}  # new messages
    stock = ("happy to help", "i want to help", "as an ai", "i hope this helps", "i'm here to help")
    assert not any(phrase in (p.chosen + p.rejected).lower() for p in shift for phrase in stock)
    chosen = {(p.prompt, p.criterion): p.chosen for p in shift if p.split == "shift"}
    for pair in (p for p in shift if p.split == "minimal" and p.criterion == "feelings"):  # one bag of words
        assert words(pair.chosen) == words(pair.rejected) and pair.chosen != pair.rejected
    for pair in (p for p in shift if p.split == "swap"):  # both replies are top replies, for different criteria
        assert pair.chosen == chosen[(pair.prompt, pair.criterion)]
        others = {r for (prompt, c), r in chosen.items() if prompt == pair.prompt and c != pair.criterion}
        assert pair.rejected in others


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ("{not json", ":2: (row): not valid JSON"),
        ({**PAIR, "chosen": ""}, ":2: chosen: must be a non-empty string"),
        ({**PAIR, "criterion": "humour"}, ":2: criterion: 'humour' is not in rubric 'hmx_feel'"),
        ({**PAIR, "score": 3}, ":2: score: unknown field for a pair"),
        ({**PAIR, "rejected": PAIR["chosen"]}, ":2: rejected: must differ from chosen"),
        ({"prompt": "Hi", "criterion": "feelings", "completion": "ok", "level": "9"}, ":2: level: '9' is not a label"),
        ({**PAIR, "split": 3}, ":2: split: must be a non-empty string"),
    ],
)
def test_bad_rows_name_file_line_and_field(tmp_path, rubric, row, expected):
    path = write(tmp_path, PAIR, row)
    with pytest.raises(PairError, match="pairs.jsonl" + expected.replace("(", r"\(").replace(")", r"\)")):
        load_pairs(path, rubric)


def test_graded_rows_pair_up_by_level_within_prompt_and_criterion(tmp_path, rubric):
    graded = [
        {"prompt": "Hi", "criterion": "feelings", "completion": "Hello.", "level": "1"},
        {"prompt": "Hi", "criterion": "feelings", "completion": "I'm glad, and a bit shy.", "level": 5},
        {"prompt": "Hi", "criterion": "feelings", "completion": "Happy to help!", "level": "2"},
        {"prompt": "Hi", "criterion": "feelings", "completion": "Hey.", "level": "1"},  # ties "Hello.": no pair
        {"prompt": "Bye", "criterion": "feelings", "completion": "Bye.", "level": "1"},  # alone: no pair
    ]
    pairs = load_pairs(write(tmp_path, *graded), rubric)
    got = {(p.chosen, p.rejected) for p in pairs}
    assert got == {
        ("I'm glad, and a bit shy.", "Hello."),
        ("Happy to help!", "Hello."),
        ("I'm glad, and a bit shy.", "Happy to help!"),
        ("I'm glad, and a bit shy.", "Hey."),
        ("Happy to help!", "Hey."),
    }


def test_missing_file_and_empty_split(tmp_path, rubric):
    with pytest.raises(PairError, match="not found"):
        load_pairs(tmp_path / "none.jsonl", rubric)
    with pytest.raises(PairError, match="no pairs with split 'test'"):
        load_pairs(write(tmp_path, {**PAIR, "split": "dev"}), rubric, "test")


def test_validity_figures_from_known_scores(rubric, tmp_path):
    pairs = load_pairs(
        write(
            tmp_path,
            PAIR,
            {**PAIR, "chosen": "I feel it.", "rejected": "It is a long impersonal reply."},
            {**PAIR, "chosen": "Yes I do"},
        ),
        rubric,
    )
    row = summarise("feelings", pairs, [3.0, 2.0, 2.5], [1.0, 4.0, 2.5], [0.5, 0.7, 0.9])
    assert row.accuracy == pytest.approx(0.5) and row.tie_rate == pytest.approx(1 / 3)
    assert row.shorter_pairs == 1 and row.shorter_accuracy == 0.0  # the shorter chosen reply lost
    assert row.label_mass == pytest.approx(0.7)
    assert outcome(float("nan"), 1.0) == 0.5 and first_person_count("I'm sure my view is mine") == 3
