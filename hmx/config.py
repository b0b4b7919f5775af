"""Typed schemas for hmx's own config nodes, validated at start-up.

Upstream dataclasses own their defaults: ``trainer`` and ``generation`` are deltas over
``trl.GRPOConfig`` and ``peft`` is a delta over ``peft.LoraConfig``; they are checked by
constructing those classes. hmx's own nodes are merged into the dataclasses below, so an
unknown key or a wrong type fails with the node's name.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field, fields, is_dataclass
from operator import attrgetter
from typing import Any, ClassVar, TypeVar, cast, get_args, get_type_hints

from omegaconf import DictConfig, OmegaConf, flag_override
from omegaconf.errors import OmegaConfBaseException

from hmx.config_renames import RENAMED, is_node, migrate_node
from hmx.errors import InputError

T = TypeVar("T")


class ConfigError(InputError):
    """A config node that cannot be used; the message names the node and field."""


@dataclass
class TinyModelConfig:
    """Shape of the locally built Qwen3-architecture model (random weights, fixed seed)."""

    vocab_size: int = 1024
    hidden_size: int = 64
    intermediate_size: int = 256
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    head_dim: int = 16
    max_position_embeddings: int = 2048
    initializer_range: float = 0.3
    seed: int = 0


@dataclass
class PackagedModelConfig:
    """A copy of the model shipped inside a Python package as GGUF (used offline when installed)."""

    package: str = ""  # import name of the package holding the file (found, never imported)
    file: str = ""  # the GGUF file inside it
    sha256: str = ""  # pinned digest of that file
    install: str = ""  # the command that installs the package (named in errors)


@dataclass
class ModelConfig:
    name_or_path: str = "tiny"
    revision: str | None = None
    dtype: str = "auto"  # auto: bf16 on a GPU that supports it, else float32
    attn_implementation: str = "sdpa"
    trust_remote_code: bool = False
    tiny: TinyModelConfig | None = None
    packaged: PackagedModelConfig | None = None  # when its package is installed, used instead of the hub


@dataclass
class DataConfig:
    path: str = ""
    prompt_column: str = "prompt"
    train_split: str = "train"
    eval_split: str | None = "eval"
    split_column: str | None = "split"  # rows are filtered on this column when present
    system_prompt: str | None = None
    max_samples: int | None = None


@dataclass
class RubricConfig:
    path: str = ""
    direction: str = "forward"  # reverse: the contrastive run, score -> max + min - score
    extra: list[str] = field(default_factory=list)  # more rubrics (names or paths) whose criteria are added


@dataclass
class ExternalJudgeConfig:
    """An OpenAI-compatible endpoint as the judge (``judge.source=external``; hmx/judge/modes/external.py)."""

    base_url: str | None = None  # e.g. http://127.0.0.1:8000/v1 (vLLM, trl vllm-serve, transformers serve)
    model: str | None = None  # the served model's name, as the server lists it under /v1/models
    api_key_env: str | None = None  # NAME of the environment variable holding the key (never the key itself)
    scoring: str = "auto"  # auto: logprobs where the server returns them, else generate | logprobs | generate
    top_logprobs: int = 20  # logprob scoring: alternatives asked for at the label position
    concurrency: int = 8  # requests in flight at once, per rank
    timeout: float = 60.0  # seconds per request: a deadline for the whole request (connect, headers, body)
    max_reply_bytes: int = 1_048_576  # a longer reply is cut off there and is a fault (judge/external/oversize)
    retries: int = 2  # further tries after a timeout, a connection error, a 429 or a 5xx
    backoff: float = 0.5  # seconds before the first retry, doubled at each further one
    extra_body: dict[str, Any] = field(default_factory=dict)  # more request fields, e.g. chat_template_kwargs


@dataclass
class ModeOptions:
    """A judge mode's own options, the node ``judge.<mode>``: one subclass per mode that has options, declared in
    the mode's module and named by its row in hmx.judge.registry.MODES, which parses the node. A resumed run may not
    change them (they change the reward), except the ones a subclass lists in ``BOOKKEEPING`` (hmx/resume_policy.py)."""

    BOOKKEEPING: ClassVar[tuple[str, ...]] = ()
    MINIMUM: ClassVar[dict[str, int]] = {}  # integer options with a floor, checked with the node


@dataclass
class JudgeConfig:
    """The ``judge`` node. Options every mode reads and the batching engine's (:data:`ENGINE_OPTIONS`; the packing
    ones are read by every mode it packs: logprob, binary, fewshot, probe) are flat; an option read by one mode
    lives under that mode's name (``judge.contrastive.scale``). This layer knows no mode: such a node is carried
    untyped in :attr:`nodes` and parsed typed by the mode table (hmx.judge.registry.options, with the options class
    the mode's module declares). The flat names of the previous release (``judge.contrastive_scale``, ...:
    :data:`RENAMED`) still work, with a deprecation message."""

    NODES: ClassVar[str] = "nodes"  # the field that collects the mapping-valued keys that are not fields

    mode: str = "logprob"  # a row of hmx.judge.registry.MODES (checked there); docs/rubrics.md compares them
    source: str = "self"  # self: the policy judges (mode, weights) | external: the endpoint of judge.external
    panel: bool = False  # also score every batch with the self, frozen-base and external judges; log agreement
    external: ExternalJudgeConfig = field(default_factory=ExternalJudgeConfig)
    weights: str = "policy"  # policy: adapter on (self-rewarding) | base: adapter off (frozen judge)
    batch_size: int = 16  # fixed micro-batch: every rank makes the same number of forward calls
    max_batch_tokens: int | None = None  # packed modes: padded tokens per call (0: batch_size rows; None: by device)
    prefix_cache: bool = True  # packed modes: encode the rubric prefix once per pass, keep its KV cache
    prefill: str = "Score: "
    max_prompt_chars: int = 2000
    max_completion_chars: int = 4000
    drift_steps: int = 0  # every N steps score the drift probes with base and policy weights (0: off)
    drift_probes: str | None = None  # jsonl with prompt/completion rows; None: hmx's built-in probe set
    adapter: str | None = None  # a judge adapter of hmx rubric tune-judge, merged into the base weights at load
    validate: str | None = None  # a labelled pair file: hmx train checks the judge on it before training
    validate_split: str | None = None  # only the pairs of this split (e.g. test); None: every pair
    min_accuracy: float | None = None  # refuse to train when the judge's pairwise accuracy is below this
    require_valid: bool = False  # refuse to train when the judge fails the surface bar on judge.validate
    nodes: dict[str, Any] = field(default_factory=dict)  # judge.<mode> -> its options, as given (registry parses)


PACKING_OPTIONS = ("max_batch_tokens", "prefix_cache")  # read by every mode the packed engine scores
ENGINE_OPTIONS = ("batch_size", *PACKING_OPTIONS)  # the batching engine's, flat; applied on resume (no reward change)


@dataclass
class OverlongGuardConfig:
    weight: float = 0.0  # 0: logged as rewards/overlong/mean, not trained on
    soft_fraction: float = 0.25  # the last quarter of max_completion_length is penalised linearly (DAPO)


@dataclass
class RepetitionGuardConfig:
    weight: float = 0.0
    ngram_size: int = 3
    max_penalty: float = -1.0  # reward of a fully repetitive completion


@dataclass
class GuardsConfig:
    """Non-judge reward functions (TRL's), logged like the criteria."""

    overlong: OverlongGuardConfig = field(default_factory=OverlongGuardConfig)
    repetition: RepetitionGuardConfig = field(default_factory=RepetitionGuardConfig)


@dataclass
class AuditConfig:
    """The reward-hacking audit of every run (hmx/rewards/audit.py; signals and thresholds: docs/training.md)."""

    steps: int = 1  # base agreement and lexical index every N steps (0: off; reward spread is always on)
    window: int = 8  # lexical index: fitted on the completions of the last N steps
    minimal_steps: int = 10  # minimal-pair accuracy of the policy-weights judge every N steps (0: off)
    pairs: str | None = "auto"  # labelled pair file; auto: the rubric's shipped minimal pairs; null: off
    split: str | None = "auto"  # only that split's pairs; auto: the split that goes with the auto file
    min_base_agreement: float = 0.5  # warn below: the rewarding judge ranks unlike the frozen base judge
    max_lexical_index: float = 0.5  # warn above: a bag of words explains most within-group reward differences
    max_minimal_drop: float = 0.15  # warn when minimal-pair accuracy falls this far below its first value
    min_reward_spread: float = 0.01  # warn when the within-group reward sd / reward range stays below ...
    flat_steps: int = 5  # ... for this many consecutive steps: GRPO has no signal


@dataclass
class LoggerConfig:
    backend: str = "none"  # wandb | none
    project: str = "hmx"
    entity: str | None = None
    mode: str = "auto"  # auto: $WANDB_MODE when set, else online when WANDB_API_KEY is set, else offline
    tags: list[str] = field(default_factory=list)


@dataclass
class PathsConfig:
    runs_dir: str = "outputs/runs"
    cache_dir: str = "~/.cache/hmx"


CHOICES = {
    ("judge", "weights"): ("policy", "base"),
    ("judge", "source"): ("self", "external"),
    ("rubric", "direction"): ("forward", "reverse"),
    ("logger", "backend"): ("wandb", "none"),
    ("logger", "mode"): ("auto", "online", "offline"),
}

MINIMUM = {  # integer fields with a floor (checked at start-up, before any run directory exists)
    ("judge", "batch_size"): 1,
    ("judge", "max_batch_tokens"): 0,
    ("judge", "max_prompt_chars"): 1,
    ("judge", "max_completion_chars"): 1,
    ("judge", "drift_steps"): 0,
    ("audit", "steps"): 0,
    ("audit", "window"): 1,
    ("audit", "minimal_steps"): 0,
    ("audit", "flat_steps"): 1,
}


def check_finite(node: Any, name: str) -> None:
    """Every float field of a schema node (nested nodes too) is a finite number: no nan, inf or -inf."""
    for item in fields(node):
        value, where = getattr(node, item.name), f"{name}.{item.name}"
        if is_dataclass(value) and not isinstance(value, type):
            check_finite(value, where)
        elif isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"config field '{where}': must be a finite number, got {value}")


