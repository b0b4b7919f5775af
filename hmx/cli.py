"""The ``hmx`` command: one line per sub-command, each implemented in its own module.

Hydra commands (train, eval) take Hydra overrides and flags (``--cfg job``, ``-m``, ``--help``);
the others parse their own arguments (``hmx COMMAND --help``).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

# command: (module, function, is_hydra, one-line help)
COMMANDS: dict[str, tuple[str, str, bool, str]] = {
    "train": ("hmx.train", "main", True, "rubric-based self-rewarding GRPO (Hydra overrides; conf/train.yaml)"),
    "eval": ("hmx.evaluation.run", "main", True, "evaluation suite on a model or run directory (conf/eval.yaml)"),
    "compare": ("hmx.evaluation.compare", "main", False, "per-metric deltas between evaluated runs, with plots"),
    "rubric": ("hmx.rubrics.cli", "main", False, "lint | show | score: rubric authoring tools"),
    "chat": ("hmx.chat", "main", False, "talk to a trained model (interactive or --prompt)"),
    "merge": ("hmx.merge", "main", False, "merge a run's LoRA adapter into standalone weights"),
}


def usage() -> str:
    lines = ["usage: hmx COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<9} {spec[3]}" for name, spec in COMMANDS.items() if _available(spec[0])]
    lines += ["", "`hmx COMMAND --help` describes each command."]
    return "\n".join(lines)


def _available(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # its parent package is not there
        return False


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(usage())
        return
    command, rest = argv[0], argv[1:]
    spec = COMMANDS.get(command)
    if spec is None or not _available(spec[0]):
        print(f"hmx: unknown command {command!r}\n\n{usage()}", file=sys.stderr)
        sys.exit(2)
    module, function, is_hydra, _ = spec
    entry = getattr(importlib.import_module(module), function)
    if is_hydra:
        sys.argv = [f"hmx {command}", *rest]
        entry()
    else:
        entry(rest)


if __name__ == "__main__":
    main()
