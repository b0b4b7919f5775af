"""Run directories for a new or a resumed run, checkpoints, and pickle-free saved outputs.

``resume`` (top-level config key): ``null``/``false`` starts a new run in a new directory;
``true`` continues ``paths.runs_dir/run_name`` from its latest complete checkpoint (a new run
when that directory does not exist yet, so a requeued job can always pass ``resume=true``);
a PATH names a run directory (its latest checkpoint) or one ``checkpoint-N`` directory in it.
A checkpoint is complete once the HF Trainer has written its ``trainer_state.json`` (the last
file it writes). Everything is checked before anything is written, the config changes of a
resume included (hmx/resume_policy.py), and one job at a time holds the run (hmx/runlock.py).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from accelerate import PartialState
from accelerate.utils import broadcast_object_list
from omegaconf import DictConfig
from transformers import TrainerCallback

from hmx.config import ConfigError
from hmx.resume_policy import OptionClasses, config_changes, input_changes
from hmx.run_inputs import INPUTS_FILE, input_hashes, read_inputs, write_inputs
from hmx.runlock import RunLock
from hmx.tracking import write_config, write_overrides

ADAPTER_PARTIAL = ".adapter.partial"  # the final adapter while it is written (renamed to adapter/ when complete)
PICKLE_FILES = ("training_args.bin",)  # the HF Trainer's pickled TrainingArguments: config.yaml is the record


@dataclass
class RunStart:
    """Where a run writes and the checkpoint it continues from (None: from step 0)."""

    run_dir: Path
    checkpoint: Path | None = None
    resuming: bool = False  # the run directory exists and is taken over
    follow_latest: bool = field(default=False, compare=False)  # resume=true: the latest checkpoint once locked
    changes: dict[str, list[str]] = field(default_factory=dict, compare=False)
    inputs: dict[str, dict[str, str]] = field(default_factory=dict, compare=False)  # content hashes, inputs.json
    classes: OptionClasses = field(default_factory=dict, compare=False)  # the judge mode options' (check's)

    def check(self, cfg: DictConfig, classes: OptionClasses | None = None) -> None:
        """The resumed run's config against its ``config.yaml`` and its input files against ``inputs.json``
        (refused changes raise; ``classes``: the judge mode options', hmx.judge.registry.option_classes); writes
        nothing."""
        self.inputs = input_hashes(cfg)
        self.classes = self.classes if classes is None else classes  # kept for the re-check under the lock
        if self.resuming:
            self.changes = config_changes(self.run_dir / "config.yaml", cfg, self.classes)
            files = input_changes(read_inputs(self.run_dir), self.inputs, self.run_dir / INPUTS_FILE)
            for kind, fields in files.items():
                self.changes[kind] = self.changes.get(kind, []) + fields

    def prepare(self, cfg: DictConfig) -> RunLock:
        """Lock, then create (new run) or take over (resume) the run directory; rank 0 only.

        Returns the held lock: release it when the run ends.
        """
        lock = RunLock(self.run_dir)
        if not self.resuming:
            try:
                self.run_dir.mkdir(parents=True)
            except FileExistsError:
                raise ConfigError(
                    f"config field 'run_name': run directory already exists: {self.run_dir} "
                    "(resume=true continues it from its latest checkpoint)"
                ) from None
            lock.acquire()
        else:
            lock.acquire()
            try:  # what another job may have changed while it held the lock
                self._recheck(cfg)
            except BaseException:
                lock.release()
                raise
            (self.run_dir / "FAILED").unlink(missing_ok=True)
            for saved in self.run_dir.glob("checkpoint-*"):  # a kill can land between a save and its clean-up
                remove_pickles(saved)
            step = checkpoint_step(self.checkpoint) if self.checkpoint else 0
            truncate_metrics(self.run_dir / "metrics.jsonl", step)
            where = f"from {self.checkpoint.name}" if self.checkpoint else "from step 0 (no complete checkpoint)"
            print(f"hmx: resuming {self.run_dir} {where}", flush=True)
            self._report_changes()
        write_config(cfg, self.run_dir)
        write_overrides(self.run_dir)
        write_inputs(self.run_dir, self.inputs)
        return lock

    def _recheck(self, cfg: DictConfig) -> None:
        if (self.run_dir / "adapter").exists():
            raise ConfigError(
                f"config field 'resume': {self.run_dir} has finished (adapter/ is there); nothing to resume"
            )
        if self.follow_latest:
            self.checkpoint = latest_checkpoint(self.run_dir)
        self.check(cfg)

    def _report_changes(self) -> None:
        if self.changes.get("applied"):
            print(f"hmx: resuming with config changes at {', '.join(self.changes['applied'])} (applied)", flush=True)
        if self.changes.get("warned"):
            print(
                f"hmx: warning: resuming with config changes at {', '.join(self.changes['warned'])}: applied and "
                "recorded in config.yaml, but the run no longer matches an uninterrupted one",
                flush=True,
            )


def take_run(start: RunStart, cfg: DictConfig) -> RunLock | None:
    """Rank 0 locks and prepares the run directory (returns the lock; None on other ranks).

    A refusal on rank 0 (another job holds the run, ...) is raised on every rank, so that no
    rank waits forever in the trainer's first collective for a rank 0 that has left.
    """
    state = PartialState()
    lock, refusal = None, [""]
    failure: BaseException | None = None
    if state.is_main_process:
        try:
            lock = start.prepare(cfg)
        except BaseException as err:
            failure, refusal = err, [str(err) or type(err).__name__]
    if state.num_processes > 1:
        broadcast_object_list(refusal, from_process=0)
    if failure is not None:
        raise failure
    if refusal[0]:
        raise ConfigError(f"rank 0 could not take the run directory: {refusal[0]}")
    return lock


def checkpoint_step(path: Path) -> int:
    return int(path.name.rsplit("-", 1)[1])


def is_complete(path: Path) -> bool:
    """A ``checkpoint-N`` directory whose ``trainer_state.json`` (written last) is readable."""
    name = path.name
    if not (path.is_dir() and name.startswith("checkpoint-") and name.removeprefix("checkpoint-").isdigit()):
        return False
    try:
        json.loads((path / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return True


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The complete checkpoint with the highest step in ``run_dir`` (None when there is none)."""
    complete = [p for p in run_dir.glob("checkpoint-*") if is_complete(p)]
    return max(complete, key=checkpoint_step) if complete else None


def check_writable(runs_dir: Path) -> None:
    """Fail early, naming ``paths.runs_dir``, when run directories cannot be created under it."""
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=runs_dir):
            pass
    except OSError as err:
        raise ConfigError(
            f"config field 'paths.runs_dir': cannot write run directories under {runs_dir}: {err}"
        ) from None


