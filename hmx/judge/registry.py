"""The judge modes in one table, and the one place a judge is built from its config.

Each row of :data:`MODES` names its class lazily (``"module:Class"``, lm-eval's registry pattern: a
mode's module is imported only when a config asks for it), its own options the same way (the
:class:`~hmx.config.ModeOptions` dataclass of the node ``judge.<mode>``, declared in the mode's module:
``"hmx.judge.modes.contrastive:ContrastiveOptions"`` for ``judge.contrastive.scale``) and its traits.
Config validation (``judge.mode`` and every ``judge.<mode>`` node: :func:`check_judge_config`), the typed
options (:func:`options`), the ``hmx rubric`` choices and flags, the resume policy's judge rules (its
option classes, passed in by hmx.train), evaluation and the benchmarks read this table. Adding a mode,
options included, is its module under ``hmx/judge/modes/``, one row here and its preset in ``conf/judge/``.

Sources (``judge.source``): ``self`` (a mode of :data:`MODES`, with the policy's weights) or
``external`` (an OpenAI-compatible endpoint, :data:`EXTERNAL`); ``judge.panel=true`` wraps both and
the frozen base judge in a :data:`PANEL` that logs their agreement.

Every self-judge mode scores with the weights it is given (the policy's; ``judge.weights=base`` turns
the adapter off), makes a number of forward calls fixed by N, C, ``judge.batch_size`` and the config
(ZeRO-3), quotes the completion defused, and returns NaN for a fault (a neutral reward).
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from transformers import PreTrainedTokenizerBase

from hmx.config import PACKING_OPTIONS, ConfigError, JudgeConfig, ModeOptions
from hmx.judge.protocol import Judge, node_options
from hmx.rubrics.schema import Rubric


def _load(target: str) -> Any:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class Mode:
    """One judge mode: where its class is, what it reads, which options it has and what it is."""

    target: str  # "module:Class", imported when a config asks for the mode
    summary: str  # what the mode reads, in one line (docs, benchmarks, `hmx rubric --help`)
    options: str | None = None  # "module:Class" of its own options (a ModeOptions), the node judge.<mode>
    packed: bool = False  # scored by the packed engine: reads judge.max_batch_tokens and judge.prefix_cache
    generates_text: bool = False  # writes its verdict (judge.generate.max_rationale_tokens, vLLM); else reads logits
    reads_labels: bool = False  # its score is an expectation over the rubric's label tokens (label mass)
    needs_fitted_weights: bool = False  # supervised: a head fitted on labelled pairs (hmx rubric fit-probe)
    kwargs: Mapping[str, Any] = field(default_factory=dict)  # keyword arguments of the class

    def load(self) -> Any:
        """The mode's class (its module imported now)."""
        return _load(self.target)

    def options_class(self) -> type[ModeOptions] | None:
        """The dataclass of its options node (its module imported now); None: it has none."""
        return _load(self.options) if self.options else None


MODES: dict[str, Mode] = {
    "logprob": Mode(
        "hmx.judge.modes.logprob:LogprobJudge",
        "expected score over the rubric's labels after a pre-filled 'Score: ' (G-Eval), one forward pass",
        packed=True,
        reads_labels=True,
    ),
    "generate": Mode(
        "hmx.judge.modes.generate:GenerateJudge",
        "the model writes a short rationale, then 'Score: N', parsed strictly",
        options="hmx.judge.modes.generate:GenerateOptions",
        generates_text=True,
    ),
    "binary": Mode(
        "hmx.judge.modes.binary:BinaryJudge",
        "P(Yes) that the reply matches the criterion's top anchor, one forward row per criterion",
        packed=True,
        reads_labels=True,
    ),
    "fewshot": Mode(
        "hmx.judge.modes.binary:BinaryJudge",
        "binary, with labelled example pairs (the dev split of judge.fewshot.examples) in the prompt",
        options="hmx.judge.modes.binary:FewshotOptions",
        packed=True,
        reads_labels=True,
        kwargs={"fewshot": True},
    ),
    "contrastive": Mode(
        "hmx.judge.modes.contrastive:ContrastiveJudge",
        "the reply's likelihood under the top vs the bottom anchor: 2 rows per criterion",
        options="hmx.judge.modes.contrastive:ContrastiveOptions",
    ),
    "relative": Mode(
        "hmx.judge.modes.relative:RelativeJudge",
        "a group's replies compared in one prompt, in every rotation",
    ),
    "probe": Mode(
        "hmx.judge.modes.probe:ProbeJudge",
        "a linear head per criterion, fitted on labelled pairs, reads the judge prompt's hidden state",
        options="hmx.judge.modes.probe:ProbeOptions",
        packed=True,
        needs_fitted_weights=True,
    ),
}
JUDGE_MODES = tuple(MODES)
EXTERNAL = "hmx.judge.modes.external:ExternalJudge"  # judge.source=external
PANEL = "hmx.judge.panel:JudgePanel"  # judge.panel=true


