"""Reading a user's text file: one reader, whose encoding error names the file, the line and the byte.

Every text file a user hands hmx (rubrics, prompt files, labelled pairs, drift probes) is read with
:func:`read_text`. A file that is not UTF-8 fails as ``FILE:LINE: not UTF-8 text (byte b'\\xe9' at
column 16); save the file as UTF-8``, raised as the caller's ``InputError`` class with the caller's
prefix (``config field 'data.path': ``), never as a ``UnicodeDecodeError`` traceback.
"""

from __future__ import annotations

from pathlib import Path

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
