"""Rubric YAML → typed, validated objects.

Every error names the file, the YAML line where one is known, and the field, e.g.
``rubrics/x.yaml:12: criteria[1].scale[0].label: must be a non-empty string``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hmx.errors import InputError
from hmx.textfiles import read_text

DIRECTIONS = ("forward", "reverse")
GUARD_NAMES = ("overlong", "repetition")  # hmx's guard rewards (hmx/rewards/guards.py): TRL logs rewards/<name>/mean
REWARD_LIMIT = 1e15  # |weight x score| bound: TRL sums the weighted rewards and takes group std in float32
RUBRIC_KEYS = {"name", "description", "criteria", "judge_template"}
CRITERION_KEYS = {"name", "description", "weight", "scale", "direction", "guard"}
LEVEL_KEYS = {"label", "value", "anchor"}


class RubricError(InputError):
    """A rubric that cannot be used; the message names file, line and field."""


@dataclass(frozen=True)
class Level:
    label: str
    value: float
    anchor: str


@dataclass(frozen=True)
class Criterion:
    name: str
    description: str
    scale: tuple[Level, ...]
    weight: float = 1.0
    direction: str = "forward"
    guard: bool = False

    @property
    def labels(self) -> list[str]:
        return [level.label for level in self.scale]

    @property
    def values(self) -> list[float]:
        return [level.value for level in self.scale]

    @property
    def min_value(self) -> float:
        return min(self.values)

    @property
    def max_value(self) -> float:
        return max(self.values)

    def oriented(self, score: float) -> float:
        """The reward for a raw judge score: ``max + min - score`` when the criterion is reversed."""
        if self.direction == "reverse":
            return self.max_value + self.min_value - score
        return score


@dataclass(frozen=True)
class Rubric:
    name: str
    description: str
    criteria: tuple[Criterion, ...]
    source: str
    judge_template: str | None = None

    def criterion(self, name: str) -> Criterion:
        for criterion in self.criteria:
            if criterion.name == name:
                return criterion
        raise KeyError(name)

    def with_direction(self, direction: str) -> Rubric:
        """The contrastive counterpart: ``reverse`` flips every non-guard criterion's direction."""
        if direction not in DIRECTIONS:
            raise RubricError(f"{self.source}: rubric.direction: must be one of {DIRECTIONS}, got {direction!r}")
        if direction == "forward":
            return self
        flipped = tuple(
            c
            if c.guard
            else Criterion(
                name=c.name,
                description=c.description,
                scale=c.scale,
                weight=c.weight,
                direction="reverse" if c.direction == "forward" else "forward",
                guard=c.guard,
            )
            for c in self.criteria
        )
        return Rubric(self.name, self.description, flipped, self.source, self.judge_template)


class _LineDict(dict):
    """A mapping that remembers the YAML line of each key."""

    lines: dict[str, int]


class _LineLoader(yaml.SafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:  # type: ignore[override]
        mapping = _LineDict(super().construct_mapping(node, deep=deep))
        mapping.lines = {str(k.value): k.start_mark.line + 1 for k, _ in node.value}
        mapping.lines["__self__"] = node.start_mark.line + 1
        return mapping


def _line_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict:
    # SafeLoader's own map constructor copies into a plain dict, which would drop the lines
    return loader.construct_mapping(node, deep=True)


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _line_mapping)


