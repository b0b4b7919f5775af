"""The evaluation suite (``hmx eval``) and the paper-style comparison (``hmx compare``)."""
