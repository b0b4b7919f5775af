"""Malformed rubrics: each fails with a message naming the file, the YAML line where there is one, and the field."""

from __future__ import annotations

import re

import pytest

from hmx.resources import RUBRICS_DIR
from hmx.rubrics.render import check_template
from hmx.rubrics.schema import RubricError, combine_rubrics, load_rubric, parse_rubric

GOOD = """\
name: demo
description: A two-criterion demo.
criteria:
  - name: warmth
    description: Is the reply warm?
    weight: 1.0
    scale:
      - label: "1"
        anchor: Cold.
      - label: "2"
        anchor: Warm.
  - name: clarity
    description: Is the reply clear?
    scale:
      - label: A
        value: 0
        anchor: Unclear.
      - label: B
        value: 1
        anchor: Clear.
"""


def edit(old: str, new: str, text: str = GOOD) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


MALFORMED = {
    "invalid_yaml": (edit("  - name: clarity", "  - name: [clarity"), r"demo\.yaml:13: not valid YAML"),
    "top_level_list": ("- name: demo\n", r"demo\.yaml: \(top level\): must be a mapping, got list"),
    "unknown_top_key": (edit("criteria:", "critera: []\ncriteria:"), r"demo\.yaml:3: critera: unknown key"),
    "missing_name": (edit("name: demo\n", ""), r"demo\.yaml:1: name: must be a non-empty string"),
    "empty_criteria": (
        GOOD[: GOOD.index("criteria:")] + "criteria: []\n",
        r"demo\.yaml:3: criteria: must be a non-empty list",
    ),
    "misspelt_weight": (
        edit("    weight: 1.0", "    wieght: 1.0"),
        r"demo\.yaml:6: criteria\[0\]\.wieght: unknown key \(allowed:",
    ),
    "weight_not_a_number": (
        edit("weight: 1.0", "weight: high"),
        r"demo\.yaml:6: criteria\[0\]\.weight: must be a finite number, got 'high'",
    ),
    "name_with_spaces": (
        edit("name: warmth", "name: warm th"),
        r"demo\.yaml:4: criteria\[0\]\.name: 'warm th': use letters",
    ),
    "missing_description": (
        edit("    description: Is the reply clear?\n", ""),
        r"demo\.yaml:12: criteria\[1\]\.description: must be a non-empty string",
    ),
    "one_level_scale": (
        edit('      - label: "2"\n        anchor: Warm.\n', ""),
        r"demo\.yaml:7: criteria\[0\]\.scale: must be a list of at least two levels",
    ),
    "duplicate_labels": (
        edit('label: "2"', 'label: "1"'),
        r"demo\.yaml:7: criteria\[0\]\.scale: labels must be distinct",
    ),
    "non_numeric_label_without_value": (
        edit("        value: 1\n", ""),
        r"demo\.yaml:18: criteria\[1\]\.scale\[1\]\.value: needs a number \(label 'B' is not numeric",
    ),
    "missing_anchor": (
        edit("        anchor: Cold.\n", ""),
        r"demo\.yaml:8: criteria\[0\]\.scale\[0\]\.anchor: must be a non-empty string",
    ),
    "equal_values": (
        edit("value: 1", "value: 0"),
        r"demo\.yaml:14: criteria\[1\]\.scale: values must not all be equal",
    ),
    "bad_direction": (
        edit("    weight: 1.0", "    weight: 1.0\n    direction: backwards"),
        r"demo\.yaml:7: criteria\[0\]\.direction: must be one of",
    ),
    "guard_not_boolean": (
        edit("    weight: 1.0", "    weight: 1.0\n    guard: maybe"),
        r"demo\.yaml:7: criteria\[0\]\.guard: must be true or false, got 'maybe'",
    ),
    "duplicate_criteria": (
        edit("name: clarity", "name: warmth"),
        r"demo\.yaml:3: criteria: criterion names must be unique, repeated: \['warmth'\]",
    ),
    "label_with_spaces": (
        edit('label: "2"', 'label: " 2"'),
        r"demo\.yaml:10: criteria\[0\]\.scale\[1\]\.label: must be a non-empty string without",
    ),
    "empty_template": (GOOD + 'judge_template: "  "\n', r"demo\.yaml:21: judge_template: must be a non-empty string"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_rubric_names_file_line_and_field(case):
    text, message = MALFORMED[case]
    with pytest.raises(RubricError, match=message):
        parse_rubric(text, "demo.yaml")


def test_the_good_rubric_parses():
    rubric = parse_rubric(GOOD, "demo.yaml")
    assert [c.name for c in rubric.criteria] == ["warmth", "clarity"]
    assert rubric.criterion("clarity").values == [0.0, 1.0]
    check_template(rubric)


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ criterion.name }} only", r"must quote \{\{ completion \}\} exactly once"),
        ("{{ completion }} <completion>{{ completion }}</completion>", "exactly once"),
        ("<completion>{{ completion }}</completion>{{ respons }}", "'respons' is undefined"),
        ("<completion>{{ completion }}</completion>{{ rubric.__class__.__mro__ }}", "unsafe template"),
        ("<completion>{{ completion }</completion>", "unexpected '}'"),
    ],
)
def test_bad_templates_are_refused_before_training(template, message):
    rubric = parse_rubric(GOOD + f"judge_template: {template!r}\n", "demo.yaml")
    with pytest.raises(
        RubricError, match=rf"demo\.yaml: judge_template: .*{message}|demo\.yaml: judge_template: {message}"
    ):
        check_template(rubric)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(RubricError, match=re.escape(f"{tmp_path / 'nope.yaml'}: rubric file not found")):
        load_rubric(tmp_path / "nope.yaml")


def test_combined_rubrics_keep_guards_and_refuse_clashes():
    main, guard = load_rubric(RUBRICS_DIR / "hmx_feel.yaml"), load_rubric(RUBRICS_DIR / "honesty_guard.yaml")
    combined = combine_rubrics(main, [guard]).with_direction("reverse")
    assert [c.name for c in combined.criteria][-2:] == ["honesty", "non_sycophancy"]
    assert {c.name: c.direction for c in combined.criteria if c.guard} == {
        "honesty": "forward",
        "non_sycophancy": "forward",
    }
    assert all(c.direction == "reverse" for c in combined.criteria if not c.guard)
    with pytest.raises(RubricError, match=r"honesty_guard\.yaml: criteria: 'honesty' is already a criterion"):
        combine_rubrics(main, [guard, guard])
