"""``hmx train judge.validate=PATH``: check that the judge discriminates before any GPU hour is spent.

The run's own judge (same mode, config and weights as training will use) scores the pair file
(``judge.validate_split`` only, when set) with the freshly loaded policy, whose adapter does
not exist yet, so policy and base weights agree. The table is printed, with the learned-surface
bar of ``hmx rubric validate`` (:mod:`hmx.judge.validity.surface_bar`: unigram, bigram and fluency
baselines, the margin over the best and the verdict, by the same rule); a judge whose overall 95%
interval reaches chance, or that is not valid by that rule, gets a loud warning; with
``judge.min_accuracy`` set, an accuracy below it stops the run before its directory is made (exit 2),
and with ``judge.require_valid=true`` so does a judge that fails the bar. The figures are logged as
``judge/validity/*`` (the bar as ``judge/validity/surface/*``) with the first training step
(:meth:`SelfJudgeRewards.log_once`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import torch

from hmx.config import ConfigError, JudgeConfig
from hmx.judge.protocol import Judge
from hmx.judge.validity.accuracy import Validity, format_table, validate
from hmx.judge.validity.surface_bar import SurfaceBar, baseline_fit, format_bar, surface_bar
from hmx.rubrics.pairs import LabelledPair, load_pairs
from hmx.rubrics.schema import Rubric

BANNER = "!" * 78


def pairs_to_check(cfg: JudgeConfig, rubric: Rubric) -> list[LabelledPair]:
    """The pairs of ``judge.validate`` (checked now, before anything is loaded); [] when validation is off."""
    if cfg.min_accuracy is not None and not cfg.validate:
        raise ConfigError("config field 'judge.min_accuracy': needs judge.validate=PATH (a labelled pair file)")
    if cfg.require_valid and not cfg.validate:
        raise ConfigError("config field 'judge.require_valid': needs judge.validate=PATH (a labelled pair file)")
    if cfg.min_accuracy is not None and not 0.0 <= cfg.min_accuracy <= 1.0:
        raise ConfigError(f"config field 'judge.min_accuracy': must be within [0, 1], got {cfg.min_accuracy}")
    return load_pairs(cfg.validate, rubric, cfg.validate_split) if cfg.validate else []


def check_judge(
    cfg: JudgeConfig,
    rubric: Rubric,
    pairs: list[LabelledPair],
    build: Callable[[Rubric], Judge],
    model: torch.nn.Module,
    device: torch.device,
    model_name: str,
    tokenizer=None,
) -> tuple[Validity, SurfaceBar]:
    """Validate, measure the surface bar (fluency when ``tokenizer`` is given), report on stderr, and refuse
    (ConfigError) below ``judge.min_accuracy`` or, with ``judge.require_valid``, below the bar."""
    validity = validate(build, rubric, model, pairs, device, cfg.mode, model_name)
    judge_fit = None
    if cfg.mode == "probe" and cfg.probe.head:  # and what a bag of words fitted on the probe's pairs gets
        from hmx.judge.modes.probe import load_probe
        from hmx.judge.validity.probe_check import probe_fit_pairs, validate_probe

        info = load_probe(cfg.probe.head).info
        validity = validate_probe(validity, pairs, info, rubric)
        judge_fit = probe_fit_pairs(info, rubric)
    fit, note = baseline_fit(rubric, str(cfg.validate), [cfg.validate_split], judge_fit)
    fluency = None
    if tokenizer is not None:
        from hmx.judge.validity.fluency import fluency_outcomes

        fluency = fluency_outcomes(model, tokenizer, pairs, device)
    bar = surface_bar(validity, pairs, fit, note, fluency, cfg.validate_split or "(all)")
    print(format_table(validity), file=sys.stderr, flush=True)
    print(format_bar(bar, cfg.mode), file=sys.stderr, flush=True)
    overall = validity.overall
    if overall.at_chance:
        print(
            f"{BANNER}\nhmx train: WARNING: the judge ({cfg.mode} mode) is at chance on {cfg.validate}: accuracy "
            f"{overall.accuracy:.2f}, 95% CI [{overall.ci_low:.2f}, {overall.ci_high:.2f}]. Its rewards are close "
            f"to noise; try another judge.mode (hmx rubric validate compares them) or a larger model.\n{BANNER}",
            file=sys.stderr,
            flush=True,
        )
    elif not bar.valid:
        print(
            f"{BANNER}\nhmx train: WARNING: the judge ({cfg.mode} mode) does not clear the surface bar on "
            f"{cfg.validate}: {overall.accuracy:.2f} against {bar.best} {bar.best_accuracy:.2f} (margin "
            f"{bar.margin:+.2f}, 95% CI [{bar.ci_low:+.2f}, {bar.ci_high:+.2f}]). What it rewards, a model of the "
            f"replies' surface ranks as well; GRPO may learn that surface.\n{BANNER}",
            file=sys.stderr,
            flush=True,
        )
    if cfg.min_accuracy is not None and overall.accuracy < cfg.min_accuracy:
        raise ConfigError(
            f"config field 'judge.min_accuracy': the judge ranks {overall.accuracy:.3f} of the pairs in "
            f"{cfg.validate} correctly (95% CI [{overall.ci_low:.2f}, {overall.ci_high:.2f}]), below "
            f"{cfg.min_accuracy}; not training on its rewards"
        )
    if cfg.require_valid and not bar.valid:
        raise ConfigError(
            f"config field 'judge.require_valid': the judge's margin over the best surface baseline ({bar.best}) on "
            f"{cfg.validate} is {bar.margin:+.3f}, 95% CI [{bar.ci_low:+.2f}, {bar.ci_high:+.2f}]; the bar is "
            ">= 0.10 with an interval above 0; not training on its rewards"
        )
    return validity, bar
