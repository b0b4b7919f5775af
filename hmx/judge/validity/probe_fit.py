"""Fitting a probe judge on labelled pairs (``hmx rubric fit-probe``).

1. Every distinct reply of the pairs is read under every criterion's judge prompt by the model
   itself (:class:`hmx.judge.modes.probe.ProbeJudge` in feature mode): the hidden state at the row's end
   at a few candidate layers, one forward pass per reply as in logprob mode.
2. Training pairs per criterion: the file's pairs, and (``cross``, on by default) *cross pairs*:
   for a prompt whose pairs cover several criteria, the chosen reply of criterion c against the
   chosen reply of another criterion, on c. They teach the head which criterion it scores (a
   reply full of feeling is not thereby full of intention); they assume, as the shipped pairs'
   datasheet states, that each chosen reply is high on its own criterion only.
3. Per criterion an L2-regularised logistic regression on the standardised difference of the two
   replies' hidden states (no intercept: a pair has no side), the Bradley-Terry model of the pairs.
4. The layer is chosen by 5-fold cross-validation over the fit split's prompts (a prompt's pairs
   stay in one fold); only the file's own pairs are scored in the held-out fold.

The head is then folded with the standardisation into ``w . h + b``, centred on the fit replies'
mean (an average reply scores mid-scale), and saved with what it was fitted for.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from hmx.judge.modes.probe import PROBE_FORMAT, Probe, ProbeJudge
from hmx.judge.validity.accuracy import outcome
from hmx.rubrics.pairs import LabelledPair
from hmx.rubrics.schema import Rubric

FOLDS = 5
LAYER_FRACTIONS = (0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0)  # candidate layers, as a share of the depth


def candidate_layers(num_layers: int) -> list[int]:
    """Indices into ``hidden_states`` (0 = embeddings, ``num_layers`` = the last layer, normed) to try."""
    return sorted({max(1, round(num_layers * f)) for f in LAYER_FRACTIONS})


def cross_pairs(pairs: Sequence[LabelledPair]) -> list[LabelledPair]:
    """Per prompt (and split): its chosen reply of criterion c against its chosen reply of each other criterion."""
    chosen: dict[tuple[str, str | None], dict[str, str]] = {}
    for pair in pairs:
        chosen.setdefault((pair.prompt, pair.split), {}).setdefault(pair.criterion, pair.chosen)
    out = []
    for (prompt, split), replies in chosen.items():
        for criterion, reply in replies.items():
            for other, rival in replies.items():
                if other != criterion and rival != reply:
                    out.append(LabelledPair(prompt, criterion, reply, rival, split, 0))
    return out


@dataclass
class PairFeatures:
    """Hidden states of every distinct reply under every criterion, and the pairs as row indices."""

    states: torch.Tensor  # [R, C, K, H]
    criteria: list[str]
    layers: list[int]
    chosen: torch.Tensor  # [P] reply row of each pair's chosen reply
    rejected: torch.Tensor  # [P]
    criterion: torch.Tensor  # [P] criterion index
    group: torch.Tensor  # [P] prompt index (cross-validation folds keep a prompt together)
    own: torch.Tensor  # [P] bool: a pair of the file (False: a cross pair)


def read_features(
    judge: ProbeJudge,
    model: torch.nn.Module,
    pairs: Sequence[LabelledPair],
    extra: Sequence[LabelledPair],
    device: torch.device,
    chunk: int = 8,
    progress: bool = True,
) -> PairFeatures:
    """Every distinct (prompt, reply) of ``pairs`` and ``extra`` through the judge, ``chunk`` replies per pass."""
    replies: dict[tuple[str, str], int] = {}
    for pair in [*pairs, *extra]:
        for reply in (pair.chosen, pair.rejected):
            replies.setdefault((pair.prompt, reply), len(replies))
    keys = list(replies)
    parts = []
    for start in tqdm(range(0, len(keys), chunk), desc="probe features", unit="batch", disable=not progress):
        batch = keys[start : start + chunk]
        parts.append(judge.features(model, [k[0] for k in batch], [k[1] for k in batch], device))
    names = [c.name for c in judge.rubric.criteria]
    prompts = {prompt: i for i, prompt in enumerate(dict.fromkeys(p.prompt for p in pairs))}
    rows = [*pairs, *extra]
    return PairFeatures(
        states=torch.cat(parts),
        criteria=names,
        layers=list(judge.layers),
        chosen=torch.tensor([replies[(p.prompt, p.chosen)] for p in rows]),
        rejected=torch.tensor([replies[(p.prompt, p.rejected)] for p in rows]),
        criterion=torch.tensor([names.index(p.criterion) for p in rows]),
        group=torch.tensor([prompts.get(p.prompt, -1) for p in rows]),
        own=torch.tensor([True] * len(pairs) + [False] * len(extra)),
    )


def logistic_head(diffs: torch.Tensor, c: float) -> torch.Tensor:
    """``w`` minimising the mean of ``softplus(-diffs @ w)`` plus an L2 penalty (scikit-learn's ``C`` on the
    symmetrised pairs: each pair once as ``+d`` labelled 1 and once as ``-d`` labelled 0)."""
    weight = torch.zeros(diffs.shape[1], dtype=torch.float64, requires_grad=True)
    data = diffs.double()
    l2 = 1.0 / (2 * c * max(1, len(data)))
    optimizer = torch.optim.LBFGS([weight], max_iter=500, tolerance_grad=1e-9, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.softplus(-(data @ weight)).mean() + 0.5 * l2 * weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return weight.detach().float()


def standardiser(
    features: PairFeatures, criterion: int, layer: int, rows: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation of the given reply rows' hidden states under one criterion and layer."""
    states = features.states[rows, criterion, layer]
    return states.mean(0), states.std(0, unbiased=False) + 1e-6


