"""lm-evaluation-harness task definitions that read the shared data by path (or the Hub when absent)."""

from pathlib import Path

TASKS_DIR = Path(__file__).resolve().parent
