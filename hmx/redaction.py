"""Secrets are never printed or written: one filter over everything hmx prints, logs or writes.

A secret is the value of an environment variable that holds one: W&B's and the Hub's tokens
(:data:`SECRET_ENV`) and the variable ``judge.external.api_key_env`` names (registered with
:func:`protect_env` when the judge reads it). Whatever carries it (a server's reply that echoes the
``Authorization`` header, an exception message, a config value), it is replaced by ``***``:

- :func:`redacted_output` (entered by every command, :func:`hmx.errors.command_errors`) puts a
  redacting wrapper over ``sys.stdout`` and ``sys.stderr`` (prints, tqdm, tracebacks) and installs a
  log-record factory, so every log record is redacted before any handler sees it;
- :func:`redact` / :func:`redact_text` are for what hmx writes to files (``config.yaml``,
  ``overrides.yaml``, ``metrics.jsonl``, the ``FAILED`` traceback, eval results).

``Bearer <token>`` is redacted whatever the token, so a header echoed with a key hmx does not know
(one the server holds) is not shown either. Values shorter than :data:`MIN_SECRET_CHARS` are not
searched for (they would blank ordinary words).
"""

from __future__ import annotations

import logging
import os
import re
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

SECRET_ENV = ("WANDB_API_KEY", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
REDACTED = "***"
MIN_SECRET_CHARS = 8
BEARER = re.compile(r"(?i)\b(bearer\s+)(?!\*\*\*)[^\s\"',;}\]\\]+")

_protected: set[str] = set(SECRET_ENV)


def protect_env(name: str) -> None:
    """Treat the value of environment variable ``name`` as a secret from now on."""
    _protected.add(name)


def secret_values() -> list[str]:
    """The secrets now in the environment, longest first (a key that contains another is replaced whole)."""
    values = {os.environ.get(name, "") for name in _protected}
    return sorted((v for v in values if len(v) >= MIN_SECRET_CHARS), key=len, reverse=True)


def redact_text(text: str) -> str:
    """``text`` with every secret and every ``Bearer`` token replaced by ``***``."""
    for secret in secret_values():
        text = text.replace(secret, REDACTED)
    return BEARER.sub(rf"\g<1>{REDACTED}", text) if "earer" in text or "EARER" in text else text


def redact(value: Any) -> Any:
    """:func:`redact_text` over every string of a value (dicts, lists and tuples recursively)."""
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact(v) for v in value)
    if isinstance(value, str):
        return redact_text(value)
    return value


class RedactingStream:
    """A text stream whose writes are redacted; everything else is the wrapped stream's."""

    def __init__(self, stream: TextIO):
        self.stream = stream

    def write(self, text: str) -> int:
        self.stream.write(redact_text(text) if isinstance(text, str) else text)
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:  # flush, fileno, isatty, encoding, buffer, ...
        return getattr(self.stream, name)


def _redacted_record_factory(factory: Any) -> Any:
    def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        if not secret_values() and "earer" not in str(record.msg):
            return record
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: logging reports it as it would have
            return record
        record.msg, record.args = redact_text(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact_text(logging.Formatter().formatException(record.exc_info))
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        return record

    make.hmx_redacting = True  # type: ignore[attr-defined]
    return make


def install_log_redaction() -> None:
    """Every log record, from any library, is redacted when it is made (once per process)."""
    factory = logging.getLogRecordFactory()
    if not getattr(factory, "hmx_redacting", False):
        logging.setLogRecordFactory(_redacted_record_factory(factory))


def _redacting_excepthook(hook: Any) -> Any:
    def show(kind: type[BaseException], error: BaseException, trace: Any) -> None:
        text = "".join(traceback.format_exception(kind, error, trace))
        sys.stderr.write(redact_text(text)) if secret_values() or "earer" in text else hook(kind, error, trace)

    show.hmx_redacting = True  # type: ignore[attr-defined]
    return show


@contextmanager
def redacted_output() -> Iterator[None]:
    """Redacting ``sys.stdout``/``sys.stderr`` and log records for the body (nested uses wrap once).

    The log-record factory and ``sys.excepthook`` (a traceback that ends the process) stay redacting
    for the rest of the process.
    """
    install_log_redaction()
    if not getattr(sys.excepthook, "hmx_redacting", False):
        sys.excepthook = _redacting_excepthook(sys.excepthook)
    saved = sys.stdout, sys.stderr
    if not isinstance(sys.stdout, RedactingStream):
        sys.stdout = RedactingStream(sys.stdout)  # type: ignore[assignment]
    if not isinstance(sys.stderr, RedactingStream):
        sys.stderr = RedactingStream(sys.stderr)  # type: ignore[assignment]
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved
