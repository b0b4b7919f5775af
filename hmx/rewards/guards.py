"""Non-judge guards: overlong and repetition penalties, as extra TRL reward functions.

Both are TRL's own (``trl.rewards``): the soft overlong punishment of DAPO and the n-gram
repetition penalty. hmx names them ``overlong`` and ``repetition`` so TRL logs
``rewards/overlong/mean`` and ``rewards/repetition/mean`` next to the criteria, and takes
their weights from the ``guards`` config node. A weight of 0 (the default, ``guards=monitor``)
logs a guard without training on it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from trl.rewards import get_repetition_penalty_reward, get_soft_overlong_punishment

from hmx.config import ConfigError, GuardsConfig
from hmx.rubrics.schema import GUARD_NAMES, REWARD_LIMIT, Rubric


def overlong_guard(max_completion_length: int, soft_fraction: float) -> Callable[..., list[float]]:
    """0 up to ``(1 - soft_fraction) * max``, then linearly down to -1 at ``max`` tokens, -1 beyond."""
    if not 0.0 < soft_fraction <= 1.0:
        raise ConfigError(f"config field 'guards.overlong.soft_fraction': must be in (0, 1], got {soft_fraction}")
    soft_tokens = max(1, round(soft_fraction * max_completion_length))
    guard: Any = get_soft_overlong_punishment(max_completion_length, soft_tokens)
    guard.__name__ = "overlong"
    return guard


def repetition_guard(ngram_size: int, max_penalty: float) -> Callable[..., list[float]]:
    """``(1 - unique n-grams / n-grams) * max_penalty`` over the completion's token ids."""
    if ngram_size < 1:
        raise ConfigError(f"config field 'guards.repetition.ngram_size': must be at least 1, got {ngram_size}")
    if max_penalty > 0:
        raise ConfigError(f"config field 'guards.repetition.max_penalty': must not be positive, got {max_penalty}")
    guard: Any = get_repetition_penalty_reward(ngram_size, max_penalty)
    guard.__name__ = "repetition"
    return guard


def guard_weights(cfg: GuardsConfig) -> list[float]:
    """The guards' TRL ``reward_weights``, in GUARD_NAMES order (0: logged only)."""
    weights = [float(cfg.overlong.weight), float(cfg.repetition.weight)]
    for name, weight in zip(GUARD_NAMES, weights, strict=True):
        if not weight >= 0.0:
            raise ConfigError(f"config field 'guards.{name}.weight': must be >= 0 (a penalty), got {weight}")
    return weights


def guard_functions(cfg: GuardsConfig, max_completion_length: int) -> list[Callable[..., list[float]]]:
    """The guard reward functions, in GUARD_NAMES order; bad settings raise ConfigError naming the field."""
    return [
        overlong_guard(max_completion_length, cfg.overlong.soft_fraction),
        repetition_guard(cfg.repetition.ngram_size, cfg.repetition.max_penalty),
    ]


def check_reward_weights(rubric: Rubric, cfg: GuardsConfig) -> None:
    """The largest possible total reward must stay far inside float32; all-zero weights train on nothing (warned)."""
    criteria = sum(abs(c.weight) * max(abs(v) for v in c.values) for c in rubric.criteria)
    guards = abs(cfg.overlong.weight) + abs(cfg.repetition.weight * cfg.repetition.max_penalty)
    if criteria + guards > REWARD_LIMIT:
        raise ConfigError(
            f"config field 'guards': rubric and guard weights allow a total reward of {criteria + guards:.3g}, beyond "
            f"what float32 rewards hold (<= {REWARD_LIMIT:.0e}); use smaller weights"
        )
    if criteria == 0 and guards == 0:
        print(
            f"hmx: warning: every reward weight is 0 ({rubric.source} and guards): all completions get the same "
            "reward, so nothing is learnt; give a criterion a non-zero weight",
            flush=True,
        )
