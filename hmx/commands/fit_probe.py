"""``hmx rubric fit-probe``: fit probe mode's heads on labelled pairs and write them as safetensors."""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hmx.config import ConfigError, JudgeConfig
from hmx.destinations import check_destination
from hmx.judge.modes.probe import ProbeJudge
from hmx.judge.validity.probe_fit import candidate_layers, fit_probe
from hmx.resources import ROOT
from hmx.rubrics.pairs import PairError, load_pairs
from hmx.rubrics.schema import Rubric


def checked_out_path(out: str, force: bool) -> Path:
    """``--out``: a .safetensors file hmx can write, not there yet (or ``--force``): checked before the fit."""
    if Path(out).suffix != ".safetensors":
        raise ConfigError(f"--out {out!r}: a probe is written as safetensors; name it *.safetensors")
    return check_destination(out, "--out", "file", force=force)


def shipped_relative(path: Path) -> str:
    """A pair file's path as a probe records it: relative to hmx's shipped tree when inside it, else absolute."""
    resolved = path.expanduser().resolve()
    return str(resolved.relative_to(ROOT)) if resolved.is_relative_to(ROOT) else str(resolved)


def run_fit_probe(args: argparse.Namespace, rubric: Rubric, loader: Callable[..., tuple[Any, Any]]) -> int:
    """Fit the probe on the pairs (checked before the model loads), print the cross-validation, write it."""
    out = checked_out_path(args.out, args.force)
    if not (math.isfinite(args.c) and args.c > 0):
        raise ConfigError(f"--c {args.c}: must be a positive number")
    files = [args.pairs] if isinstance(args.pairs, str) else list(args.pairs)  # --pairs repeats: one fit on all
    pairs = [pair for file in files for pair in load_pairs(file, rubric, args.split)]
    missing = [c.name for c in rubric.criteria if not any(p.criterion == c.name for p in pairs)]
    if missing:
        shown = ", ".join(files)
        raise PairError(f"{shown}: criterion: no pairs for {missing}; a probe needs pairs for every criterion")
    with contextlib.redirect_stdout(sys.stderr):
        model, tokenizer = loader(args.model, args.cache_dir, args.device)
    depth = int(getattr(model.config, "num_hidden_layers", 0))
    if args.layer is not None and not 0 < args.layer <= depth:
        raise ConfigError(f"--layer {args.layer}: the model's hidden states are 1-{depth} (0 is the embeddings)")
    layers = [args.layer] if args.layer is not None else candidate_layers(depth)
    judge = ProbeJudge(rubric, tokenizer, JudgeConfig(mode="probe"), layers=layers)
    device = next(model.parameters()).device
    sources = [shipped_relative(Path(file)) for file in files]
    source: str | list[str] = sources[0] if len(sources) == 1 else sources
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
