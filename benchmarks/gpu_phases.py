"""The in-process phases of ``benchmarks.gpu_profile``: generation, judging and the update, on one built shape.

Each phase measures its variants one after another and hands every figure to ``record`` as soon
as it is measured (the profile writes its JSON then), so a loan that ends mid-run keeps what was
done. A variant that fails is recorded with its error and the phase goes on.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import torch

from hmx.config import JudgeConfig
from hmx.judge.engine.schedule import token_budget
from hmx.judge.modes.generate import GenerateJudge
from hmx.judge.modes.logprob import LogprobJudge

Record = Callable[[str, str, dict[str, Any]], None]  # (phase, variant, figures)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: torch.device, repeats: int, warmup: bool = True) -> float:
    """Median seconds of ``fn`` (after one warm-up call unless ``warmup`` is false)."""
    if warmup:
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


def alloc_retries(device: torch.device) -> int | None:
    """How often the CUDA caching allocator freed its cache and retried since the last reset: near the memory
    limit each retry costs a device synchronisation, a slowdown no FLOP count shows."""
    return torch.cuda.memory_stats(device).get("num_alloc_retries", 0) if device.type == "cuda" else None


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        torch.cuda.reset_accumulated_memory_stats(device)  # num_alloc_retries counts from here


def guarded(record: Record, phase: str, variant: str, measure: Callable[[], dict[str, Any]]) -> bool:
    """Run one variant; record its figures, or its error (then False)."""
    try:
        figures = measure()
    except Exception as err:  # noqa: BLE001  a failed variant is a result too (e.g. an unsupported path)
        record(phase, variant, {"error": f"{type(err).__name__}: {str(err).splitlines()[0][:300]}"})
        return False
    record(phase, variant, figures)
    return True


def linear_params(model: torch.nn.Module) -> int:
    """Parameters of the base model's matmuls (every ``nn.Linear``, the tied LM head included)."""
    return sum(m.weight.numel() for m in model.modules() if type(m) is torch.nn.Linear)


def update_flops(config: Any, params: int, tokens: int, seq: int) -> float:
    """Forward ``2P`` + activation gradients ``2P`` per token (frozen base: no weight gradient) + attention."""
    attention = 4 * config.num_hidden_layers * config.num_attention_heads * config.head_dim * seq
    return tokens * (4 * params + 3 * attention)