class _Checker:
    """Raises RubricError with file:line: field prefixes."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, field: str, message: str, node: Any = None, key: str | None = None) -> RubricError:
        line = None
        if isinstance(node, _LineDict):
            line = node.lines.get(key or "__self__", node.lines.get("__self__"))
        where = f"{self.source}:{line}" if line else self.source
        return RubricError(f"{where}: {field}: {message}")

    def mapping(self, value: Any, field: str, allowed: set[str], parent: Any = None, key: str | None = None):
        if not isinstance(value, dict):
            raise self.fail(field or "(top level)", f"must be a mapping, got {type(value).__name__}", parent, key)
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise self.fail(
                f"{field}.{unknown[0]}" if field else unknown[0],
                f"unknown key (allowed: {', '.join(sorted(allowed))})",
                value,
                unknown[0],
            )
        return value

    def text(self, node: dict, key: str, field: str, required: bool = True) -> str:
        value = node.get(key)
        if value is None and not required:
            return ""
        if not isinstance(value, str) or not value.strip():
            raise self.fail(f"{field}.{key}" if field else key, "must be a non-empty string", node, key)
        return value.strip()


def _parse_level(check: _Checker, raw: Any, field: str, parent: Any, index: int) -> Level:
    node = check.mapping(raw, field, LEVEL_KEYS, parent)
    label = node.get("label")
    if isinstance(label, int) and not isinstance(label, bool):
        label = str(label)
    if not isinstance(label, str) or not label.strip() or label != label.strip():
        raise check.fail(f"{field}.label", "must be a non-empty string without surrounding spaces", node, "label")
    value = node.get("value", label)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise check.fail(
            f"{field}.value", f"needs a number (label {label!r} is not numeric, so give value:)", node, "value"
        ) from None
    if not math.isfinite(number):
        raise check.fail(f"{field}.value", "must be finite", node, "value")
    anchor = check.text(node, "anchor", field)
    return Level(label=label, value=number, anchor=anchor)


def _parse_criterion(check: _Checker, raw: Any, field: str, parent: Any) -> Criterion:
    node = check.mapping(raw, field, CRITERION_KEYS, parent)
    name = check.text(node, "name", field)
    if not name.replace("_", "").replace("-", "").isalnum():
        raise check.fail(f"{field}.name", f"{name!r}: use letters, digits, '_' or '-' only", node, "name")
    if name in GUARD_NAMES:
        raise check.fail(
            f"{field}.name",
            f"{name!r} is the name of an hmx guard (rewards/{name}/mean); rename the criterion",
            node,
            "name",
        )
    description = check.text(node, "description", field)
    raw_scale = node.get("scale")
    if not isinstance(raw_scale, list) or len(raw_scale) < 2:
        raise check.fail(f"{field}.scale", "must be a list of at least two levels", node, "scale")
    scale = tuple(_parse_level(check, lvl, f"{field}.scale[{i}]", node, i) for i, lvl in enumerate(raw_scale))
    labels = [level.label for level in scale]
    if len(set(labels)) != len(labels):
        raise check.fail(f"{field}.scale", f"labels must be distinct, got {labels}", node, "scale")
    if len({level.value for level in scale}) < 2:
        raise check.fail(f"{field}.scale", "values must not all be equal", node, "scale")
    weight = node.get("weight", 1.0)
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight):
        raise check.fail(f"{field}.weight", f"must be a finite number, got {weight!r}", node, "weight")
    largest = abs(float(weight)) * max(abs(level.value) for level in scale)
    if largest > REWARD_LIMIT:
        raise check.fail(
            f"{field}.weight",
            f"{weight!r} x the largest score gives {largest:.3g}, beyond what float32 rewards hold "
            f"(|weight x score| <= {REWARD_LIMIT:.0e}); use a smaller weight",
            node,
            "weight",
        )
    direction = node.get("direction", "forward")
    if direction not in DIRECTIONS:
        raise check.fail(f"{field}.direction", f"must be one of {DIRECTIONS}, got {direction!r}", node, "direction")
    guard = node.get("guard", False)
    if not isinstance(guard, bool):
        raise check.fail(f"{field}.guard", f"must be true or false, got {guard!r}", node, "guard")
    return Criterion(name, description, scale, float(weight), direction, guard)


def parse_rubric(text: str, source: str) -> Rubric:
    """Parse and validate rubric YAML text; ``source`` names it in errors."""
    check = _Checker(source)
    try:
        raw = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - _LineLoader is a SafeLoader
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        raise RubricError(f"{where}: not valid YAML: {getattr(err, 'problem', err)}") from None
    node = check.mapping(raw, "", RUBRIC_KEYS)
    name = check.text(node, "name", "")
    description = check.text(node, "description", "", required=False)
    raw_criteria = node.get("criteria")
    if not isinstance(raw_criteria, list) or not raw_criteria:
        raise check.fail("criteria", "must be a non-empty list of criteria", node, "criteria")
    criteria = tuple(_parse_criterion(check, c, f"criteria[{i}]", node) for i, c in enumerate(raw_criteria))
    names = [c.name for c in criteria]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise check.fail("criteria", f"criterion names must be unique, repeated: {duplicates}", node, "criteria")
    template = node.get("judge_template")
    if template is not None and (not isinstance(template, str) or not template.strip()):
        raise check.fail("judge_template", "must be a non-empty string", node, "judge_template")
    return Rubric(name, description, criteria, source, template)


def combine_rubrics(main: Rubric, extras: Sequence[Rubric]) -> Rubric:
    """``main`` with the criteria of each extra rubric (e.g. a guard) appended, under main's name and template.

    Criterion names must stay unique; an extra rubric with a judge_template of its own is refused
    (one judge prompt layout per run keeps the shared-prefix packing and the docs simple).
    """
    criteria = list(main.criteria)
    for extra in extras:
        if extra.judge_template is not None and extra.judge_template != main.judge_template:
            raise RubricError(
                f"{extra.source}: judge_template: an extra rubric cannot bring its own template "
                f"(combined criteria are judged with {main.source}'s)"
            )
        for criterion in extra.criteria:
            if any(c.name == criterion.name for c in criteria):
                raise RubricError(
                    f"{extra.source}: criteria: {criterion.name!r} is already a criterion of the combined rubric "
                    f"({main.source}); criterion names must be unique"
                )
            criteria.append(criterion)
    sources = " + ".join([main.source, *(extra.source for extra in extras)])
    return Rubric(main.name, main.description, tuple(criteria), sources, main.judge_template)


def load_rubric(path: str | Path) -> Rubric:
    """Load a rubric file; a missing file or bad content raises RubricError naming it."""
    path = Path(path)
    if not path.is_file():
        raise RubricError(f"{path}: rubric file not found")
    return parse_rubric(read_text(path, error=RubricError), str(path))
