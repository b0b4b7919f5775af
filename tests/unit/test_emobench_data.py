"""EmoBench rows from the shared files: per language, gold labels as indices; a bad file names its line and field."""

from __future__ import annotations

import json

import pytest

from hmx.evaluation.tasks.datasets import DataFileError, data_root, emobench_ea, emobench_eu

pytestmark = pytest.mark.skipif(data_root(None) is None, reason="../shared/data is not next to this checkout")


@pytest.mark.parametrize("language", ["en", "zh"])
def test_each_language_has_200_rows_with_gold_indices(language):
    eu = emobench_eu(language=language)["test"]
    ea = emobench_ea(language=language)["test"]
    assert len(eu) == len(ea) == 200
    assert {row["language"] for row in eu} == {row["language"] for row in ea} == {language}
    for row in eu:
        assert row["emotion_choices"][row["emotion_gold"]] == row["emotion_label"]
        assert row["cause_choices"][row["cause_gold"]] == row["cause_label"]
    assert all(row["choices"][row["gold"]] == row["label"] for row in ea)
    assert {row["question_type"] for row in ea} == {"Action", "Response"}


def test_gold_label_not_among_choices_names_line_and_field(tmp_path):
    folder = tmp_path / "emobench"
    folder.mkdir()
    rows = (data_root(None) / "emobench" / "EA.jsonl").read_text(encoding="utf-8").splitlines()[:4]
    broken = json.loads(rows[2]) | {"label": "Something not offered"}
    (folder / "EA.jsonl").write_text("\n".join([*rows[:2], json.dumps(broken), rows[3]]), encoding="utf-8")
    with pytest.raises(DataFileError, match=r"EA\.jsonl: line 3: field 'label' is not one of 'choices'"):
        emobench_ea(str(tmp_path))
    with pytest.raises(DataFileError, match="metadata 'language'"):
        emobench_eu(language="fr")
    with pytest.raises(DataFileError, match=r"EU\.jsonl: file not found"):
        emobench_eu(str(tmp_path))
