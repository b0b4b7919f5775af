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

The check is a property of the untrained judge: when ``rubrics/records/judge_checks.yaml`` holds it for
exactly this judge (the same weights, tokenizer, head or adapter, rubric, pair file and split, by content
hash: :mod:`hmx.judge.validity.records`), its recorded figures are shown and gated instead, and the
start-up line says so, naming the record. Otherwise it is computed, with a progress bar.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from tqdm.auto import tqdm

from hmx.config import ConfigError, JudgeConfig
from hmx.judge.protocol import Judge
from hmx.judge.registry import options
from hmx.judge.validity.accuracy import Validity, format_table, validate
from hmx.judge.validity.records import CheckRecords, recorded_bar, recorded_validity
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


@contextmanager
def progress_bar(desc: str, unit: str = "reply", enabled: bool = True) -> Iterator[Callable[[int, int], None]]:
    """A tqdm bar fed by ``progress(done, total)`` callbacks; a ``done`` below the last one starts a new part
    (validity scores a per-criterion judge one criterion at a time), added to the bar."""
    bar = tqdm(desc=desc, unit=unit, total=0, leave=False, disable=not enabled, dynamic_ncols=True)
    state = {"offset": 0, "last": 0, "total": 0}

    def update(done: int, total: int) -> None:
        if done < state["last"]:  # the next part
            state["offset"] += state["total"]
        state["last"], state["total"] = done, total
        bar.total = state["offset"] + total
        bar.n = state["offset"] + done
        bar.refresh()

    try:
        yield update
    finally:
        bar.close()


def check_judge(
    cfg: JudgeConfig,
    rubric: Rubric,
    pairs: list[LabelledPair],
    build: Callable[[Rubric], Judge],
    model: torch.nn.Module,
    device: torch.device,
    model_name: str,
    tokenizer=None,
    records: CheckRecords | None = None,
    key: dict[str, Any] | None = None,
) -> tuple[Validity, SurfaceBar]:
    """Validate, measure the surface bar (fluency when ``tokenizer`` is given), report on stderr, and refuse
    (ConfigError) below ``judge.min_accuracy`` or, with ``judge.require_valid``, below the bar. With
    ``records`` and ``key`` (:func:`hmx.judge.validity.records.check_key`) a recorded check of exactly this
    judge is reused, and a computed one is kept for the run directory."""
    entry = records.find(key, device) if records is not None and key is not None and tokenizer is not None else None
    if entry is not None and entry.get("bar"):
        validity, bar = recorded_validity(entry), recorded_bar(entry)
        print(
            f"hmx train: judge check: figures from the record {records.name if records else ''} (measured "
            f"{entry.get('measured')} on the same weights, tokenizer, head, rubric and pairs: their content hashes "
            "match), not recomputed",
            file=sys.stderr,
            flush=True,
        )
    else:
        print(
            f"hmx train: judge check: scoring the {len(pairs)} pairs of {cfg.validate}"
            f"{f' (split {cfg.validate_split})' if cfg.validate_split else ''} before training "
            "(judge.validate=null skips it)",
            file=sys.stderr,
            flush=True,
        )
        validity, bar = measure_judge(cfg, rubric, pairs, build, model, device, model_name, tokenizer)
        if records is not None and key is not None and tokenizer is not None:
            records.keep(key, device, validity, bar)
    assert bar is not None
    return report_judge(cfg, validity, bar)


def measure_judge(
    cfg: JudgeConfig,
    rubric: Rubric,
    pairs: list[LabelledPair],
    build: Callable[[Rubric], Judge],
    model: torch.nn.Module,
    device: torch.device,
    model_name: str,
    tokenizer=None,
) -> tuple[Validity, SurfaceBar]:
    """The judge's validity on ``pairs`` and the surface bar beside it (fluency when ``tokenizer`` is given)."""
    with progress_bar("judge check: the judge") as progress:
        validity = validate(build, rubric, model, pairs, device, cfg.mode, model_name, progress=progress)
    judge_fit = None
    if cfg.mode == "probe" and options(cfg, "probe").head:  # and what a bag of words fitted on the probe's pairs gets
        from hmx.judge.modes.probe import load_probe
        from hmx.judge.validity.probe_check import probe_fit_pairs, validate_probe

        info = load_probe(options(cfg, "probe").head).info
        validity = validate_probe(validity, pairs, info, rubric)
        judge_fit = probe_fit_pairs(info, rubric)
    fit, note = baseline_fit(rubric, str(cfg.validate), [cfg.validate_split], judge_fit)
    fluency = None
    if tokenizer is not None:
        from hmx.judge.validity.fluency import fluency_outcomes

        with progress_bar("judge check: fluency baseline") as progress:
            fluency = fluency_outcomes(model, tokenizer, pairs, device, progress=progress)
    return validity, surface_bar(validity, pairs, fit, note, fluency, cfg.validate_split or "(all)")


def report_judge(cfg: JudgeConfig, validity: Validity, bar: SurfaceBar) -> tuple[Validity, SurfaceBar]:
    """Print the figures and the warnings; refuse below ``judge.min_accuracy`` or, with
    ``judge.require_valid``, below the bar."""
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
