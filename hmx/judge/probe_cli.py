"""``hmx rubric fit-probe`` and what ``hmx rubric validate --mode probe`` adds (the words baseline)."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hmx.config import ConfigError, JudgeConfig
from hmx.judge.pairs import LabelledPair, PairError, load_pairs
from hmx.judge.probe import ProbeJudge
from hmx.judge.probe_fit import candidate_layers, fit_probe
from hmx.judge.validity import Validity
from hmx.judge.words_baseline import with_words_baseline
from hmx.resources import ROOT
from hmx.rubrics.schema import Rubric


def checked_out_path(out: str, force: bool) -> Path:
    """``--out``: a .safetensors path that is not there yet (or ``--force``)."""
    path = Path(out).expanduser()
    if path.suffix != ".safetensors":
        raise ConfigError(f"--out {out!r}: a probe is written as safetensors; name it *.safetensors")
    if path.exists() and not force:
        raise ConfigError(f"--out {out!r}: the file exists; pass --force to replace it")
    return path


def shipped_relative(path: Path) -> str:
    """A pair file's path as a probe records it: relative to hmx's shipped tree when inside it, else absolute."""
    resolved = path.expanduser().resolve()
    return str(resolved.relative_to(ROOT)) if resolved.is_relative_to(ROOT) else str(resolved)


def run_fit_probe(args: argparse.Namespace, rubric: Rubric, loader: Callable[..., tuple[Any, Any]]) -> int:
    """Fit the probe on the pairs (checked before the model loads), print the cross-validation, write it."""
    pairs = load_pairs(args.pairs, rubric, args.split)
    missing = [c.name for c in rubric.criteria if not any(p.criterion == c.name for p in pairs)]
    if missing:
        raise PairError(f"{args.pairs}: criterion: no pairs for {missing}; a probe needs pairs for every criterion")
    out = checked_out_path(args.out, args.force)
    if args.c <= 0:
        raise ConfigError(f"--c {args.c}: must be positive")
    with contextlib.redirect_stdout(sys.stderr):
        model, tokenizer = loader(args.model, args.cache_dir, args.device)
    depth = int(getattr(model.config, "num_hidden_layers", 0))
    if args.layer is not None and not 0 < args.layer <= depth:
        raise ConfigError(f"--layer {args.layer}: the model's hidden states are 1-{depth} (0 is the embeddings)")
    layers = [args.layer] if args.layer is not None else candidate_layers(depth)
    judge = ProbeJudge(rubric, tokenizer, JudgeConfig(mode="probe"), layers=layers)
    device = next(model.parameters()).device
    source = shipped_relative(Path(args.pairs))
    probe, scores = fit_probe(
        rubric, judge, model, pairs, device, c=args.c, cross=not args.no_cross, model_name=args.model, source=source
    )
    probe.save(out)
    info = probe.info
    counts = f"{info['fit_pairs']} pairs + {info['cross_pairs']} cross pairs"
    print(f"probe for rubric {rubric.name}, model {args.model}: {counts}")
    if len(scores) > 1:
        print("layer  cv accuracy")
        for layer, accuracy in scores.items():
            print(f"{layer:>5}  {accuracy:.3f}{'  <- chosen' if layer == probe.layer else ''}")
    print(f"layer {probe.layer}, accuracy on its own fit pairs {info['train_accuracy']:.3f}; wrote {out}")
    hint = f"hmx rubric validate --mode probe --probe {out} (on pairs it was not fitted on)"
    print(f"({info['seconds']}s) next: {hint}", file=sys.stderr)
    return 0


def probe_fit_pairs(info: dict[str, Any], rubric: Rubric) -> list[LabelledPair] | None:
    """The pairs a probe (its ``info``) was fitted on, when its pair file is still there."""
    source = ROOT / str(info.get("pairs", ""))  # a shipped file is recorded relative to the shipped tree
    if not info.get("pairs") or not source.is_file():
        return None
    splits = set(info.get("splits") or [])
    return [p for p in load_pairs(source, rubric) if str(p.split) in splits]


def validate_probe(validity: Validity, pairs: Sequence[LabelledPair], info: dict[str, Any], rubric: Rubric) -> Validity:
    """Add the words baseline (fitted on the pairs of the probe ``info`` describes); warn when validated pairs
    were fitted on."""
    fit = probe_fit_pairs(info, rubric)
    if fit is None:
        print("hmx rubric validate: note: the probe's pair file is gone; no words baseline", file=sys.stderr)
        return validity
    seen = {(p.prompt, p.criterion, p.chosen, p.rejected) for p in fit}
    overlap = sum((p.prompt, p.criterion, p.chosen, p.rejected) in seen for p in pairs)
    if overlap:
        print(
            f"hmx rubric validate: warning: {overlap} of these {len(pairs)} pairs are ones the probe was fitted on; "
            "report pairs it has not seen (e.g. --split test)",
            file=sys.stderr,
        )
    return with_words_baseline(validity, pairs, fit)


def probe_summary(info: dict[str, Any]) -> str:
    """One line on what a probe (its ``info``) was fitted for (printed by validate)."""
    keys = ("model", "layer", "fit_pairs", "cross_pairs", "splits", "train_accuracy")
    return "probe: " + json.dumps({k: info.get(k) for k in keys})