def mode_of(name: str) -> Mode:
    """The row of ``judge.mode``; a name not in the table is a ConfigError naming the field."""
    if name not in MODES:
        raise ConfigError(f"config field 'judge.mode': must be one of {JUDGE_MODES}, got {name!r}")
    return MODES[name]


def option_classes() -> dict[str, type[ModeOptions]]:
    """``judge.<mode>`` -> its options' class, for every mode that has options (their modules imported now)."""
    return {name: cls for name, mode in MODES.items() if (cls := mode.options_class()) is not None}


def options(cfg: JudgeConfig, name: str) -> Any:
    """The typed options of mode ``name`` in ``cfg`` (its class's defaults where ``cfg`` has no node): the one
    accessor above the modes (a mode reads its own through hmx.judge.protocol.node_options)."""
    cls = mode_of(name).options_class()
    if cls is None:
        raise ConfigError(f"config field 'judge.{name}': mode {name!r} has no options")
    return node_options(cfg, name, cls)


def with_options(cfg: JudgeConfig, name: str, **values: Any) -> JudgeConfig:
    """``cfg`` with options of mode ``name`` set (``with_options(cfg, "probe", head=F)``), the others kept."""
    changed = dataclasses.replace(options(cfg, name), **values)
    return dataclasses.replace(cfg, nodes={**cfg.nodes, name: dataclasses.asdict(changed)})


def check_judge_config(cfg: JudgeConfig) -> None:
    """``judge.mode`` is a row of the table and every ``judge.<node>`` is the options node of a mode, with known
    keys of the right type (a ConfigError naming the field otherwise); hmx train calls it at start-up, before the
    run directory exists, and :func:`build_judge` for every other caller."""
    mode_of(cfg.mode)
    classes = option_classes()
    for node in cfg.nodes:
        if node not in classes:
            raise ConfigError(
                f"config field 'judge.{node}': not a judge option or a mode's options node "
                f"(the modes with options: {', '.join(classes)})"
            )
        node_options(cfg, node, classes[node])


def mode_options() -> dict[str, list[str]]:
    """Each option a mode reads beyond the shared ones, dotted under ``judge`` (``contrastive.scale``; the engine's
    flat ``max_batch_tokens``), and the modes that read it: ``hmx rubric``'s flags are derived from it."""
    options: dict[str, list[str]] = {}
    for name, mode in MODES.items():
        engine = PACKING_OPTIONS if mode.packed else ()
        cls = mode.options_class()
        own = [f"{name}.{item.name}" for item in dataclasses.fields(cls)] if cls else []
        for option in (*engine, *own):
            options.setdefault(option, []).append(name)
    return options


def scoring_config(cfg: JudgeConfig) -> JudgeConfig:
    """``cfg`` with a text-writing mode replaced by logprob, which scores the same rubric from one forward
    pass (evaluation scores many answers: a rationale for each would cost far more than it tells)."""
    return dataclasses.replace(cfg, mode="logprob") if mode_of(cfg.mode).generates_text else cfg


def build_judge(rubric: Rubric, tokenizer: PreTrainedTokenizerBase, cfg: JudgeConfig) -> Judge:
    """The judge for ``cfg.source`` and ``cfg.mode``; raises RubricError/ConfigError for a config it cannot use."""
    check_judge_config(cfg)
    mode = mode_of(cfg.mode)
    if cfg.panel:
        alone = dataclasses.replace(cfg, panel=False, source="self")
        return _load(PANEL)(build_judge(rubric, tokenizer, alone), _load(EXTERNAL)(rubric, tokenizer, alone), cfg)
    if cfg.source == "external":
        if cfg.drift_steps > 0:
            raise ConfigError(
                "config field 'judge.drift_steps': the drift monitor compares the self-judge's base and policy "
                "weights; an external judge has neither (judge.panel=true compares the judges instead)"
            )
        return _load(EXTERNAL)(rubric, tokenizer, cfg)
    return mode.load()(rubric, tokenizer, cfg, **mode.kwargs)
