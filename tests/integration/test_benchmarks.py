"""The performance suite and the GPU profile script run end to end (quick mode, tiny shapes) and report sane figures.

The figures themselves (the targets) are measured by ``python -m benchmarks.run`` on a quiet
machine and recorded in docs/performance.md; timing targets never go in tests.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # benchmarks/ is a folder of the checkout, not part of the installed package
    sys.path.insert(0, str(ROOT))

from benchmarks import gpu_profile  # noqa: E402
from benchmarks import run as bench  # noqa: E402


def test_benchmark_suite_quick_reports_every_part(tmp_path: Path, cache_dir: Path, tiny_dir: Path) -> None:
    out = tmp_path / "bench"
    # part d (2 ranks under accelerate launch) is left out: its start-up alone would exceed this file's time budget;
    # 2-rank ZeRO-2 training itself is tested in test_multirank.py
    assert bench.main(["--quick", "--parts", "a,b,c", "--out", str(out), "--cache-dir", str(cache_dir)]) == 0
    report = json.loads((out / "results.json").read_text())
    rows = report["rows"]
    assert [r["what"] for r in rows if r["what"].startswith("FAILED")] == []
    assert {r["part"] for r in rows} == {"a", "b", "c"}
    for r in rows:
        assert math.isfinite(r["ratio"]) and r["ratio"] > 0, r
        assert (r["target"] == "-") == (r["passed"] is None), r
    by_what = {r["what"]: r for r in rows}
    step = next(r for r in rows if r["part"] == "a")
    share = float(step["detail"].split("judge = ")[1].split("%")[0]) / 100
    assert 0 < share < 1  # the judge really ran inside the step, and was not the whole step
    generate = by_what["judge throughput, logprob / generate (64-token rationale budget)"]
    budget = next(r for r in rows if "whole budget" in r["what"])
    assert generate["ratio"] > 1 and budget["ratio"] > 1  # one forward beats a 72-token decode
    modes = ("binary", "fewshot", "contrastive", "relative", "probe")  # each judge mode's cost, via build_judge
    assert {w for w in by_what if w.startswith("judge cost")} == {
        f"judge cost, {m} / logprob (time per verdict)" for m in modes
    }
    memory = [r for r in rows if r["part"] == "c"]
    assert len(memory) == 3 and "peak RSS (MiB) constant" in memory[0]["detail"]
    assert report["quick"] is True and len(report["machine"]["load_average"]) == 3
    table = (out / "results.md").read_text()
    assert table.startswith("| part | what | ratio | target | result | detail |")
    assert "Command: `python -m benchmarks.run --quick --parts a,b,c" in table and "Machine:" in table


def test_gpu_profile_runs_on_cpu_with_a_tiny_shape(tmp_path: Path, cache_dir: Path, tiny_dir: Path) -> None:
    argv = ["--shapes", "toy", "--device", "cpu", "--quick", "--out", str(tmp_path), "--cache-dir", str(cache_dir)]
    argv += ["--train", "constant,self", "--no-liger", "--no-continuous-batching"]  # liger-kernel needs a GPU
    assert gpu_profile.main(argv) == 0
    report = json.loads((tmp_path / "gpu_profile.json").read_text())
    assert report["device"].startswith("CPU") and report["matmul_peak_tflops"] > 0 and report["skipped"] == []
    phases = report["shapes"]["toy"]
    assert phases["model"]["built"]["linear_params"] > 0
    assert set(phases) == {
        "model", "judge_logprob", "generation", "update", "update_projection", "update_floor", "judge_generate",
        "train_step",
    }  # fmt: skip
    judged = phases["judge_logprob"]
    assert set(judged) == {"batch_size=16", "batch_size=48", "max_batch_tokens=512"}  # CPU: no device-sized budget
    assert judged["max_batch_tokens=512"]["forward_calls"] >= judged["batch_size=48"]["forward_calls"]
    measured = [
        f for phase in ("judge_logprob", "generation", "update", "judge_generate") for f in phases[phase].values()
    ]
    assert all("error" not in f and f["tokens_per_s"] > 0 for f in measured)
    assert all(f.get("peak_gb") is None and f.get("alloc_retries") is None for f in measured)  # no CUDA: none
    floor = "floor (1 row, 16 completion tokens)"  # one forward + backward + step, whatever the batch
    assert set(phases["update"]) == {"micro=2", "micro=8", floor, "micro=8 activation_checkpointing"}
    assert all(f["mfu"] > 0 for f in phases["update"].values())
    (projected,) = phases["update_projection"].values()  # what micro=8's time leaves beyond that floor
    assert projected["floor_s"] == phases["update"][floor]["seconds"] > 0 and projected["target_mfu"] == 0.25
    (split,) = phases["update_floor"].values()  # the floor's parts, each also as the host's own time
    assert all(split[f"{k}_s"] >= split[f"{k}_host_s"] > 0 for k in ("forward", "backward", "step"))
    assert 0 < split["host_share"] <= 1  # on a CPU the host does the work itself: near 1
    steps = phases["train_step"]  # the real hmx train, one fresh process per variant
    assert steps["self"]["median_judge_s"] > 0 == steps["constant"]["median_judge_s"]
    assert all(len(f["step_seconds"]) == 2 and f["median_step_s"] > 0 for f in steps.values())
    table = (tmp_path / "gpu_profile.md").read_text()
    assert "| update_floor | forward, backward, step | - | forward " in table
    assert "**toy**" in table and "| train_step | self |" in table and "self-judge / zero-cost reward" in table
    assert "Command: `python -m benchmarks.gpu_profile --shapes toy" in table


def test_gpu_profile_keeps_to_its_time_budget_and_writes_as_it_goes(tmp_path: Path, cache_dir: Path) -> None:
    argv = ["--shapes", "toy", "--device", "cpu", "--quick", "--out", str(tmp_path), "--cache-dir", str(cache_dir)]
    assert gpu_profile.main([*argv, "--budget-s", "0"]) == 0
    report = json.loads((tmp_path / "gpu_profile.json").read_text())
    assert report["matmul_peak_tflops"] > 0  # measured before the budget ran out, and on disk
    assert "toy judge_logprob" in report["skipped"] and "toy train_step [self]" in report["skipped"]
    assert set(report["shapes"]["toy"]) == {"model"}  # nothing past the budget was started
    assert "Skipped (time budget)" in (tmp_path / "gpu_profile.md").read_text()
