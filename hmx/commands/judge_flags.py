"""The judge flags of ``hmx rubric score`` and ``validate``, derived in one place from the schema and the mode table.

Each option of :func:`hmx.judge.registry.mode_options` (the engine's flat ``max_batch_tokens``, each mode's node:
``contrastive.scale``, ``probe.head``, ...) is a flag named after its key, dots and underscores as dashes
(``--contrastive-scale``, ``--probe-head``), with the flag of its deprecated flat key as an alias (``--probe``,
``--examples``: :data:`hmx.config_renames.RENAMED`); its type and default are JudgeConfig's, or those of the
options class the mode's row names (:func:`hmx.judge.registry.option_classes`).
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any

from hmx.config import JudgeConfig, node_dict, parse_node
from hmx.config_renames import RENAMED
from hmx.judge.registry import MODES, check_judge_config, mode_options, option_classes

SHARED_OPTIONS = ("weights", "batch_size")  # the judge options every mode reads that the sub-commands offer


def _field(dotted: str) -> tuple[type, Any]:
    """The type (``int | None``: int) and default of a JudgeConfig option, or of a mode's (``contrastive.scale``)."""
    node, _, name = dotted.rpartition(".")
    schema: Any = option_classes()[node] if node else JudgeConfig
    hint = typing.get_type_hints(schema)[name]
    kind = next(k for k in typing.get_args(hint) or [hint] if k is not type(None))
    default = next(f.default for f in dataclasses.fields(schema) if f.name == name)
    return kind, default


def flag_names(dotted: str) -> list[str]:
    """``--contrastive-scale`` for ``contrastive.scale``; then the flag of its old flat key, when that differs."""
    names = ["--" + dotted.replace(".", "-").replace("_", "-")]
    old = next((o for o, new in RENAMED["JudgeConfig"].items() if new == dotted), None)
    if old is not None and "--" + old.replace("_", "-") not in names:
        names.append("--" + old.replace("_", "-"))
    return names


def judge_options() -> dict[str, list[str]]:
    """Every judge option offered as a flag, dotted under ``judge``, and the modes that read it ([]: all)."""
    return {name: [] for name in SHARED_OPTIONS} | mode_options()


def add_judge_options(sub: argparse.ArgumentParser, preset: bool = False) -> None:
    """``--mode`` and a flag per judge option of :func:`judge_options`, defaults from JudgeConfig (``preset``: no
    defaults, so a flag left out keeps the ``--judge`` preset's value)."""
    sub.add_argument("--mode", choices=tuple(MODES), default=None if preset else "logprob")
    for dotted, users in judge_options().items():
        kind, default = _field(dotted)
        default = None if preset else default
        what = f"{'/'.join(users)} mode: " if users else ""
        names, shown = flag_names(dotted), "the --judge preset's" if preset else "%(default)s"
        if kind is bool:
            sub.add_argument(*names, dest=dotted, action=argparse.BooleanOptionalAction, default=default,
                             help=f"{what}judge.{dotted}")  # fmt: skip
        elif dotted == "weights":
            sub.add_argument(*names, dest=dotted, choices=("policy", "base"), default=default,
                             help="base: a run's adapter off")  # fmt: skip
        else:
            sub.add_argument(*names, dest=dotted, type=kind, default=default, metavar=dotted.split(".")[-1].upper(),
                             help=f"{what}judge.{dotted} (default: {shown})")  # fmt: skip


def given_options(args: argparse.Namespace) -> dict[str, Any]:
    """The judge options given on the command line (not None), as a nested node (``{"probe": {"head": F}}``)."""
    node: dict[str, Any] = {}
    for dotted in ("mode", "adapter", *judge_options()):
        value = getattr(args, dotted, None)
        if value is not None:
            *nodes, name = dotted.split(".")
            parent = node
            for key in nodes:
                parent = parent.setdefault(key, {})
            parent[name] = value
    return node


def judge_config(args: argparse.Namespace, base: JudgeConfig | None = None) -> JudgeConfig:
    """``base`` (else the defaults) with the judge flags given on top, parsed as any judge node is."""
    from omegaconf import OmegaConf

    start = node_dict(base or JudgeConfig())  # each mode's node beside the flat options, as a judge node has it
    merged = OmegaConf.merge(OmegaConf.create(start), given_options(args))
    cfg = parse_node(JudgeConfig, merged, "judge")
    check_judge_config(cfg)
    return cfg
