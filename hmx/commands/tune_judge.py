"""``hmx rubric tune-judge``: evaluation fine-tuning of the logprob judge on labelled pairs (docs/rubrics.md).

hmx rubric tune-judge --rubric hmx_feel --model smollm2-135m --pairs rubrics/hmx_feel.pairs.jsonl --split dev \\
    --out rubrics/tuned/hmx_feel.smollm2-135m.safetensors

Trains a LoRA adapter with a Bradley-Terry loss on the judge's expected scores
(:mod:`hmx.judge.validity.judge_tuning`), picks the epoch on pairs of held-out messages, and writes the
adapter as one safetensors file (atomically). Use it with ``judge=tuned`` / ``judge.adapter=FILE``:
merged into the base weights at load, then judged with ``judge.mode=logprob``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hmx.config import ConfigError
from hmx.destinations import check_destination
from hmx.resources import ROOT
from hmx.rubrics.pairs import LabelledPair, load_pairs
from hmx.rubrics.schema import Rubric

if TYPE_CHECKING:
    from hmx.judge.validity.judge_tuning import TuneSettings


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of ``hmx rubric tune-judge`` (defaults: TuneSettings, read when the command runs)."""
    p.add_argument("--rubric", required=True, help="shipped rubric name or path")
    p.add_argument("--pairs", required=True, help="labelled pair file (jsonl) to tune on")
    p.add_argument("--split", help="only the pairs of this split (e.g. dev); keep another for validate")
    p.add_argument("--out", required=True, help="the adapter file to write (.safetensors)")
    p.add_argument("--force", action="store_true", help="replace an existing --out file")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--pairs-per-step", type=int, default=None)
    p.add_argument("--beta", type=float, default=None, help="Bradley-Terry scale on the score gap")
    p.add_argument("--r", type=int, default=None, help="LoRA rank")
    p.add_argument("--lora-alpha", type=int, default=None)
    p.add_argument("--target-modules", default=None, help="comma-separated")
    p.add_argument("--last-layers", type=int, default=None, help="LoRA on the last N layers (0 or >= depth: all)")
    p.add_argument("--heldout", type=float, default=None, help="share of messages held out to pick the epoch")
    p.add_argument(
        "--heldout-split",
        default=None,
        help="pick the epoch on this split of --pairs instead (e.g. pairs by other authors); no message in both",
    )
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--model", default="tiny", help="preset (smollm2-135m, tiny), hub id or model dir")
    p.add_argument("--cache-dir", default="~/.cache/hmx", help="where the tiny model is built")
    p.add_argument("--device", default="cpu", help="cpu (default), auto, cuda, ...")


def checked_out_path(out: str, force: bool) -> Path:
    """``--out``: a writable .safetensors file path, not there yet (or ``--force``), checked before any work."""
    if Path(out).suffix != ".safetensors":
        raise ConfigError(f"--out {out!r}: the adapter is written as safetensors; name it *.safetensors")
    return check_destination(out, "--out", "file", force=force)


def settings_from(args: argparse.Namespace) -> TuneSettings:
    """The flags as TuneSettings (a flag not given: its default); a value out of range is a ConfigError."""
    from hmx.judge.validity.judge_tuning import TuneSettings

    defaults = vars(TuneSettings())
    for key, value in defaults.items():
        if getattr(args, key, None) is None:
            setattr(args, key, ",".join(value) if key == "target_modules" else value)
    for flag, value in (("--epochs", args.epochs), ("--pairs-per-step", args.pairs_per_step), ("--r", args.r)):
        if value < 1:
            raise ConfigError(f"{flag} {value}: must be >= 1")
    for flag, value in (("--lr", args.lr), ("--beta", args.beta), ("--lora-alpha", args.lora_alpha)):
        if not value > 0:
            raise ConfigError(f"{flag} {value}: must be positive")
    if not 0 <= args.heldout < 1:
        raise ConfigError(f"--heldout {args.heldout}: must be in [0, 1)")
    if args.last_layers < 0:
        raise ConfigError(f"--last-layers {args.last_layers}: must be >= 0")
    modules = [m.strip() for m in args.target_modules.split(",") if m.strip()]
    if not modules:
        raise ConfigError("--target-modules: name at least one module (e.g. q_proj,v_proj)")
    return TuneSettings(
        epochs=args.epochs,
        lr=args.lr,
        pairs_per_step=args.pairs_per_step,
        beta=args.beta,
        r=args.r,
        lora_alpha=args.lora_alpha,
        target_modules=modules,
        last_layers=args.last_layers,
        heldout=args.heldout,
        seed=args.seed,
    )