def check_finite_values(value: Any, where: str) -> None:
    """The same for a delta node's plain values (trainer, generation, peft), nested dicts and lists too."""
    if isinstance(value, dict):
        for key, item in value.items():
            check_finite_values(item, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            check_finite_values(item, f"{where}[{i}]")
    elif isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"config field '{where}': must be a finite number, got {value}")


SCHEMAS: dict[str, type] = {
    "model": ModelConfig,
    "data": DataConfig,
    "rubric": RubricConfig,
    "judge": JudgeConfig,
    "logger": LoggerConfig,
    "paths": PathsConfig,
    "guards": GuardsConfig,
    "audit": AuditConfig,
}


def renamed_field(dotted: str) -> str:
    """A recorded field name (``judge.probe``, as an old run's inputs.json has it) under its current name."""
    node, _, key = dotted.partition(".")
    schema = SCHEMAS.get(node)
    new = RENAMED.get(schema.__name__, {}).get(key) if schema else None
    return f"{node}.{new}" if new else dotted


def parse_node(schema: type[T], node: Any, name: str) -> T:
    """``node`` (an OmegaConf node, a dict, or None: the defaults) merged into the dataclass ``schema``.

    The one config parser of hmx (``typed_node``, ``suite``, ``probes``): an unknown key, a wrong type or a
    non-finite float is a ConfigError naming the field, ``config field '<name>.<key>': ...``; a deprecated key
    is moved first (:func:`migrate_node`).
    """
    node = migrate_node(schema, node, name)
    try:
        node = _collect_nodes(schema, node, name)
        merged = OmegaConf.merge(OmegaConf.structured(schema), node if node is not None else {})
        parsed = cast(T, OmegaConf.to_object(merged))
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None)
        if not key and (scalar := _scalar_for_node(schema, node)):
            field_name, keys, value = scalar
            raise ConfigError(f"config field '{name}.{field_name}': must be a node ({keys}), got {value!r}") from None
        where = f"config field '{name}.{key}'" if key else f"config node '{name}'"
        message = str(getattr(err, "msg", err)).split("\n")[0]  # OmegaConf's own lines repeat the key
        raise ConfigError(f"{where}: {message}") from None
    check_finite(parsed, name)
    for key, floor in getattr(schema, "MINIMUM", {}).items():  # a mode's options (ModeOptions.MINIMUM)
        if (value := getattr(parsed, key)) is not None and value < floor:
            raise ConfigError(f"config field '{name}.{key}': must be >= {floor}, got {value}")
    return parsed


