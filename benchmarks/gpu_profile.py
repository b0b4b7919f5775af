"""GPU profile of a GRPO step, sized for a short GPU loan: every figure is written the moment it is measured.

python -m benchmarks.gpu_profile                                   # Qwen3-0.6B and 4B shapes, bf16, CUDA (≤ 5 min)
python -m benchmarks.gpu_profile --shapes toy --device cpu --quick  # seconds on CPU (what the tests run)

For each shape (built from config, random weights, LoRA r=16 on all linear layers as in
``conf/peft/lora.yaml``; text from hmx's tiny tokenizer, so figures are per token) it measures,
in this order (``benchmarks/gpu_phases.py``): the logprob judge with fixed row counts and with
token budgets (``judge.max_batch_tokens``, the device-sized default included); generation with
``generate``; the update of those sequences (forward + backward + AdamW on the adapter) per
micro-batch size, with activation checkpointing, ``torch.compile`` modes and Liger's kernels, as
model FLOP utilisation against a bf16 matmul peak measured in the same run, plus the per-call
floor (one 16-token row) and what it implies: the tokens per forward call that 25% MFU needs
(``update_projection``); the generate judge. Then the **real training step** of the first shape:
``hmx train`` (``trainer=gpu_lora``, forced completion length) in a fresh process per variant,
self-judge vs a zero-cost reward, then with Liger and with transformers' continuous batching;
last, continuous batching in this process (a device-side assert there ends the process, after
everything else is on disk).

``--budget-s`` (default 280) bounds the run: a phase that would start past it is recorded as
skipped. ``<out>/gpu_profile.json`` and ``gpu_profile.md`` are rewritten after every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import yaml
from peft import get_peft_model
from transformers import AutoTokenizer, Qwen3ForCausalLM

from benchmarks import gpu_phases as phases
from benchmarks.shapes import SHAPES, build_shape, shape_config
from benchmarks.workloads import judge_inputs
from hmx.config import TinyModelConfig
from hmx.judge.engine.prompts import chat_text
from hmx.models import lora_config
from hmx.resources import CONF_DIR, RUBRICS_DIR
from hmx.rubrics.schema import load_rubric
from hmx.tiny import build_tiny

ROOT = Path(__file__).resolve().parent.parent
TRAIN_VARIANTS = {  # name: (reward, extra hmx train overrides)
    "constant": ("constant", []),  # a zero-cost reward: same reward functions, no forward pass
    "self": ("self", []),  # the self-judge
    "self_liger": ("self", ["+trainer.use_liger_kernel=true"]),
    "self_cb": ("self", ["+generation.use_transformers_continuous_batching=true"]),
    # transformers' Trainer compiles the model; TRL pads prompts and completions to a multiple of 64, so that a
    # new length reuses the graph (unpadded: a second compile on step 2; CPU, docs/performance.md)
    "self_compile": ("self", ["+trainer.torch_compile=true", "+trainer.pad_to_multiple_of=64"]),
    # the same with CUDA graphs (torch.compile's reduce-overhead mode): the per-call floor's launches
    "self_graphs": (
        "self",
        [
            "+trainer.torch_compile=true",
            "+trainer.pad_to_multiple_of=64",
            "+trainer.torch_compile_mode=reduce-overhead",
        ],
    ),
}
DEFAULT_TRAIN = "constant,self,self_compile"  # self_liger and self_cb were slower on the H100 (performance.md)


class Report:
    """The profile's JSON and markdown, rewritten after every figure."""

    def __init__(self, out: Path, head: dict[str, Any], budget_s: float):
        self.out, self.data, self.started, self.budget_s = (
            out,
            {**head, "shapes": {}, "skipped": []},
            time.time(),
            budget_s,
        )
        out.mkdir(parents=True, exist_ok=True)

    def left(self) -> float:
        return self.budget_s - (time.time() - self.started)

    def due(self, what: str) -> bool:
        """Whether ``what`` may start; past the budget it is recorded as skipped."""
        if self.left() > 0:
            return True
        self.data["skipped"].append(what)
        self.save()
        return False

    def record(self, shape: str, phase: str, variant: str, figures: dict[str, Any]) -> None:
        self.data["shapes"].setdefault(shape, {}).setdefault(phase, {})[variant] = figures
        print(f"gpu_profile: {shape} {phase} [{variant}] {json.dumps(figures)}", file=sys.stderr, flush=True)
        self.save()

    def save(self) -> None:
        self.data["elapsed_s"] = round(time.time() - self.started, 1)
        (self.out / "gpu_profile.json").write_text(json.dumps(self.data, indent=1), encoding="utf-8")
        (self.out / "gpu_profile.md").write_text(markdown(self.data) + "\n", encoding="utf-8")


