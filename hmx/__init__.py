"""hmx: rubric-based self-rewarding GRPO for expressing feelings, intentions and self-awareness."""

__version__ = "0.1.0"
