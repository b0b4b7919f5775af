"""What a resumed run may change in its config: each field is refused, applied, or applied with a warning.

A resume continues the run recorded in ``config.yaml``. Fields the checkpoint overrides (the
optimizer's learning rate and betas, the RNG seed), fields that would not load (the model, the
LoRA shape) and fields that make it another experiment (rubric, data, batch shape, judge mode,
guards) are **refused**: the resumed run would record a value it does not use, crash, or train
something else. Bookkeeping fields (``max_steps``, saving, logging, paths, judge batching) are
**applied** and recorded. The judge's part needs no edit per mode: every key of a mode's options node
(``judge.<node>.*``, any node but ``judge.external``) is refused unless its options class declares it
``BOOKKEEPING`` (the classes of the mode table, passed in by hmx.train: this layer is below the judge),
and the batching engine's flat options (:data:`hmx.config.ENGINE_OPTIONS`) are applied. Every other change
is applied, recorded and **warned** about: the continuation is no longer what an uninterrupted
run would have done. The content of the files the config names (``inputs.json``,
hmx/run_inputs.py) is checked the same way, by the field that names the file: a rubric edited in
place is refused. A run recorded with the previous release's flat judge keys is compared under the
new names (hmx.config_renames.migrate_node). All of this is checked before anything is written, so
``config.yaml`` and ``inputs.json`` always state what is in effect.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from hmx.config import (
    ENGINE_OPTIONS,
    ConfigError,
    JudgeConfig,
    ModeOptions,
    node_dict,
    parse_node,
    renamed_field,
)
from hmx.config_renames import migrate_node
from hmx.tracking import REDACTED, redact

# Prefixes of dotted config keys; a key matches a prefix ending in "." or equal to it.
REFUSED: tuple[str, ...] = (
    "model.",
    "peft.",
    "rubric.",
    "data.",
    "guards.",
    "seed",
    "judge.mode",
    "judge.weights",
    "judge.prefill",
    "judge.max_prompt_chars",
    "judge.max_completion_chars",
    "trainer.learning_rate",
    "trainer.lr_scheduler_type",
    "trainer.lr_scheduler_kwargs",
    "trainer.warmup_ratio",
    "trainer.warmup_steps",
    "trainer.optim",
    "trainer.optim_args",
    "trainer.weight_decay",
    "trainer.adam_beta1",
    "trainer.adam_beta2",
    "trainer.adam_epsilon",
    "trainer.per_device_train_batch_size",
    "trainer.gradient_accumulation_steps",
    "trainer.num_generations",
    "trainer.steps_per_generation",
    "trainer.generation_batch_size",
    "trainer.num_iterations",
    "trainer.beta",
    "trainer.loss_type",
)
APPLIED: tuple[str, ...] = (
    "run_name",
    "paths.",
    "logger.",
    "audit.",  # monitoring only: the audit never changes a reward or an update
    "before_after",  # reporting only: answered at the end, "before" with the adapter off
    "trainer.max_steps",
    "trainer.save_steps",
    "trainer.save_strategy",
    "trainer.save_total_limit",
    "trainer.logging_steps",
    "trainer.log_completions",
    "trainer.num_completions_to_print",
    "judge.drift_steps",
    "judge.drift_probes",
    *(f"judge.{name}" for name in ENGINE_OPTIONS),  # batching: the same scores in another number of calls
)
OptionClasses = Mapping[str, type[ModeOptions]]  # judge.<mode> -> its options' class (hmx.judge.registry)


def judge_rules(classes: OptionClasses | None = None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The refused and the applied judge keys the mode options ``classes`` imply: each option of a mode's options
    node is refused (it changes the reward) unless its class lists it in ``BOOKKEEPING``; the engine's batching
    options are applied. A node no class names is refused whole (:func:`_mode_option`)."""
    refused, applied = [], [f"judge.{name}" for name in ENGINE_OPTIONS]  # type: list[str], list[str]
    for node, options in (classes or {}).items():
        for item in fields(options):
            kept = applied if item.name in options.BOOKKEEPING else refused
            kept.append(f"judge.{node}.{item.name}")
    return tuple(refused), tuple(applied)


_JUDGE_NODES = {item.name for item in fields(JudgeConfig)}


def _mode_option(key: str) -> bool:
    """``judge.<node>.<option>`` of a node that is no JudgeConfig field: a mode's option (refused by default)."""
    parts = key.split(".")
    return len(parts) > 2 and parts[0] == "judge" and parts[1] not in _JUDGE_NODES


def _matches(key: str, prefixes: tuple[str, ...]) -> bool:
    return any(key == p or (p.endswith(".") and key.startswith(p)) for p in prefixes)


