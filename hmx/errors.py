"""One failure path for every ``hmx`` command.

An expected failure (config, rubric, data, run directory, weights) is an ``InputError`` whose
message names the file or config field and says what to do; ``command_errors`` turns it into
``hmx <command>: error: <message>`` on stderr and exit code 2, with no traceback. Anything
else is a bug and keeps its traceback. Inside it, everything printed or logged is redacted
(:func:`hmx.redaction.redacted_output`): no secret reaches the terminal, whatever carries it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from hmx.redaction import redact_text, redacted_output

EXIT_INPUT = 2  # the exit code of every expected failure (argparse's for bad arguments too)


class InputError(ValueError):
    """Input the user can fix; the message names the file or field and what to do."""


@contextmanager
def command_errors(command: str) -> Iterator[None]:
    """Run a command body, its output redacted; an ``InputError`` ends it with one clean line on stderr, exit 2."""
    with redacted_output():
        try:
            yield
        except InputError as err:
            print_error(command, err)
            sys.exit(EXIT_INPUT)


def print_error(command: str, err: InputError) -> None:
    """The one error line (also used alone by commands that report several errors, like ``rubric lint``)."""
    print(redact_text(f"hmx {command}: error: {err}"), file=sys.stderr, flush=True)
