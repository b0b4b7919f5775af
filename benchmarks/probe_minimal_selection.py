"""How ``rubrics/probes/hmx_feel.smollm2-135m.minimal.safetensors`` (``judge=probe_minimal``) was chosen and fitted.

``python -m benchmarks.probe_minimal_selection --work DIR [--out HEAD.safetensors]`` reads probe features of the
main dev pairs, the minimal dev pairs and the generated dev pairs (the first 12 generated messages) through
SmolLM2-135M once (cached in DIR; ~45 CPU minutes on a loaded 2-core machine), runs the grid of
docs/rubrics.md ("A probe for minimal pairs": data A / B / B0 × the 7 candidate layers × C), 5-fold CV by message
over the main and minimal dev messages (generated pairs always fitted, never scored), prints every row, and with
``--out`` writes the head the amended rule chose (B0, layer 15, C 0.03) fitted on all its dev pairs.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import torch

from hmx.config import JudgeConfig
from hmx.judge.authoring import load_judge_model
from hmx.judge.modes.probe import PROBE_FORMAT, Probe, ProbeJudge
from hmx.judge.validity.probe_fit import (
    PairFeatures,
    candidate_layers,
    cross_pairs,
    fit_heads,
    pair_accuracy,
    read_features,
)
from hmx.resources import RUBRICS_DIR
from hmx.rubrics.loading import load_checked
from hmx.rubrics.pairs import load_pairs

FILES = {
    "main": "hmx_feel.pairs.jsonl",
    "minimal": "hmx_feel.minimal.pairs.jsonl",
    "generated": "train/hmx_feel.generated.pairs.jsonl",
}
GRID_C = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
LAYERS = candidate_layers(30)
CHOSEN = ("B0", 15, 0.03)


def features(work: Path, files: dict[str, str] = FILES) -> dict[str, PairFeatures]:
    """Each file's dev pairs and cross pairs through the probe judge at the candidate layers (cached in ``work``)."""
    rubric = load_checked("hmx_feel")
    out, loaded = {}, None
    for name, file in files.items():
        cache = work / f"{name}.pt"
        if not cache.is_file():
            if loaded is None:
                loaded = load_judge_model("smollm2-135m", "~/.cache/hmx", "cpu")
            model, tokenizer = loaded
            judge = ProbeJudge(rubric, tokenizer, JudgeConfig(mode="probe"), layers=LAYERS)
            pairs = load_pairs(RUBRICS_DIR / file, rubric, "dev")
            read = read_features(judge, model, pairs, cross_pairs(pairs), torch.device("cpu"))
            torch.save(read.__dict__, cache)
        out[name] = PairFeatures(**torch.load(cache, weights_only=False))
    return out


def combine(parts: list[tuple[str, PairFeatures, bool]]) -> tuple[PairFeatures, list[str]]:
    """One feature set from several files (cross pairs of a part kept or not); each pair's source file."""
    states, chosen, rejected, criterion, group, own, source = [], [], [], [], [], [], []
    offset = group_offset = 0
    for tag, f, keep_cross in parts:
        mask = f.own | keep_cross
        states.append(f.states)
        chosen.append(f.chosen[mask] + offset)
        rejected.append(f.rejected[mask] + offset)
        criterion.append(f.criterion[mask])
        group.append(torch.where(f.group[mask] >= 0, f.group[mask] + group_offset, -1))
        own.append(f.own[mask])
        source += [tag] * int(mask.sum())
        offset += f.states.shape[0]
        group_offset += int(f.group.max()) + 1
    cat = torch.cat
    first = parts[0][1]
    merged = PairFeatures(
        cat(states), first.criteria, first.layers, cat(chosen), cat(rejected), cat(criterion), cat(group), cat(own)
    )
    return merged, source


