"""Config keys renamed in a release, moved to their new places for one release (with a message once per key).

The flat judge keys of the previous release (``judge.examples``, ``judge.probe`` as a file, ...) now live in a
mode's options node; :func:`migrate_node` moves them before :func:`hmx.config.parse_node` merges a node into its
schema, and :func:`renamed_overrides` lets such a key still be given on the command line.
"""

from __future__ import annotations

import copy
import sys
from dataclasses import fields, is_dataclass
from typing import Any, cast, get_args, get_type_hints

from omegaconf import DictConfig, OmegaConf

# A flat key of the previous release -> its place now (dotted, under the same node); kept for one release.
RENAMED: dict[str, dict[str, str]] = {  # by schema class name
    "JudgeConfig": {
        "contrastive_scale": "contrastive.scale",
        "examples": "fewshot.examples",
        "examples_per_criterion": "fewshot.per_criterion",
        "max_rationale_tokens": "generate.max_rationale_tokens",
        "probe": "probe.head",
    }
}
_warned: set[str] = set()


def migrate_node(schema: type, node: Any, name: str, warn: bool = True) -> Any:
    """``node`` with the deprecated keys of ``schema`` and of its nested nodes (:data:`RENAMED`) moved to their
    new places, as a plain dict (interpolations kept); ``node`` itself when it has none. Each old key met is named
    once per process on stderr (``warn``: a key the user wrote; a run's recorded config.yaml is migrated
    silently). An old key wins over its new place: that may hold a preset's default, the old key was written."""
    if isinstance(node, DictConfig):
        plain = OmegaConf.to_container(node, resolve=False)
    elif isinstance(node, dict):
        plain = copy.deepcopy(node)
    else:
        return node
    return plain if _migrate(schema, cast(dict[str, Any], plain), name, warn) else node


def _migrate(schema: type, plain: dict[str, Any], name: str, warn: bool) -> bool:
    moves = RENAMED.get(schema.__name__, {})
    # judge.probe names both the old key (a file) and the new node (a mapping): only a non-mapping is the old key
    found = [old for old in moves if old in plain and not (moves[old].startswith(f"{old}.") and is_node(plain[old]))]
    for old in found:
        value, path = plain.pop(old), moves[old].split(".")
        parent = plain
        for key in path[:-1]:
            if not is_node(parent.get(key)):
                parent[key] = {}
            parent = parent[key]
        parent[path[-1]] = value
        if warn and f"{name}.{old}" not in _warned:
            _warned.add(f"{name}.{old}")
            print(f"hmx: config field '{name}.{old}' is deprecated: use {name}.{moves[old]}", file=sys.stderr)
    changed = bool(found)
    hints = get_type_hints(schema)
    for item in fields(schema):
        nested = next((t for t in (hints[item.name], *get_args(hints[item.name])) if is_dataclass(t)), None)
        if isinstance(nested, type) and is_node(plain.get(item.name)):
            changed = _migrate(nested, plain[item.name], f"{name}.{item.name}", warn) or changed
    return changed


def is_node(value: Any) -> bool:
    return isinstance(value, (dict, DictConfig))


def renamed_overrides(overrides: list[str]) -> list[str]:
    """Hydra overrides with a deprecated judge key (``judge.contrastive_scale=5``, also under another node:
    ``suite.expression.judge.examples=F``) force-added (``++``): a preset no longer has the key, so Hydra would
    refuse it; :func:`migrate_node` then moves it to its new place, with its message."""
    old_keys = RENAMED["JudgeConfig"]
    out = []
    for override in overrides:
        key, equals, _ = override.partition("=")
        parts = key.split(".")
        if equals and key[:1] not in "+~-" and len(parts) >= 2 and parts[-2] == "judge" and parts[-1] in old_keys:
            override = f"++{override}"
        out.append(override)
    return out
