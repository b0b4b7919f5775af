"""The self-judge in probe mode: a linear head per criterion on the judge's own hidden state.

The rubric prompt is the logprob judge's (same template, pre-fill, quoting, shared-prefix packing
and call schedule, :class:`hmx.judge.modes.logprob.LogprobJudge`), but instead of reading the label
logits at the row's end, the hidden state there at one layer (``output_hidden_states``) goes
through a logistic head fitted on labelled pairs (``hmx rubric fit-probe``,
:mod:`hmx.judge.validity.probe_fit`): ``score = min + (max - min) * sigmoid(w_c . h + b_c)``. The head is a
few thousand numbers read from a safetensors file (``judge.probe.head``); the weights that make ``h``
are the policy's own, so the judge still moves with the policy (the drift monitor sees it).

The probe file records what it was fitted for; loading it checks the rubric's criteria, the
model's hidden size and layer count, and the judge prompt's settings, and names the file and the
field when one does not match.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file
from transformers import PreTrainedTokenizerBase

from hmx.config import ConfigError, JudgeConfig, ModeOptions
from hmx.judge.modes.logprob import LogprobJudge
from hmx.judge.protocol import node_options
from hmx.judge.verdicts import Verdicts, judging, on_scale
from hmx.rubrics.schema import Rubric, RubricError

PROBE_FORMAT = "hmx-probe/1"


@dataclass
class Probe:
    """Per-criterion logistic heads on one layer's hidden state, and what they were fitted for."""

    weight: torch.Tensor  # [C, H]
    bias: torch.Tensor  # [C]
    info: dict[str, Any]  # format, rubric, criteria, layer, hidden_size, num_hidden_layers, model, fit figures

    @property
    def layer(self) -> int:
        return int(self.info["layer"])

    def save(self, path: str | Path) -> None:
        """Write the probe as one safetensors file, ``info`` in its metadata (atomic: a temporary file, renamed)."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        tensors = {"weight": self.weight.float().contiguous(), "bias": self.bias.float().contiguous()}
        try:
            save_file(tensors, str(partial), metadata={"hmx": json.dumps(self.info)})
            partial.replace(target)
        except BaseException:
            partial.unlink(missing_ok=True)  # a failed write leaves nothing behind
            raise


def load_probe(path: str | Path) -> Probe:
    """A probe file written by ``hmx rubric fit-probe``, checked field by field; ConfigError naming the file and
    the field when it is not one (nothing in it reaches the judge unchecked)."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(
            f"config field 'judge.probe.head': {file}: probe file not found (make one with hmx rubric fit-probe)"
        )
    try:
        with safe_open(str(file), framework="pt") as handle:
            metadata = handle.metadata() or {}
        tensors = load_file(str(file))
    except (SafetensorError, OSError, ValueError) as err:
        raise ConfigError(f"config field 'judge.probe.head': {file}: not a safetensors probe file ({err})") from None
    try:
        info = json.loads(metadata.get("hmx", "{}"))
    except ValueError as err:
        raise ConfigError(f"config field 'judge.probe.head': {file}: metadata 'hmx': not valid JSON ({err})") from None
    if not isinstance(info, dict):
        raise ConfigError(
            f"config field 'judge.probe.head': {file}: metadata 'hmx': must be a JSON object, got {type(info).__name__}"
        )
    if info.get("format") != PROBE_FORMAT or set(tensors) != {"weight", "bias"}:
        raise ConfigError(
            f"config field 'judge.probe.head': {file}: not an hmx probe (format {info.get('format')!r}, "
            f"expected {PROBE_FORMAT!r}); make one with hmx rubric fit-probe"
        )
    problem = probe_problem(tensors["weight"], tensors["bias"], info)
    if problem:
        raise ConfigError(f"config field 'judge.probe.head': {file}: {problem}; fit it again with hmx rubric fit-probe")
    return Probe(tensors["weight"], tensors["bias"], info)


def _count(value: Any) -> int | None:
    """A positive integer (not a bool), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else None


def probe_problem(weight: torch.Tensor, bias: torch.Tensor, info: dict[str, Any]) -> str | None:
    """What is wrong with a probe's tensors and metadata (``field: why``), or None."""
    if weight.dim() != 2 or not weight.is_floating_point():
        return f"weight: must be a float [criteria, hidden size] matrix, got {weight.dtype} {list(weight.shape)}"
    criteria, hidden = weight.shape
    if tuple(bias.shape) != (criteria,) or not bias.is_floating_point():
        return f"bias: must be one float per criterion, shape [{criteria}], got {bias.dtype} {list(bias.shape)}"
    if not (torch.isfinite(weight).all() and torch.isfinite(bias).all()):
        return "weight/bias: hold NaN or infinite values"
    names = info.get("criteria")
    if not isinstance(names, list) or len(names) != criteria or not all(isinstance(n, str) for n in names):
        return (
            f"metadata field 'criteria': must list the {criteria} criterion names of the weight's rows, got {names!r}"
        )
    if _count(info.get("hidden_size")) != hidden:
        return f"metadata field 'hidden_size': {info.get('hidden_size')!r} is not the weight's hidden size {hidden}"
    depth = _count(info.get("num_hidden_layers"))
    if depth is None:
        return f"metadata field 'num_hidden_layers': must be a positive integer, got {info.get('num_hidden_layers')!r}"
    layer = _count(info.get("layer"))
    if layer is None or layer > depth:
        return (
            f"metadata field 'layer': must be a hidden layer 1-{depth} (0 is the embeddings), got {info.get('layer')!r}"
        )
    return None


