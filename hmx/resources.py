"""Where hmx's shipped files live (the Hydra tree, rubrics, prompts) and where a user's project is.

In a checkout (``pip install -e .``) they are the top-level ``conf/``, ``rubrics/`` and
``data/prompts/``; an installed wheel carries the same tree as ``hmx/shipped/`` (see setup.py).
Two resolvers let YAML name files wherever they are:

- ``${hmx_root:}``: the folder holding hmx's shipped tree (the checkout, or ``hmx/shipped``);
- ``${hmx_project:}``: the user's project, the folder above the config directory they added with
  ``--config-dir`` (or ``hydra.searchpath``); the working directory when they added none.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

PACKAGE_DIR = Path(__file__).resolve().parent
CHECKOUT = PACKAGE_DIR.parent
IN_CHECKOUT = (CHECKOUT / "pyproject.toml").is_file() and (CHECKOUT / "conf" / "train.yaml").is_file()
ROOT = CHECKOUT if IN_CHECKOUT else PACKAGE_DIR / "shipped"
CONF_DIR = ROOT / "conf"
RUBRICS_DIR = ROOT / "rubrics"
PROMPTS_FILE = ROOT / "data" / "prompts" / "hmx_prompts.jsonl"
SHARED_DATA_DIR: Path | None = CHECKOUT.parent / "shared" / "data" if IN_CHECKOUT else None


def project_dir() -> Path:
    """The user's project: the parent of the first config directory that is not hmx's own.

    Read from Hydra's record of its config sources (``--config-dir`` is the provider
    ``command-line``, ``hydra.searchpath`` entries follow it); the working directory otherwise.
    """
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        for source in HydraConfig.get().runtime.config_sources:
            if source.schema != "file" or source.provider in {"hydra", "main", "schema"}:
                continue
            folder = Path(source.path).resolve()
            if folder != CONF_DIR.resolve():
                return folder.parent
    return Path.cwd()


def shadowed_configs() -> list[tuple[Path, Path]]:
    """A user's config files (``--config-dir``, ``hydra.searchpath``) with the group and name of one of hmx's.

    Hydra searches hmx's own config directory first (``--config-dir`` is added after it), so such a
    file is never read: ``(user file, hmx file)`` pairs, for a warning that says so.
    """
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return []
    shadowed = []
    for source in HydraConfig.get().runtime.config_sources:
        if source.schema != "file" or source.provider in {"hydra", "main", "schema"}:
            continue
        folder = Path(source.path).resolve()
        if folder == CONF_DIR.resolve() or not folder.is_dir():
            continue
        for file in sorted(folder.rglob("*.y*ml")):
            ours = CONF_DIR / file.relative_to(folder).with_suffix(".yaml")
            if file.suffix in {".yaml", ".yml"} and ours.is_file():
                shadowed.append((file, ours))
    return shadowed


def warn_shadowed_configs() -> None:
    """Print one warning per user config file that hmx's own file of the same name hides."""
    import sys

    for file, ours in shadowed_configs():
        group = file.parent.name if ours.parent != CONF_DIR else "(primary config)"
        print(
            f"hmx: warning: {file} is never read: hmx's own {ours.relative_to(CONF_DIR.parent)} has the same group "
            f"and name ({group}), and Hydra searches hmx's config directory first; rename yours "
            f"(e.g. {file.stem}_mine{file.suffix}) and select it by that name",
            file=sys.stderr,
            flush=True,
        )


def register_resolvers() -> None:
    """Register ``${hmx_root:}`` and ``${hmx_project:}`` once (idempotent)."""
    if not OmegaConf.has_resolver("hmx_root"):
        OmegaConf.register_new_resolver("hmx_root", lambda: str(ROOT))
    if not OmegaConf.has_resolver("hmx_project"):
        OmegaConf.register_new_resolver("hmx_project", lambda: str(project_dir()))


def rubric_path(name_or_path: str) -> Path:
    """A shipped rubric by name (``hmx_feel``) or any path to a YAML file."""
    candidate = Path(name_or_path)
    if candidate.suffix in {".yaml", ".yml"} or candidate.exists():
        return candidate
    return RUBRICS_DIR / f"{name_or_path}.yaml"


register_resolvers()
