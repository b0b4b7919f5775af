"""The ``hmx`` command.

    hmx train [hydra overrides]      rubric-based self-rewarding GRPO (see conf/train.yaml)

Hydra commands take Hydra's own flags too (``--cfg job``, ``-m`` for sweeps, ``--help``).
"""

from __future__ import annotations

import sys

USAGE = """usage: hmx COMMAND [ARGS...]

commands:
  train [overrides]   rubric-based self-rewarding GRPO (Hydra; `hmx train --help` lists the groups)

`hmx COMMAND --help` describes each command."""


def _run_hydra(command: str, entry, argv: list[str]) -> None:
    sys.argv = [f"hmx {command}", *argv]
    entry()


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(USAGE)
        return
    command, rest = argv[0], argv[1:]
    if command == "train":
        from hmx.train import main as train_main

        _run_hydra("train", train_main, rest)
        return
    print(f"hmx: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
    main()