def check_probe(probe: Probe, source: str, rubric: Rubric, cfg: JudgeConfig) -> None:
    """The probe fits this rubric and judge prompt (the model is checked at the first forward)."""
    criteria = [c.name for c in rubric.criteria]
    if probe.info.get("criteria") != criteria:
        raise RubricError(
            f"{source}: criteria: the probe was fitted for {probe.info.get('criteria')} of rubric "
            f"{probe.info.get('rubric')!r}, not {criteria} of {rubric.name!r}; fit one for this rubric"
        )
    if probe.info.get("prefill") != cfg.prefill:
        raise ConfigError(
            f"config field 'judge.prefill': {cfg.prefill!r}, but the probe {source} was fitted with "
            f"{probe.info.get('prefill')!r} (its hidden states are read after the pre-fill)"
        )


def check_model(probe: Probe, source: str, model: torch.nn.Module) -> None:
    """The probe's hidden size and layer count are the model's."""
    config = getattr(model, "config", None)
    shape = (getattr(config, "hidden_size", None), getattr(config, "num_hidden_layers", None))
    fitted = (probe.info.get("hidden_size"), probe.info.get("num_hidden_layers"))
    if shape != fitted:
        raise ConfigError(
            f"config field 'judge.probe.head': {source} was fitted on {probe.info.get('model')!r} (hidden size, "
            f"layers = {fitted}), but the judge's model has {shape}; fit a probe on this model"
        )


@dataclass
class ProbeOptions(ModeOptions):
    """``judge.probe``: the fitted linear heads."""

    head: str | None = None  # the head file written by hmx rubric fit-probe


class ProbeJudge(LogprobJudge):
    """Scores each (completion, criterion) with a fitted head on one layer's hidden state at the row's end."""

    forward_options = {"output_hidden_states": True}

    def __init__(
        self,
        rubric: Rubric,
        tokenizer: PreTrainedTokenizerBase,
        cfg: JudgeConfig,
        probe: Probe | None = None,
        layers: list[int] | None = None,
    ):
        """``probe`` (else ``judge.probe.head``) gives the heads; with ``layers`` and no probe the judge only
        reads features (``score`` then fails), as :mod:`hmx.judge.validity.probe_fit` does to fit one."""
        super().__init__(rubric, tokenizer, cfg)
        self.options = node_options(cfg, "probe", ProbeOptions)
        if probe is None and layers is None:
            if not self.options.head:
                raise ConfigError(
                    "config field 'judge.probe.head': probe mode needs a probe file (hmx rubric fit-probe)"
                )
            probe = load_probe(self.options.head)
            check_probe(probe, str(self.options.head), rubric, cfg)
        self.probe = probe
        self.layers = [probe.layer] if probe is not None else list(layers or [])
        self.checked = False

    def readout(self, output: Any, ends: torch.Tensor) -> torch.Tensor:
        """The selected layers' hidden states at the row ends, ``[B, W, K * H]``."""
        states = [output.hidden_states[layer] for layer in self.layers]
        index = ends[:, :, None].expand(-1, -1, states[0].shape[-1])
        return torch.cat([state.gather(1, index).float() for state in states], dim=-1)

    def features(
        self, model: torch.nn.Module, prompts: list[str], completions: list[str], device: torch.device
    ) -> torch.Tensor:
        """``[N, C, K, H]``: every completion's hidden states under every criterion's prompt, at ``self.layers``."""
        n, c = len(completions), len(self.rubric.criteria)
        with judging(model, self.cfg.weights):
            states = self.read_rows(model, self.texts(prompts, completions), device).cpu()
        return states.view(n, c, len(self.layers), -1)

    def verdicts(self, logits: torch.Tensor) -> Verdicts:
        """Scores from hidden states ``[N, C, H]`` (named ``logits`` by the parent's pass)."""
        if self.probe is None:
            raise ConfigError("config field 'judge.probe.head': this probe judge only reads features (no probe file)")
        n, c = logits.shape[:2]
        weight, bias = self.probe.weight.to(logits.device), self.probe.bias.to(logits.device)
        scores = on_scale(self.rubric, torch.sigmoid((logits * weight[None]).sum(-1) + bias[None]).cpu())
        probs: list[list[list[float]]] = [[[] for _ in range(c)] for _ in range(n)]
        return Verdicts(scores=scores, label_probs=probs, label_mass=torch.ones(n, c))

    def check_model(self, model: torch.nn.Module) -> None:
        """The head fits the model's hidden size and depth (hmx train calls it before the run directory exists)."""
        if self.probe is not None and not self.checked:
            check_model(self.probe, str(self.options.head or "the probe"), model)
            self.checked = True

    def score(self, model: torch.nn.Module, prompts, completions, device: torch.device) -> Verdicts:
        self.check_model(model)
        return super().score(model, prompts, completions, device)
