"""One job trains a run directory at a time: a lock file held by rank 0 for the whole run.

``run_dir/.hmx.lock`` is locked with ``fcntl.flock`` and names its holder (host, pid, start
time). The kernel drops the lock when the holder dies (SIGKILL, OOM, a lost node), so a lock
left by a killed job is stale and the next job takes it over, saying so. A second job started
while the first is alive (two ``resume=true`` requeues of one SLURM job) is refused with a
message that names the holder, before it writes anything. On network file systems the lock
works where ``flock`` is shared between nodes (NFSv4; Lustre mounted with ``-o flock``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from pathlib import Path

from hmx.config import ConfigError

LOCK_NAME = ".hmx.lock"


class RunLock:
    """The run directory's lock; ``acquire`` refuses with ConfigError while another process holds it."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        self.path = run_dir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        while self._fd is None:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = describe(read_holder(self.path))
                os.close(fd)
                raise ConfigError(
                    f"{self.run_dir}: this run is being trained by another job ({holder}); wait for it to end "
                    f"or stop it (a killed job releases the lock by itself, {self.path.name})"
                ) from None
            if not _same_file(fd, self.path):  # the holder released and removed it between open and flock
                os.close(fd)
                continue
            stale = read_holder(self.path)
            if stale:
                print(f"hmx: taking over the lock of a job that is gone ({describe(stale)})", flush=True)
            record = {"host": socket.gethostname(), "pid": os.getpid(), "since": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
            os.ftruncate(fd, 0)
            os.write(fd, (json.dumps(record) + "\n").encode())
            self._fd = fd

    def release(self) -> None:
        """Remove the lock file, then unlock (a waiting ``acquire`` retries on the new file)."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()
        os.close(self._fd)  # closing the descriptor drops the flock
        self._fd = None


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.fstat(fd).st_ino == path.stat().st_ino
    except OSError:
        return False


def read_holder(path: Path) -> dict[str, object]:
    try:
        holder = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


def describe(holder: dict[str, object]) -> str:
    if not holder:
        return "holder unknown"
    return f"pid {holder.get('pid')} on host {holder.get('host')}, since {holder.get('since')}"
