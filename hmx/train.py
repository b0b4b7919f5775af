"""``hmx train``: rubric-based self-rewarding GRPO, read top to bottom.

hmx train                                         # CPU default: tiny model, a few minutes
hmx train experiment=hmx_feel_qwen3_0.6b          # one 24 GB GPU
accelerate launch --config_file launch/accelerate/zero3.yaml -m hmx.train experiment=...
"""

from __future__ import annotations

import sys
import traceback
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import hydra
import torch
from accelerate import PartialState
from omegaconf import DictConfig
from transformers import TrainerCallback, set_seed
from trl import GRPOConfig, GRPOTrainer

from hmx.before_after import BeforeAfter, pick_prompts
from hmx.checkpoints import PickleFreeCheckpoints, plan_run, save_adapter, take_run
from hmx.config import ConfigError, plain_dict, typed_node
from hmx.config_renames import renamed_overrides
from hmx.cpu_threads import check_cpu_threads
from hmx.data import load_prompts
from hmx.errors import command_errors
from hmx.evaluation.probes import SideEffectProbes, probes_config
from hmx.generation import check_context, check_generation, model_context, resolve_generation
from hmx.judge.modes.external import check_reachable
from hmx.judge.registry import build_judge, check_judge_config, option_classes
from hmx.judge.tuned_adapter import load_adapter, merge_judge_adapter
from hmx.judge.validity.preflight import check_judge, pairs_to_check
from hmx.judge.validity.records import CheckRecords, judge_preset, model_preset, run_keys, startup_note
from hmx.models import load_model, load_tokenizer, lora_config
from hmx.preemption import GracefulStop
from hmx.redaction import redact_text, redacted_output
from hmx.resources import CONF_DIR, rubric_path, warn_shadowed_configs
from hmx.rewards.audit import AuditAlarms, audit_pair_source, audit_pairs, audit_summary, build_audit
from hmx.rewards.drift import JudgeDriftMonitor, drift_judges, load_probes
from hmx.rewards.guards import check_reward_weights, guard_functions, guard_weights
from hmx.rewards.self_judge import SelfJudgeRewards
from hmx.rubrics.render import check_template
from hmx.rubrics.schema import combine_rubrics, load_rubric
from hmx.run_summary import before_after_lines, judge_lines
from hmx.tracking import MetricsFile, agree_run_dir, configure_wandb, is_main_process, read_metrics

DEPRECATED_CHECKPOINTING = r"`(is_)?gradient_checkpointing(_enable|_disable)?` is deprecated"


def grpo_args(cfg: DictConfig, run_dir: Path, report_to: list[str], reward_weights: list[float]) -> GRPOConfig:
    """``trl.GRPOConfig`` from the ``trainer`` and ``generation`` deltas; TRL owns every other default."""
    delta = {**plain_dict(cfg, "trainer"), **resolve_generation(plain_dict(cfg, "generation"))}
    delta.setdefault("use_cpu", not torch.cuda.is_available())  # DeepSpeed on CPU ranks needs it
    try:
        args = GRPOConfig(
            output_dir=str(run_dir),
            seed=cfg.seed,
            report_to=report_to,
            run_name=run_dir.name,
            reward_weights=reward_weights,
            **delta,
        )
    except (TypeError, ValueError) as err:
        raise ConfigError(f"config nodes 'trainer'/'generation' (trl.GRPOConfig fields): {err}") from None
    if args.max_completion_length is not None and args.max_completion_length < 1:
        raise ConfigError(
            f"config field 'trainer.max_completion_length': must be >= 1, got {args.max_completion_length}"
        )
    if not args.learning_rate >= 0:
        raise ConfigError(f"config field 'trainer.learning_rate': must be >= 0, got {args.learning_rate}")
    return args