def judge_phase(model, rubric, tokenizer, prompts, completions, args, device, record: Record) -> None:
    """The logprob judge: fixed row counts against token budgets (``judge.max_batch_tokens``), same rows."""
    reference = LogprobJudge(rubric, tokenizer, JudgeConfig(batch_size=16, max_batch_tokens=0))
    texts = reference.texts(prompts, completions)
    judged = sum(len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"])
    rows = len(completions) * len(rubric.criteria)
    variants: dict[str, JudgeConfig] = {
        f"batch_size={b}": JudgeConfig(batch_size=b, max_batch_tokens=0) for b in (16, 48)
    }
    auto = token_budget(None, model, device)
    for tokens in sorted({*args.judge_budgets, auto} - {0}):
        name = f"max_batch_tokens={tokens}" + (" (auto)" if tokens == auto else "")
        variants[name] = JudgeConfig(batch_size=16, max_batch_tokens=tokens)

    for name, cfg in variants.items():
        judge = LogprobJudge(rubric, tokenizer, cfg)

        def measure(judge=judge, cfg=cfg) -> dict[str, Any]:
            reset_peak(device)
            seconds = timed(lambda: judge.score(model, prompts, completions, device), device, args.repeats)
            calls = judge.planned_calls(model, judge.rows(texts), token_budget(cfg.max_batch_tokens, model, device))
            return {
                "tokens_per_s": judged / seconds,
                "rows_per_s": rows / seconds,
                "seconds": seconds,
                "forward_calls": calls,
                "peak_gb": peak_gb(device),
            }

        guarded(record, "judge_logprob", name, measure)


def generate_judge_phase(model, rubric, tokenizer, prompts, completions, args, device, record: Record) -> None:
    """The generate judge with its whole rationale budget on every row (one timed pass)."""
    rationale = {"max_rationale_tokens": args.rationale}
    cfg = JudgeConfig(mode="generate", batch_size=args.judge_batch_size, nodes={"generate": rationale})
    judge = GenerateJudge(rubric, tokenizer, cfg)
    judge.generation_kwargs = {"min_new_tokens": judge.max_new_tokens}
    rows = len(completions) * len(rubric.criteria)

    def measure() -> dict[str, Any]:
        reset_peak(device)
        seconds = timed(lambda: judge.score(model, prompts, completions, device), device, 1, warmup=False)
        return {"tokens_per_s": rows * judge.max_new_tokens / seconds, "rows_per_s": rows / seconds}

    guarded(record, "judge_generate", f"rationale={args.rationale}", measure)


def generation_phase(model, batch, pad_id: int, args, device, record: Record) -> torch.Tensor | None:
    """Policy sampling with transformers ``generate`` (dynamic cache), forced to the full length."""
    new = args.completion_tokens

    def run(tokens: int) -> torch.Tensor:
        with torch.no_grad():
            return model.generate(
                **batch, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=True, pad_token_id=pad_id
            )

    out: list[torch.Tensor] = []

    def measure() -> dict[str, Any]:
        run(8)  # warm-up: kernels and allocator, at a fraction of the cost
        reset_peak(device)
        started = time.perf_counter()
        out.append(run(new))
        synchronize(device)
        seconds = time.perf_counter() - started
        n = batch["input_ids"].shape[0]
        return {
            "tokens_per_s": n * new / seconds,
            "ms_per_decode_step": 1000 * seconds / new,
            "peak_gb": peak_gb(device),
        }

    guarded(record, "generation", "generate", measure)
    return out[0] if out else None


def continuous_batching_phase(model, prompt_ids: list[list[int]], pad_id: int, args, device, record: Record) -> None:
    """transformers' continuous batching (``generate_batch``: TRL's ``use_transformers_continuous_batching``)."""
    from transformers import GenerationConfig

    new = args.completion_tokens
    config = GenerationConfig(max_new_tokens=new, min_new_tokens=new, do_sample=True, pad_token_id=pad_id)

    def measure() -> dict[str, Any]:
        with torch.no_grad():
            model.generate_batch(prompt_ids[:2], generation_config=GenerationConfig(max_new_tokens=8, do_sample=True))
            reset_peak(device)
            synchronize(device)
            started = time.perf_counter()
            outputs = model.generate_batch(prompt_ids, generation_config=config)
            synchronize(device)
        seconds = time.perf_counter() - started
        produced = sum(len(o.generated_tokens) for o in outputs.values())
        return {"tokens_per_s": produced / seconds, "tokens": produced, "peak_gb": peak_gb(device)}

    guarded(record, "generation", "continuous_batching", measure)


FLOOR_TOKENS = 16
FLOOR = f"floor (1 row, {FLOOR_TOKENS} completion tokens)"
TARGET_MFU = 0.25  # issue #16's update target


def projection(
    floor_s: float, seconds: float, calls: int, tokens: int, flops: float, peak_tflops: float
) -> dict[str, Any]:
    """What an update of ``tokens`` in ``calls`` forward calls leaves for its tokens beyond the per-call floor:
    their own rate and MFU, and the tokens per call that ``TARGET_MFU`` needs (None: out of reach)."""
    head = {"floor_s": floor_s, "floor_share": calls * floor_s / seconds, "target_mfu": TARGET_MFU}
    compute = seconds - calls * floor_s
    if compute <= 0:  # the floor explains the whole time (or noise exceeds it): no per-token rate can be read
        return {**head, "marginal_tokens_per_s": None, "marginal_mfu": None, "tokens_per_call_for_target": None}
    per_token_s, flop_per_token, peak = compute / tokens, flops / tokens, peak_tflops * 1e12
    spare = flop_per_token - TARGET_MFU * peak * per_token_s
    return {
        **head,
        "marginal_tokens_per_s": 1 / per_token_s,
        "marginal_mfu": flop_per_token / per_token_s / peak,
        "tokens_per_call_for_target": TARGET_MFU * peak * floor_s / spare if spare > 0 else None,
    }


def floor_split(
    model: Any, rows: torch.Tensor, targets: torch.Tensor, optimizer: Any, device: torch.device, repeats: int
) -> dict[str, Any]:
    """The floor's forward, backward and optimizer step apart (medians), each also as the host's own time (until
    the call returns, before the device is waited for): ``host_share`` near 1 means the device waits on the host,
    which compilation and CUDA graphs remove; well below 1, the kernels themselves take the time."""
    batch = {"input_ids": rows, "attention_mask": torch.ones_like(rows), "labels": targets}
    parts: dict[str, list[float]] = {k: [] for k in ("forward", "backward", "step")}
    host: dict[str, list[float]] = {k: [] for k in parts}

    def part(name: str, fn: Callable[[], Any]) -> Any:
        synchronize(device)
        started = time.perf_counter()
        out = fn()
        host[name].append(time.perf_counter() - started)
        synchronize(device)
        parts[name].append(time.perf_counter() - started)
        return out

    for _ in range(repeats + 1):  # the first round warms up
        loss = part("forward", lambda: model(**batch, use_cache=False).loss)
        part("backward", loss.backward)
        part("step", lambda: (optimizer.step(), optimizer.zero_grad(set_to_none=True)))
    median = lambda xs: statistics.median(xs[1:])  # noqa: E731
    figures = {f"{k}_s": median(v) for k, v in parts.items()} | {f"{k}_host_s": median(v) for k, v in host.items()}
    figures["host_share"] = sum(median(v) for v in host.values()) / sum(median(v) for v in parts.values())
    return figures


def update_phase(
    model, sequences: torch.Tensor, prompt_len: int, params: int, peak_tflops: float, args, device, record
):
    """Forward + backward + AdamW on the adapter over prompt + completion: micro-batch, checkpointing,
    ``torch.compile`` (``args.compile``: its modes, e.g. ``default`` and ``reduce-overhead``, CUDA graphs), Liger.

    Also the per-call floor (one row of ``FLOOR_TOKENS`` completion tokens: what a forward + backward costs
    whatever its batch) and, from it, what the largest eager micro-batch's time leaves for the tokens
    themselves: ``update_projection`` (tokens per call a target MFU needs)."""
    labels = sequences.clone()
    labels[:, :prompt_len] = -100  # the loss covers the completion, as GRPO's does
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-5, fused=True)  # as the Trainer's default optim, adamw_torch_fused
    config = model.get_base_model().config
    tokens = sequences.numel()

    def update(micro: int, forward: Any = model, rows: torch.Tensor = sequences, targets: torch.Tensor = labels):
        for start in range(0, len(rows), micro):
            ids = rows[start : start + micro]
            batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": targets[start : start + micro]}
            out = forward(**batch, use_cache=False)
            out.loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def figures(
        micro: int, forward: Any = model, rows=sequences, targets=labels, repeats=args.repeats
    ) -> dict[str, Any]:
        reset_peak(device)
        seconds = timed(lambda: update(micro, forward, rows, targets), device, repeats)
        achieved = update_flops(config, params, rows.numel(), rows.shape[1]) / seconds / 1e12
        return {
            "tokens_per_s": rows.numel() / seconds,
            "tflops": achieved,
            "mfu": achieved / peak_tflops,
            "seconds": seconds,
            "peak_gb": peak_gb(device),
            "alloc_retries": alloc_retries(device),
        }

    model.train()
    measured: dict[int, dict[str, Any]] = {}

    def once(micro: int) -> dict[str, Any]:
        return measured.setdefault(micro, figures(micro))

    for micro in args.update_micro:
        guarded(record, "update", f"micro={micro}", partial(once, micro))
    largest = max(args.update_micro)
    end = min(prompt_len + FLOOR_TOKENS, sequences.shape[1])
    floor_rows, floor_targets, floor_repeats = sequences[:1, :end], labels[:1, :end], max(5, args.repeats)
    floor = lambda: figures(1, model, floor_rows, floor_targets, floor_repeats)  # noqa: E731
    if guarded(record, "update", FLOOR, lambda: measured.setdefault(0, floor())) and len(measured) > 1:
        micro = max(measured)  # the largest micro-batch that ran (a larger one may have run out of memory)
        calls = -(-len(sequences) // micro)
        flops = update_flops(config, params, tokens, sequences.shape[1])
        projected = projection(measured[0]["seconds"], measured[micro]["seconds"], calls, tokens, flops, peak_tflops)
        record("update_projection", f"micro={micro}", projected)
    split = lambda: floor_split(model, floor_rows, floor_targets, optimizer, device, floor_repeats)  # noqa: E731
    guarded(record, "update_floor", "forward, backward, step", split)
    base = model.get_base_model()
    if args.checkpointing:
        base.activation_checkpointing_enable({"use_reentrant": False})
        guarded(record, "update", f"micro={largest} activation_checkpointing", lambda: figures(largest))
        base.activation_checkpointing_disable()
    for mode in args.compile:  # the first timed call includes compilation: timed() warms up first

        def compiled(mode: str = mode) -> dict[str, Any]:
            started = time.perf_counter()
            forward = torch.compile(model, mode=mode, dynamic=False)
            update(largest, forward)  # compile + warm-up (CUDA graphs record here in reduce-overhead)
            figures_ = figures(largest, forward)
            return {**figures_, "compile_and_warmup_s": time.perf_counter() - started}

        guarded(record, "update", f"micro={largest} compiled {mode}", compiled)
        torch._dynamo.reset()  # the next mode compiles afresh
    if args.liger:  # patches the model in place: the last variant

        def liger() -> dict[str, Any]:
            from liger_kernel.transformers import apply_liger_kernel_to_qwen3  # the shapes are Qwen3

            apply_liger_kernel_to_qwen3(model=base)  # RoPE, RMSNorm, SwiGLU and the fused linear cross-entropy
            return figures(largest)

        guarded(record, "update", f"micro={largest} liger", liger)
    model.eval()
