"""What ``validate`` adds for a probe judge: the words baseline fitted on the probe's own pairs, overlap warnings."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hmx.config import ConfigError
from hmx.judge.validity.accuracy import Validity
from hmx.judge.validity.words_baseline import with_words_baseline
from hmx.resources import ROOT, RUBRICS_DIR
from hmx.rubrics.pairs import LabelledPair, load_pairs
from hmx.rubrics.schema import Rubric


def shipped_probe(rubric: str, model: str) -> Path:
    """The probe head shipped for ``rubric`` and ``model`` (a preset name such as ``smollm2-135m``):
    ``rubrics/probes/RUBRIC.MODEL.safetensors``; ConfigError naming the fix when there is none."""
    path = RUBRICS_DIR / "probes" / f"{rubric}.{Path(model).name}.safetensors"
    if not path.is_file():
        raise ConfigError(
            f"config field 'judge.probe.head': no probe head is shipped for rubric {rubric!r} and model {model!r} "
            f"({path} is not there); fit one with hmx rubric fit-probe --rubric {rubric} --model {model} "
            "--pairs FILE --split dev --out PROBE.safetensors and pass --probe PROBE.safetensors"
        )
    return path


def probe_fit_pairs(info: dict[str, Any], rubric: Rubric) -> list[LabelledPair] | None:
    """The pairs a probe (its ``info``) was fitted on, when its pair file is still there."""
    recorded = info.get("pairs")
    names = [recorded] if isinstance(recorded, str) else list(recorded or [])
    sources = [ROOT / str(name) for name in names]  # a shipped file is recorded relative to the shipped tree
    if not sources or not all(source.is_file() for source in sources):
        return None
    splits = set(info.get("splits") or [])
    return [p for source in sources for p in load_pairs(source, rubric) if str(p.split) in splits]


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
