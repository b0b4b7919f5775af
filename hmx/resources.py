"""Where hmx's shipped files live: the Hydra tree, rubrics, prompts.

hmx runs from a checkout (``pip install -e .``); the ``${hmx_root:}`` resolver lets YAML
name shipped files wherever the checkout is.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parent.parent
CONF_DIR = ROOT / "conf"
RUBRICS_DIR = ROOT / "rubrics"
PROMPTS_FILE = ROOT / "data" / "prompts" / "hmx_prompts.jsonl"
SHARED_DATA_DIR = ROOT.parent / "shared" / "data"


def register_resolvers() -> None:
    """Register ``${hmx_root:}`` once (idempotent)."""
    if not OmegaConf.has_resolver("hmx_root"):
        OmegaConf.register_new_resolver("hmx_root", lambda: str(ROOT))


def rubric_path(name_or_path: str) -> Path:
    """A shipped rubric by name (``hmx_feel``) or any path to a YAML file."""
    candidate = Path(name_or_path)
    if candidate.suffix in {".yaml", ".yml"} or candidate.exists():
        return candidate
    return RUBRICS_DIR / f"{name_or_path}.yaml"


register_resolvers()
