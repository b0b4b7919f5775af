"""Generation backends, checked at start-up: transformers ``generate`` or vLLM (colocate / server).

``generation=auto`` (the default) picks the fastest backend this machine has, once, before
anything is written (:func:`resolve_generation`): vLLM colocate on a GPU where vLLM is installed;
else, on a GPU, :data:`GPU_FALLBACK` (chosen by measurement, docs/performance.md) with a warning
that names the faster option; else (CPU) transformers ``generate``. Fields set next to
``backend: auto`` override the chosen preset's.
``generation=hf`` (default), ``generation=vllm_colocate`` and ``generation=vllm_server`` are
deltas over ``trl.GRPOConfig`` (``use_vllm``, ``vllm_mode``, …); TRL imports vLLM only when
``use_vllm`` is set, in both modes (server mode syncs weights through vLLM's communicator).
hmx checks before anything is written that vLLM is installed and a GPU is there, and that
``vllm_max_model_length`` covers both the policy's sequences and the judge's prompts (a
``judge=generate`` verdict is generated on the same engine). With either backend, the longest
prompt + completion and the longest judge input must fit the model's own context.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence
from typing import Any

import torch
import yaml
from transformers import PreTrainedTokenizerBase
from trl import GRPOConfig

from hmx.chat_template import chat_prompt, message_text
from hmx.config import ConfigError
from hmx.resources import CONF_DIR

INSTALL_HINT = "pip install 'hmx[vllm]'"
GPU_FALLBACK = "hf"  # conf/generation preset on a GPU without vLLM (measured: docs/performance.md)


def auto_backend(cuda: bool, vllm: bool) -> tuple[str, str | None]:
    """The conf/generation preset ``generation=auto`` takes, and a warning to print (or None)."""
    if not cuda:
        return "hf", None
    if vllm:
        return "vllm_colocate", None
    return GPU_FALLBACK, (
        f"hmx: generation=auto: vLLM is not installed, so this GPU generates with transformers "
        f"(generation={GPU_FALLBACK}), several times slower than vLLM; for the fast path: {INSTALL_HINT}"
    )


def resolve_generation(delta: dict[str, Any]) -> dict[str, Any]:
    """The ``generation`` node's ``trl.GRPOConfig`` delta, with ``backend: auto`` replaced by a preset."""
    delta = dict(delta)
    backend = delta.pop("backend", None)
    if backend is None:
        return delta
    if backend != "auto":
        raise ConfigError(f"config field 'generation.backend': must be 'auto' (or absent), got {backend!r}")
    name, warning = auto_backend(torch.cuda.is_available(), importlib.util.find_spec("vllm") is not None)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    preset = yaml.safe_load((CONF_DIR / "generation" / f"{name}.yaml").read_text(encoding="utf-8")) or {}
    return {**preset, **delta}


def check_vllm(use_vllm: bool, mode: str) -> None:
    """Fail with the install command when a config asks for vLLM and it is not there (never imports it)."""
    if not use_vllm:
        return
    where = f"config node 'generation' (generation=vllm_{mode}): use_vllm=true"
    if importlib.util.find_spec("vllm") is None:
        raise ConfigError(f"{where} needs vLLM, which is not installed: {INSTALL_HINT} (on a CUDA machine)")
    if not torch.cuda.is_available():
        raise ConfigError(f"{where} needs a CUDA GPU; on CPU use generation=hf")


def longest_tokens(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str]) -> int:
    if not texts:
        return 0
    encoded = tokenizer(list(texts), add_special_tokens=False, verbose=False)  # verbose: no over-length notice
    return max(len(ids) for ids in encoded["input_ids"])


def required_model_length(
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    judge_texts: Sequence[str],
    max_completion_length: int,
    verdict_tokens: int,
) -> int:
    """Tokens vLLM must hold: the longest prompt + completion, or the longest judge prompt + verdict.

    ``judge_texts`` are the judge prompts rendered around an empty prompt and completion (the
    template's own length); a judge prompt quotes a prompt and a completion on top of that.
    """
    prompt = longest_tokens(tokenizer, prompts)
    policy = prompt + max_completion_length
    judge = longest_tokens(tokenizer, judge_texts) + prompt + max_completion_length + verdict_tokens
    return max(policy, judge)


def check_model_length(args: GRPOConfig, required: int) -> None:
    """``vllm_max_model_length`` must cover what hmx sends to vLLM (``None`` lets vLLM use the model's own)."""
    if not args.use_vllm or args.vllm_max_model_length is None:
        return
    if args.vllm_max_model_length < required:
        raise ConfigError(
            f"config field 'generation.vllm_max_model_length': {args.vllm_max_model_length} tokens is shorter than "
            f"the longest prompt + completion or judge prompt + verdict ({required} tokens); raise it"
        )


def prompt_texts(tokenizer: PreTrainedTokenizerBase, prompts: Sequence[object]) -> list[str]:
    """Prompts as the policy sees them: conversational ones through the chat template."""
    return [chat_prompt(tokenizer, p, thinking=None) if isinstance(p, list) else str(p) for p in prompts]


def check_generation(args: GRPOConfig, tokenizer: PreTrainedTokenizerBase, prompts: Sequence[object], judge) -> None:
    """All start-up checks of the generation backend (nothing to check for transformers ``generate``)."""
    if not args.use_vllm:
        return
    check_vllm(True, args.vllm_mode)
    required = required_model_length(
        tokenizer,
        prompt_texts(tokenizer, prompts),
        judge.texts([""], [""]),  # the judge template around an empty prompt and completion
        args.max_completion_length or 512,  # 512: TRL's default
        judge.verdict_tokens(),
    )
    check_model_length(args, required)


def model_context(model_config: object) -> int | None:
    """The model's context length in tokens, from its config (None when it does not say)."""
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(model_config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def check_context(
    args: GRPOConfig, tokenizer: PreTrainedTokenizerBase, prompts: Sequence[object], judge, context: int | None
) -> None:
    """The longest prompt + completion, and the longest judge input, must fit the model's context.

    Past it, generation runs into positions the model never learnt (or out of memory) and the
    judge scores a truncated or garbled input: every completion gets about the same score.
    """
    if context is None:
        return
    completion = args.max_completion_length or 512  # 512: TRL's default
    longest = longest_tokens(tokenizer, prompt_texts(tokenizer, prompts))
    if longest + completion > context:
        raise ConfigError(
            f"config field 'data.path': the longest prompt is {longest} tokens (chat template included); with "
            f"trainer.max_completion_length={completion} that makes {longest + completion} tokens, beyond the model's "
            f"context of {context} tokens; shorten or drop the longest prompts, or lower trainer.max_completion_length"
        )
    cfg = judge.cfg
    template = longest_tokens(tokenizer, judge.texts([""], [""]))
    quoted = longest_tokens(tokenizer, [message_text(p)[: cfg.max_prompt_chars] for p in prompts])
    verdict = judge.verdict_tokens()
    total = template + quoted + completion + verdict
    if total > context:
        raise ConfigError(
            f"config field 'rubric.path': the longest judge input is {total} tokens (rubric prompt {template} + "
            f"quoted prompt {quoted} + completion {completion} + verdict {verdict}), beyond the model's context of "
            f"{context} tokens; shorten the rubric's criteria or template, or lower judge.max_prompt_chars or "
            "trainer.max_completion_length"
        )
