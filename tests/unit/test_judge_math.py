"""Expected-score arithmetic, single-token label checks, direction flips."""

from __future__ import annotations

import math

import pytest
import torch

from hmx.judge.modes.logprob import expected_scores, single_token_label_ids
from hmx.resources import RUBRICS_DIR
from hmx.rubrics.schema import RubricError, load_rubric, parse_rubric


def test_expected_score_on_known_logits():
    # vocab of 6; labels are tokens 1..5 with values 1..5
    logits = torch.full((2, 6), -1e9)
    logits[0, 3] = 0.0  # all mass on label "3"
    logits[1, [1, 5]] = math.log(1.0)  # half on 1, half on 5
    logits[1, 0] = math.log(2.0)  # a non-label token holding half of all mass
    expected, probs, mass = expected_scores(logits, [1, 2, 3, 4, 5], [1, 2, 3, 4, 5])
    assert expected.tolist() == pytest.approx([3.0, 3.0])
    assert probs[1].tolist() == pytest.approx([0.5, 0, 0, 0, 0.5])
    assert mass.tolist() == pytest.approx([1.0, 0.5])


def test_expected_score_weights_values_by_probability():
    logits = torch.log(torch.tensor([[0.1, 0.2, 0.7]]))
    expected, _, _ = expected_scores(logits, [0, 1, 2], [0.0, 5.0, 10.0])
    assert expected.item() == pytest.approx(0.2 * 5 + 0.7 * 10)


def test_reverse_flips_scores_but_not_guards():
    text = (RUBRICS_DIR / "hmx_feel.yaml").read_text()
    rubric = parse_rubric(text, "hmx_feel.yaml").with_direction("reverse")
    criterion = rubric.criteria[0]
    assert criterion.direction == "reverse"
    assert criterion.oriented(5.0) == 1.0 and criterion.oriented(2.5) == 3.5
    guarded = parse_rubric(
        text.replace("    weight: 1.0\n", "    weight: 1.0\n    guard: true\n", 1), "g.yaml"
    ).with_direction("reverse")
    assert guarded.criteria[0].direction == "forward" and guarded.criteria[1].direction == "reverse"


def test_tiny_tokenizer_has_single_token_labels(tiny_tokenizer):
    rubric = load_rubric(RUBRICS_DIR / "hmx_feel.yaml")
    ids = [single_token_label_ids(tiny_tokenizer, rubric, c, "Score: ") for c in rubric.criteria]
    assert all(len(set(i)) == 5 for i in ids)


def test_multi_token_label_fails_naming_the_field(tiny_tokenizer):
    text = (RUBRICS_DIR / "hmx_feel.yaml").read_text().replace('label: "5"', 'label: "excellent"\n        value: 5', 1)
    rubric = parse_rubric(text, "bad.yaml")
    with pytest.raises(RubricError, match=r"bad\.yaml: criteria\[0\]\.scale\[4\]\.label: 'excellent' is not a single"):
        single_token_label_ids(tiny_tokenizer, rubric, rubric.criteria[0], "Score: ")
