"""Shared fixtures: real Hydra configs composed from conf/, shrunk, run in tmp_path."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from hmx.resources import CONF_DIR

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if os.environ.get("PYTEST_XDIST_WORKER"):  # `make test` runs 2 workers on 2 cores: one torch thread each,
    os.environ["OMP_NUM_THREADS"] = "1"  # or their intra-op threads wait on each other (hmx/cpu_threads.py)

# The longest modules first (measured: docs/design.md "The test suite"), so that no worker starts one at the end
# while the other has finished; xdist hands modules (`--dist loadfile`) to workers in collection order.
LONGEST_FIRST = (
    "test_real_model.py", "test_multirank.py", "test_sweeps.py", "test_eval.py", "test_resume.py", "test_train.py",
    "test_package.py", "test_benchmarks.py", "test_external_judge_faults.py", "test_external_judge.py",
    "test_run_ownership.py", "test_notebooks.py", "test_cli.py",
)  # fmt: skip


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Reorder whole modules, longest first; the order within a module stays as written."""

    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable


class Exit(NamedTuple):
    """What one ``hmx`` command left: its exit status, stdout and stderr."""

    code: int
    out: str
    err: str


@pytest.fixture
def hmx(capsys: pytest.CaptureFixture[str]) -> Callable[..., Exit]:
    """``hmx ARGV`` in this process, as the console script runs it (``hmx.cli.main``: Hydra, the command's
    ``command_errors``, its exit status), without a new interpreter importing torch, transformers and TRL.

    Subprocesses stay where the process is the point: the console script itself, ``python -m hmx.train``
    under accelerate, signals, a package outside the checkout, and a few error paths of the real script.
    """
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    from hmx import cli

    def call(*argv: str | Path) -> Exit:
        capsys.readouterr()  # what earlier steps printed is not this command's
        try:
            cli.main([str(arg) for arg in argv])
            code = 0
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else int(stop.code is not None)
        finally:  # Hydra keeps the finished job's config (its preset choices) process-wide: later tests must not see it
            HydraConfig.instance().cfg = None  # type: ignore[assignment]
            GlobalHydra.instance().clear()
        out, err = capsys.readouterr()
        return Exit(code, out, err)

    return call


@pytest.fixture
def hmx_fails(hmx: Callable[..., Exit]) -> Callable[..., str]:
    """``hmx ARGV`` in this process, failing as bad input must: exit 2 and no traceback; returns stderr."""

    def call(*argv: str | Path) -> str:
        code, _, err = hmx(*argv)
        assert code == 2, err
        assert "Traceback" not in err, err
        return err

    return call


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny-model cache for the whole session (the build is deterministic)."""
    return tmp_path_factory.mktemp("hmx-cache")


@pytest.fixture
def make_cfg(tmp_path: Path, cache_dir: Path) -> Callable[..., DictConfig]:
    """Compose ``conf/train.yaml`` with overrides, writing runs under tmp_path."""

    def _make(*overrides: str, config_name: str = "train") -> DictConfig:
        base = [f"paths.runs_dir={tmp_path / 'runs'}", f"paths.cache_dir={cache_dir}"]
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return compose(config_name=config_name, overrides=base + list(overrides))

    return _make


@pytest.fixture(scope="session")
def tiny_dir(cache_dir: Path) -> Path:
    from hmx.config import TinyModelConfig
    from hmx.tiny import build_tiny

    return build_tiny(TinyModelConfig(), cache_dir)


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_dir)


@pytest.fixture(scope="module")
def tiny_model(tiny_dir: Path):
    """The tiny model in eval mode, one per test module (tests hook it and put it back)."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny_dir).eval()


@pytest.fixture(scope="module")
def feel_rubric():
    """The shipped HMX-feel rubric (three criteria)."""
    from hmx.resources import RUBRICS_DIR
    from hmx.rubrics.schema import load_rubric

    return load_rubric(RUBRICS_DIR / "hmx_feel.yaml")


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Path:
    """One real 3-step training run with completions logged, shared by the chat, merge and notebook tests."""
    from hmx.train import run

    runs = tmp_path_factory.mktemp("smoke-runs")
    overrides = [f"paths.runs_dir={runs}", f"paths.cache_dir={cache_dir}", "debug=smoke", "run_name=smoke"]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[*overrides, "trainer.log_completions=true", "logger=none"])
    return run(cfg)


@pytest.fixture(scope="session")
def tiny_probe(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Path:
    """A probe-mode head file for the tiny model and hmx_feel, fitted by ``hmx rubric fit-probe`` on 9 dev pairs."""
    import json

    from hmx.cli import main
    from hmx.resources import RUBRICS_DIR

    folder = tmp_path_factory.mktemp("probe")
    rows = [json.loads(line) for line in (RUBRICS_DIR / "hmx_feel.pairs.jsonl").read_text().splitlines()]
    pairs = folder / "dev.jsonl"
    pairs.write_text("".join(json.dumps(row) + "\n" for row in [r for r in rows if r["split"] == "dev"][:9]))
    out = folder / "tiny.safetensors"
    fit = ["rubric", "fit-probe", "--rubric", "hmx_feel", "--model", "tiny", "--cache-dir", str(cache_dir)]
    with pytest.raises(SystemExit) as done:
        main([*fit, "--pairs", str(pairs), "--out", str(out)])
    assert done.value.code == 0 and out.is_file()
    return out