def heldout_pairs(args: argparse.Namespace, rubric: Rubric, fit: list[LabelledPair]) -> list[LabelledPair] | None:
    """``--heldout-split``: its pairs of ``--pairs``, none sharing a message with the fit pairs; else None."""
    if args.heldout_split is None:
        return None
    if args.heldout_split == args.split:
        raise ConfigError(
            f"--heldout-split {args.heldout_split!r}: the same split as --split; pick the epoch on another"
        )
    held = load_pairs(args.pairs, rubric, args.heldout_split)
    shared = {p.prompt for p in held} & {p.prompt for p in fit}
    if shared:
        raise ConfigError(
            f"--heldout-split {args.heldout_split!r}: {len(shared)} message(s) also in the fit pairs "
            f"(e.g. {sorted(shared)[0][:60]!r}); held-out pairs must be of other messages"
        )
    return held


def shipped_relative(path: Path) -> str:
    resolved = path.expanduser().resolve()
    return str(resolved.relative_to(ROOT)) if resolved.is_relative_to(ROOT) else str(resolved)


def run_tune_judge(args: argparse.Namespace, rubric: Rubric, loader: Callable[..., tuple[Any, Any]]) -> int:
    """Check pairs, flags and ``--out`` before the model loads; tune; write the adapter; print the epochs."""
    from hmx.judge.tuned_adapter import save_adapter
    from hmx.judge.validity.judge_tuning import tune_judge

    pairs = load_pairs(args.pairs, rubric, args.split)
    if args.heldout_split is not None and args.split is None:  # fit on every other split
        pairs = [p for p in pairs if p.split != args.heldout_split]
    held_out = heldout_pairs(args, rubric, pairs)
    out = checked_out_path(args.out, args.force)
    settings = settings_from(args)
    with contextlib.redirect_stdout(sys.stderr):
        model, tokenizer = loader(args.model, args.cache_dir, args.device)
    present = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    absent = [m for m in settings.target_modules if m not in present]
    if absent:
        raise ConfigError(f"--target-modules: {absent} are not modules of {args.model!r}")
    device = next(model.parameters()).device
    print("epoch  fit loss  fit acc (running)  held-out acc", file=sys.stderr)

    def log(row: dict[str, float]) -> None:
        print(
            f"{row['epoch']:>5}  {row['fit_loss']:>8.4f}  {row['fit_accuracy']:>17.3f}  "
            f"{row['heldout_accuracy']:>12.3f}",
            file=sys.stderr,
            flush=True,
        )
        if row.get("collapsed"):
            print(
                f"hmx rubric tune-judge: WARNING: epoch {row['epoch']}: every fit pair tied (loss ln 2): the judge "
                "gives every reply the same expected score and no gradient is left, so tuning stops here; a lower "
                "--lr or --beta, or fewer --target-modules, may keep it from collapsing",
                file=sys.stderr,
                flush=True,
            )

    result = tune_judge(rubric, tokenizer, model, pairs, device, settings, log, held_out)
    info = {
        "rubric": rubric.name,
        "criteria": [c.name for c in rubric.criteria],
        "model": args.model,
        "pairs": shipped_relative(Path(args.pairs)),
        "split": args.split,
        "heldout_split": args.heldout_split,
        "fit_pairs": result.fit_pairs,
        "heldout_pairs": result.heldout_pairs,
        "best_epoch": result.best_epoch,
        "history": result.history,
        "settings": {k: v for k, v in vars(settings).items()},
        "seconds": result.seconds,
    }
    save_adapter(out, result.tensors, result.lora, info)
    kept = result.history[result.best_epoch]
    print(
        f"judge adapter for rubric {rubric.name}, model {args.model}: {result.fit_pairs} fit pairs, "
        f"{result.heldout_pairs} held-out; kept epoch {result.best_epoch} (held-out accuracy "
        f"{kept['heldout_accuracy']:.3f}, untuned {result.history[0]['heldout_accuracy']:.3f}); wrote {out} "
        f"({os.path.getsize(out) / 1e6:.1f} MB)"
    )
    hint = f"hmx rubric validate --judge tuned (or judge.adapter={out}) on pairs it was not tuned on"
    print(f"({result.seconds}s) next: {hint}", file=sys.stderr)
    return 0
