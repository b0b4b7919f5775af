"""Real GRPO training of the tiny model on CPU: it learns, reverse un-learns, only LoRA moves."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
import torch
from transformers import TrainerCallback

from hmx.train import run

CRITERIA = ("feelings", "intentions", "self_awareness")
WINDOW = 10


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The learning curves of this module on one intra-op thread, whatever earlier tests set.

    The tiny model's reductions sum in a thread-dependent order; a last-bit difference flips a sampled
    token and the run takes another path (seen: at fef86da the forward run passed on one thread and
    gained 0.95 < 1.0 on two), so the threshold is checked on a fixed arithmetic, not on the thread count.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class ParameterWatch(TrainerCallback):
    """Snapshots parameters when training starts and counts which moved when it ends."""

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.before = {n: p.detach().clone() for n, p in model.named_parameters()}

    def on_train_end(self, args, state, control, model=None, **kwargs):
        after = dict(model.named_parameters())
        self.moved = {n for n, p in self.before.items() if not torch.equal(p, after[n].detach())}
        self.names = set(self.before)


def records(run_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if "reward" in r]


def separation(series: list[float]) -> tuple[float, float]:
    """(last-window mean − first-window mean, that difference's standard error from the run's own noise)."""
    first, last = series[:WINDOW], series[-WINDOW:]
    se = (statistics.variance(first) / len(first) + statistics.variance(last) / len(last)) ** 0.5
    return statistics.mean(last) - statistics.mean(first), se


@pytest.fixture(scope="module")
def forward_run(tmp_path_factory, cache_dir):
    from hydra import compose, initialize_config_dir

    from hmx.resources import CONF_DIR

    runs = tmp_path_factory.mktemp("runs")
    watch = ParameterWatch()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            "train",
            [
                f"paths.runs_dir={runs}",
                f"paths.cache_dir={cache_dir}",
                "debug=frozen_judge",
                "logger=none",
                "run_name=forward",
            ],
        )
    return run(cfg, callbacks=[watch]), watch


def test_forward_run_learns_beyond_noise(forward_run):
    run_dir, _ = forward_run
    rewards = [r["reward"] for r in records(run_dir)]
    assert len(rewards) == 60
    gain, se = separation(rewards)
    assert gain > 3 * se and gain > 1.0, (gain, se, rewards)


def test_only_lora_parameters_moved(forward_run):
    _, watch = forward_run
    lora = {n for n in watch.names if "lora_" in n}
    assert lora and watch.moved, "nothing trained"
    assert watch.moved <= lora, f"base parameters changed: {sorted(watch.moved - lora)[:5]}"
    assert any("lora_B" in n for n in watch.moved)


def test_run_directory_holds_every_output(forward_run):
    run_dir, _ = forward_run
    for name in ("config.yaml", "metrics.jsonl", "rewards.png", "adapter/adapter_model.safetensors"):
        assert (run_dir / name).is_file(), name
    assert not (run_dir / "FAILED").exists()
    assert not list(run_dir.rglob("*.bin")) or all(p.name == "training_args.bin" for p in run_dir.rglob("*.bin"))


def test_reverse_run_lowers_the_forward_score(make_cfg):
    run_dir = run(make_cfg("debug=frozen_judge", "logger=none", "rubric.direction=reverse", "run_name=reverse"))
    rows = records(run_dir)
    forward_score = [sum(r[f"judge/{c}/score"] for c in CRITERIA) for r in rows]
    drop, se = separation(forward_score)
    assert -drop > 3 * se and -drop > 1.0, (drop, se, forward_score)
    # the trained reward is the flipped score: 3 criteria on 1..5 → reward = 18 − forward score
    assert rows[-1]["reward"] == pytest.approx(18 - forward_score[-1], abs=1e-3)