def _collect_nodes(schema: type, node: Any, name: str) -> Any:
    """``node`` as a plain dict with, in each node of a schema with an open ``NODES`` field (JudgeConfig:
    ``judge.<mode>``, also nested: ``suite.expression.judge``), every mapping-valued key that is not a field moved
    into that field, untyped (the mode table parses it); ``node`` itself when there is none."""
    if not is_node(node):
        return node
    plain = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else copy.deepcopy(node)
    return plain if _collect(schema, cast(dict[str, Any], plain), name) else node


def _collect(schema: type, plain: dict[str, Any], name: str) -> bool:
    changed = False
    if (open_field := getattr(schema, "NODES", None)) is not None:
        known = {item.name for item in fields(schema)}
        for key in [key for key in plain if key not in known]:
            if not isinstance(plain[key], dict):  # only a mode's options node may be added
                raise ConfigError(
                    f"config field '{name}.{key}': must be a node (a mode's options, {name}.{key}.<option>) "
                    f"or a field of '{name}', got {plain[key]!r}"
                )
            plain[open_field] = {**(plain.get(open_field) or {}), key: plain.pop(key)}
            changed = True
    hints = get_type_hints(schema)
    for item in fields(schema):
        nested = next((t for t in (hints[item.name], *get_args(hints[item.name])) if is_dataclass(t)), None)
        if isinstance(nested, type) and isinstance(plain.get(item.name), dict):
            changed = _collect(nested, plain[item.name], f"{name}.{item.name}") or changed
    return changed


