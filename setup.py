"""Build hook: the wheel and sdist carry hmx's shipped files inside the package.

conf/, rubrics/ and data/prompts/ stay at the top of the checkout (where they are edited and
where ``pip install -e .`` reads them); a built wheel holds them as ``hmx/shipped/...``, which
``hmx.resources`` reads when hmx runs outside a checkout. Everything else is in pyproject.toml.
"""

from pathlib import Path

from setuptools import find_packages, setup

SHIPPED = {"hmx.shipped.conf": "conf", "hmx.shipped.rubrics": "rubrics", "hmx.shipped.data.prompts": "data/prompts"}
FILES = ["*.yaml", "*.yml", "*.jsonl", "*.json", "*.md", "*.safetensors"]


def shipped_packages() -> list[str]:
    """Every folder of the shipped trees, as a package name (setuptools copies package data per package)."""
    names = []
    for package, folder in SHIPPED.items():
        names.append(package)
        for sub in sorted(p for p in Path(folder).rglob("*") if p.is_dir() and p.name != "__pycache__"):
            names.append(".".join([package, *sub.relative_to(folder).parts]))
    return names


setup(
    packages=find_packages(include=["hmx", "hmx.*"]) + shipped_packages(),
    package_dir=SHIPPED,
    package_data={
        **dict.fromkeys(shipped_packages(), FILES),
        "hmx.evaluation.tasks": ["*.yaml"],  # lm-eval task definitions read by `hmx eval`
    },
)
