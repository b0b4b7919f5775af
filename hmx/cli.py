"""The ``hmx`` command: one line per sub-command, each implemented in its own module.

Hydra commands (train, eval) take Hydra overrides and flags (``--cfg job``, ``-m``, ``--help``,
``--config-dir DIR`` for a project's own config groups); the others parse their own arguments.
``hmx COMMAND --help`` opens with what the command reads and writes (``FILES``).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import textwrap

from hmx import __version__
from hmx.redaction import redacted_output

# command: (module, function, is_hydra, one-line help)
COMMANDS: dict[str, tuple[str, str, bool, str]] = {
    "train": ("hmx.train", "main", True, "rubric-based self-rewarding GRPO (Hydra overrides; conf/train.yaml)"),
    "eval": ("hmx.evaluation.run", "main", True, "evaluation suite on a model or run directory (conf/eval.yaml)"),
    "compare": ("hmx.commands.compare", "main", False, "per-metric deltas between evaluated runs, with plots"),
    "rubric": ("hmx.commands.rubric", "main", False, "lint | show | score: rubric authoring tools"),
    "chat": ("hmx.commands.chat", "main", False, "talk to a trained model (interactive or --prompt)"),
    "merge": ("hmx.commands.merge", "main", False, "merge a run's LoRA adapter into standalone weights"),
    "init": ("hmx.commands.init", "main", False, "write a starter project: experiment preset, rubric, prompts"),
}

# command: (what it reads, what it writes), printed at the top of `hmx COMMAND --help`
FILES: dict[str, tuple[str, str]] = {
    "train": (
        "conf/train.yaml and its groups (hmx's, plus --config-dir DIR's), the rubric YAMLs (rubric.path, "
        "rubric.extra), the prompt file or dataset (data.path), the model (model.name_or_path; tiny: built "
        "once into paths.cache_dir); resume=true: the run's latest checkpoint",
        "paths.runs_dir/<run_name>/: config.yaml (resolved), adapter/ (safetensors), checkpoint-*/, "
        "metrics.jsonl, completions/, rewards.png, wandb/ (logger=wandb); nothing when the input is bad",
    ),
    "eval": (
        "conf/eval.yaml and its groups (plus --config-dir DIR's), a model or run_dir (its config.yaml, "
        "adapter/), the rubric and the prompts' eval split, benchmark files from data_dir, else "
        "$HMX_DATA_DIR, else ../shared/data beside a checkout, else the Hub (it prints which)",
        "output_dir (default <run_dir>/eval/ or outputs/eval/<timestamp>/): results.json, results.md, "
        "one <stage>.jsonl of per-item records per stage",
    ),
    "compare": (
        "each RUN's results.json (a run directory, its eval/ folder, or the file)",
        "--out (default outputs/compare/<timestamp>/): comparison.md, comparison.json, deltas.png; "
        "a W&B run unless --wandb off",
    ),
    "rubric": (
        "lint, show: rubric YAML files (a shipped name or a path); score: a rubric and a model "
        "(hub id, local path, tiny, or a run directory)",
        "nothing: reports on stdout (score --json: JSON), errors on stderr",
    ),
    "chat": (
        "a run directory (config.yaml, adapter/) or an adapter directory, and its base model",
        "nothing: replies on stdout",
    ),
    "merge": (
        "a run directory (config.yaml, adapter/) or an adapter directory, and its base model",
        "--out: model.safetensors, config.json, tokenizer files with the chat template, hmx_merge.json; "
        "nothing when it fails",
    ),
    "init": (
        "nothing (the starter files are written from hmx's templates)",
        "DIR/: conf/experiment/mine.yaml, conf/rubric/mine.yaml, conf/data/mine.yaml, rubrics/mine.yaml, "
        "data/prompts.yaml, README.md; refuses to overwrite existing files",
    ),
}


def usage() -> str:
    lines = ["usage: hmx COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<9} {spec[3]}" for name, spec in COMMANDS.items() if _available(spec[0])]
    lines += ["", "`hmx COMMAND --help` describes each command; `hmx --version` prints hmx's version."]
    return "\n".join(lines)


def files_help(command: str) -> str:
    """The block that opens ``hmx COMMAND --help``: what the command reads and writes."""
    reads, writes = (
        textwrap.fill(text, 100, initial_indent=f"{label:<10}", subsequent_indent=" " * 10)
        for label, text in zip(("reads:", "writes:"), FILES[command], strict=True)
    )
    return f"hmx {command}: {COMMANDS[command][3]}\n\n{reads}\n{writes}\n"


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
    if argv[0] in {"-V", "--version"}:
        print(f"hmx {__version__}")
        return
    command, rest = argv[0], argv[1:]
    spec = COMMANDS.get(command)
    if spec is None or not _available(spec[0]):
        print(f"hmx: unknown command {command!r}\n\n{usage()}", file=sys.stderr)
        sys.exit(2)
    module, function, is_hydra, _ = spec
    if "--help" in rest or "-h" in rest:
        print(files_help(command), flush=True)
    with redacted_output():  # Hydra's traceback of a failed run too: no secret reaches the terminal
        entry = getattr(importlib.import_module(module), function)
        if is_hydra:
            sys.argv = [f"hmx {command}", *rest]
            entry()
        else:
            entry(rest)


if __name__ == "__main__":
    main()