def read_run_config(path: Path) -> dict[str, Any]:
    """A run's ``config.yaml`` as a plain dict; an unreadable one fails naming the file."""
    try:
        loaded = OmegaConf.load(path)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, OmegaConfBaseException) as err:
        reason = " ".join(str(err).split())  # YAML errors span lines
        raise ConfigError(f"{path}: the run's config cannot be read ({type(err).__name__}: {reason})") from None
    if not isinstance(loaded, DictConfig):
        raise ConfigError(f"{path}: the run's config must be a YAML mapping, got {type(loaded).__name__}")
    return dict(OmegaConf.to_container(loaded))  # type: ignore[arg-type]


def config_changes(previous: Path, cfg: DictConfig, classes: OptionClasses | None = None) -> dict[str, list[str]]:
    """Check a resume's config against the run's ``config.yaml``: refused changes raise ConfigError.

    ``classes``: the mode options' classes (hmx.judge.registry.option_classes): their defaults fill a node a run
    did not record, their ``BOOKKEEPING`` options are applied; every other mode option is refused.
    Returns the changed keys as ``{"applied": [...], "warned": [...]}``; nothing is written.
    """
    if not previous.is_file():
        return {"applied": [], "warned": []}
    classes = classes or {}
    old = _flat(_current_judge(read_run_config(previous), False, classes))  # a run recorded with flat keys
    new = _flat(_current_judge(redact(OmegaConf.to_container(cfg, resolve=True)), True, classes))
    keys = (old.keys() | new.keys()) - {"resume"}  # resume itself changes on every resume
    changed = sorted(k for k in keys if old.get(k) != new.get(k) and old.get(k) != REDACTED)
    bookkeeping = set(judge_rules(classes)[1])
    refused = [k for k in changed if (_matches(k, REFUSED) or _mode_option(k)) and k not in bookkeeping]
    if refused:
        shown = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in refused)
        raise ConfigError(
            f"config field '{refused[0]}': a resumed run cannot change {shown} (recorded in {previous}); "
            "resume with the run's values, or start a new run (another run_name)"
        )
    applied = [k for k in changed if _matches(k, APPLIED) or k in bookkeeping]
    return {"applied": applied, "warned": [k for k in changed if k not in applied]}


def input_changes(
    recorded: dict[str, Any] | None, current: dict[str, dict[str, str]], where: Path
) -> dict[str, list[str]]:
    """Check the content hashes of the run's input files (hmx/run_inputs.py) as :func:`config_changes` checks fields.

    A file named by a refused field (the rubric, the data, the probe head, the few-shot examples) whose content
    changed since ``where`` recorded it raises ConfigError; others are returned as ``{"applied", "warned"}``.
    A run that recorded nothing (older than the record) is not checked.
    """
    changed = []
    recorded = {renamed_field(field): then for field, then in (recorded or {}).items()}  # an old run's names
    for field, now in current.items():
        then = recorded.get(field)
        if isinstance(then, dict) and then.get("sha256") not in (None, now["sha256"]):
            changed.append((field, now["path"], str(then["sha256"]), now["sha256"]))
    refused = [c for c in changed if _matches(c[0], REFUSED) or _mode_option(c[0])]  # a mode's file: its options
    if refused:
        field, path, old, new = refused[0]
        raise ConfigError(
            f"config field '{field}': {path} was edited since the run started (sha256 {old[:12]}... -> "
            f"{new[:12]}..., recorded in {where}); a resumed run cannot change what it trains on: restore the file, "
            "or start a new run (another run_name)"
        )
    applied = [f"{c[0]} (file content)" for c in changed if _matches(c[0], APPLIED)]
    warned = [f"{c[0]} (file content)" for c in changed if not _matches(c[0], APPLIED)]  # refused raised above
    return {"applied": applied, "warned": warned}


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flat(item, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): value}


def _current_judge(config: dict[str, Any], warn: bool, classes: OptionClasses) -> dict[str, Any]:
    """``config`` with its judge node under the current keys and with the defaults of JudgeConfig and of the mode
    options ``classes`` filled in: a run recorded before a key moved or was added compares equal where its values
    are the same."""
    judge = migrate_node(JudgeConfig, config.get("judge"), "judge", warn=warn)
    with contextlib.suppress(ConfigError):  # a recorded key this version no longer has: compared as recorded
        plain = node_dict(parse_node(JudgeConfig, judge, "judge"))
        for node, options in classes.items():
            with contextlib.suppress(ConfigError):
                plain[node] = asdict(parse_node(options, plain.get(node), f"judge.{node}"))
        judge = plain
    return config if judge is None else {**config, "judge": judge}
