"""Where a command writes, checked before any work: a bad ``--out`` fails in a second, not after a fit or a merge.

``check_destination`` is the one check of an output destination (``hmx rubric fit-probe --out``,
``hmx merge --out``, ``hmx init DIR``, ``hmx compare --out``). It refuses, as an ``InputError`` naming
the flag and the path:

- a destination of the wrong kind: a folder where a file is written, a regular file where a folder
  is written (``--force`` replaces a file by a file and a folder by a folder, never one by the other);
- an existing file, or a non-empty folder, without ``force``;
- a path under a regular file (``a_file/out``);
- a place hmx cannot write: a temporary file is created and removed in the folder that will hold
  the output (the nearest folder that exists), and in an existing output folder.

Nothing is created: the folders on the way are made by the command when it writes.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Literal

from hmx.errors import InputError


def check_destination(
    path: str | Path, flag: str, kind: Literal["file", "dir"], force: bool = False, allow_nonempty: bool = False
) -> Path:
    """``path`` as a place to write a ``kind`` ("file" or "dir"); InputError naming ``flag`` when it is not one.

    ``allow_nonempty``: an existing folder may hold files (``hmx init`` adds only new ones).
    """
    target = Path(path).expanduser()
    where = f"{flag} {target}" if flag else str(target)
    if target.exists():
        if kind == "file" and target.is_dir():
            forced = " (--force replaces a file, never a folder)" if force else ""
            raise InputError(f"{where}: is a directory; name the file to write{forced}")
        if kind == "dir" and not target.is_dir():
            forced = " (--force replaces a folder, never a file)" if force else ""
            raise InputError(f"{where}: exists and is not a directory; choose another{forced}")
        if kind == "file" and not force:
            raise InputError(f"{where}: the file exists; pass --force to replace it")
        if kind == "dir" and not force and not allow_nonempty and any(target.iterdir()):
            raise InputError(f"{where}: exists and is not empty; choose another or pass --force to replace it")
    folder = _nearest_existing(target.parent)
    if not folder.is_dir():
        raise InputError(f"{where}: {folder} is a regular file, not a folder; choose another place")
    _check_writable(folder, where)
    if kind == "dir" and target.is_dir():
        _check_writable(target, where)
    return target


def _nearest_existing(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists (a regular file on the way is returned as is)."""
    current = path.absolute()
    while not current.exists() and current != current.parent:
        current = current.parent
    return current


def _check_writable(folder: Path, where: str) -> None:
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise InputError(f"{where}: cannot write in {folder} ({reason}); choose another place") from None
    if not os.access(folder, os.W_OK | os.X_OK):  # a temporary file may be allowed where a rename is not
        raise InputError(f"{where}: cannot write in {folder} (permission denied); choose another place")
