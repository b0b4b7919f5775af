"""Non-judge guards: TRL's overlong and repetition penalties, their config, and their logging in a real run."""

from __future__ import annotations

import json

import pytest

from hmx.config import ConfigError, GuardsConfig, OverlongGuardConfig, RepetitionGuardConfig, typed_node
from hmx.rewards.guards import GUARD_NAMES, guard_functions, guard_weights


def test_overlong_is_zero_then_linear_then_minus_one():
    overlong, _ = guard_functions(GuardsConfig(overlong=OverlongGuardConfig(soft_fraction=0.25)), 16)
    assert overlong.__name__ == "overlong"
    assert overlong(completion_ids=[[1] * 12, [1] * 14, [1] * 16, [1] * 17]) == [0.0, -0.5, -1.0, -1.0]


def test_repetition_penalises_repeated_ngrams():
    _, repetition = guard_functions(GuardsConfig(repetition=RepetitionGuardConfig(ngram_size=2, max_penalty=-2.0)), 16)
    assert repetition.__name__ == "repetition"
    assert repetition(completion_ids=[[1, 2, 3, 4], [5, 5, 5, 5, 5], [7]]) == [0.0, pytest.approx(-1.5), 0.0]


@pytest.mark.parametrize(
    ("cfg", "field"),
    [
        (GuardsConfig(overlong=OverlongGuardConfig(soft_fraction=0.0)), "guards.overlong.soft_fraction"),
        (GuardsConfig(repetition=RepetitionGuardConfig(ngram_size=0)), "guards.repetition.ngram_size"),
        (GuardsConfig(repetition=RepetitionGuardConfig(max_penalty=0.5)), "guards.repetition.max_penalty"),
        (GuardsConfig(repetition=RepetitionGuardConfig(weight=-1.0)), "guards.repetition.weight"),
    ],
)
def test_bad_guard_settings_name_the_field(cfg, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        guard_weights(cfg)
        guard_functions(cfg, 32)


def test_presets(make_cfg):
    assert guard_weights(typed_node(make_cfg(), "guards")) == [0.0, 0.0]  # monitor: logged, not trained on
    assert guard_weights(typed_node(make_cfg("guards=penalize"), "guards")) == [1.0, 1.0]
    with pytest.raises(ConfigError, match="guards.*ngram"):
        typed_node(make_cfg("+guards.repetition.ngram=2"), "guards")


@pytest.mark.slow  # a real training run or process: make test, not make test-fast
def test_guards_are_logged_like_the_criteria(smoke_run):
    rows = [json.loads(line) for line in (smoke_run / "metrics.jsonl").read_text().splitlines()]
    logged = [r for r in rows if "reward" in r]
    assert logged
    for name in GUARD_NAMES:
        values = [r[f"rewards/{name}/mean"] for r in logged]
        assert all(-1.0 <= v <= 0.0 for v in values), (name, values)
    # debug=smoke caps completions at 16 tokens: most reach the cap, so the overlong guard is active
    assert min(r["rewards/overlong/mean"] for r in logged) < 0.0


def test_honesty_guard_preset_trains_expression_with_the_guard(make_cfg):
    from hmx.resources import rubric_path
    from hmx.rubrics.schema import combine_rubrics, load_rubric

    cfg = make_cfg("experiment=hmx_feel_honest_qwen3_4b")
    rubric_cfg = typed_node(cfg, "rubric")
    assert cfg.model.name_or_path == make_cfg("experiment=hmx_feel_qwen3_4b").model.name_or_path
    assert guard_weights(typed_node(cfg, "guards")) == [1.0, 1.0] and cfg.judge.drift_steps > 0
    extras = [load_rubric(rubric_path(path)) for path in rubric_cfg.extra]
    rubric = combine_rubrics(load_rubric(rubric_path(rubric_cfg.path)), extras)
    guards = [c.name for c in rubric.criteria if c.guard]
    assert guards == ["honesty", "non_sycophancy"] and len(rubric.criteria) == 5
