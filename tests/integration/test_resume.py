"""A real `hmx train` killed with SIGKILL mid-training and resumed ends where an uninterrupted run ends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from safetensors.torch import load_file

from hmx.checkpoints import is_complete

STEPS, SAVE_EVERY = 4, 2


def train_args(runs: Path, cache_dir: Path, name: str, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "hmx.cli",
        "train",
        "debug=smoke",
        f"run_name={name}",
        f"trainer.max_steps={STEPS}",
        f"trainer.save_steps={SAVE_EVERY}",
        f"paths.runs_dir={runs}",
        f"paths.cache_dir={cache_dir}",
        *extra,
    ]


def train(*args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def kill_after_first_checkpoint(args: list[str], run_dir: Path) -> int:
    """Start a run and SIGKILL it as soon as a complete checkpoint is on disk; returns that step."""
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while process.poll() is None and time.monotonic() < deadline:
            complete = [p for p in run_dir.glob("checkpoint-*") if is_complete(p)]
            if complete:
                os.kill(process.pid, signal.SIGKILL)
                break
            time.sleep(0.005)
    finally:
        process.kill()
        returncode = process.wait()
    assert returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert not (run_dir / "adapter").exists()
    return int(complete[0].name.rsplit("-", 1)[1])


def rewards(run_dir: Path) -> list[float]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["reward"] for r in rows if "reward" in r]


def test_sigkilled_run_resumes_to_the_same_step_and_adapter(tmp_path, cache_dir):
    runs = tmp_path / "runs"
    train(*train_args(runs, cache_dir, "straight"))
    killed_at = kill_after_first_checkpoint(train_args(runs, cache_dir, "killed"), runs / "killed")
    assert killed_at < STEPS

    resumed = train(*train_args(runs, cache_dir, "killed", "resume=true"))
    assert f"resuming {runs / 'killed'} from checkpoint-" in resumed.stdout

    straight, killed = runs / "straight", runs / "killed"
    for run_dir in (straight, killed):
        state = json.loads((run_dir / f"checkpoint-{STEPS}" / "trainer_state.json").read_text())
        assert state["global_step"] == STEPS
        assert not (run_dir / "FAILED").exists()
    assert rewards(killed) == rewards(straight) and len(rewards(killed)) == STEPS  # each step logged once
    a = load_file(straight / "adapter" / "adapter_model.safetensors")
    b = load_file(killed / "adapter" / "adapter_model.safetensors")
    assert a.keys() == b.keys()
    difference = max(float((a[k] - b[k]).abs().max()) for k in a)
    print(f"resume: killed after step {killed_at}; max abs adapter weight difference {difference:.3g}")
    assert difference <= 1e-6
    assert not list(killed.rglob("*.bin"))  # no pickled training_args.bin in checkpoints or adapter