def plan_run(run_dir: Path, run_name: str | None, resume: Any) -> RunStart:
    """The run directory (``run_dir`` for a new run) and checkpoint for ``resume``; nothing is written."""
    runs_dir = run_dir.parent
    if resume is None or resume is False:
        check_writable(runs_dir)
        return RunStart(run_dir)
    if resume is True:
        if not run_name:
            raise ConfigError(
                "config field 'resume': resume=true needs run_name=<the run to continue> "
                "(or resume=PATH to a run directory or checkpoint)"
            )
        if not run_dir.exists():
            print(f"hmx: nothing to resume at {run_dir}; starting a new run there", flush=True)
            check_writable(runs_dir)
            return RunStart(run_dir)
        start = _take_over(run_dir, latest_checkpoint(run_dir), required=False)
        start.follow_latest = True
        return start
    path = Path(str(resume)).expanduser().resolve()
    if path.name.startswith("checkpoint-"):
        if not is_complete(path):
            raise ConfigError(f"config field 'resume': {path} is not a complete checkpoint (no trainer_state.json)")
        return _take_over(_same_run(path.parent, run_name, resume), path, required=True)
    if not path.is_dir():
        raise ConfigError(f"config field 'resume': no run directory or checkpoint at {path}")
    return _take_over(_same_run(path, run_name, resume), latest_checkpoint(path), required=True)


