"""One module per judge mode (rows of hmx.judge.registry.MODES)."""
