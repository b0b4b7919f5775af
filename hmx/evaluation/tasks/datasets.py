"""Datasets for hmx's lm-eval tasks: the shared benchmark files by path, else the Hub datasets.

Each function is an lm-eval ``custom_dataset``: lm-eval calls it with the task's metadata as
keyword arguments, so ``data_dir`` comes from ``TaskManager(metadata={"data_dir": ...})`` or
``lm_eval --metadata '{"data_dir": "..."}'``. Without it, the ``HMX_DATA_DIR`` environment
variable names the folder; in a checkout only, ``../shared/data`` next to it is used when present;
else the Hub dataset that lm-eval's own task reads. Rows are shaped like the Hub rows, so
lm-eval's own ``process_docs``/``process_results`` apply unchanged.
"""

from __future__ import annotations

import json
import os
from itertools import zip_longest
from pathlib import Path
from typing import Any

from datasets import Dataset, DatasetDict, load_dataset

from hmx.errors import InputError
from hmx.resources import SHARED_DATA_DIR

BBQ_BLOCK = 4
BBQ_CATEGORIES = ("Age", "Disability_status", "Nationality", "Physical_appearance", "Religion", "Sexual_orientation")


class DataFileError(InputError):
    """A benchmark file that is missing or malformed; the message names the file and field."""


DATA_DIR_ENV = "HMX_DATA_DIR"


def data_source(data_dir: str | None) -> tuple[Path | None, str]:
    """The local data folder (None: the Hub) and where it came from, in words.

    In order: the config field ``data_dir``, the ``HMX_DATA_DIR`` environment variable,
    ``../shared/data`` beside a checkout (never for an installed hmx), the Hub.
    """
    for value, origin in ((data_dir, "config field 'data_dir'"), (os.environ.get(DATA_DIR_ENV), DATA_DIR_ENV)):
        if value:
            root = Path(value).expanduser()
            if not root.is_dir():
                raise DataFileError(f"{origin}: not a directory: {value}")
            return root, f"{root} (from {origin})"
    if SHARED_DATA_DIR is not None and SHARED_DATA_DIR.is_dir():
        return SHARED_DATA_DIR, f"{SHARED_DATA_DIR} (the checkout's ../shared/data)"
    return None, f"the Hugging Face Hub (neither data_dir nor {DATA_DIR_ENV} is set)"


