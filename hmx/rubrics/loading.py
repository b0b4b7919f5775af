"""A rubric by name or path, schema- and template-checked: what every command and the notebook load."""

from __future__ import annotations

from collections.abc import Sequence

from hmx.errors import print_error
from hmx.resources import rubric_path
from hmx.rubrics.render import check_template
from hmx.rubrics.schema import Rubric, RubricError, combine_rubrics, load_rubric


def load_checked(name: str, extra: Sequence[str] = ()) -> Rubric:
    """A rubric by name or path (plus extra rubrics' criteria), schema- and template-checked."""
    rubric = combine_rubrics(load_rubric(rubric_path(name)), [load_rubric(rubric_path(e)) for e in extra])
    check_template(rubric)
    return rubric


def lint(paths: Sequence[str]) -> int:
    """Print one line per file; the number of files with errors."""
    failures = 0
    for path in paths:
        try:
            rubric = load_checked(path)
        except RubricError as err:
            failures += 1
            print_error("rubric lint", err)
        else:
            levels = sum(len(c.scale) for c in rubric.criteria)
            print(f"ok: {path} ({rubric.name}: {len(rubric.criteria)} criteria, {levels} levels)")
    return failures
