"""Hydra multirun sweeps through `hmx train -m`: the basic launcher and the submitit plugin.

The SLURM sweep of docs/scaling.md uses hydra-submitit-launcher; its local executor runs the very
same launcher code (pickled task, one process per point, results gathered back) without a
cluster, so it is what runs here, and the SLURM launcher is checked to compose with the
documented overrides.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

SWEEP = ["-m", "seed=1,2", "run_name=sweep-${seed}", "debug=smoke", "trainer.max_steps=1"]


def hmx_train(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hmx.cli", "train", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "WANDB_MODE": "disabled"},
    )


def assert_one_run_per_point(cwd: Path) -> None:
    runs = cwd / "outputs" / "runs"
    assert sorted(p.name for p in runs.iterdir()) == ["sweep-1", "sweep-2"]
    for seed in (1, 2):
        run_dir = runs / f"sweep-{seed}"
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
        assert config["seed"] == seed and config["run_name"] == f"sweep-{seed}"
        assert (run_dir / "adapter" / "adapter_model.safetensors").is_file()
        assert not (run_dir / "FAILED").exists()
    # Hydra's sweep bookkeeping, not a run directory per point
    assert len(list((cwd / "multirun").glob("*/*/multirun.yaml"))) == 1


def test_local_sweep_runs_each_point_into_its_own_run(tmp_path, cache_dir, monkeypatch, hmx):
    monkeypatch.chdir(tmp_path)  # in this process (tests/conftest.py); the submitit sweep below is a real one
    monkeypatch.setenv("WANDB_MODE", "disabled")
    code, out, err = hmx("train", *SWEEP, f"paths.cache_dir={cache_dir}")
    assert code == 0, err[-3000:]
    assert out.count("hmx: run finished") == 2  # both points, one after the other, in one process
    assert_one_run_per_point(tmp_path)


def test_submitit_sweep_runs_each_point_as_a_job(tmp_path, cache_dir):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="pip install 'hmx[slurm]'")
    launcher = ["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=15", "hydra.launcher.cpus_per_task=1"]
    result = hmx_train(*SWEEP, *launcher, f"paths.cache_dir={cache_dir}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert_one_run_per_point(tmp_path)
    job_logs = list((tmp_path / "multirun").glob("*/*/.submitit/*/*_log.out"))
    assert len(job_logs) == 2, job_logs


def test_submitit_slurm_launcher_composes_with_the_documented_overrides(tmp_path, monkeypatch, hmx):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="pip install 'hmx[slurm]'")
    overrides = [
        "hydra/launcher=submitit_slurm",
        "hydra.launcher.partition=gpu",
        "hydra.launcher.gpus_per_node=1",
        "hydra.launcher.timeout_min=600",
    ]
    # Hydra prints a config for one run only (`--cfg` refuses `-m`): the launcher node is what a sweep would use
    monkeypatch.chdir(tmp_path)
    code, out, err = hmx("train", "seed=1", "run_name=sweep-1", "resume=true", *overrides, "--cfg", "hydra")
    assert code == 0, err[-3000:]
    launcher = yaml.safe_load(out)["hydra"]["launcher"]
    assert launcher["_target_"].endswith("submitit_launcher.SlurmLauncher")
    assert (launcher["partition"], launcher["gpus_per_node"], launcher["timeout_min"]) == ("gpu", 1, 600)
    assert not (tmp_path / "outputs").exists()  # --cfg prints, trains nothing
