"""SIGTERM (a scheduler's pre-emption notice, ``scancel``, ``kill``) ends a run cleanly and resumably.

The handler only records the signal. At the end of the optimizer step in progress the callback
asks the Trainer for a checkpoint and a stop; hmx then writes no adapter (the run has not
finished) and no ``FAILED`` (nothing went wrong), says where it stopped and how to resume, and
exits with 143 (128 + SIGTERM). The handler covers the run's end too: a SIGTERM while the final
adapter is written lets the write finish (the adapter is written atomically, hmx/checkpoints.py), and
the run ends as finished. A second SIGTERM ends the process at once. Every rank of a multi-process run
must receive the signal within the same step (SLURM signals every task).
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from transformers import TrainerCallback

from hmx.checkpoints import resume_command

EXIT_TERMINATED = 128 + signal.SIGTERM


class GracefulStop(TrainerCallback):
    """Turns a SIGTERM into a checkpoint and a stop at the end of the current step."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self.ending = False  # training is over: the final adapter is being written

    @contextmanager
    def installed(self) -> Iterator[None]:
        previous = signal.signal(signal.SIGTERM, self._handle)
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, previous)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.signal = signum
        signal.signal(signum, signal.SIG_DFL)  # a second one ends the process at once
        if self.ending:
            print("hmx: SIGTERM received as the run ends: finishing the final adapter, then stopping", flush=True)
        else:
            print("hmx: SIGTERM received: saving a checkpoint at the end of this step, then stopping", flush=True)

    def on_step_end(self, args, state, control, **kwargs):
        if self.signal is not None:
            control.should_save = True
            control.should_training_stop = True

    def exit(self, run_dir: Path, step: int) -> None:
        """Say where the run stopped and how to continue it; exit 143."""
        print(
            f"hmx: stopped by SIGTERM after step {step}: {run_dir / f'checkpoint-{step}'} is saved and the run can be "
            f"resumed with\n  {resume_command(run_dir)}",
            file=sys.stderr,
            flush=True,
        )
        sys.exit(EXIT_TERMINATED)
