"""GPU profile of one GRPO step's phases, for realistic shapes with random weights (no download).

python -m benchmarks.gpu_profile                                   # Qwen3-0.6B and Qwen3-4B shapes, bf16, CUDA
python -m benchmarks.gpu_profile --shapes toy --device cpu --quick  # seconds on CPU (what the tests run)

For each shape (built from config, random bf16 weights, LoRA r=16 on all linear layers as in
``conf/peft/lora.yaml``) it measures tokens per second of: policy generation (``generate``,
``--completion-tokens`` new tokens per completion); judging with the logprob judge (one packed
forward per completion, all criteria) and with the generate judge (a ``--rationale-tokens``
budget), both hmx's own classes; and the update (forward + backward + AdamW on the adapter
over prompt + completion). It records the peak GPU memory of each phase and the model FLOP
utilisation of the update against a bf16 matmul peak measured in the same run.

Update FLOPs: ``4 * P_linear`` per token (forward ``2P``; backward computes activation
gradients, ``2P``; the frozen base weights get no weight gradient, the adapter's are
negligible) plus the attention scores (``4 * layers * heads * head_dim * seq`` per token
forward, twice that backward). Text is tokenized with hmx's tiny tokenizer (random
completions of a fixed token length), so figures are per token, not per word.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import yaml
from peft import get_peft_model
from transformers import AutoTokenizer, Qwen3ForCausalLM

from benchmarks.shapes import shape_config
from benchmarks.workloads import judge_inputs
from hmx.config import JudgeConfig, TinyModelConfig
from hmx.judge.generate import GenerateJudge
from hmx.judge.prompts import chat_text
from hmx.judge.scoring import LogprobJudge
from hmx.models import lora_config
from hmx.resources import CONF_DIR, RUBRICS_DIR
from hmx.rubrics.schema import load_rubric
from hmx.tiny import build_tiny

ROOT = Path(__file__).resolve().parent.parent


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: torch.device, repeats: int) -> float:
    """Median seconds of ``fn`` after one warm-up call."""
    fn()
    seconds = []
    for _ in range(repeats):
        synchronize(device)
        started = time.perf_counter()
        fn()
        synchronize(device)
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def peak_gb(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def matmul_peak_tflops(device: torch.device, dtype: torch.dtype, size: int, repeats: int) -> float:
    """Achieved dense matmul throughput (TFLOP/s) for ``size``-square matrices: the MFU denominator."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    calls = 10

    def run() -> None:
        for _ in range(calls):
            torch.mm(a, b)

    return 2 * size**3 * calls / timed(run, device, repeats) / 1e12


def linear_params(model: torch.nn.Module) -> int:
    """Parameters of the base model's matmuls (every ``nn.Linear``, the tied LM head included)."""
    return sum(m.weight.numel() for m in model.modules() if type(m) is torch.nn.Linear)


def update_flops(config: Any, params: int, tokens: int, seq: int) -> float:
    attention = 4 * config.num_hidden_layers * config.num_attention_heads * config.head_dim * seq
    return tokens * (4 * params + 3 * attention)


