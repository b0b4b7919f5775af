"""The tuned judge's LoRA adapter as one safetensors file, and its merge into the base weights at load.

``hmx rubric tune-judge`` writes the adapter (peft's LoRA state dict, with the ``peft.LoraConfig``
fields and the fit's figures as JSON in the file's metadata). ``judge.adapter`` names such a file;
:func:`merge_judge_adapter` attaches it with peft and folds it into the base weights
(``merge_and_unload``) before anything else sees the model, so the policy LoRA of ``hmx train`` is
attached on top of the tuned weights: one copy of the weights, which both judge (``judge.mode=logprob``)
and generate, as in Self-Rewarding LMs' evaluation fine-tuning.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar, cast

import torch
from peft import LoraConfig, get_peft_model, set_peft_model_state_dict
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from hmx.config import ConfigError
from hmx.resources import ROOT

ADAPTER_FORMAT = "hmx-judge-adapter/1"
LORA_FIELDS = ("r", "lora_alpha", "target_modules", "layers_to_transform", "lora_dropout", "bias")
FIELD = "config field 'judge.adapter'"
Model = TypeVar("Model", bound=torch.nn.Module)


def resolve_adapter_path(path: str | Path) -> Path:
    """``path`` as given (``~`` expanded); a relative path that is not there is looked up in hmx's shipped tree."""
    file = Path(path).expanduser()
    if not file.is_absolute() and not file.exists() and (ROOT / file).exists():
        return ROOT / file
    return file


def save_adapter(
    path: str | Path, tensors: dict[str, torch.Tensor], lora: dict[str, Any], info: dict[str, Any]
) -> None:
    """Write the adapter atomically (a temporary file beside it, renamed): ``lora`` = LoraConfig fields."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    metadata = {"hmx": json.dumps({"format": ADAPTER_FORMAT, **info}), "lora": json.dumps(lora)}
    try:
        save_file({k: v.detach().float().contiguous() for k, v in tensors.items()}, str(partial), metadata=metadata)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)


def load_adapter(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, Any]]:
    """(tensors, LoraConfig fields, info) of an adapter file; ConfigError naming the file when it is not one."""
    file = resolve_adapter_path(path)
    if not file.is_file():
        raise ConfigError(f"{FIELD}: {file}: judge adapter not found (make one with hmx rubric tune-judge)")
    try:
        with safe_open(str(file), framework="pt") as handle:
            metadata = handle.metadata() or {}
        tensors = load_file(str(file))
        info, lora = json.loads(metadata.get("hmx", "{}")), json.loads(metadata.get("lora", "{}"))
    except (SafetensorError, OSError, ValueError) as err:
        raise ConfigError(f"{FIELD}: {file}: not a safetensors judge adapter ({err})") from None
    if info.get("format") != ADAPTER_FORMAT or not tensors or not isinstance(lora, dict) or "r" not in lora:
        raise ConfigError(
            f"{FIELD}: {file}: not an hmx judge adapter (format {info.get('format')!r}, expected "
            f"{ADAPTER_FORMAT!r}); make one with hmx rubric tune-judge"
        )
    unknown = sorted(set(lora) - set(LORA_FIELDS))
    if unknown:
        raise ConfigError(f"{FIELD}: {file}: lora: unknown field {unknown[0]!r} (known: {list(LORA_FIELDS)})")
    return tensors, lora, info


def merge_judge_adapter(model: Model, path: str | Path) -> Model:
    """``model`` with the adapter at ``path`` merged into its weights (peft ``merge_and_unload``).

    Fails with a ConfigError naming the file when the adapter was made for another shape of model.
    """
    tensors, lora, info = load_adapter(path)
    try:
        peft_model = get_peft_model(model, LoraConfig(**lora))  # type: ignore[arg-type]
    except ValueError as err:  # its modules or layers are not this model's (peft's NoMatchingPeftModuleError)
        raise ConfigError(
            f"{FIELD}: {path} was tuned on {info.get('model')!r} and does not fit this model ({err})"
        ) from None
    try:
        result = set_peft_model_state_dict(peft_model, tensors)
    except RuntimeError as err:  # a size mismatch: another model's adapter
        peft_model.unload()
        shape = str(err).splitlines()[1:2] or [str(err)]
        raise ConfigError(
            f"{FIELD}: {path} was tuned on {info.get('model')!r} and does not fit this model ({shape[0].strip()})"
        ) from None
    unexpected = list(getattr(result, "unexpected_keys", []))
    missing = [key for key in getattr(result, "missing_keys", []) if "lora_" in key]
    if unexpected or missing:
        peft_model.unload()
        raise ConfigError(
            f"{FIELD}: {path} was tuned on {info.get('model')!r}: its modules do not match this model's "
            f"(unexpected {unexpected[:2]}, missing {missing[:2]})"
        )
    return cast(Model, peft_model.merge_and_unload())  # the same module, its LoRA folded in
