"""The shipped accelerate configs load with accelerate's own loader and open with their command."""

from __future__ import annotations

from pathlib import Path

import pytest
from accelerate.commands.config.config_args import load_config_from_file
from accelerate.utils import DistributedType

LAUNCH = Path(__file__).resolve().parents[2] / "launch" / "accelerate"
EXPECTED = {
    "single_gpu": (DistributedType.NO, None, 1),
    "ddp": (DistributedType.MULTI_GPU, None, 1),
    "zero2": (DistributedType.DEEPSPEED, 2, 1),
    "zero3": (DistributedType.DEEPSPEED, 3, 1),
    "multinode_zero3": (DistributedType.DEEPSPEED, 3, 2),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_accelerate_config_loads(name):
    path = LAUNCH / f"{name}.yaml"
    assert path.read_text().startswith(f"# accelerate launch --config_file launch/accelerate/{name}.yaml")
    config = load_config_from_file(str(path))
    distributed_type, stage, machines = EXPECTED[name]
    assert config.distributed_type == distributed_type and config.num_machines == machines
    assert (config.deepspeed_config or {}).get("zero_stage") == stage
    assert not config.use_cpu  # GPU configs; on CPU hmx sets use_cpu itself (never pass --cpu: one process)


def test_every_layout_is_shipped():
    assert sorted(p.stem for p in LAUNCH.glob("*.yaml")) == sorted(EXPECTED)