def profile_shape(name: str, args: argparse.Namespace, device: torch.device, peak_tflops: float) -> dict[str, Any]:
    dtype = getattr(torch, args.dtype)
    tiny = build_tiny(TinyModelConfig(), args.cache_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny)
    config = shape_config(name, tiny)
    reset_peak(device)
    with torch.device(device):
        torch.manual_seed(0)
        base = Qwen3ForCausalLM(config).to(dtype)
    base.generation_config.eos_token_id = config.eos_token_id
    base.generation_config.pad_token_id = config.pad_token_id
    params = linear_params(base)  # before the adapter wraps the layers
    lora = yaml.safe_load((CONF_DIR / "peft" / "lora.yaml").read_text(encoding="utf-8"))
    model: Any = get_peft_model(base, lora_config(lora))
    model.eval()
    result: dict[str, Any] = {"shape": name, "dtype": args.dtype, "linear_params": params}
    result["weights_gb"] = peak_gb(device)

    n, new = args.completions, args.completion_tokens
    rubric = load_rubric(RUBRICS_DIR / "hmx_feel.yaml")
    prompts, completions = judge_inputs(tokenizer, n, new)
    prompt_texts = [chat_text(tokenizer, p, "") for p in prompts]
    batch = tokenizer(prompt_texts, padding=True, padding_side="left", return_tensors="pt").to(device)

    def generate() -> torch.Tensor:
        with torch.no_grad():
            return model.generate(
                **batch, max_new_tokens=new, min_new_tokens=new, do_sample=True, pad_token_id=config.pad_token_id
            )

    phases: dict[str, Any] = {}
    reset_peak(device)
    seconds = timed(generate, device, args.repeats)
    phases["generation"] = {"tokens_per_s": n * new / seconds, "peak_gb": peak_gb(device)}

    judge_cfg = JudgeConfig(batch_size=args.judge_batch_size)
    logprob = LogprobJudge(rubric, tokenizer, judge_cfg)
    texts = logprob.texts(prompts, completions)
    judged_tokens = sum(len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"])
    rows = n * len(rubric.criteria)
    reset_peak(device)
    seconds = timed(lambda: logprob.score(model, prompts, completions, device), device, args.repeats)
    phases["judge_logprob"] = {
        "tokens_per_s": judged_tokens / seconds,
        "rows_per_s": rows / seconds,
        "peak_gb": peak_gb(device),
    }
    generate_cfg = JudgeConfig(mode="generate", batch_size=args.judge_batch_size, max_rationale_tokens=args.rationale)
    generator = GenerateJudge(rubric, tokenizer, generate_cfg)
    generator.generation_kwargs = {"min_new_tokens": generator.max_new_tokens}  # the whole budget, every row
    reset_peak(device)
    seconds = timed(lambda: generator.score(model, prompts, completions, device), device, args.repeats)
    phases["judge_generate"] = {
        "tokens_per_s": rows * generator.max_new_tokens / seconds,
        "rows_per_s": rows / seconds,
        "peak_gb": peak_gb(device),
    }

    sequences = generate()
    labels = sequences.clone()
    labels[:, : batch["input_ids"].shape[1]] = -100  # the loss covers the completion, as GRPO's does
    attention = torch.ones_like(sequences)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-5)
    model.train()

    def update() -> None:  # micro-batches of --update-batch sequences, one optimizer step
        for start in range(0, len(sequences), args.update_batch):
            part = slice(start, start + args.update_batch)
            out = model(input_ids=sequences[part], attention_mask=attention[part], labels=labels[part], use_cache=False)
            out.loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    reset_peak(device)
    seconds = timed(update, device, args.repeats)
    tokens = sequences.numel()
    achieved = update_flops(config, params, tokens, sequences.shape[1]) / seconds / 1e12
    phases["update"] = {
        "tokens_per_s": tokens / seconds,
        "tflops": achieved,
        "mfu": achieved / peak_tflops,
        "peak_gb": peak_gb(device),
    }
    result["phases"] = phases
    result["logprob_over_generate"] = phases["judge_logprob"]["rows_per_s"] / phases["judge_generate"]["rows_per_s"]
    result["settings"] = {"completions": n, "completion_tokens": new, "prompt_tokens": batch["input_ids"].shape[1]}
    reset_peak(device)
    return result


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    from benchmarks.run import machine

    return f"CPU: {machine()['cpu']} ({machine()['cores']} cores)"


def markdown(report: dict[str, Any]) -> str:
    gb = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
    lines = [
        f"Device: {report['device']}; bf16 matmul peak measured {report['matmul_peak_tflops']:.3g} TFLOP/s "
        f"({report['dtype']}).",
        "",
        "| shape | generation tok/s | logprob judge tok/s | generate judge tok/s | logprob/generate (rows/s) "
        "| update tok/s | update MFU | peak GiB gen / judge / update |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in report["shapes"]:
        p = r["phases"]
        lines.append(
            f"| {r['shape']} | {p['generation']['tokens_per_s']:.0f} | {p['judge_logprob']['tokens_per_s']:.0f} "
            f"| {p['judge_generate']['tokens_per_s']:.0f} | {r['logprob_over_generate']:.1f}x "
            f"| {p['update']['tokens_per_s']:.0f} | {p['update']['mfu']:.1%} "
            f"| {gb(p['generation']['peak_gb'])} / {gb(p['judge_logprob']['peak_gb'])} / {gb(p['update']['peak_gb'])} |"
        )
    lines += ["", f"Command: `{report['command']}`"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.gpu_profile", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--shapes", default="qwen3-0.6b,qwen3-4b", help="comma-separated: qwen3-0.6b, qwen3-4b, toy")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"])
    parser.add_argument("--quick", action="store_true", help="few completions and tokens, one repeat")
    parser.add_argument("--completions", type=int, default=32)
    parser.add_argument("--completion-tokens", type=int, default=256)
    parser.add_argument("--rationale", type=int, default=64, help="the generate judge's rationale budget")
    parser.add_argument("--judge-batch-size", type=int, default=48)
    parser.add_argument("--update-batch", type=int, default=8, help="sequences per forward/backward in the update")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--matmul-size", type=int, default=8192)
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "gpu_profile")
    parser.add_argument("--cache-dir", default="~/.cache/hmx")
    args = parser.parse_args(argv)
    if args.quick:
        args.completions, args.completion_tokens, args.rationale = 2, 8, 8
        args.repeats, args.matmul_size, args.judge_batch_size = 1, 256, 6
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device here; use --device cpu (with --shapes toy) to test the script")
    shapes = [s.strip() for s in args.shapes.split(",") if s.strip()]
    torch.manual_seed(0)
    peak = matmul_peak_tflops(device, getattr(torch, args.dtype), args.matmul_size, args.repeats)
    report: dict[str, Any] = {
        "device": device_name(device),
        "dtype": args.dtype,
        "matmul_peak_tflops": peak,
        "command": "python -m benchmarks.gpu_profile " + " ".join(sys.argv[1:] if argv is None else argv),
        "shapes": [],
    }
    for name in shapes:
        print(f"gpu_profile: {name} …", file=sys.stderr, flush=True)
        report["shapes"].append(profile_shape(name, args, device, peak))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_profile.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    table = markdown(report)
    (args.out / "gpu_profile.md").write_text(table + "\n", encoding="utf-8")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