def node_dict(node: Any) -> Any:
    """A parsed node (a dataclass) as the plain dict a config file has: an open ``NODES`` field unfolded back into
    its node (``{"probe": {"head": F}}``, not ``{"nodes": {...}}``), nested nodes too."""
    if is_dataclass(node) and not isinstance(node, type):
        plain = {item.name: node_dict(getattr(node, item.name)) for item in fields(node)}
        open_field = getattr(node, "NODES", None)
        nodes = plain.pop(open_field) if open_field is not None else {}
        return {**plain, **nodes}
    if isinstance(node, dict):
        return {key: node_dict(value) for key, value in node.items()}
    if isinstance(node, (list, tuple)):
        return type(node)(node_dict(value) for value in node)
    return copy.deepcopy(node)


def _scalar_for_node(schema: type, node: Any) -> tuple[str, str, Any] | None:
    """The first field of ``schema`` that is a node but got a plain value (OmegaConf names no key then): its name,
    its keys and the value."""
    default = schema()
    for item in fields(schema):
        value, nested = (node.get(item.name) if is_node(node) else None), getattr(default, item.name)
        if is_dataclass(nested) and value is not None and not is_node(value):
            return item.name, ", ".join(f.name for f in fields(nested)), value
    return None


def typed_node(cfg: DictConfig, name: str) -> Any:
    """Merge ``cfg[name]`` into its schema and return the dataclass instance. A node with deprecated keys is
    migrated in ``cfg`` too, so that what the run records (config.yaml) has the current keys."""
    moved = migrate_node(SCHEMAS[name], cfg[name], name)
    if moved is not cfg[name]:
        with flag_override(cfg, ["struct", "readonly"], False):
            cfg[name] = moved
    node: Any = parse_node(SCHEMAS[name], cfg[name], name)
    for (group, key), allowed in CHOICES.items():
        if group == name and getattr(node, key) not in allowed:
            raise ConfigError(f"config field '{name}.{key}': must be one of {allowed}, got {getattr(node, key)!r}")
    for (group, key), floor in MINIMUM.items():
        value = attrgetter(key)(node) if group == name else None
        if value is not None and value < floor:
            raise ConfigError(f"config field '{name}.{key}': must be >= {floor}, got {value}")
    return node


def plain_dict(cfg: DictConfig, name: str) -> dict[str, Any]:
    """A delta node (trainer, generation, peft) as a plain dict."""
    node = cfg.get(name)
    plain = {} if node is None else dict(OmegaConf.to_container(node, resolve=True))  # type: ignore[arg-type]
    check_finite_values(plain, name)
    return plain
