"""Prompt datasets → conversational prompts for TRL.

A local ``.jsonl``/``.json``/``.csv``/``.parquet`` file, a ``.yaml`` list of rows (which, unlike
JSON lines, can open with a comment: ``hmx init`` writes one), or a Hugging Face dataset id; rows are
filtered on ``split_column`` when the data has one (the shipped prompts do), else the id's
split of that name is loaded.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from datasets import Dataset, load_dataset

from hmx.config import ConfigError, DataConfig
from hmx.textfiles import read_text

LOCAL_FORMATS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
YAML_FORMATS = {".yaml", ".yml"}


def _load_yaml_rows(path: Path, cfg: DataConfig) -> Dataset:
    """A YAML file holding a list of rows (mappings of column to value)."""
    try:
        rows = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"config field 'data.path': {cfg.path}: not valid YAML: {err}") from None
    if not isinstance(rows, list) or not rows:
        raise ConfigError(f"config field 'data.path': {cfg.path}: expected a non-empty YAML list of rows")
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ConfigError(f"config field 'data.path': {cfg.path}: row {index}: expected a mapping, got {row!r}")
    try:
        return Dataset.from_list(rows)
    except Exception as err:  # pyarrow: a column whose rows disagree on type
        raise ConfigError(f"config field 'data.path': {cfg.path}: rows do not form a table: {err}") from None


def _load_table(cfg: DataConfig, split: str) -> Dataset:
    path = Path(cfg.path).expanduser()
    if path.suffix in LOCAL_FORMATS or path.suffix in YAML_FORMATS:
        if not path.is_file():
            raise ConfigError(f"config field 'data.path': file not found: {cfg.path}")
        if path.suffix in YAML_FORMATS or LOCAL_FORMATS[path.suffix] in ("json", "csv"):
            check_utf8(path)
        if path.suffix in YAML_FORMATS:
            return _load_yaml_rows(path, cfg)
        try:
            return load_dataset(LOCAL_FORMATS[path.suffix], data_files=str(path), split="train")
        except Exception as err:  # datasets raises several types for unreadable files
            raise ConfigError(f"config field 'data.path': cannot read {cfg.path}: {err}") from None
    if not cfg.path:
        raise ConfigError("config field 'data.path': empty; give a local file or a Hugging Face dataset id")
    try:
        return load_dataset(cfg.path, split=split)
    except Exception as err:
        raise ConfigError(
            f"config field 'data.path': cannot load dataset {cfg.path!r} split {split!r}: {err}"
        ) from None


def check_utf8(path: Path) -> None:
    """A text file must be UTF-8 (pyarrow reads other bytes and fails later, mid-pipeline)."""
    read_text(path, "config field 'data.path': ", ConfigError)


def load_prompts(cfg: DataConfig, split: str | None = None) -> Dataset:
    """The ``split`` (default: the train split) as a dataset with a conversational ``prompt`` column."""
    split = split or cfg.train_split
    table = _load_table(cfg, split)
    if cfg.prompt_column not in table.column_names:
        raise ConfigError(
            f"config field 'data.prompt_column': column {cfg.prompt_column!r} not found in {cfg.path} "
            f"(columns: {', '.join(table.column_names)})"
        )
    if cfg.split_column and cfg.split_column in table.column_names:
        table = table.filter(lambda row: row[cfg.split_column] == split)
    if cfg.max_samples is not None:
        table = table.select(range(min(cfg.max_samples, len(table))))
    if len(table) == 0:
        raise ConfigError(f"config field 'data.path': no prompts in {cfg.path} for split {split!r}")
    system = cfg.system_prompt
    column = cfg.prompt_column

    def to_messages(row: dict) -> dict:
        text = row[column]
        if not isinstance(text, str) or not text.strip():
            raise ConfigError(f"config field 'data.prompt_column': empty or non-text prompt in {cfg.path}: {text!r}")
        messages = [{"role": "system", "content": system}] if system else []
        return {"prompt": messages + [{"role": "user", "content": text.strip()}]}

    keep = [name for name in table.column_names if name in ("id", "category")]
    return table.map(to_messages, remove_columns=[n for n in table.column_names if n not in keep])
