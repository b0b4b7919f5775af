"""`hmx train` as a user runs it: exit codes, messages, W&B offline, nothing half-written.

The smoke run is a real process (as the console script runs); the error paths run in this process (the
``hmx`` fixture of tests/conftest.py); the real script's own error path: test_bad_input.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def hmx(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hmx.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
    )


def test_smoke_run_with_wandb_offline_prints_its_outputs(tmp_path, cache_dir):
    env = {"WANDB_API_KEY": "", "WANDB_MODE": ""}
    result = hmx(
        "train", "debug=smoke", "logger=wandb", "run_name=smoke", f"paths.cache_dir={cache_dir}", cwd=tmp_path, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "checkpointing` is deprecated" not in result.stderr  # TRL's calls of transformers' old names: not ours
    run_dir = tmp_path / "outputs" / "runs" / "smoke"
    assert f"run finished → {run_dir}" in result.stdout
    assert "wandb sync" in result.stdout
    assert list((run_dir / "wandb").glob("offline-run-*"))


def test_unknown_key_fails_with_hydras_message(tmp_path, monkeypatch, hmx):
    monkeypatch.chdir(tmp_path)
    code, _, err = hmx("train", "debug=tiny", "trainer.learnin_rate=1")
    assert code != 0
    assert "Could not override 'trainer.learnin_rate'" in err
    assert not (tmp_path / "outputs").exists()


def test_missing_model_path_fails_before_writing(tmp_path, cache_dir, monkeypatch, hmx_fails):
    monkeypatch.chdir(tmp_path)
    err = hmx_fails("train", "debug=tiny", "model.name_or_path=./no/such/model", f"paths.cache_dir={cache_dir}")
    assert "model.name_or_path" in err and "./no/such/model" in err
    assert not (tmp_path / "outputs").exists()


def test_an_in_process_command_leaves_no_hydra_job_behind(hmx):
    """The `hmx` fixture resets Hydra after each command: `--cfg job` leaves its preset choices (model=smollm2-135m)
    in Hydra's process-wide config, and later tests' start-up notes, which read those choices
    (hmx/judge/validity/records.py), named the wrong model and judge."""
    from hydra.core.hydra_config import HydraConfig

    code, out, _ = hmx("train", "model=smollm2-135m", "judge=probe", "--cfg", "job")
    assert code == 0 and "SmolLM2" in out
    assert not HydraConfig.initialized()