def cross_validate(
    feat: PairFeatures, source: list[str], c: float, k: int, scored: tuple[str, ...] = ("main", "minimal")
) -> dict[str, float]:
    """CV accuracy per scored file (by default the main and the minimal dev pairs): 5 folds of their messages;
    the pairs of the other files (the generated ones) always fitted, never scored."""
    dev = torch.tensor([s in scored for s in source])
    groups = list(dict.fromkeys(feat.group[dev & feat.own].tolist()))
    folds = {g: i % 5 for i, g in enumerate(groups)}
    fold = torch.tensor([folds.get(g, -1) if d else -1 for g, d in zip(feat.group.tolist(), dev.tolist(), strict=True)])
    outcomes: dict[str, list[float]] = {s: [] for s in scored}
    for f in range(5):
        held = fold == f
        weight, _ = fit_heads(feat, k, ~held, c)
        index = torch.nonzero(held & feat.own).flatten()
        for i, o in zip(index.tolist(), pair_accuracy(feat, k, weight, index), strict=True):
            outcomes[source[i]].append(o)
    return {s: sum(v) / len(v) for s, v in outcomes.items()}


def datasets(f: dict[str, PairFeatures]) -> dict[str, list[tuple[str, PairFeatures, bool]]]:
    base = [("main", f["main"], True), ("minimal", f["minimal"], True)]
    return {
        "A": base,
        "B": [*base, ("generated", f["generated"], True)],
        "B0": [*base, ("generated", f["generated"], False)],
    }


def write_head(
    out: str,
    parts: list[tuple[str, PairFeatures, bool]],
    layer: int,
    c: float,
    cv_rows: dict[int, dict[str, float]],
    files: list[str],
    cv_keys: dict[str, str],
    selection: str,
) -> None:
    """The chosen head fitted on all of ``parts`` and saved with its provenance: ``cv_rows`` (per candidate layer,
    the CV accuracy per scored file) recorded under ``cv_keys`` (metadata key -> scored file)."""
    feat, _ = combine(parts)
    k = feat.layers.index(layer)
    weight, bias = fit_heads(feat, k, torch.ones(len(feat.chosen), dtype=torch.bool), c)
    train = pair_accuracy(feat, k, weight, torch.nonzero(feat.own).flatten())
    info = {
        "format": PROBE_FORMAT,
        "rubric": "hmx_feel",
        "criteria": feat.criteria,
        "layer": layer,
        "hidden_size": int(weight.shape[1]),
        "num_hidden_layers": 30,
        "model": "smollm2-135m",
        "prefill": JudgeConfig().prefill,
        "pairs": [f"rubrics/{file}" for file in files],
        "splits": ["dev"],
        "fit_pairs": int(feat.own.sum()),
        "cross_pairs": int((~feat.own).sum()),
        "c": c,
        **{key: {str(lay): round(r[scored], 3) for lay, r in cv_rows.items()} for key, scored in cv_keys.items()},
        "train_accuracy": round(sum(train) / len(train), 4),
        "selection": selection,
    }
    Probe(weight, bias, info).save(out)
    print(json.dumps({k: info[k] for k in ("layer", "c", "fit_pairs", "cross_pairs", "train_accuracy")}))


def grid(
    sets: dict[str, list[tuple[str, PairFeatures, bool]]], scored: tuple[str, ...], width: int
) -> dict[tuple[str, int, float], dict[str, float]]:
    """Every candidate's CV accuracy per scored file, keyed by (data, layer, C); each row printed as it comes
    (``width``: the data name's column)."""
    cv: dict[tuple[str, int, float], dict[str, float]] = {}
    for name, parts in sets.items():
        feat, source = combine(parts)
        for (k, layer), c in itertools.product(enumerate(feat.layers), GRID_C):
            cv[(name, layer, c)] = r = cross_validate(feat, source, c, k, scored)
            print(f"{name:{width}} layer {layer:2} C {c:<5} " + " ".join(f"{s} {r[s]:.3f}" for s in scored), flush=True)
    return cv


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", required=True, help="folder for the cached features")
    parser.add_argument("--out", help="write the chosen head here (.safetensors)")
    args = parser.parse_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    sets = datasets(features(work))
    cv = grid(sets, ("main", "minimal"), 3)
    if args.out:
        name, layer, c = CHOSEN
        keys = {"cv_accuracy": "main", "cv_accuracy_minimal": "minimal"}
        selection = f"docs/rubrics.md, 'A probe for minimal pairs' (candidate {name}, CV by message on dev)"
        write_head(
            args.out,
            sets[name],
            layer,
            c,
            {lay: cv[(name, lay, c)] for lay in LAYERS},
            list(FILES.values()),
            keys,
            selection,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