def fit_heads(features: PairFeatures, layer: int, train: torch.Tensor, c: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per criterion ``(weight [C, H], bias [C])`` on raw hidden states, from the pairs where ``train``."""
    weights, biases = [], []
    for j in range(len(features.criteria)):
        mask = train & (features.criterion == j)
        replies = torch.unique(torch.cat([features.chosen[mask], features.rejected[mask]]))
        if not len(replies):
            replies = torch.arange(features.states.shape[0])
        mean, std = standardiser(features, j, layer, replies)
        states = features.states[:, j, layer]
        diffs = (states[features.chosen[mask]] - states[features.rejected[mask]]) / std
        head = logistic_head(diffs, c) / std if mask.any() else torch.zeros_like(std)
        weights.append(head)
        biases.append(-(head * mean).sum())
    return torch.stack(weights), torch.stack(biases)


def pair_accuracy(features: PairFeatures, layer: int, weight: torch.Tensor, pairs: torch.Tensor) -> list[float]:
    """``outcome`` per pair on the heads' logits: does the chosen reply score higher?"""
    j = features.criterion[pairs]
    states = features.states[:, :, layer]
    gap = ((states[features.chosen[pairs], j] - states[features.rejected[pairs], j]) * weight[j]).sum(-1)
    return [outcome(g, 0.0) for g in gap.tolist()]


def cross_validate(features: PairFeatures, c: float) -> dict[int, float]:
    """Held-out accuracy of each candidate layer over ``FOLDS`` folds of prompts (the file's pairs only)."""
    groups = sorted(set(features.group[features.own].tolist()))
    folds = {g: i % FOLDS for i, g in enumerate(groups)}
    fold = torch.tensor([folds.get(g, -1) for g in features.group.tolist()])
    accuracy = {}
    for k, layer in enumerate(features.layers):
        outcomes: list[float] = []
        for f in range(min(FOLDS, len(groups))):
            held = fold == f
            weight, _ = fit_heads(features, k, ~held & (fold >= 0), c)
            outcomes += pair_accuracy(features, k, weight, torch.nonzero(held & features.own).flatten())
        accuracy[layer] = sum(outcomes) / max(1, len(outcomes))
    return accuracy


def fit_probe(
    rubric: Rubric,
    judge: ProbeJudge,
    model: torch.nn.Module,
    pairs: Sequence[LabelledPair],
    device: torch.device,
    *,
    c: float = 0.1,
    cross: bool = True,
    model_name: str = "",
    source: str | list[str] = "",
    progress: bool = True,
) -> tuple[Probe, dict[int, float]]:
    """The probe fitted on ``pairs`` (layer by cross-validation among ``judge.layers``) and each layer's CV accuracy."""
    started = time.perf_counter()
    extra = cross_pairs(pairs) if cross else []
    features = read_features(judge, model, pairs, extra, device, progress=progress)
    scores = cross_validate(features, c) if len(features.layers) > 1 else {features.layers[0]: math.nan}
    layer = max(scores, key=lambda k: (scores[k], -abs(k - features.layers[len(features.layers) // 2])))
    index = features.layers.index(layer)
    everything = torch.ones(len(features.chosen), dtype=torch.bool)
    weight, bias = fit_heads(features, index, everything, c)
    train_accuracy = pair_accuracy(features, index, weight, torch.nonzero(features.own).flatten())
    config = getattr(model, "config", None)
    info = {
        "format": PROBE_FORMAT,
        "rubric": rubric.name,
        "criteria": features.criteria,
        "layer": layer,
        "hidden_size": getattr(config, "hidden_size", weight.shape[1]),
        "num_hidden_layers": getattr(config, "num_hidden_layers", None),
        "model": model_name,
        "prefill": judge.cfg.prefill,
        "pairs": source,
        "splits": sorted({str(p.split) for p in pairs}),
        "fit_pairs": len(pairs),
        "cross_pairs": len(extra),
        "c": c,
        "cv_accuracy": {str(k): round(v, 4) for k, v in scores.items()},
        "train_accuracy": round(sum(train_accuracy) / max(1, len(train_accuracy)), 4),
        "seconds": round(time.perf_counter() - started, 1),
    }
    return Probe(weight, bias, info), scores
