"""``hmx rubric validate``: does a judge rank labelled pairs, and does it beat the surface baselines?

Per split: accuracy per criterion with an interval clustered by message, ties, spread, length bias and
heuristics, then the surface bar (unigram and unigram+bigram logistic baselines, fluency), the judge's
margin over the best of them and the verdict (docs/rubrics.md). ``--judge NAME`` validates a preset of
conf/judge as ``hmx train judge=NAME`` composes it; flags given on top override it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

from hmx.commands.judge_flags import judge_config
from hmx.config import ConfigError, JudgeConfig
from hmx.judge.authoring import load_judge_model
from hmx.rubrics.loading import load_checked
from hmx.rubrics.schema import Rubric


def add_validate_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of ``validate`` besides the judge options (hmx.commands.rubric adds those, preset-aware)."""
    p.add_argument("--pairs", required=True, help="labelled pair file (jsonl; see docs/rubrics.md)")
    p.add_argument("--split", action="append", help="only the pairs of this split (e.g. test); repeat: a table each")
    p.add_argument("--judge", metavar="NAME", help="a judge preset of conf/judge (probe, tuned, ...); flags on top")
    p.add_argument("--min-accuracy", type=float, help="exit 1 when the overall accuracy is below this")
    p.add_argument(
        "--baseline-pairs",
        help="fit the surface baselines on this pair file (default: the judge's own fit pairs, "
        "else the validated file's dev split, else cross-fitted by message)",
    )
    p.add_argument("--baseline-split", help="with --baseline-pairs: only this split (e.g. dev)")
    p.add_argument("--no-fluency", action="store_true", help="skip the fluency baseline (one more pass)")


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
    from hmx.judge.registry import options, with_options
    from hmx.judge.validity.probe_check import shipped_probe

    cfg = judge_config(args, judge_preset(args.judge) if args.judge else None)
    if cfg.mode == "probe" and cfg.source == "self" and not options(cfg, "probe").head:
        cfg = with_options(cfg, "probe", head=str(shipped_probe(rubric.name, args.model)))
    if cfg.source == "external" or cfg.panel:  # the endpoint's settings are checked before any model loads
        from hmx.judge.modes.external import check_external

        check_external(cfg.external)
    return cfg


def run_validate(args: argparse.Namespace) -> int:
    """The pairs are checked before the model loads; a table per split with the surface baselines and the
    verdict; exit 1 below ``--min-accuracy``."""
    from hmx.judge.registry import build_judge, options
    from hmx.judge.validity.accuracy import format_table, validate
    from hmx.judge.validity.fluency import fluency_outcomes
    from hmx.judge.validity.surface_bar import baseline_fit, format_bar, surface_bar
    from hmx.rubrics.pairs import load_pairs

    if args.min_accuracy is not None and not 0.0 <= args.min_accuracy <= 1.0:
        raise ConfigError(f"--min-accuracy {args.min_accuracy}: must be within [0, 1] (a share of the pairs)")
    rubric = load_checked(args.rubric, args.extra)
    splits: list[str | None] = list(args.split) if args.split else [None]
    by_split = {split: load_pairs(args.pairs, rubric, split) for split in splits}
    if args.baseline_split and not args.baseline_pairs:
        raise ConfigError("--baseline-split: needs --baseline-pairs FILE")
    explicit = (args.baseline_pairs, args.baseline_split) if args.baseline_pairs else None
    cfg = validate_config(args, rubric)
    examples = options(cfg, "fewshot").examples
    same_file = examples and Path(examples).resolve() == Path(args.pairs).resolve()
    if cfg.mode == "fewshot" and same_file and any(split in (None, "dev") for split in splits):
        print(
            "hmx rubric validate: warning: the fewshot examples are dev pairs of the file validated on; "
            "report --split test",
            file=sys.stderr,
        )
    info = None
    if cfg.mode == "probe" and cfg.source == "self":
        from hmx.judge.modes.probe import load_probe
        from hmx.judge.validity.probe_check import probe_summary

        info = load_probe(str(options(cfg, "probe").head)).info  # read once for the summary and the words baseline
        print(probe_summary(info), file=sys.stderr)
    results = []
    with contextlib.redirect_stdout(sys.stderr):
        from hmx.judge.validity.probe_check import probe_fit_pairs, validate_probe

        judge_fit = probe_fit_pairs(info, rubric) if info is not None else None
        model, tokenizer = load_judge_model(args.model, args.cache_dir, args.device, cfg.adapter)
        build = lambda view: build_judge(view, tokenizer, cfg)  # noqa: E731
        device = next(model.parameters()).device
        for split, pairs in by_split.items():
            name = split or "(all)"
            validity = validate(build, rubric, model, pairs, device, cfg.mode, args.model, verbose=not args.json)
            if info is not None:
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