def run(cfg: DictConfig, callbacks: Sequence[TrainerCallback] = ()) -> Path:
    """Train once; returns the run directory. ``callbacks`` are added to the trainer's own."""
    model_cfg, data_cfg, paths = typed_node(cfg, "model"), typed_node(cfg, "data"), typed_node(cfg, "paths")
    rubric_cfg, judge_cfg, logger_cfg = typed_node(cfg, "rubric"), typed_node(cfg, "judge"), typed_node(cfg, "logger")
    guards_cfg, audit_cfg = typed_node(cfg, "guards"), typed_node(cfg, "audit")
    check_judge_config(judge_cfg)  # judge.mode and every judge.<mode> options node, typed by the mode table
    set_seed(cfg.seed)
    warn_shadowed_configs()  # a user's conf/model/tiny.yaml is hidden by hmx's: say so

    # Everything that can be wrong with the input fails here, before the run directory exists.
    extras = [load_rubric(rubric_path(extra)) for extra in rubric_cfg.extra]
    rubric = combine_rubrics(load_rubric(rubric_path(rubric_cfg.path)), extras).with_direction(rubric_cfg.direction)
    check_template(rubric)
    tokenizer = load_tokenizer(model_cfg, paths.cache_dir)
    judge = SelfJudgeRewards(build_judge(rubric, tokenizer, judge_cfg))
    if judge_cfg.source == "external" or judge_cfg.panel:
        check_reachable(judge_cfg.external)  # a wrong URL fails here, not as a run of neutral rewards
    validity_pairs = pairs_to_check(judge_cfg, rubric)
    if judge_cfg.adapter:  # a tuned judge (hmx rubric tune-judge): a missing or wrong file fails here
        load_adapter(judge_cfg.adapter)
    drift_probes = load_probes(judge_cfg.drift_probes) if judge_cfg.drift_steps > 0 else []
    side_effects = probes_config(cfg)
    minimal_pairs = audit_pairs(audit_cfg, rubric, rubric_path(rubric_cfg.path))
    rubric_files = [str(rubric_path(name)) for name in [rubric_cfg.path, *rubric_cfg.extra]]
    minimal_source = audit_pair_source(audit_cfg, rubric_path(rubric_cfg.path)) if minimal_pairs else None
    train_dataset = load_prompts(data_cfg)
    shown = pick_prompts(data_cfg, rubric, int(cfg.get("before_after") or 0))  # before_after.md's prompts
    peft_config = lora_config(plain_dict(cfg, "peft"))
    start = plan_run(agree_run_dir(paths.runs_dir, cfg.run_name), cfg.run_name, cfg.get("resume"))
    start.check(cfg, option_classes())  # a resume's config changes: refused, applied or warned (hmx/resume_policy.py)
    run_dir = start.run_dir
    report_to = configure_wandb(logger_cfg, run_dir, run_dir.name)
    args = grpo_args(cfg, run_dir, report_to, judge.weights() + guard_weights(guards_cfg))
    check_generation(args, tokenizer, train_dataset["prompt"], judge.judge)
    if is_main_process() and (hint := check_cpu_threads()):
        print(hint, file=sys.stderr, flush=True)
    note = startup_note(model_preset(model_cfg.name_or_path), rubric.name, judge_preset(judge_cfg.mode))
    if is_main_process() and judge_cfg.source == "self" and note:  # a judge never measured on this model and rubric
        print(note, file=sys.stderr, flush=True)
    guards = guard_functions(guards_cfg, args.max_completion_length or 512)  # 512: TRL's default
    check_reward_weights(rubric, guards_cfg)
    model = load_model(model_cfg, paths.cache_dir)
    if judge_cfg.adapter:  # merged into the base weights: the policy LoRA goes on top, one copy of the weights
        model = merge_judge_adapter(model, judge_cfg.adapter)
    check_context(args, tokenizer, train_dataset["prompt"], judge.judge, model_context(model.config))
    judge.judge.check_model(model)  # probe mode: a head fitted on another model's shape fails here
    # the start-up check and the audit's step-0 pass: reused from rubrics/records/judge_checks.yaml when recorded
    # for exactly this judge (content hashes), else computed; either way listed in the run's judge_checks.yaml
    precision = "bf16" if args.bf16 else "fp16" if args.fp16 else "fp32"  # the trainer's: the audit runs inside it
    startup_key, audit_key = run_keys(
        judge_cfg, rubric_files, rubric_cfg.direction, model_cfg.name_or_path, minimal_source, precision
    )
    keys = [key for key in (startup_key, audit_key) if key is not None]
    records = CheckRecords(cast(torch.nn.Module, model), tokenizer, keys)
    validity = None
    if validity_pairs:  # before the run directory exists: a judge below judge.min_accuracy stops here
        build = lambda view: build_judge(view, tokenizer, judge_cfg)  # noqa: E731
        cast(torch.nn.Module, model).to(args.device)
        validity, bar = check_judge(
            judge_cfg, rubric, validity_pairs, build, model, args.device, model_cfg.name_or_path, tokenizer, records,
            startup_key,
        )  # fmt: skip
        judge.log_once(validity.metrics() | bar.metrics())

    # The lock, then the run directory: a new one, or the resumed one taken over.
    lock = take_run(start, cfg)
    stop = GracefulStop()
    # TRL 1.16 toggles checkpointing around each generation through transformers 5's renamed API (our key is
    # activation_checkpointing): up to three FutureWarnings a step, none of them the user's to act on
    warnings.filterwarnings("ignore", DEPRECATED_CHECKPOINTING, FutureWarning, r"transformers\.modeling_utils")
    metrics_file = MetricsFile(run_dir)
    try:
        trainer = GRPOTrainer(
            model=model,
            reward_funcs=list[Any]([*judge.reward_functions(), *guards]),
            args=args,
            train_dataset=train_dataset,
            processing_class=tokenizer,
            peft_config=peft_config,
            callbacks=[
                metrics_file,
                PickleFreeCheckpoints(),
                BeforeAfter(run_dir, tokenizer, shown),
                *callbacks,
            ],
        )
        judge.bind(cast(torch.nn.Module, trainer.model), trainer.accelerator.device)
        judge.judge.attach_vllm(trainer.vllm_generation if args.use_vllm else None)  # generate mode (a panel's too)
        if drift_probes:  # judge/drift/*: a monitor of the judge pass, logged through TRL's log_metric
            judges = drift_judges(rubric, tokenizer, judge_cfg, judge.judge)
            judge.monitors.append(JudgeDriftMonitor(judges, drift_probes, judge_cfg.drift_steps))
        # audit/*: the reward-hacking audit, a monitor of the same pass; its thresholds warn on rank 0
        audit = build_audit(
            audit_cfg, rubric, tokenizer, judge_cfg, lambda: judge.last, minimal_pairs, records, audit_key
        )
        judge.monitors.append(audit)
        trainer.add_callback(AuditAlarms(audit_cfg))
        if side_effects.steps:  # probes/*: the same hook, and on_train_end for the final adapter
            probes = SideEffectProbes(side_effects, tokenizer, run_dir)
            judge.monitors.append(probes)
            trainer.add_callback(probes)
        trainer.add_callback(stop)
        with stop.installed():  # to the end of the run: a SIGTERM during the final adapter write waits for it
            trainer.train(resume_from_checkpoint=str(start.checkpoint) if start.checkpoint else None)
            stop.ending = True
            stopped = stop.signal is not None and trainer.state.global_step < trainer.state.max_steps
            if not stopped:
                save_adapter(trainer, run_dir)  # atomic: adapter/ appears complete or not at all
                final = audit.final_pass(
                    cast(torch.nn.Module, trainer.model), trainer.accelerator.device, trainer.state.global_step
                )
                if final:  # its own row: metrics.jsonl, W&B and the alarms (callbacks' on_log)
                    trainer.control = trainer.callback_handler.on_log(args, trainer.state, trainer.control, final)
            if is_main_process():
                metrics_file.plot()  # once, with every row in (a stopped run's too)
    except BaseException:
        if is_main_process() and run_dir.exists():
            (run_dir / "FAILED").write_text(redact_text(traceback.format_exc()), encoding="utf-8")
        raise
    finally:
        if lock is not None:
            lock.release()
    if stopped:
        stop.exit(run_dir, trainer.state.global_step)
    if stop.signal is not None and is_main_process():
        print("hmx: the SIGTERM came as the run ended; its adapter was written in full", flush=True)
    if is_main_process():
        records.write(run_dir)  # judge_checks.yaml: the checks of this run, computed or reused, with their hashes
        metrics = run_dir / "metrics.jsonl"
        audit_lines = audit_summary(read_metrics(metrics), audit_cfg) if metrics.is_file() else []
        report(run_dir, report_to, [*audit_lines, *judge_lines(judge_cfg, validity), *before_after_lines(run_dir)])
    return run_dir


