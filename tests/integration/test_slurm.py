"""launch/slurm/train.sbatch run by bash with stand-in ``scontrol`` and ``srun`` that record their arguments.

No SLURM here: what is checked is the script's own logic (node split, the server command, the
accelerate command on each training node, one run name, resume) and that the overrides it
adds compose with hmx's config.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from hmx.train import grpo_args

REPO = Path(__file__).resolve().parents[2]
SBATCH = REPO / "launch" / "slurm" / "train.sbatch"


def submit(tmp_path: Path, nodes: list[str], *overrides: str) -> list[list[str]]:
    """Run the batch script as SLURM would on the first node; returns the srun command lines."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    log = tmp_path / "srun.log"
    (bin_dir / "scontrol").write_text("#!/bin/bash\nprintf '%s\\n' " + " ".join(nodes) + "\n")
    # the server step runs in the background: the training step records itself after it, so the order is fixed
    wait = '[[ "$*" == *vllm_server_host* ]] && for i in $(seq 100); do '
    wait += f"grep -q vllm-serve {log} && break; sleep 0.1; done"
    (bin_dir / "srun").write_text(f'#!/bin/bash\n{wait}\nprintf "%q " "$@" >> {log}\necho >> {log}\n')
    for tool in ("scontrol", "srun"):
        (bin_dir / tool).chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{Path(sys.executable).parent}:{os.environ['PATH']}",
        "SLURM_JOB_NODELIST": "gpu[1-3]",
        "SLURM_JOB_ID": "4242",
        "SLURM_JOB_NAME": "hmx",
        "HMX_PYTHON": sys.executable,
    }
    done = subprocess.run(["bash", str(SBATCH), *overrides], cwd=REPO, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return [shlex.split(line) for line in log.read_text().splitlines()]


def test_vllm_server_on_the_last_node_and_trainers_on_the_rest(tmp_path, make_cfg):
    server, train = submit(tmp_path, ["gpu1", "gpu2", "gpu3"], "experiment=hmx_feel_qwen3_4b", "generation=vllm_server")
    assert server[:3] == ["--nodes=1", "--ntasks=1", "--nodelist=gpu3"]
    serve = server[3:]
    assert serve[:2] == ["trl", "vllm-serve"]
    flags = dict(zip(serve[2::2], serve[3::2], strict=True))
    assert flags == {
        "--model": "Qwen/Qwen3-4B",
        "--tensor_parallel_size": "8",
        "--host": "0.0.0.0",
        "--port": "8000",
        "--max_model_len": "8192",
    }
    assert train[:4] == ["--nodes=2", "--ntasks=2", "--ntasks-per-node=1", "--nodelist=gpu1,gpu2"]
    config, machines, processes, head, port, *overrides = train[7:]
    assert (config, machines, processes, head, port) == (
        "launch/accelerate/multinode_zero3.yaml",
        "2",
        "16",
        "gpu1",
        "29500",
    )
    assert overrides[-3:] == ["run_name=hmx-4242", "resume=true", "generation.vllm_server_host=gpu3"]
    cfg = make_cfg(*overrides)  # what every rank composes
    args = grpo_args(cfg, tmp_path / cfg.run_name, ["none"], [1.0, 1.0, 1.0])
    assert args.vllm_mode == "server" and args.vllm_server_host == "gpu3" and cfg.resume is True


def test_without_a_server_every_node_trains(tmp_path):
    (train,) = submit(tmp_path, ["gpu1", "gpu2"], "experiment=hmx_feel_qwen3_4b")
    assert train[:4] == ["--nodes=2", "--ntasks=2", "--ntasks-per-node=1", "--nodelist=gpu1,gpu2"]
    assert train[-2:] == ["run_name=hmx-4242", "resume=true"]


def test_server_needs_a_training_node(tmp_path):
    with pytest.raises(AssertionError, match="needs at least 2 nodes"):
        submit(tmp_path, ["gpu1"], "generation=vllm_server")
