"""Measured workloads, each run in a fresh process by ``benchmarks/run.py`` (so variants never share memory).

python -m benchmarks.workloads grpo_step --judge self --json out.json trainer.max_steps=5 ...
python -m benchmarks.workloads judges --json out.json --completions 16

``grpo_step`` runs the real ``hmx.train.run`` with a timing callback; the reward is chosen by
``--judge``: ``self`` (the self-judge, timed), ``constant`` (a zero-cost reward with the same
reward functions, names and weights), or ``copy`` (the judge scores with a second copy of the
model, the cost that hmx's same-weights judge avoids). It also works under ``accelerate launch``
(rank 0 writes the JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback

import hmx.train
from hmx.judge.modes.logprob import Verdicts
from hmx.judge.registry import MODES
from hmx.rewards.self_judge import SelfJudgeRewards

STATUS = Path("/proc/self/status")


def peak_rss_mb() -> float:
    """Peak resident set size since the last reset (VmHWM), or since start where that is unavailable."""
    if STATUS.is_file():
        for line in STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # Linux: reset VmHWM to the current RSS
        return True
    except OSError:
        return False


class StepTimer(TrainerCallback):
    """Wall time of every optimizer step (generation + rewards + update) and the training-phase memory peak."""

    def __init__(self) -> None:
        self.steps: list[float] = []
        self.cpu_steps: list[float] = []
        self.peak_reset = False
        self.peak_mb = 0.0

    def on_train_begin(self, args, state, control, **kwargs):
        self.peak_reset = reset_peak_rss()
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()

    def on_step_begin(self, args, state, control, **kwargs):
        self.started, self.cpu_started = time.perf_counter(), time.process_time()

    def on_step_end(self, args, state, control, **kwargs):
        self.steps.append(time.perf_counter() - self.started)
        self.cpu_steps.append(time.process_time() - self.cpu_started)

    def on_train_end(self, args, state, control, **kwargs):
        self.peak_mb = peak_rss_mb()


class TimedRewards(SelfJudgeRewards):
    """The self-judge, unchanged, with the time of each judge pass recorded."""

    seconds: list[float] = []
    cpu_seconds: list[float] = []

    def verdicts(
        self,
        prompts: Sequence[Any],
        completions: Sequence[Any],
        log_metric: Callable | None,
        log_extra: Callable | None = None,
    ) -> Verdicts:
        started, cpu_started = time.perf_counter(), time.process_time()
        cached = self._verdicts
        result = super().verdicts(prompts, completions, log_metric, log_extra)
        if result is not cached:
            TimedRewards.seconds.append(time.perf_counter() - started)
            TimedRewards.cpu_seconds.append(time.process_time() - cpu_started)
        return result


class ConstantRewards(SelfJudgeRewards):
    """A zero-cost reward: same reward functions, names and weights, score 0, no forward pass."""

    def verdicts(
        self,
        prompts: Sequence[Any],
        completions: Sequence[Any],
        log_metric: Callable | None,
        log_extra: Callable | None = None,
    ) -> Verdicts:
        n, c = len(completions), len(self.judge.rubric.criteria)
        return Verdicts(torch.zeros(n, c), [[[] for _ in range(c)] for _ in range(n)], torch.ones(n, c))


class SecondCopyRewards(TimedRewards):
    """The judge a separate reward model would be: a second copy of the weights, loaded next to the policy."""

    model_loader: Callable[[], torch.nn.Module] | None = None

    def bind(self, model: torch.nn.Module, device: torch.device) -> None:
        assert SecondCopyRewards.model_loader is not None
        super().bind(SecondCopyRewards.model_loader().to(device), device)


REWARDS: dict[str, type[SelfJudgeRewards]] = {
    "self": TimedRewards,
    "constant": ConstantRewards,
    "copy": SecondCopyRewards,
}


def compose(overrides: Sequence[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from hmx.resources import CONF_DIR

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose("train", list(overrides))


def grpo_step(judge: str, warmup: int, overrides: Sequence[str]) -> dict[str, Any]:
    """Train with the chosen reward; step times after ``warmup`` steps, judge times, training-phase peak RSS."""
    from hmx.config import typed_node
    from hmx.models import load_model

    cfg = compose(overrides)
    SecondCopyRewards.model_loader = lambda: load_model(typed_node(cfg, "model"), typed_node(cfg, "paths").cache_dir)
    TimedRewards.seconds, TimedRewards.cpu_seconds = [], []
    original = hmx.train.SelfJudgeRewards
    hmx.train.SelfJudgeRewards = REWARDS[judge]  # type: ignore[misc]  # the variant under test
    timer = StepTimer()
    try:
        run_dir = hmx.train.run(cfg, callbacks=[timer])
    finally:  # restored, so that workloads can also run one after another in one process (--quick)
        hmx.train.SelfJudgeRewards = original  # type: ignore[misc]
    steps = timer.steps[warmup:] or timer.steps
    judge_seconds = TimedRewards.seconds[warmup:] or TimedRewards.seconds
    judge_cpu = TimedRewards.cpu_seconds[warmup:] or TimedRewards.cpu_seconds
    return {
        "judge": judge,
        "run_dir": str(run_dir),
        "step_seconds": timer.steps,
        "step_cpu_seconds": timer.cpu_steps,
        "median_step_s": statistics.median(steps),
        "median_judge_s": statistics.median(judge_seconds) if judge_seconds else 0.0,
        "median_judge_cpu_s": statistics.median(judge_cpu) if judge_cpu else 0.0,
        "train_peak_rss_mb": timer.peak_mb,
        "peak_reset": timer.peak_reset,
        "process_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "torch_threads": torch.get_num_threads(),
        "world_size": int(os.environ.get("WORLD_SIZE", "1")),
    }


def judge_inputs(tokenizer, completions: int, completion_tokens: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """Shipped prompts and random-token completions of a fixed length (what a random policy writes)."""
    from hmx.resources import PROMPTS_FILE

    prompts = [json.loads(line)["prompt"] for line in PROMPTS_FILE.read_text(encoding="utf-8").splitlines()]
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(10, len(tokenizer) - 10, (completions, completion_tokens), generator=generator)
    return prompts[:completions], tokenizer.batch_decode(ids, skip_special_tokens=True)


JUDGE_MODES = tuple(m for m in MODES if m not in ("logprob", "generate"))  # the rest of the registry's modes
GROUP = 8  # relative mode: replies per GRPO group (part (a)'s G), at most as many as the tokenizer has letters


def tiny_probe(rubric: Any, tokenizer: Any, model: Any) -> Path:
    """A probe head for the model, fitted on 12 of the shipped dev pairs at its last layer (what probe mode reads)."""
    import tempfile

    from hmx.config import JudgeConfig
    from hmx.judge.modes.probe import ProbeJudge
    from hmx.judge.validity.probe_fit import fit_probe
    from hmx.resources import RUBRICS_DIR
    from hmx.rubrics.pairs import load_pairs

    pairs = load_pairs(RUBRICS_DIR / "hmx_feel.pairs.jsonl", rubric, "dev")[:12]
    judge = ProbeJudge(rubric, tokenizer, JudgeConfig(mode="probe"), layers=[model.config.num_hidden_layers])
    probe, _ = fit_probe(rubric, judge, model, pairs, torch.device("cpu"), progress=False)
    path = Path(tempfile.mkdtemp(prefix="hmx-bench-")) / "probe.safetensors"
    probe.save(path)
    return path


def judge_modes(
    rubric: Any, tokenizer: Any, model: Any, prompts: list[str], texts: list[str], modes: Sequence[str]
) -> tuple[dict[str, Callable[[], object]], int]:
    """Runners for the other judge modes, each built by ``build_judge`` from its default config (fewshot: the
    shipped pair file's dev examples); relative mode scores groups of up to :data:`GROUP` replies to one prompt
    (``relative_group``: as many as the tokenizer has single-token letters)."""
    from hmx.config import JudgeConfig
    from hmx.judge.registry import build_judge
    from hmx.resources import RUBRICS_DIR

    cpu, group = torch.device("cpu"), 1
    runners: dict[str, Callable[[], object]] = {}
    for mode in modes:
        examples = str(RUBRICS_DIR / "hmx_feel.pairs.jsonl") if mode == "fewshot" else None
        probe = str(tiny_probe(rubric, tokenizer, model)) if mode == "probe" else None
        cfg = JudgeConfig(mode=mode, nodes={"fewshot": {"examples": examples}, "probe": {"head": probe}})
        judge: Any = build_judge(rubric, tokenizer, cfg)
        asked = prompts
        if mode == "relative":
            group = min(GROUP, len(judge.letter_ids))
            asked = [prompts[i // group] for i in range(len(texts))]
        runners[mode] = partial(judge.score, model, asked, texts, cpu)
    return runners, group


def judges(completions: int, completion_tokens: int, repeats: int, cache_dir: str, modes: Sequence[str]):
    """Judge throughput (scored rows per second) on the tiny model: each mode scores the same batch."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from hmx.config import JudgeConfig, TinyModelConfig
    from hmx.judge.modes.logprob import LogprobJudge, judging
    from hmx.resources import RUBRICS_DIR
    from hmx.rubrics.schema import load_rubric
    from hmx.tiny import build_tiny

    path = build_tiny(TinyModelConfig(), cache_dir)
    tokenizer, model = AutoTokenizer.from_pretrained(path), AutoModelForCausalLM.from_pretrained(path).eval()
    rubric = load_rubric(RUBRICS_DIR / "hmx_feel.yaml")
    prompts, texts = judge_inputs(tokenizer, completions, completion_tokens)
    cpu = torch.device("cpu")
    logprob = LogprobJudge(rubric, tokenizer, JudgeConfig())

    def unpacked() -> None:
        with judging(model, "policy"):
            logprob.last_logits(model, logprob.texts(prompts, texts), cpu)

    runners: dict[str, Callable[[], object]] = {
        "logprob": lambda: logprob.score(model, prompts, texts, cpu),
        "logprob_unpacked": unpacked,
    }
    if "generate" in modes:
        from hmx.judge.modes.generate import GenerateJudge

        cfg = JudgeConfig(mode="generate", nodes={"generate": {"max_rationale_tokens": 64}})
        generate = GenerateJudge(rubric, tokenizer, cfg)
        runners["generate"] = lambda: generate.score(model, prompts, texts, cpu)
        budget = GenerateJudge(rubric, tokenizer, cfg)
        budget.generation_kwargs = {"min_new_tokens": budget.max_new_tokens}  # every verdict uses the whole budget
        runners["generate_budget"] = lambda: budget.score(model, prompts, texts, cpu)
    others, group = judge_modes(rubric, tokenizer, model, prompts, texts, [m for m in modes if m in JUDGE_MODES])
    runners |= others
    rows = completions * len(rubric.criteria)
    result: dict[str, Any] = {"rows": rows, "relative_group": group}
    for mode in modes:
        runners[mode]()  # warm-up
        seconds = []
        for _ in range(repeats):
            started = time.perf_counter()
            runners[mode]()
            seconds.append(time.perf_counter() - started)
        result[mode] = {"median_s": statistics.median(seconds), "rows_per_s": rows / statistics.median(seconds)}
    return result


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.workloads", description=__doc__)
    parser.add_argument("workload", choices=["grpo_step", "judges"])
    parser.add_argument("--json", type=Path, required=True, help="where rank 0 writes the result")
    parser.add_argument("--judge", choices=sorted(REWARDS), default="self")
    parser.add_argument("--warmup", type=int, default=1, help="steps left out of the medians")
    parser.add_argument("--completions", type=int, default=16)
    parser.add_argument("--completion-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--modes", default="logprob,logprob_unpacked")
    parser.add_argument("--cache-dir", default="~/.cache/hmx")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for grpo_step")
    args = parser.parse_intermixed_args(argv)
    if args.workload == "grpo_step":
        result = grpo_step(args.judge, args.warmup, args.overrides)
    else:
        modes = args.modes.split(",")
        result = judges(args.completions, args.completion_tokens, args.repeats, args.cache_dir, modes)
    if int(os.environ.get("RANK", "0")) == 0:
        args.json.write_text(json.dumps(result, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