def pad_id(config: Any) -> int:
    """The shape's padding id (``shape_config`` sets it from the tiny tokenizer)."""
    if config.pad_token_id is None:
        raise ValueError(f"the shape config has no pad_token_id: {config}")
    return int(config.pad_token_id)


def matmul_peak_tflops(device: torch.device, dtype: torch.dtype, size: int, repeats: int) -> float:
    """Achieved dense matmul throughput (TFLOP/s) for ``size``-square matrices: the MFU denominator."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    calls = 10

    def run() -> None:
        for _ in range(calls):
            torch.mm(a, b)

    return 2 * size**3 * calls / phases.timed(run, device, repeats) / 1e12


def profile_shape(name: str, args: argparse.Namespace, device: torch.device, report: Report) -> list[list[int]]:
    """The in-process phases of one shape; returns the prompts' token ids (for continuous batching)."""
    record = lambda phase, variant, figures: report.record(name, phase, variant, figures)  # noqa: E731
    tokenizer = AutoTokenizer.from_pretrained(build_tiny(TinyModelConfig(), args.cache_dir))
    config = shape_config(name, Path(tokenizer.name_or_path))
    with torch.device(device):
        torch.manual_seed(0)
        base = Qwen3ForCausalLM(config).to(getattr(torch, args.dtype))
    params = phases.linear_params(base)  # before the adapter wraps the layers
    lora = yaml.safe_load((CONF_DIR / "peft" / "lora.yaml").read_text(encoding="utf-8"))
    model: Any = get_peft_model(base, lora_config(lora)).eval()
    record("model", "built", {"linear_params": params, "weights_gb": phases.peak_gb(device)})

    rubric = load_rubric(RUBRICS_DIR / "hmx_feel.yaml")
    prompts, completions = judge_inputs(tokenizer, args.completions, args.completion_tokens)
    texts = [chat_text(tokenizer, p, "") for p in prompts]
    batch = tokenizer(texts, padding=True, padding_side="left", return_tensors="pt").to(device)
    if report.due(f"{name} judge_logprob"):
        phases.judge_phase(model, rubric, tokenizer, prompts, completions, args, device, record)
    sequences = None
    if report.due(f"{name} generation"):
        sequences = phases.generation_phase(model, batch, pad_id(config), args, device, record)
    if sequences is not None and report.due(f"{name} update"):
        phases.update_phase(
            model,
            sequences,
            batch["input_ids"].shape[1],
            params,
            report.data["matmul_peak_tflops"],
            args,
            device,
            record,
        )
    if args.generate_judge and report.due(f"{name} judge_generate"):
        phases.generate_judge_phase(model, rubric, tokenizer, prompts, completions, args, device, record)
    del model, base, sequences
    phases.reset_peak(device)
    return [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]


def train_step(name: str, variant: str, args: argparse.Namespace, report: Report) -> None:
    """``hmx train`` on the shape in a fresh process: median step time after one warm-up step."""
    judge, extra = TRAIN_VARIANTS[variant]
    path = build_shape(name, args.cache_dir)
    tokens = args.step_tokens
    cuda = args.device == "cuda"
    overrides = [
        "model=qwen3-0.6b",  # the preset's loading options; the weights are the shape's
        f"model.name_or_path={path}",
        f"model.dtype={args.dtype if cuda else 'float32'}",
        "trainer=gpu_lora" if cuda else "trainer=tiny",
        "judge=logprob",  # the CPU default's probe head fits SmolLM2 only
        "generation=hf",
        "logger=none",
        f"paths.cache_dir={args.cache_dir}",
        f"trainer.max_steps={args.steps}",
        f"trainer.per_device_train_batch_size={args.completions // 2}",
        "++trainer.gradient_accumulation_steps=1",
        f"trainer.num_generations={max(2, args.completions // 4)}",
        f"trainer.max_completion_length={tokens}",
        f"+trainer.generation_kwargs.min_new_tokens={tokens}",  # equal generation work in every variant
        "++trainer.logging_steps=1",
        "++trainer.log_completions=false",
        "++trainer.save_strategy=no",
        *extra,
    ]
    with tempfile.TemporaryDirectory(prefix="hmx-gpu-step-") as tmp:
        out = Path(tmp) / "step.json"
        argv = [
            "grpo_step",
            "--judge",
            judge,
            "--warmup",
            "1",
            "--json",
            str(out),
            f"paths.runs_dir={tmp}/runs",
            *overrides,
        ]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        started = time.time()
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.workloads", *argv], cwd=ROOT, env=env, capture_output=True, text=True
        )
        if done.returncode != 0 or not out.is_file():
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            report.record(name, "train_step", variant, {"error": " | ".join(tail)[-400:]})
            return
        result = json.loads(out.read_text())
    step, judged = result["median_step_s"], result["median_judge_s"]
    figures = {
        "median_step_s": step,
        "median_judge_s": judged,
        "judge_share": judged / step if step else None,
        "step_seconds": result["step_seconds"],
        "completions": args.completions // 2,
        "completion_tokens": tokens,
        "process_s": round(time.time() - started, 1),
    }
    report.record(name, "train_step", variant, figures)


