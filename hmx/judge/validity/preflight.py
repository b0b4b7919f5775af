"""``hmx train judge.validate=PATH``: check that the judge discriminates before any GPU hour is spent.

The run's own judge (same mode, config and weights as training will use) scores the pair file
(``judge.validate_split`` only, when set) with the freshly loaded policy, whose adapter does
not exist yet, so policy and base weights agree. The table is printed; a judge whose overall
95% interval reaches chance gets a loud warning; with ``judge.min_accuracy`` set, an accuracy
below it stops the run before its directory is made (exit 2). The figures are logged as
``judge/validity/*`` with the first training step (:meth:`SelfJudgeRewards.log_once`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import torch

from hmx.config import ConfigError, JudgeConfig
from hmx.judge.protocol import Judge
from hmx.judge.validity.accuracy import Validity, format_table, validate
from hmx.rubrics.pairs import LabelledPair, load_pairs
from hmx.rubrics.schema import Rubric

BANNER = "!" * 78


def pairs_to_check(cfg: JudgeConfig, rubric: Rubric) -> list[LabelledPair]:
    """The pairs of ``judge.validate`` (checked now, before anything is loaded); [] when validation is off."""
    if cfg.min_accuracy is not None and not cfg.validate:
        raise ConfigError("config field 'judge.min_accuracy': needs judge.validate=PATH (a labelled pair file)")
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
) -> Validity:
    """Validate, report on stderr, and refuse (ConfigError) below ``judge.min_accuracy``."""
    validity = validate(build, rubric, model, pairs, device, cfg.mode, model_name)
    if cfg.mode == "probe" and cfg.probe:  # and what a bag of words fitted on the probe's pairs gets
        from hmx.judge.modes.probe import load_probe
        from hmx.judge.validity.probe_check import validate_probe

        validity = validate_probe(validity, pairs, load_probe(cfg.probe).info, rubric)
    print(format_table(validity), file=sys.stderr, flush=True)
    overall = validity.overall
    if overall.at_chance:
        print(
            f"{BANNER}\nhmx train: WARNING: the judge ({cfg.mode} mode) is at chance on {cfg.validate}: accuracy "
            f"{overall.accuracy:.2f}, 95% CI [{overall.ci_low:.2f}, {overall.ci_high:.2f}]. Its rewards are close "
            f"to noise; try another judge.mode (hmx rubric validate compares them) or a larger model.\n{BANNER}",
            file=sys.stderr,
            flush=True,
        )
    if cfg.min_accuracy is not None and overall.accuracy < cfg.min_accuracy:
        raise ConfigError(
            f"config field 'judge.min_accuracy': the judge ranks {overall.accuracy:.3f} of the pairs in "
            f"{cfg.validate} correctly (95% CI [{overall.ci_low:.2f}, {overall.ci_high:.2f}]), below "
            f"{cfg.min_accuracy}; not training on its rewards"
        )
    return validity