def report(run_dir: Path, report_to: list[str], summary: Sequence[str] = ()) -> None:
    """Tell the user where everything is, what the audit saw, what the judge was measured to be, and the
    answers before and after."""
    lines = [f"\nhmx: run finished → {run_dir}"]
    for name, what in [
        ("config.yaml", "resolved config"),
        ("adapter", "LoRA adapter (safetensors)"),
        ("metrics.jsonl", "metrics per logging step"),
        ("completions", "sampled completions with per-criterion scores (parquet)"),
        ("rewards.png", "reward curves: judge criteria, guards, audit"),
        ("before_after.md", "three held-out prompts answered before and after training (greedy)"),
        ("judge_checks.yaml", "the judge's checks (start-up, audit step 0): figures, content hashes, reused or not"),
    ]:
        if (run_dir / name).exists():
            lines.append(f"  {name:<15} {what}")
    if "wandb" in report_to and (run_dir / "wandb").is_dir():
        offline = sorted((run_dir / "wandb").glob("offline-run-*"))
        if offline:
            lines.append(f"  wandb           offline; upload with: wandb sync {offline[-1]}")
    lines.extend(summary)
    print("\n".join(lines), flush=True)


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
def main(cfg: DictConfig) -> None:
    with command_errors("train"):
        run(cfg)
    # a multi-rank launch's process group is torn down here, not by interpreter exit: left to exit, its gloo threads
    # can abort a rank ("terminate called without an active exception") after a run that finished
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        PartialState().destroy_process_group()


if __name__ == "__main__":  # accelerate launch -m hmx.train: Hydra's traceback redacted too
    sys.argv[1:] = renamed_overrides(sys.argv[1:])  # a deprecated judge key still overrides (one release)
    with redacted_output():
        main()
