"""The ``hmx`` command: one line per sub-command, each implemented in its own module.

Hydra commands (train, eval) take Hydra overrides and flags (``--cfg job``, ``-m``, ``--help``,
``--config-dir DIR`` for a project's own config groups); the others parse their own arguments.
``hmx COMMAND --help`` opens with what the command reads and writes. A command is one row of
:data:`COMMANDS` (target, help, reads, writes).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import textwrap
from dataclasses import dataclass

from hmx import __version__
from hmx.redaction import redacted_output


@dataclass(frozen=True)
class Command:
    """One ``hmx`` sub-command: where it is (loaded by name, so nothing imports a front end), what it says."""

    target: str  # "module:function"
    help: str  # one line, in `hmx --help`
    reads: str  # what it reads, at the top of `hmx COMMAND --help`
    writes: str  # what it writes
    hydra: bool = False  # takes Hydra overrides (the function is a @hydra.main)


COMMANDS: dict[str, Command] = {
    "train": Command(
        "hmx.train:main",
        "rubric-based self-rewarding GRPO (Hydra overrides; conf/train.yaml)",
        reads=(
            "conf/train.yaml and its groups (hmx's, plus --config-dir DIR's), the rubric YAMLs "
            "(rubric.path, rubric.extra), the prompt file or dataset (data.path), the model "
            "(model.name_or_path; tiny: built once into paths.cache_dir); resume=true: the run's "
            "latest checkpoint"
        ),
        writes=(
            "paths.runs_dir/<run_name>/: config.yaml (resolved), adapter/ (safetensors), "
            "checkpoint-*/, metrics.jsonl, completions/, rewards.png, wandb/ (logger=wandb); nothing "
            "when the input is bad"
        ),
        hydra=True,
    ),
    "eval": Command(
        "hmx.evaluation.run:main",
        "evaluation suite on a model or run directory (conf/eval.yaml)",
        reads=(
            "conf/eval.yaml and its groups (plus --config-dir DIR's), a model or run_dir (its "
            "config.yaml, adapter/), the rubric and the prompts' eval split, benchmark files from "
            "data_dir, else $HMX_DATA_DIR, else ../shared/data beside a checkout, else the Hub (it "
            "prints which)"
        ),
        writes=(
            "output_dir (default <run_dir>/eval/ or outputs/eval/<timestamp>/): results.json, "
            "results.md, one <stage>.jsonl of per-item records per stage"
        ),
        hydra=True,
    ),
    "compare": Command(
        "hmx.commands.compare:main",
        "per-metric deltas between evaluated runs, with plots",
        reads=("each RUN's results.json (a run directory, its eval/ folder, or the file)"),
        writes=(
            "--out (default outputs/compare/<timestamp>/): comparison.md, comparison.json, "
            "deltas.png; a W&B run unless --wandb off"
        ),
    ),
    "rubric": Command(
        "hmx.commands.rubric:main",
        "rubric authoring: lint, show, score, validate, fit-probe, tune-judge",
        reads=(
            "lint, show: rubric YAML files (a shipped name or a path); score, validate, fit-probe, tune-judge: "
            "a rubric and a model (hub id, local path, tiny, or a run directory); validate, fit-probe, "
            "tune-judge: a labelled pair file (--pairs); score, validate --adapter: a tuned judge adapter"
        ),
        writes=(
            "fit-probe: the probe file (--out, safetensors); tune-judge: the judge adapter (--out, "
            "safetensors); lint, show, score, validate: nothing (reports on stdout, --json: JSON; errors on stderr)"
        ),
    ),
    "chat": Command(
        "hmx.commands.chat:main",
        "talk to a trained model (interactive or --prompt)",
        reads=("a run directory (config.yaml, adapter/) or an adapter directory, and its base model"),
        writes=("nothing: replies on stdout"),
    ),
    "merge": Command(
        "hmx.commands.merge:main",
        "merge a run's LoRA adapter into standalone weights",
        reads=("a run directory (config.yaml, adapter/) or an adapter directory, and its base model"),
        writes=(
            "--out: model.safetensors, config.json, tokenizer files with the chat template, "
            "hmx_merge.json; nothing when it fails"
        ),
    ),
    "init": Command(
        "hmx.commands.init:main",
        "write a starter project: experiment preset, rubric, prompts",
        reads=("nothing (the starter files are written from hmx's templates)"),
        writes=(
            "DIR/: conf/experiment/mine.yaml, conf/rubric/mine.yaml, conf/data/mine.yaml, "
            "rubrics/mine.yaml, data/prompts.yaml, README.md; refuses to overwrite existing files"
        ),
    ),
}


def usage() -> str:
    lines = ["usage: hmx COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<9} {spec.help}" for name, spec in COMMANDS.items() if _available(spec.target)]
    lines += ["", "`hmx COMMAND --help` describes each command; `hmx --version` prints hmx's version."]
    return "\n".join(lines)


def files_help(command: str) -> str:
    """The block that opens ``hmx COMMAND --help``: what the command reads and writes."""
    reads, writes = (
        textwrap.fill(text, 100, initial_indent=f"{label:<10}", subsequent_indent=" " * 10)
        for label, text in (("reads:", COMMANDS[command].reads), ("writes:", COMMANDS[command].writes))
    )
    return f"hmx {command}: {COMMANDS[command].help}\n\n{reads}\n{writes}\n"


def _available(target: str) -> bool:
    module = target.partition(":")[0]
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
    if spec is None or not _available(spec.target):
        print(f"hmx: unknown command {command!r}\n\n{usage()}", file=sys.stderr)
        sys.exit(2)
    module, _, function = spec.target.partition(":")
    if "--help" in rest or "-h" in rest:
        print(files_help(command), flush=True)
    with redacted_output():  # Hydra's traceback of a failed run too: no secret reaches the terminal
        entry = getattr(importlib.import_module(module), function)
        if spec.hydra:
            from hmx.config_renames import renamed_overrides  # a deprecated judge key still overrides (one release)

            sys.argv = [f"hmx {command}", *renamed_overrides(rest)]
            entry()
        else:
            entry(rest)


if __name__ == "__main__":
    main()
