"""hmx/redaction.py: secrets and Bearer tokens never reach a print, a log record or a traceback."""

from __future__ import annotations

import logging
import sys

from hmx.redaction import REDACTED, protect_env, redact, redact_text, redacted_output

KEY = "sk-unit-0123456789-abcdef"


def test_a_protected_variables_value_and_any_bearer_token_are_redacted(monkeypatch):
    monkeypatch.setenv("HMX_UNIT_KEY", KEY)
    assert KEY in redact_text(f"key={KEY}")  # not protected yet: an ordinary value
    protect_env("HMX_UNIT_KEY")
    assert redact_text(f"key={KEY}") == f"key={REDACTED}"
    assert redact_text('{"auth": "Bearer unknown-token-123"}') == '{"auth": "Bearer ***"}'  # a key hmx never saw
    assert redact({"a": [f"x{KEY}", (KEY,)], "n": 1.5}) == {"a": [f"x{REDACTED}", (REDACTED,)], "n": 1.5}
    monkeypatch.setenv("HMX_UNIT_KEY", "short")  # too short to search for: ordinary words stay
    assert redact_text("a short word") == "a short word"


def test_prints_log_records_and_logged_tracebacks_are_redacted(monkeypatch, capsys, caplog):
    monkeypatch.setenv("HMX_UNIT_KEY", KEY)
    protect_env("HMX_UNIT_KEY")
    log = logging.getLogger("hmx.unit")
    with redacted_output():
        print(f"out {KEY}")
        print(f"err {KEY}", file=sys.stderr)
        log.warning("formatted %s", KEY)
        try:
            raise RuntimeError(f"server said {KEY}")
        except RuntimeError:
            log.exception("failed")
    captured = capsys.readouterr()
    assert captured.out == f"out {REDACTED}\n" and captured.err == f"err {REDACTED}\n"
    assert KEY not in caplog.text and f"formatted {REDACTED}" in caplog.text
    assert f"RuntimeError: server said {REDACTED}" in caplog.text
    assert sys.stdout is not None and type(sys.stdout).__name__ != "RedactingStream"  # restored after
