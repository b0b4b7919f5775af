"""The performance suite: is the self-judge nearly free? One command, one run, CPU.

python -m benchmarks.run                      # all parts (about 10 minutes on 2 idle cores)
python -m benchmarks.run --parts a,c --check  # some parts; exit 1 when a target is missed
python -m benchmarks.run --quick              # tiny settings, seconds per part (what the tests run)
python -m benchmarks.run --parts a --model smollm2-135m   # (a) on the real model (about 25 minutes)

(a) GRPO step time with the self-judge / with a zero-cost reward (tiny model or --model, G=8, 3 criteria)
(b) judge throughput: logprob / generate with a 64-token rationale budget, and each other judge mode's cost
    (binary, fewshot, contrastive, relative, probe: logprob's throughput over the mode's; tiny model)
(c) training-phase peak memory (Qwen3-0.6B shape, random weights): self-judge / no judge / a second copy
(d) throughput: 2 CPU ranks under DeepSpeed ZeRO-2 / 1 process, same global batch

Every variant runs in a fresh process (``benchmarks/workloads.py``); (a) alternates the variants
and takes medians. Ratios are reported, not absolute times; CPU-time ratios (one thread per
process) are the primary figure for (a) because wall time on a shared machine depends on the
neighbours. Results go to ``<out>/results.json`` and ``<out>/results.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {"a": ("≤", 1.25), "b": ("≥", 3.0), "c": ("≤", 1.05)}


@dataclass
class Row:
    part: str
    what: str
    ratio: float
    target: str
    passed: bool | None  # None: reported, no target
    detail: str


def machine() -> dict[str, Any]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    return {"cpu": model, "cores": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()]}


class Suite:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.quick = args.quick
        self.tmp = Path(tempfile.mkdtemp(prefix="hmx-bench-"))
        self.cache_dir = str(Path(args.cache_dir).expanduser())
        self.calls = 0

    def workload(self, argv: list[str], threads: int = 1, ranks: int = 1) -> dict[str, Any]:
        """Run one workload in a fresh process (or ``ranks`` processes under accelerate) and read its JSON."""
        self.calls += 1
        out = self.tmp / f"result-{self.calls}.json"
        if self.quick and ranks == 1:  # the machinery, not the figures: in this process, no start-up cost
            from benchmarks import workloads

            workloads.main([*argv, "--json", str(out), "--cache-dir", self.cache_dir])
            return json.loads(out.read_text())
        env = {
            **os.environ,
            "OMP_NUM_THREADS": str(threads),
            "TOKENIZERS_PARALLELISM": "false",
            "WANDB_MODE": "disabled",
            "HF_HUB_OFFLINE": "1",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
        if ranks > 1:
            config = ROOT / "benchmarks" / "zero2_cpu.yaml"
            launcher = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config)]
            command = [*launcher, "--num_processes", str(ranks), "-m", "benchmarks.workloads"]
        else:
            command = [sys.executable, "-m", "benchmarks.workloads"]
        command += [*argv, "--json", str(out), "--cache-dir", self.cache_dir]
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        if done.returncode != 0 or not out.is_file():
            tail = "\n".join((done.stdout + done.stderr).splitlines()[-30:])
            raise RuntimeError(f"workload failed ({done.returncode}): {' '.join(argv[:3])}\n{tail}")
        return json.loads(out.read_text())

    def train_overrides(self, steps: int, batch: int, generations: int, tokens: int, *extra: str) -> list[str]:
        return [
            "logger=none",
            "judge=logprob",  # the figures' judge (the CPU default's probe head fits SmolLM2 only)
            "trainer=tiny",  # the trainer node these figures were measured with; the fields below override it
            f"paths.runs_dir={self.tmp / 'runs'}",
            f"paths.cache_dir={self.cache_dir}",
            f"trainer.max_steps={steps}",
            f"trainer.per_device_train_batch_size={batch}",
            f"trainer.num_generations={generations}",
            f"trainer.max_completion_length={tokens}",
            f"+trainer.generation_kwargs.min_new_tokens={tokens}",  # equal generation work in every variant
            "trainer.logging_steps=1",
            "trainer.log_completions=false",
            *extra,
        ]

    def part_a(self) -> list[Row]:
        """CPU time per step, one thread per process (robust to busy neighbours), variants alternated."""
        real = self.args.model != "tiny"  # a real model's step takes seconds: fewer steps, one length
        steps, warmup, repeats = (2, 1, 1) if self.quick else (4, 1, 2) if real else (14, 2, 3)
        batch, generations = (8, 4) if self.quick else (16, 8)
        rows = []
        for tokens in (8,) if self.quick else (64,) if real else (32, 128):
            overrides = self.train_overrides(steps, batch, generations, tokens, f"model={self.args.model}")
            runs: dict[str, list[dict[str, Any]]] = {"self": [], "constant": []}
            for _ in range(repeats):  # alternate, so that a busy spell hits both variants
                for judge in runs:
                    argv = ["grpo_step", "--judge", judge, "--warmup", str(warmup), *overrides]
                    runs[judge].append(self.workload(argv, threads=1))
            cpu = {
                j: statistics.median(s for r in rs for s in r["step_cpu_seconds"][warmup:]) for j, rs in runs.items()
            }
            wall = {j: statistics.median(s for r in rs for s in r["step_seconds"][warmup:]) for j, rs in runs.items()}
            judge_share = statistics.median(r["median_judge_cpu_s"] for r in runs["self"]) / cpu["self"]
            rows.append(
                self.row(
                    "a",
                    f"GRPO step, self-judge / zero-cost reward ({self.args.model}, {tokens}-token completions, "
                    "CPU time)",
                    cpu["self"] / cpu["constant"],
                    f"G={generations}, {batch} completions/step, 3 criteria, 1 thread; judge = {judge_share:.0%} of "
                    f"the step's CPU time; wall-time ratio {wall['self'] / wall['constant']:.2f}",
                )
            )
        return rows

    def part_b(self) -> list[Row]:
        from hmx.judge.registry import MODES

        others = [m for m in MODES if m not in ("logprob", "generate")]  # every other mode of the registry
        modes = ["logprob", "logprob_unpacked"]
        generate_ready = "generate" in MODES
        if generate_ready:
            modes += ["generate", "generate_budget"]
        modes += others
        completions, repeats = (4, 1) if self.quick else (16, 5)
        argv = ["judges", "--completions", str(completions), "--repeats", str(repeats), "--modes", ",".join(modes)]
        result = self.workload(argv)
        speed = {mode: result[mode]["rows_per_s"] for mode in modes}
        rows = [
            self.row(
                "b",
                "judge throughput, shared-prefix packing / one row per criterion",
                speed["logprob"] / speed["logprob_unpacked"],
                f"{result['rows']} rows; {speed['logprob']:.0f} vs {speed['logprob_unpacked']:.0f} rows/s",
                target=False,
            )
        ]
        if generate_ready:
            rows.append(
                self.row(
                    "b",
                    "judge throughput, logprob / generate (64-token rationale budget)",
                    speed["logprob"] / speed["generate"],
                    f"{result['rows']} rows; {speed['logprob']:.0f} vs {speed['generate']:.1f} rows/s; the verdict "
                    "stops at the model's end-of-turn token or the budget (64 + 8 tokens)",
                )
            )
            rows.append(
                self.row(
                    "b",
                    "judge throughput, logprob / generate forced to its whole budget (72 new tokens per verdict)",
                    speed["logprob"] / speed["generate_budget"],
                    f"{speed['generate_budget']:.1f} rows/s: what a judge that uses its full rationale budget costs",
                )
            )
        for mode in others:
            what = MODES[mode].summary
            if mode == "relative":
                what += f" (groups of {result['relative_group']}: the tokenizer's single-token letters, at most 8)"
            rows.append(
                self.row(
                    "b",
                    f"judge cost, {mode} / logprob (time per verdict)",
                    speed["logprob"] / speed[mode],
                    f"{speed[mode]:.1f} vs {speed['logprob']:.0f} verdicts/s: {what}",
                    target=False,
                )
            )
        if not generate_ready:
            rows.append(
                Row(
                    "b",
                    "judge throughput, logprob / generate",
                    float("nan"),
                    "≥ 3.0",
                    None,
                    "PENDING: no generate judge",
                )
            )
        return rows

    def part_c(self) -> list[Row]:
        shape = "toy" if self.quick else "qwen3-0.6b"
        from benchmarks.shapes import build_shape

        path = build_shape(shape, self.cache_dir)
        steps = 1 if self.quick else 2
        overrides = self.train_overrides(steps, 2, 2, 8, f"model.name_or_path={path}", "model=qwen3-0.6b")
        variants = {  # name: (reward, extra overrides)
            "constant": ("constant", []),
            "self": ("self", []),
            "self_no_cache": ("self", ["judge.prefix_cache=false"]),
            "copy": ("copy", []),
        }
        peaks = {
            name: self.workload(["grpo_step", "--judge", judge, "--warmup", "0", *overrides, *extra])[
                "train_peak_rss_mb"
            ]
            for name, (judge, extra) in variants.items()
        }
        detail = f"{shape}; peak RSS (MiB) " + ", ".join(f"{name} {mb:.0f}" for name, mb in peaks.items())
        return [
            self.row(
                "c", f"training peak memory, self-judge / no judge ({shape})", peaks["self"] / peaks["constant"], detail
            ),
            self.row(
                "c",
                f"training peak memory, self-judge with judge.prefix_cache=false / no judge ({shape})",
                peaks["self_no_cache"] / peaks["constant"],
                "no KV cache of the rubric prefix: every judge row holds the whole prompt (slower)",
            ),
            self.row(
                "c",
                f"training peak memory, second-copy judge / no judge ({shape})",
                peaks["copy"] / peaks["constant"],
                "what a separate judge model costs",
                target=False,
            ),
        ]

    def part_d(self) -> list[Row]:
        steps, warmup = (2, 1) if self.quick else (6, 2)
        single = {
            threads: self.workload(
                ["grpo_step", "--warmup", str(warmup), *self.train_overrides(steps, 16, 8, 32)], threads=threads
            )["median_step_s"]
            for threads in (1,)  # 2 threads in one process vs 2 ranks: meaningful on an idle machine only
        }
        two = self.workload(
            ["grpo_step", "--warmup", str(warmup), *self.train_overrides(steps, 8, 8, 32)], threads=1, ranks=2
        )["median_step_s"]
        rows = []
        for threads, seconds in single.items():
            rows.append(
                self.row(
                    "d",
                    f"throughput, 2-rank ZeRO-2 (1 thread each) / 1 process ({threads} thread{'s' * (threads > 1)})",
                    seconds / two,
                    f"tiny model, wall time, 16 completions/step either way (8 per rank); {steps - warmup} timed steps",
                    target=False,
                )
            )
        return rows

    def row(self, part: str, what: str, ratio: float, detail: str, target: bool = True) -> Row:
        if not target:
            return Row(part, what, ratio, "-", None, detail)
        sign, bound = TARGETS[part]
        passed = ratio <= bound if sign == "≤" else ratio >= bound
        return Row(part, what, ratio, f"{sign} {bound}", passed, detail)


def markdown(rows: list[Row], info: dict[str, Any]) -> str:
    lines = [
        "| part | what | ratio | target | result | detail |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        result = {True: "pass", False: "**FAIL**", None: "-"}[r.passed]
        lines.append(f"| {r.part} | {r.what} | {r.ratio:.2f} | {r.target} | {result} | {r.detail} |")
    lines += [
        "",
        f"Command: `{info['command']}`  ",
        f"Machine: {info['machine']['cpu']}, {info['machine']['cores']} cores; load average before "
        f"{info['load_before']} and after {info['load_after']} (1, 5, 15 min); {info['minutes']:.1f} min.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--parts", default="a,b,c,d", help="comma-separated subset of a,b,c,d")
    parser.add_argument(
        "--quick", action="store_true", help="tiny settings, in one process: checks the machinery, not the targets"
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "benchmarks")
    parser.add_argument("--cache-dir", default="~/.cache/hmx")
    parser.add_argument("--model", default="tiny", help="part (a)'s model preset (conf/model), e.g. smollm2-135m")
    args = parser.parse_args(argv)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = sorted(set(parts) - set("abcd"))
    if unknown:
        parser.error(f"--parts: unknown part(s) {unknown}; choose from a, b, c, d")
    suite, started = Suite(args), time.time()
    load_before, rows, seconds = machine()["load_average"], [], {}
    for part in parts:
        print(f"benchmarks: part {part} …", file=sys.stderr, flush=True)
        seconds[part] = time.time()
        try:
            rows += getattr(suite, f"part_{part}")()
        except RuntimeError as err:  # one failed workload: report it, keep the other parts' figures
            print(f"benchmarks: part {part} failed: {err}", file=sys.stderr, flush=True)
            rows.append(Row(part, "FAILED (see stderr)", float("nan"), "-", False, str(err).splitlines()[0]))
        seconds[part] = round(time.time() - seconds[part], 1)
    info = {
        "command": "python -m benchmarks.run " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": machine(),
        "load_before": load_before,
        "load_after": machine()["load_average"],
        "minutes": (time.time() - started) / 60,
        "part_seconds": seconds,
        "quick": args.quick,
    }
    table = markdown(rows, info)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps({"rows": [asdict(r) for r in rows], **info}, indent=1))
    (args.out / "results.md").write_text(table + "\n")
    print(table)
    missed = [r.what for r in rows if r.passed is False]
    if args.check and missed:
        print(f"benchmarks: target missed: {'; '.join(missed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
