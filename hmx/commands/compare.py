"""``hmx compare RUN…``: per-metric deltas between evaluated arms (:mod:`hmx.evaluation.compare`),
``--power REL``: seeds and items a study needs, from this pilot (:mod:`hmx.evaluation.power`), or
``--pick RUN``: a checkpoint on the expression vs truthfulness trade-off (:mod:`hmx.evaluation.tradeoff`)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from hmx.errors import command_errors
from hmx.evaluation import compare as comparison
from hmx.evaluation.compare import compare
from hmx.evaluation.power import write_power
from hmx.evaluation.tradeoff import write_pick


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="hmx compare", description=comparison.__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="*", metavar="RUN", help="run directories, eval folders or results.json")
    parser.add_argument(
        "--arm", action="append", default=[], metavar="NAME=RUN[,RUN...]", help="an arm of several runs (seeds)"
    )
    parser.add_argument("--group-seeds", action="store_true", help="one arm per training config (seed aside)")
    parser.add_argument("--labels", help="comma-separated names for the arms (default: their directory names)")
    parser.add_argument("--primary", metavar="METRIC", help="the pre-declared primary metric, tested alone")
    parser.add_argument(
        "--adjust", default="holm", choices=["holm", "bh"], help="adjustment of the other metrics' p-values"
    )
    parser.add_argument(
        "--power",
        type=float,
        metavar="REL",
        help="from this pilot: seeds and items to detect a relative change REL (e.g. 0.05) at 80%% power",
    )
    parser.add_argument("--pick", metavar="RUN", help="a run trained with probes: pick its checkpoint on the trade-off")
    parser.add_argument("--max-truth-drop", type=float, default=0.02, help="--pick: accepted TruthfulQA MC1 drop")
    parser.add_argument("--out", help="output folder (default: outputs/compare/<timestamp>)")
    parser.add_argument("--wandb", default="auto", choices=["auto", "online", "offline", "off"], help="W&B mode")
    parser.add_argument("--project", default="hmx", help="W&B project")
    args = parser.parse_args(argv)
    out_dir = Path(args.out or Path("outputs/compare") / time.strftime("%Y-%m-%d_%H-%M-%S")).expanduser()
    labels = args.labels.split(",") if args.labels else None
    with command_errors("compare"):
        if args.pick:  # the expression vs truthfulness trade-off inside one run (hmx.evaluation.tradeoff)
            write_pick(Path(args.pick).expanduser().resolve(), out_dir.resolve(), args.max_truth_drop)
            return
        if args.power is not None:
            write_power(args.runs, labels, out_dir.resolve(), args.arm, args.group_seeds, args.power, args.primary)
            return
        compare(
            args.runs, labels, out_dir.resolve(), args.wandb, args.project,
            args.arm, args.group_seeds, args.primary, args.adjust,
        )  # fmt: skip
