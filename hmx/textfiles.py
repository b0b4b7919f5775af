"""Reading a user's text file: one reader, whose encoding error names the file, the line and the byte.

Every text file a user hands hmx (rubrics, prompt files, labelled pairs, drift probes, per-item
evaluation files) is read with :func:`read_text`, and a JSON-lines one with :func:`json_lines`. A
file that is not UTF-8 fails as ``FILE:LINE: not UTF-8 text (byte b'\\xe9' at column 16); save the
file as UTF-8``, raised as the caller's ``InputError`` class with the caller's
prefix (``config field 'data.path': ``), never as a ``UnicodeDecodeError`` traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hmx.errors import InputError


def read_text(path: str | Path, prefix: str = "", error: type[InputError] = InputError) -> str:
    """The UTF-8 text of ``path``; ``error(prefix + "FILE:LINE: not UTF-8 text ...")`` when it is not UTF-8."""
    file = Path(path)
    try:
        data = file.read_bytes()
    except OSError as err:
        raise error(f"{prefix}{file}: cannot read ({err.strerror or type(err).__name__})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line_start = data.rfind(b"\n", 0, err.start) + 1
        line, column = data.count(b"\n", 0, err.start) + 1, err.start - line_start + 1
        byte = data[err.start : err.start + 1]
        raise error(
            f"{prefix}{file}:{line}: not UTF-8 text (byte {byte!r} at column {column}); save the file as UTF-8"
        ) from None


def json_lines(path: str | Path, prefix: str = "", error: type[InputError] = InputError) -> list[tuple[int, Any]]:
    """The parsed non-blank lines of a JSON-lines file as ``(line number, value)``, numbered from 1.

    A line that is not JSON fails as ``error(prefix + "FILE:LINE: not valid JSON: ...")``; what each value
    must be (an object, which fields) is the caller's to check, naming the same ``FILE:LINE``.
    """
    rows = []
    for number, line in enumerate(read_text(path, prefix, error).splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append((number, json.loads(line)))
        except ValueError as err:
            raise error(f"{prefix}{path}:{number}: not valid JSON: {err}") from None
    return rows
