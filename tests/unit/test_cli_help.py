"""`hmx --version` and `hmx COMMAND --help`: every command says what it reads and writes."""

from __future__ import annotations

import sys
from importlib.metadata import version

import pytest

from hmx.cli import COMMANDS, FILES, main


def test_version_is_the_installed_distributions(capsys):
    main(["--version"])
    assert capsys.readouterr().out == f"hmx {version('hmx')}\n"


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help_opens_with_what_the_command_reads_and_writes(command, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", list(sys.argv))  # Hydra commands read sys.argv
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    reads, writes = out.index("reads:"), out.index("writes:")
    own_help = "Configuration groups" if COMMANDS[command][2] else f"usage: hmx {command}"
    assert reads < writes < out.index(own_help)  # the block, then the command's own help
    assert all(FILES[command]) and len(out[reads:writes].split()) > 3 and len(out[writes:].split()) > 3