def data_root(data_dir: str | None) -> Path | None:
    """The local data folder, or None to use the Hub (see ``data_source``)."""
    return data_source(data_dir)[0]


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise DataFileError(f"{path}: file not found (set data_dir to the folder holding the benchmark files)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataFileError(f"{path}: not valid JSON: {err}") from None


def _targets(path: Path, index: int, row: dict, field: str) -> dict[str, list]:
    targets = row.get(field)
    if not isinstance(targets, dict) or not targets:
        raise DataFileError(f"{path}: row {index}: field '{field}' must be a non-empty {{answer: 0|1}} object")
    return {"choices": list(targets), "labels": [int(v) for v in targets.values()]}


def truthfulqa_mc(data_dir: str | None = None, **_: Any) -> DatasetDict:
    """TruthfulQA multiple choice (``truthfulqa/mc_task.json``) as the Hub's ``validation`` split."""
    root = data_root(data_dir)
    if root is None:
        return load_dataset("truthfulqa/truthful_qa", "multiple_choice")
    path = root / "truthfulqa" / "mc_task.json"
    rows = _read_json(path)
    if not isinstance(rows, list):
        raise DataFileError(f"{path}: expected a JSON list of questions")
    table = [
        {
            "question": row["question"],
            "mc1_targets": _targets(path, i, row, "mc1_targets"),
            "mc2_targets": _targets(path, i, row, "mc2_targets"),
        }
        for i, row in enumerate(rows)
    ]
    return DatasetDict({"validation": Dataset.from_list(table)})


def bbq(data_dir: str | None = None, **_: Any) -> DatasetDict:
    """BBQ (``bbq/<Category>.jsonl``) as one ``test`` split, categories interleaved in blocks of 4 rows.

    A block is one template's negative/non-negative question in ambiguous/disambiguated context;
    interleaving makes a ``--limit`` run (lm-eval takes the first rows) cover both contexts and
    every category.
    """
    root = data_root(data_dir)
    if root is None:
        return DatasetDict({"test": load_dataset("oskarvanderwal/bbq", "All", split="test")})
    per_category = []
    for category in BBQ_CATEGORIES:
        path = root / "bbq" / f"{category}.jsonl"
        if not path.is_file():
            raise DataFileError(f"{path}: file not found (set data_dir to the folder holding bbq/)")
        lines = path.read_text(encoding="utf-8").splitlines()
        try:
            per_category.append([json.loads(line) for line in lines if line.strip()])
        except json.JSONDecodeError as err:
            raise DataFileError(f"{path}: not valid JSON lines: {err}") from None
    blocks = [[rows[i : i + BBQ_BLOCK] for i in range(0, len(rows), BBQ_BLOCK)] for rows in per_category]
    rows = [row for group in zip_longest(*blocks) for block in group if block is not None for row in block]
    return DatasetDict({"test": Dataset.from_list(rows)})


def eq_bench(data_dir: str | None = None, **_: Any) -> DatasetDict:
    """EQ-Bench v2 (``eq-bench/eq_bench_v2_questions_171.json``) as the Hub's ``validation`` split.

    The Hub rows hold ``reference_answer_fullscale`` as the text of a Python dict (lm-eval parses
    it with ``ast.literal_eval``); scores given as strings in the file are cast to int.
    """
    root = data_root(data_dir)
    if root is None:
        return load_dataset("pbevan11/EQ-Bench")
    path = root / "eq-bench" / "eq_bench_v2_questions_171.json"
    questions = _read_json(path)
    if not isinstance(questions, dict):
        raise DataFileError(f"{path}: expected a JSON object keyed by question id")
    table = []
    for key, item in questions.items():
        reference = item.get("reference_answer_fullscale")
        if not isinstance(reference, dict) or not isinstance(item.get("prompt"), str):
            raise DataFileError(f"{path}: question {key}: needs 'prompt' and a 'reference_answer_fullscale' object")
        fullscale = {k: int(v) if k.endswith("_score") else v for k, v in reference.items()}
        table.append({"id": key, "prompt": item["prompt"], "reference_answer_fullscale": repr(fullscale)})
    return DatasetDict({"validation": Dataset.from_list(table)})


EMOBENCH_LANGUAGES = ("en", "zh")
EMOBENCH_FIELDS = {
    "EU": ("scenario", "subject", "emotion_choices", "emotion_label", "cause_choices", "cause_label"),
    "EA": ("scenario", "subject", "question type", "choices", "label"),
}


def _emobench_rows(root: Path, part: str, language: str) -> list[dict[str, Any]]:
    """``emobench/<part>.jsonl`` rows of one language, checked: every field present, gold labels among the choices."""
    if language not in EMOBENCH_LANGUAGES:
        raise DataFileError(f"EmoBench task metadata 'language': must be one of {EMOBENCH_LANGUAGES}, got {language!r}")
    path = root / "emobench" / f"{part}.jsonl"
    if not path.is_file():
        raise DataFileError(f"{path}: file not found (set data_dir to the folder holding emobench/)")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataFileError(f"{path}: line {number}: not valid JSON: {err}") from None
        missing = [name for name in (*EMOBENCH_FIELDS[part], "language") if name not in row]
        if missing:
            raise DataFileError(f"{path}: line {number}: missing field(s) {missing}")
        pairs = [("emotion_choices", "emotion_label"), ("cause_choices", "cause_label")] if part == "EU" else []
        for choices, label in pairs or [("choices", "label")]:
            if row[label] not in row[choices]:
                raise DataFileError(f"{path}: line {number}: field '{label}' is not one of '{choices}'")
        if row["language"] == language:
            rows.append(row)
    return rows


def emobench_eu(data_dir: str | None = None, language: str = "en", **_: Any) -> DatasetDict:
    """EmoBench emotional understanding (``emobench/EU.jsonl``) of one language as a ``test`` split.

    Gold labels are answer texts in the file; ``emotion_gold``/``cause_gold`` are their indices.
    """
    root = data_root(data_dir)
    if root is None:
        rows = [dict(row) for row in load_dataset("SahandSab/EmoBench", "emotional_understanding", split="train")]
        rows = [row for row in rows if row.get("language", language) == language]
    else:
        rows = _emobench_rows(root, "EU", language)
    table = [
        {
            **row,
            "emotion_gold": row["emotion_choices"].index(row["emotion_label"]),
            "cause_gold": row["cause_choices"].index(row["cause_label"]),
        }
        for row in rows
    ]
    return DatasetDict({"test": Dataset.from_list(table)})


def emobench_ea(data_dir: str | None = None, language: str = "en", **_: Any) -> DatasetDict:
    """EmoBench emotional application (``emobench/EA.jsonl``) of one language as a ``test`` split (``gold``: index)."""
    root = data_root(data_dir)
    if root is None:
        rows = [dict(row) for row in load_dataset("SahandSab/EmoBench", "emotional_application", split="train")]
        rows = [row for row in rows if row.get("language", language) == language]
    else:
        rows = _emobench_rows(root, "EA", language)
    table = [{**row, "question_type": row["question type"], "gold": row["choices"].index(row["label"])} for row in rows]
    return DatasetDict({"test": Dataset.from_list(table)})