def _same_run(run_dir: Path, run_name: str | None, resume: Any) -> Path:
    """A resume continues its own run in place: a ``run_name`` naming another run is refused (A is never renamed)."""
    if run_name is not None and str(run_name) != run_dir.name:
        raise ConfigError(
            f"config field 'run_name': run_name={run_name} but resume={resume} continues run {run_dir.name!r} "
            f"({run_dir}) in place; a resume cannot rename a run. Drop run_name (or pass run_name={run_dir.name}) "
            f"to continue it; to start a new run {run_name!r} from its checkpoint, copy the run directory to "
            f"{run_dir.parent / str(run_name)} and resume that copy"
        )
    return run_dir


def _take_over(run_dir: Path, checkpoint: Path | None, required: bool) -> RunStart:
    if (run_dir / "adapter").exists():
        raise ConfigError(f"config field 'resume': {run_dir} has finished (adapter/ is there); nothing to resume")
    if checkpoint is None and required:
        raise ConfigError(f"config field 'resume': no complete checkpoint in {run_dir}")
    if not os.access(run_dir, os.W_OK):
        raise ConfigError(f"config field 'resume': cannot write to {run_dir}")
    return RunStart(run_dir, checkpoint, resuming=True)


def truncate_metrics(path: Path, step: int) -> None:
    """Drop the records logged after ``step``: the resumed run logs those steps again."""
    if not path.is_file():
        return
    kept = [line for line in path.read_text(encoding="utf-8").splitlines() if _step(line) <= step]
    path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")


def _step(line: str) -> float:
    try:
        return float(json.loads(line).get("step", float("inf")))
    except ValueError:  # a line cut short by the kill
        return float("inf")


def resume_command(run_dir: Path) -> str:
    """The ``hmx train`` command that continues ``run_dir``: its recorded overrides, runs_dir and name."""
    overrides: list[str] = []
    recorded = run_dir / "overrides.yaml"
    if recorded.is_file():
        try:
            loaded = yaml.safe_load(recorded.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            loaded = None
        if isinstance(loaded, list):
            own = ("run_name=", "resume=", "paths.runs_dir=")
            overrides = [str(o) for o in loaded if not str(o).lstrip("+~").startswith(own)]
    words = ["hmx", "train", *overrides, f"paths.runs_dir={run_dir.parent}", f"run_name={run_dir.name}", "resume=true"]
    return " ".join(shlex.quote(word) for word in words)


def save_adapter(trainer: Any, run_dir: Path) -> Path:
    """The final adapter, written atomically: into ``run_dir/.adapter.partial``, renamed to ``adapter/`` when
    complete (rank 0). A kill during the write leaves no ``adapter/``, so the run stays resumable."""
    partial, adapter = run_dir / ADAPTER_PARTIAL, run_dir / "adapter"
    if trainer.is_world_process_zero():
        shutil.rmtree(partial, ignore_errors=True)  # left by a job killed during its final write
    trainer.save_model(str(partial))
    if trainer.is_world_process_zero():
        remove_pickles(partial)
        partial.rename(adapter)
    return adapter


def remove_pickles(directory: Path) -> None:
    """Delete the Trainer's pickled files from a saved directory (nothing hmx or the Trainer reads back)."""
    for name in PICKLE_FILES:
        (directory / name).unlink(missing_ok=True)


def generation_aligned(args: Any) -> bool:
    """Whether every checkpoint falls on a generation boundary.

    TRL generates once per ``steps_per_generation * num_iterations`` micro-steps and keeps that
    batch in memory; a checkpoint inside such a block resumes by generating a new batch, so the
    resumed run no longer matches an uninterrupted one exactly.
    """
    every = (args.steps_per_generation or 1) * (args.num_iterations or 1)
    return (args.save_steps * args.gradient_accumulation_steps) % every == 0


class PickleFreeCheckpoints(TrainerCallback):
    """Removes ``training_args.bin`` from each checkpoint as it is saved (rank 0); warns on unaligned saves."""

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero and args.save_strategy == "steps" and not generation_aligned(args):
            print(
                "hmx: warning: trainer.save_steps x gradient_accumulation_steps is not a multiple of "
                "steps_per_generation x num_iterations: a run resumed from these checkpoints regenerates "
                "the interrupted batch and will not match an uninterrupted run exactly",
                flush=True,
            )

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            remove_pickles(Path(args.output_dir) / f"checkpoint-{state.global_step}")
