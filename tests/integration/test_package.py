"""hmx as a user installs it: the built wheel in a fresh venv, run outside any checkout.

The venv gets hmx from the wheel only; its dependencies come from the test environment's
site-packages through a ``.pth`` line (no download, no torch reinstall). That line does not run
the environment's own ``.pth`` files, so the editable install of the checkout stays invisible.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

from hmx import __version__
from hmx.resources import CHECKOUT, IN_CHECKOUT

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not IN_CHECKOUT, reason="builds the wheel from a checkout"),
]

SHIPPED = {"conf": "hmx/shipped/conf", "rubrics": "hmx/shipped/rubrics", "data/prompts": "hmx/shipped/data/prompts"}


def run(*command: str | Path, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k != "HMX_DATA_DIR"}
    result = subprocess.run(
        [str(c) for c in command], cwd=cwd, capture_output=True, text=True, timeout=300, env={**clean, **(env or {})}
    )
    assert result.returncode == 0, f"{command}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist, and the wheel built from it (as `python -m build` does): a clean tree, no stale build/."""
    out = tmp_path_factory.mktemp("dist")
    code = f"from setuptools import build_meta; build_meta.build_sdist({str(out)!r})"
    run(sys.executable, "-c", code, cwd=CHECKOUT)
    sdist = next(out.glob("hmx-*.tar.gz"))
    with tarfile.open(sdist) as archive:
        archive.extractall(out / "src", filter="data")
    source = next((out / "src").iterdir())
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", out, source, cwd=out)
    return out


@pytest.fixture(scope="module")
def venv(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("venv")
    run(sys.executable, "-m", "venv", "--without-pip", root, cwd=root)
    site = Path(
        run(root / "bin" / "python", "-c", "import site; print(site.getsitepackages()[0])", cwd=root).stdout.strip()
    )
    (site / "test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    wheel = next(dist.glob("hmx-*.whl"))
    run(
        sys.executable,
        "-m",
        "pip",
        "--python",
        root / "bin" / "python",
        "install",
        "--no-deps",
        "--no-index",
        wheel,
        cwd=root,
    )
    return root / "bin"


def shipped_files() -> set[str]:
    return {
        str(p.relative_to(CHECKOUT))
        for folder in SHIPPED
        for p in (CHECKOUT / folder).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and not p.name.startswith(".")
    }  # every file: one of a kind setup.py's FILES misses fails the wheel test


def test_wheel_and_sdist_carry_every_shipped_file(dist):
    expected = shipped_files()
    assert {"conf/train.yaml", "rubrics/hmx_feel.yaml", "data/prompts/hmx_prompts.jsonl"} <= expected
    tasks = {f"hmx/evaluation/tasks/{p.name}" for p in (CHECKOUT / "hmx/evaluation/tasks").glob("*.yaml")}
    in_wheel = set(zipfile.ZipFile(next(dist.glob("hmx-*.whl"))).namelist())
    as_shipped = {SHIPPED[f] + rel[len(f) :] for rel in expected for f in SHIPPED if rel.startswith(f + "/")}
    assert {name for name in in_wheel if name.startswith("hmx/shipped/")} == as_shipped
    assert tasks <= in_wheel
    with tarfile.open(next(dist.glob("hmx-*.tar.gz"))) as sdist:
        in_sdist = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    assert expected | tasks | {"setup.py", "pyproject.toml"} <= in_sdist


def test_installed_hmx_trains_lints_and_evaluates_a_users_project(venv, tmp_path, cache_dir):
    home = tmp_path / "work"  # the working directory: neither the checkout nor the project
    home.mkdir()
    where = "import hmx, hmx.resources as r; print(hmx.__file__, r.IN_CHECKOUT, r.SHARED_DATA_DIR)"
    assert run(venv / "python", "-c", where, cwd=home).stdout.split() == [
        str(
            venv.parent
            / "lib"
            / f"python{sys.version_info.major}.{sys.version_info.minor}"
            / "site-packages"
            / "hmx"
            / "__init__.py"
        ),
        "False",
        "None",
    ]
    assert run(venv / "hmx", "--version", cwd=home).stdout.strip() == f"hmx {__version__}"

    run(venv / "hmx", "init", tmp_path / "proj", cwd=home)
    lint = run(venv / "hmx", "rubric", "lint", "hmx_feel", tmp_path / "proj" / "rubrics" / "mine.yaml", cwd=home)
    assert lint.stdout.count("ok: ") == 2

    overrides = ["experiment=mine", "debug=smoke", "run_name=mine", f"paths.cache_dir={cache_dir}"]
    run(venv / "hmx", "train", "--config-dir", "../proj/conf", *overrides, cwd=home)
    run_dir = tmp_path / "proj" / "outputs" / "runs" / "mine"  # the preset's ${hmx_project:}/outputs/runs
    assert (run_dir / "adapter" / "adapter_model.safetensors").is_file()
    config = (run_dir / "config.yaml").read_text(encoding="utf-8")
    assert f"path: {tmp_path / 'proj' / 'rubrics' / 'mine.yaml'}" in config
    assert f"path: {tmp_path / 'proj' / 'data' / 'prompts.yaml'}" in config
    assert not (home / "outputs").exists()

    data = tmp_path / "benchmarks"  # HMX_DATA_DIR: a two-question TruthfulQA file
    (data / "truthfulqa").mkdir(parents=True)
    questions = [
        {"question": q, "mc1_targets": {a: 1, b: 0}, "mc2_targets": {a: 1, b: 0}}
        for q, a, b in [("Is the sky green?", "No.", "Yes."), ("Do fish breathe air?", "Most do not.", "All do.")]
    ]
    (data / "truthfulqa" / "mc_task.json").write_text(json.dumps(questions), encoding="utf-8")
    suite = ["suite.benchmarks=[truthfulqa_mc1]", "suite.limit=2", "suite.sycophancy.enabled=false"]
    suite += ["suite.expression.limit=2", "suite.expression.max_new_tokens=8", f"paths.cache_dir={cache_dir}"]
    args = ["eval", "--config-dir", "../proj/conf", "rubric=mine", "data=mine", f"run_dir={run_dir}", *suite]
    evaluated = run(venv / "hmx", *args, cwd=home, env={"HMX_DATA_DIR": str(data)})
    assert f"benchmark data from {data} (from HMX_DATA_DIR)" in evaluated.stdout
    results = json.loads((run_dir / "eval" / "results.json").read_text(encoding="utf-8"))
    assert results["data_dir"] == str(data) and results["samples"] == {"truthfulqa_mc1": 2, "expression": 2}
    assert results["rubric"] == "mine"
