"""``hmx rubric``: the rubric author's loop (docs/rubrics.md).

hmx rubric lint PATH...                      schema + template checks; exit 0 clean, 1 otherwise
hmx rubric show NAME [--mode generate]       the judge prompt for a sample completion, as --model's judge sees it
hmx rubric score --rubric NAME --model tiny --prompt P --completion C [--mode generate] [--json]
                                             per-criterion expected score and label probabilities
                                             (generate mode: the verdict and its rationale)
hmx rubric validate --rubric NAME --model M --pairs FILE [--judge PRESET | --mode contrastive] [--split test]...
                                             does the judge rank labelled pairs? accuracy per criterion
                                             with a 95% interval, ties, spread, length bias, heuristics,
                                             and per split the surface baselines (unigram, bigram,
                                             fluency), the margin over the best and the verdict
hmx rubric fit-probe --rubric NAME --model M --pairs FILE --split dev --out PROBE.safetensors
                                             fit probe mode's heads on labelled pairs (validate with
                                             --mode probe --probe PROBE.safetensors on another split)

NAME is a shipped rubric (``hmx_feel``) or a path to a YAML file. ``--model`` is a preset of conf/model, a hub id, a
local model directory, ``tiny``, or a run directory from ``hmx train`` (its adapter on).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

from hmx.config import JUDGE_MODES, ConfigError, JudgeConfig, PathsConfig
from hmx.errors import command_errors
from hmx.judge.authoring import CriterionScore, load_judge_model, load_judge_tokenizer, score
from hmx.judge.engine.prompts import has_thinking_mode, special_tokens
from hmx.rubrics.loading import lint, load_checked
from hmx.rubrics.render import render_judge_message
from hmx.rubrics.schema import Criterion, Rubric, RubricError

SAMPLE_PROMPT = "I finally finished the marathon I trained a year for!"
SAMPLE_COMPLETION = "Congratulations! I'm genuinely delighted for you - a year of training is a real commitment."


def print_scores(rows: list[CriterionScore], mode: str) -> None:
    width = max(len(r.criterion) for r in rows)
    for r in rows:
        shown = "unparseable" if r.score is None else f"{r.score:.3f}"
        probs = "  ".join(f"P({label})={p:.3f}" for label, p in zip(r.labels, r.probs, strict=True))
        extra = f"  mass={r.label_mass:.3f}" if mode in ("logprob", "binary", "fewshot") else ""
        print(f"{r.criterion:<{width}}  {shown:>11}  {probs}{extra}")
        if mode == "generate":
            print(
                f"{'':<{width}}  rationale: {r.rationale!r}"
                if r.score is not None
                else f"{'':<{width}}  judge wrote: {r.raw!r}"
            )


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="hmx rubric", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    p_lint = commands.add_parser("lint", help="check rubric files (exit 0 when all are clean)")
    p_lint.add_argument("paths", nargs="+", metavar="PATH")
    p_show = commands.add_parser("show", help="print the rendered judge prompt for a sample completion")
    p_show.add_argument("name", metavar="NAME", help="shipped rubric name or path")
    p_show.add_argument("--criterion", help="only this criterion (default: all)")
    for sub in (p_show, p_score := commands.add_parser("score", help="score one completion with a model")):
        sub.add_argument("--mode", choices=("logprob", "generate") if sub is p_show else JUDGE_MODES, default="logprob")
        sub.add_argument("--prompt", default=SAMPLE_PROMPT)
        sub.add_argument("--completion", default=SAMPLE_COMPLETION)
        sub.add_argument("--extra", action="append", default=[], help="add another rubric's criteria (repeatable)")
    p_validate = commands.add_parser("validate", help="pairwise accuracy of the judge on labelled pairs")
    p_validate.add_argument("--pairs", required=True, help="labelled pair file (jsonl; see docs/rubrics.md)")
    p_validate.add_argument(
        "--split", action="append", help="only the pairs of this split (e.g. test); repeat for a table per split"
    )
    p_validate.add_argument(
        "--judge", metavar="NAME", help="a judge preset of conf/judge (probe, logprob, ...): its settings, flags on top"
    )
    p_validate.add_argument("--mode", choices=JUDGE_MODES, help="judge mode (default: the preset's, else logprob)")
    p_validate.add_argument("--extra", action="append", default=[], help="add another rubric's criteria (repeatable)")
    p_validate.add_argument("--examples", help="fewshot mode: pair file whose dev pairs are the examples")
    p_validate.add_argument("--examples-per-criterion", type=int)
    p_validate.add_argument("--contrastive-scale", type=float)
    p_validate.add_argument("--batch-size", type=int)
    p_validate.add_argument("--min-accuracy", type=float, help="exit 1 when the overall accuracy is below this")
    p_validate.add_argument(
        "--baseline-pairs",
        help="fit the surface baselines on this pair file (default: the judge's own fit pairs, "
        "else the validated file's dev split, else cross-fitted by message)",
    )
    p_validate.add_argument("--baseline-split", help="with --baseline-pairs: only this split (e.g. dev)")
    p_validate.add_argument("--no-fluency", action="store_true", help="skip the fluency baseline (one more pass)")
    for sub in (p_score, p_validate):
        sub.add_argument("--probe", help="probe mode: the head file of hmx rubric fit-probe")
    p_fit = commands.add_parser("fit-probe", help="fit probe mode's per-criterion heads on labelled pairs")
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
    p_score.add_argument("--weights", choices=("policy", "base"), default="policy", help="base: a run's adapter off")
    p_validate.add_argument("--weights", choices=("policy", "base"), help="base: a run's adapter off")
    p_score.add_argument("--max-rationale-tokens", type=int, default=JudgeConfig.max_rationale_tokens)
    p_validate.add_argument("--max-rationale-tokens", type=int)
    for sub in (p_score, p_validate):
        sub.add_argument("--device", default="cpu", help="cpu (default), auto (the GPU when there is one), cuda, ...")
        sub.add_argument("--json", action="store_true", help="print the results as JSON")
    p_fit.add_argument("--device", default="cpu", help="cpu (default), auto (the GPU when there is one), cuda, ...")
    return parser.parse_args(argv)


def pick_criteria(rubric: Rubric, name: str | None) -> list[Criterion]:
    """All criteria, or the one named by ``--criterion``."""
    if name is None:
        return list(rubric.criteria)
    names = [c.name for c in rubric.criteria]
    if name not in names:
        raise RubricError(f"{rubric.source}: --criterion {name!r}: no such criterion (criteria: {', '.join(names)})")
    return [rubric.criterion(name)]


def judge_preset(name: str) -> JudgeConfig:
    """``conf/judge/NAME.yaml`` composed as ``hmx train judge=NAME`` composes it (its defaults list included)."""
    from hydra import compose, initialize_config_dir

    from hmx.config import typed_node
    from hmx.resources import CONF_DIR, register_resolvers

    presets = sorted(p.stem for p in (CONF_DIR / "judge").glob("*.yaml"))
    if name not in presets:
        raise ConfigError(f"--judge {name!r}: no such preset in {CONF_DIR / 'judge'} (presets: {', '.join(presets)})")
    register_resolvers()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        return typed_node(compose(config_name="train", overrides=[f"judge={name}"]), "judge")


def validate_config(args: argparse.Namespace, rubric: Rubric) -> JudgeConfig:
    """The judge to validate: the ``--judge`` preset (or the defaults), the flags given on top; a probe judge with
    no head file gets the one shipped for this rubric and model."""
    from dataclasses import replace

    from hmx.judge.validity.probe_check import shipped_probe

    cfg = judge_preset(args.judge) if args.judge else JudgeConfig()
    flags = {
        "mode": args.mode,
        "weights": args.weights,
        "batch_size": args.batch_size,
        "max_rationale_tokens": args.max_rationale_tokens,
        "contrastive_scale": args.contrastive_scale,
        "examples": args.examples,
        "examples_per_criterion": args.examples_per_criterion,
        "probe": args.probe,
    }
    cfg = replace(cfg, **{key: value for key, value in flags.items() if value is not None})
    if cfg.mode == "probe" and cfg.source == "self" and not cfg.probe:
        cfg = replace(cfg, probe=str(shipped_probe(rubric.name, args.model)))
    if cfg.source == "external" or cfg.panel:  # the endpoint's settings are checked before any model loads
        from hmx.judge.modes.external import check_external

        check_external(cfg.external)
    return cfg


def run_validate(args: argparse.Namespace) -> int:
    """``hmx rubric validate``: the pairs are checked before the model loads; a table per split with the surface
    baselines and the verdict; exit 1 below ``--min-accuracy``."""
    from hmx.judge.registry import build_judge
    from hmx.judge.validity.accuracy import format_table, validate
    from hmx.judge.validity.fluency import fluency_outcomes
    from hmx.judge.validity.surface_bar import baseline_fit, format_bar, surface_bar
    from hmx.rubrics.pairs import load_pairs

    rubric = load_checked(args.rubric, args.extra)
    splits: list[str | None] = list(args.split) if args.split else [None]
    by_split = {split: load_pairs(args.pairs, rubric, split) for split in splits}
    if args.baseline_split and not args.baseline_pairs:
        raise ConfigError("--baseline-split: needs --baseline-pairs FILE")
    explicit = (args.baseline_pairs, args.baseline_split) if args.baseline_pairs else None
    cfg = validate_config(args, rubric)
    same_file = cfg.examples and Path(cfg.examples).resolve() == Path(args.pairs).resolve()
    if cfg.mode == "fewshot" and same_file and any(split in (None, "dev") for split in splits):
        print(
            "hmx rubric validate: warning: the fewshot examples are dev pairs of the file validated on; "
            "report --split test",
            file=sys.stderr,
        )
    info = None
    if cfg.mode == "probe" and cfg.source == "self":
        from hmx.judge.modes.probe import load_probe
        from hmx.judge.validity.probe_check import probe_fit_pairs, probe_summary

        info = load_probe(str(cfg.probe)).info  # read once for the summary and the words baseline
        print(probe_summary(info), file=sys.stderr)
    judge_fit = probe_fit_pairs(info, rubric) if info is not None else None
    results = []
    with contextlib.redirect_stdout(sys.stderr):
        model, tokenizer = load_judge_model(args.model, args.cache_dir, args.device)
        build = lambda view: build_judge(view, tokenizer, cfg)  # noqa: E731
        device = next(model.parameters()).device
        for split, pairs in by_split.items():
            name = split or "(all)"
            validity = validate(build, rubric, model, pairs, device, cfg.mode, args.model, verbose=not args.json)
            if info is not None:
                from hmx.judge.validity.probe_check import validate_probe

                validity = validate_probe(validity, pairs, info, rubric)
            fit, note = baseline_fit(rubric, args.pairs, [split], judge_fit, explicit)
            fluency = None if args.no_fluency else fluency_outcomes(model, tokenizer, pairs, device)
            results.append((name, pairs, validity, surface_bar(validity, pairs, fit, note, fluency, name)))
    label = args.judge or cfg.mode
    if args.json:
        out = []
        for name, _, validity, bar in results:
            result = validity.as_dict() | {"split": name, "judge": label, "at_chance": validity.overall.at_chance}
            out.append(result | {"surface_bar": bar.as_dict()})
        print(json.dumps(out[0] if len(out) == 1 else out, indent=2))
    else:
        for name, _, validity, bar in results:
            if len(results) > 1:
                print(f"== split {name} ==")
            print(format_table(validity))
            print(format_bar(bar, label))
    for name, pairs, validity, _ in results:
        print(f"({name}: {validity.seconds:.1f}s, {len(pairs)} pairs)", file=sys.stderr)
    low = [(name, v.overall.accuracy) for name, _, v, _ in results if args.min_accuracy is not None]
    low = [(name, acc) for name, acc in low if acc < args.min_accuracy]
    if low:
        shown = ", ".join(f"{name} {acc:.3f}" for name, acc in low)
        print(f"hmx rubric validate: accuracy below --min-accuracy {args.min_accuracy}: {shown}", file=sys.stderr)
        return 1
    return 0


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
    rubric = load_checked(args.rubric, args.extra)
    started = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):  # library chatter (DeepSpeed's accelerator notice) off stdout
        model, tokenizer = load_judge_model(args.model, args.cache_dir, args.device)
        cfg = JudgeConfig(
            mode=args.mode, weights=args.weights, max_rationale_tokens=args.max_rationale_tokens, probe=args.probe
        )
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
