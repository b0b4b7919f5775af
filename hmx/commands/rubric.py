"""``hmx rubric``: the rubric author's loop (docs/rubrics.md); its sub-commands are the rows of :data:`SUBCOMMANDS`.

NAME is a shipped rubric (``hmx_feel``) or a path to a YAML file. ``--model`` is a preset of conf/model, a hub id, a
local model directory, ``tiny``, or a run directory from ``hmx train`` (its adapter on).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time

from hmx.commands import tune_judge
from hmx.commands.judge_flags import add_judge_options, judge_config
from hmx.commands.validate import add_validate_arguments, run_validate
from hmx.config import PathsConfig
from hmx.errors import command_errors
from hmx.judge.authoring import CriterionScore, load_judge_model, load_judge_tokenizer, score
from hmx.judge.engine.prompts import has_thinking_mode, special_tokens
from hmx.judge.registry import MODES
from hmx.rubrics.loading import lint, load_checked
from hmx.rubrics.render import render_judge_message
from hmx.rubrics.schema import Criterion, Rubric, RubricError

SAMPLE_PROMPT = "I finally finished the marathon I trained a year for!"
SAMPLE_COMPLETION = "Congratulations! I'm genuinely delighted for you - a year of training is a real commitment."

# sub-command: (one-line help, usage); `hmx rubric --help` lists every row
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "lint": ("check rubric files (exit 0 when all are clean)", "lint PATH..."),
    "show": ("print the rendered judge prompt for a sample completion", "show NAME [--mode generate]"),
    "score": (
        "score one completion with a model: per-criterion score and label probabilities (generate: the rationale)",
        "score --rubric NAME --model tiny --prompt P --completion C [--mode MODE] [--json]",
    ),
    "validate": (
        "pairwise accuracy of the judge on labelled pairs, per criterion with a 95% interval and heuristics",
        "validate [--judge PRESET | --mode MODE] --model M --pairs FILE [--split test]... [--json]",
    ),
    "fit-probe": (
        "fit probe mode's per-criterion heads on labelled pairs (validate them on another split)",
        "fit-probe --rubric NAME --model M --pairs FILE --split dev --out PROBE.safetensors",
    ),
    "tune-judge": (
        "fine-tune the model to judge: LoRA, Bradley-Terry on expected scores (validate with --adapter ADAPTER)",
        "tune-judge --rubric NAME --model M --pairs FILE --split dev --out ADAPTER.safetensors",
    ),
}


def description() -> str:
    """The sub-commands, one usage line and its help each (the top of ``hmx rubric --help``)."""
    lines = ["sub-commands:"]
    for usage, text in ((u, h) for h, u in SUBCOMMANDS.values()):
        lines += [f"  hmx rubric {usage}", f"      {text}"]
    return "\n".join([*lines, "", __doc__.split("\n\n", 1)[1].strip()])


def print_scores(rows: list[CriterionScore], mode: str) -> None:
    width = max(len(r.criterion) for r in rows)
    for r in rows:
        shown = "unparseable" if r.score is None else f"{r.score:.3f}"
        probs = "  ".join(f"P({label})={p:.3f}" for label, p in zip(r.labels, r.probs, strict=True))
        extra = f"  mass={r.label_mass:.3f}" if MODES[mode].reads_labels else ""
        print(f"{r.criterion:<{width}}  {shown:>11}  {probs}{extra}")
        if MODES[mode].generates_text:
            print(
                f"{'':<{width}}  rationale: {r.rationale!r}"
                if r.score is not None
                else f"{'':<{width}}  judge wrote: {r.raw!r}"
            )


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="hmx rubric", description=description(), formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    subs = {name: commands.add_parser(name, help=text.replace("%", "%%")) for name, (text, _) in SUBCOMMANDS.items()}
    p_show, p_score, p_validate, p_fit = subs["show"], subs["score"], subs["validate"], subs["fit-probe"]
    subs["lint"].add_argument("paths", nargs="+", metavar="PATH")
    p_show.add_argument("name", metavar="NAME", help="shipped rubric name or path")
    p_show.add_argument("--criterion", help="only this criterion (default: all)")
    p_show.add_argument("--mode", choices=("logprob", "generate"), default="logprob")
    for sub in (p_show, p_score):
        sub.add_argument("--prompt", default=SAMPLE_PROMPT)
        sub.add_argument("--completion", default=SAMPLE_COMPLETION)
    for sub in (p_show, p_score, p_validate):
        sub.add_argument("--extra", action="append", default=[], help="add another rubric's criteria (repeatable)")
    add_validate_arguments(p_validate)
    p_fit.add_argument(
        "--pairs", required=True, action="append", help="labelled pair file (jsonl) to fit on (repeat: several files)"
    )
    p_fit.add_argument("--split", help="only the pairs of this split (e.g. dev); keep another for validate")
    p_fit.add_argument("--out", required=True, help="the probe file to write (.safetensors)")
    p_fit.add_argument("--layer", type=int, help="hidden_states index to read (default: chosen by cross-validation)")
    p_fit.add_argument("--c", type=float, default=0.1, help="inverse L2 strength of the logistic heads (default 0.1)")
    p_fit.add_argument("--no-cross", action="store_true", help="fit on the file's pairs only, no cross-criterion pairs")
    p_fit.add_argument("--force", action="store_true", help="replace an existing --out file")
    for sub in (p_score, p_fit):
        sub.add_argument("--rubric", required=True, help="shipped rubric name or path")
    p_validate.add_argument("--rubric", default="hmx_feel", help="shipped rubric name or path (default: hmx_feel)")
    for sub in (p_show, p_score, p_validate, p_fit):
        sub.add_argument("--model", default="tiny", help="preset (smollm2-135m, tiny), hub id, model dir or run dir")
        sub.add_argument("--cache-dir", default=PathsConfig.cache_dir, help="where the tiny model is built")
    add_judge_options(p_score)
    add_judge_options(p_validate, preset=True)
    for sub in (p_score, p_validate):
        sub.add_argument("--json", action="store_true", help="print the results as JSON")
    for sub in (p_score, p_validate, p_fit):
        sub.add_argument("--device", default="cpu", help="cpu (default), auto (the GPU when there is one), cuda, ...")
    for sub in (p_score, p_validate):
        sub.add_argument("--adapter", help="a judge adapter of hmx rubric tune-judge, merged into the weights")
    tune_judge.add_arguments(subs["tune-judge"])
    return parser.parse_args(argv)


def pick_criteria(rubric: Rubric, name: str | None) -> list[Criterion]:
    """All criteria, or the one named by ``--criterion``."""
    if name is None:
        return list(rubric.criteria)
    names = [c.name for c in rubric.criteria]
    if name not in names:
        raise RubricError(f"{rubric.source}: --criterion {name!r}: no such criterion (criteria: {', '.join(names)})")
    return [rubric.criterion(name)]


def run(args: argparse.Namespace) -> int:
    if args.command == "lint":
        return 1 if lint(args.paths) else 0
    if args.command == "show":
        rubric = load_checked(args.name, args.extra)
        criteria = pick_criteria(rubric, args.criterion)
        with contextlib.redirect_stdout(sys.stderr):
            tokenizer = load_judge_tokenizer(args.model, args.cache_dir)
        special, thinking = special_tokens(tokenizer), has_thinking_mode(tokenizer)
        for criterion in criteria:  # quoted text as the judge sees it: the model's special tokens defused
            print(f"===== {rubric.name} / {criterion.name} ({args.mode}, {args.model}) =====")
            print(
                render_judge_message(
                    rubric, criterion, args.prompt, args.completion, special, mode=args.mode, thinking=thinking
                )
            )
        return 0
    if args.command == "validate":
        return run_validate(args)
    if args.command == "fit-probe":
        from hmx.commands.fit_probe import run_fit_probe

        return run_fit_probe(args, load_checked(args.rubric), load_judge_model)
    if args.command == "tune-judge":
        return tune_judge.run_tune_judge(args, load_checked(args.rubric), load_judge_model)
    rubric = load_checked(args.rubric, args.extra)
    started = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):  # library chatter (DeepSpeed's accelerator notice) off stdout
        model, tokenizer = load_judge_model(args.model, args.cache_dir, args.device, args.adapter)
        cfg = judge_config(args)
        loaded = time.perf_counter()
        rows = score(rubric, model, tokenizer, args.prompt, [args.completion], cfg)[0]
    if args.json:
        print(json.dumps([row.__dict__ for row in rows], indent=2))
    else:
        print_scores(rows, args.mode)
    seconds = f"load {loaded - started:.2f}s, score {time.perf_counter() - loaded:.2f}s"
    print(f"({seconds}, model {args.model}, mode {args.mode})", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> None:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    with command_errors(f"rubric {args.command}"):
        code = run(args)
    sys.exit(code)
