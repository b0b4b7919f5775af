"""Started by test_multirank.py under ``accelerate launch``: the real ``hmx train`` entry point (Hydra
main, same argv) with one observer callback that writes what each rank saw to ``$HMX_PROBE_DIR``.

At the end of training each rank also scores a rank-dependent batch with the self-judge on the
live (possibly ZeRO-3-sharded) model: different completion lengths AND counts per rank, plus
one completion common to all ranks, counting the forward calls each rank makes.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import torch
from transformers import TrainerCallback

import hmx.train as train
from hmx.config import typed_node
from hmx.judge.modes.contrastive import contrastive_calls
from hmx.judge.modes.logprob import forward_calls
from hmx.judge.registry import build_judge, options
from hmx.resources import rubric_path
from hmx.rubrics.schema import load_rubric

COMMON = ("How do you feel today?", "I feel calm and a little curious about what comes next.")


class Probe(TrainerCallback):
    def __init__(self, cfg):
        self.cfg = cfg
        self.out = Path(os.environ["HMX_PROBE_DIR"])
        self.record: dict = {}

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        from accelerate.state import AcceleratorState, PartialState

        acc = AcceleratorState()
        plugin = acc.deepspeed_plugin
        params = list(model.parameters())
        self.record.update(
            rank=acc.process_index,
            world_size=acc.num_processes,
            distributed_type=str(acc.distributed_type),
            backend=PartialState().backend,
            torch_world_size=torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1,
            zero_stage=plugin.zero_stage if plugin is not None else None,
            # ZeRO-3 leaves each rank an empty placeholder per weight and keeps its shard in ds_tensor
            full_numel=sum(int(getattr(p, "ds_numel", p.numel())) for p in params),
            local_numel=sum(p.numel() for p in params),
        )

    def on_train_end(self, args, state, control, model=None, processing_class=None, **kwargs):
        rank = self.record["rank"]
        judge_cfg = typed_node(self.cfg, "judge")
        judge_cfg.batch_size = 2  # several calls per pass
        rubric = load_rubric(rubric_path(self.cfg.rubric.path))
        count = 1 + 2 * rank  # rank 0: 1 short completion + the common one; rank 1: 3 long ones + it
        words = "I notice a quiet hope about this, and I intend to say so plainly. " * (1 + 6 * rank)
        prompts = [COMMON[0]] * (count + 1)
        completions = [COMMON[1]] + [f"{i}: {words}" for i in range(count)]
        device = next(model.parameters()).device
        modes = ["logprob", "binary", "contrastive", "budget"] + (["probe"] if options(judge_cfg, "probe").head else [])
        if os.environ.get("HMX_PROBE_MODES"):  # a subset (the SmolLM2 job: the tiny ZeRO-3 job checks the others)
            modes = [mode for mode in modes if mode in os.environ["HMX_PROBE_MODES"].split(",")]
        for mode in modes:  # every mode keeps the fixed call schedule
            # budget: the logprob judge grouped by a token budget (1 token: one unit a call, a length-dependent count)
            variant = replace(judge_cfg, max_batch_tokens=1) if mode == "budget" else replace(judge_cfg, mode=mode)
            judge = build_judge(rubric, processing_class, variant)
            calls: list[int] = []
            hook = model.register_forward_pre_hook(lambda *_, calls=calls: calls.append(1))
            verdicts = judge.score(model, prompts, completions, device)
            hook.remove()
            n, c = len(completions), len(judge.rubric.criteria)
            if mode == "contrastive":
                schedule = contrastive_calls(n, c, 2)
            elif mode == "budget":
                rows = judge.rows(judge.texts(prompts, completions))  # type: ignore[attr-defined]
                schedule = judge.planned_calls(model, rows, 1)  # type: ignore[attr-defined]
            else:
                schedule = forward_calls(n, c, 2, judge.shares_prefix(model))  # type: ignore[attr-defined]
            suffix = "" if mode == "logprob" else f"_{mode}"
            self.record.update(
                {
                    f"judge_calls{suffix}": len(calls),
                    f"judge_schedule{suffix}": schedule,
                    f"judge_common{suffix}": verdicts.scores[0].tolist(),
                    f"judge_finite{suffix}": bool(torch.isfinite(verdicts.scores).all()),
                }
            )
        self.record["judge_lengths"] = [len(c) for c in completions]
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / f"rank{rank}.json").write_text(json.dumps(self.record))


if __name__ == "__main__":
    run = train.run
    train.run = lambda cfg, callbacks=(): run(cfg, [*callbacks, Probe(cfg)])  # type: ignore[assignment]
    train.main()