def markdown(data: dict[str, Any]) -> str:
    """One table per phase: variant rows, the phase's headline figures."""
    num = lambda v, f: "-" if v is None else format(v, f)  # noqa: E731
    lines = [
        f"Device: {data['device']}; {data['dtype']} matmul peak measured "
        f"{num(data.get('matmul_peak_tflops'), '.3g')} TFLOP/s.",
        "",
    ]
    for shape, by_phase in data["shapes"].items():
        lines += [
            f"**{shape}** ({num(by_phase.get('model', {}).get('built', {}).get('linear_params'), ',')} "
            "linear parameters)",
            "",
        ]
        lines += ["| phase | variant | tok/s | other | peak GiB |", "|---|---|---|---|---|"]
        for phase, variants in by_phase.items():
            if phase == "model":
                continue
            for variant, f in variants.items():
                if "error" in f:
                    other, rate = f"failed: {f['error'][:120]}", "-"
                elif phase == "train_step":
                    rate = "-"
                    other = f"step {f['median_step_s']:.2f} s, judge {f['median_judge_s']:.2f} s"
                elif phase == "update_projection":  # beyond the per-call floor (gpu_phases.projection)
                    rate = num(f.get("marginal_tokens_per_s"), ",.0f")
                    need = f.get("tokens_per_call_for_target")
                    other = f"floor {1000 * f['floor_s']:.1f} ms/call"
                    if f.get("marginal_mfu") is None:
                        other += ": the floor is the whole update"
                    else:
                        other += (
                            f" ({f['floor_share']:.0%} of the update), the tokens alone at {f['marginal_mfu']:.1%} "
                            f"MFU; {f['target_mfu']:.0%} MFU needs "
                            + ("more than any batch" if need is None else f"≥ {need:,.0f} tokens per call")
                        )
                elif phase == "update_floor":  # gpu_phases.floor_split
                    rate = "-"
                    other = ", ".join(f"{k} {1000 * f[f'{k}_s']:.1f} ms" for k in ("forward", "backward", "step"))
                    other += f"; the host's own share {f['host_share']:.0%}"
                else:
                    rate = num(f.get("tokens_per_s"), ",.0f")
                    other = ", ".join(
                        f"{k} {num(f[k], '.1%' if k == 'mfu' else '.3g')}"
                        for k in ("mfu", "forward_calls", "ms_per_decode_step", "alloc_retries")
                        if f.get(k) is not None
                    )
                lines.append(f"| {phase} | {variant} | {rate} | {other} | {num(f.get('peak_gb'), '.1f')} |")
        lines.append("")
    steps = {v: f for by in data["shapes"].values() for v, f in by.get("train_step", {}).items() if "error" not in f}
    if "self" in steps and "constant" in steps:
        ratio = steps["self"]["median_step_s"] / steps["constant"]["median_step_s"]
        lines += [f"Training step, self-judge / zero-cost reward: {ratio:.3f}x.", ""]
    if data["skipped"]:
        lines += [f"Skipped (time budget): {', '.join(data['skipped'])}.", ""]
    lines += [f"Elapsed {data.get('elapsed_s', 0):.0f} s. Command: `{data['command']}`"]
    return "\n".join(lines)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.gpu_profile", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    ints = lambda text: [int(x) for x in text.split(",") if x]  # noqa: E731
    parser.add_argument("--shapes", default="qwen3-0.6b,qwen3-4b", help="comma-separated, of: " + ", ".join(SHAPES))
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"])
    parser.add_argument("--quick", action="store_true", help="few completions and tokens, one repeat")
    parser.add_argument("--budget-s", type=float, default=280, help="no phase starts after this many seconds")
    parser.add_argument("--completions", type=int, default=32)
    parser.add_argument("--completion-tokens", type=int, default=128)
    parser.add_argument("--judge-budgets", type=ints, default=[16384, 65536], help="judge.max_batch_tokens to try")
    parser.add_argument("--update-micro", type=ints, default=[8, 32], help="update micro-batch sizes (sequences)")
    parser.add_argument("--checkpointing", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--liger", action=argparse.BooleanOptionalAction, default=True, help="needs liger-kernel")
    parser.add_argument(
        "--compile",
        default="",
        help="torch.compile modes to try on the update, e.g. default,reduce-overhead (CUDA graphs); '' for none",
    )
    parser.add_argument("--generate-judge", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--rationale", type=int, default=64, help="the generate judge's rationale budget")
    parser.add_argument("--judge-batch-size", type=int, default=48, help="the generate judge's rows per call")
    parser.add_argument(
        "--train",
        default=DEFAULT_TRAIN,
        help=f"training-step variants of {list(TRAIN_VARIANTS)}; '' for none",
    )
    parser.add_argument("--steps", type=int, default=3, help="training steps per variant (the first is warm-up)")
    parser.add_argument("--step-tokens", type=int, default=128, help="forced completion length in the training step")
    parser.add_argument("--continuous-batching", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--matmul-size", type=int, default=8192)
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "gpu_profile")
    parser.add_argument("--cache-dir", default="~/.cache/hmx")
    args = parser.parse_args(argv)
    args.cache_dir = str(Path(args.cache_dir).expanduser())
    args.train = [v.strip() for v in args.train.split(",") if v.strip()]
    args.compile = [m.strip() for m in args.compile.split(",") if m.strip()]
    unknown = sorted(set(args.train) - set(TRAIN_VARIANTS))
    if unknown:
        parser.error(f"--train: unknown variant(s) {unknown}; choose from {sorted(TRAIN_VARIANTS)}")
    if args.quick:
        args.completions, args.completion_tokens, args.step_tokens, args.rationale = 4, 8, 4, 4
        args.repeats, args.matmul_size, args.judge_batch_size, args.steps = 1, 256, 6, 2
        args.judge_budgets, args.update_micro = [512], [2, 8]
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device here; use --device cpu (with --shapes toy) to test the script")
    return args


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    from benchmarks.run import machine

    return f"CPU: {machine()['cpu']} ({machine()['cores']} cores)"


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    device = torch.device(args.device)
    shapes = [s.strip() for s in args.shapes.split(",") if s.strip()]
    command = "python -m benchmarks.gpu_profile " + " ".join(sys.argv[1:] if argv is None else argv)
    head = {"device": device_name(device), "dtype": args.dtype, "command": command, "torch": torch.__version__}
    report = Report(args.out, head, args.budget_s)
    torch.manual_seed(0)
    report.data["matmul_peak_tflops"] = matmul_peak_tflops(
        device, getattr(torch, args.dtype), args.matmul_size, args.repeats
    )
    report.save()
    prompt_ids: list[list[int]] = []
    for index, name in enumerate(shapes):
        ids = profile_shape(name, args, device, report)
        prompt_ids = prompt_ids or ids
        if index == 0:  # the real step of the first shape, before the larger shapes' phases
            for variant in args.train[:2]:
                if report.due(f"{name} train_step [{variant}]"):
                    train_step(name, variant, args, report)
    for variant in args.train[2:]:
        if report.due(f"{shapes[0]} train_step [{variant}]"):
            train_step(shapes[0], variant, args, report)
    if args.continuous_batching and shapes and report.due(f"{shapes[0]} generation [continuous_batching]"):
        config = shape_config(shapes[0], build_tiny(TinyModelConfig(), args.cache_dir))
        with torch.device(device):
            base = Qwen3ForCausalLM(config).to(getattr(torch, args.dtype))
        lora = yaml.safe_load((CONF_DIR / "peft" / "lora.yaml").read_text(encoding="utf-8"))
        model = get_peft_model(base, lora_config(lora)).eval()
        record = lambda phase, variant, figures: report.record(shapes[0], phase, variant, figures)  # noqa: E731
        phases.continuous_batching_phase(model, prompt_ids, pad_id(config), args, device, record)
    report.save()
    print(markdown(report.data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
