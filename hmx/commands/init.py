"""``hmx init DIR``: a starter project of your own, next to hmx rather than inside it.

hmx init my-project                     # writes the files below; refuses to overwrite any
cd my-project && hmx train --config-dir conf experiment=mine

DIR/conf/ holds config groups that Hydra searches next to hmx's own (``--config-dir``): an
experiment preset, a rubric node and a data node, whose paths are ``${hmx_project:}/...``, so
they resolve inside DIR wherever hmx is installed and whatever the working directory.
DIR/rubrics/mine.yaml starts as a copy of the shipped hmx_feel rubric; DIR/data/prompts.yaml
holds a few of the shipped prompts as an editable YAML list. Every file opens with its command.
Name your own config files apart from hmx's: Hydra searches hmx's conf/ first, so DIR/conf/model/tiny.yaml
would never be read (hmx train and hmx eval warn about such a file). DIR is checked before anything
is written (a regular file, a path under one, a place hmx cannot write are refused).
"""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path

import yaml

from hmx.destinations import check_destination
from hmx.errors import InputError, command_errors
from hmx.resources import PROMPTS_FILE, RUBRICS_DIR

NAME = "mine"
TRAIN_PROMPTS, EVAL_PROMPTS = 12, 4

TRAIN = "hmx train --config-dir conf experiment=mine"
EXPERIMENT = f"""# @package _global_
# {TRAIN}        (from this project's folder; runs go to outputs/runs/ here)
# Your experiment: a diff over hmx's conf/train.yaml, with your rubric and prompts. Any hmx group
# (model, trainer, judge, ...) can be overridden here, and your own groups added next to these.
defaults:
  - override /rubric: {NAME}
  - override /data: {NAME}
  - override /model: tiny      # hmx's CPU default is SmolLM2 with a probe head fitted for hmx_feel, not your rubric
  - override /judge: logprob   # a real model: model=smollm2-135m here, and `hmx rubric validate` your judge first
  - override /trainer: tiny

paths:
  runs_dir: ${{hmx_project:}}/outputs/runs
trainer:
  max_steps: 20
"""
RUBRIC_NODE = f"""# {TRAIN}        (the experiment selects rubric={NAME}; or pass it to any hmx train / hmx eval)
# ${{hmx_project:}} is this project's folder (the one holding conf/), wherever hmx is installed.
path: ${{hmx_project:}}/rubrics/{NAME}.yaml
extra: []   # more rubrics whose criteria are added: hmx's by name (honesty_guard) or your paths
direction: forward
"""
DATA_NODE = f"""# {TRAIN}        (the experiment selects data={NAME}; or pass it to any hmx train / hmx eval)
path: ${{hmx_project:}}/data/prompts.yaml   # .yaml, .jsonl, .csv, .parquet, or a Hugging Face dataset id
prompt_column: prompt
split_column: split
train_split: train
eval_split: eval
"""
PROMPTS_HEADER = f"""# {TRAIN}        (trains on the train rows; hmx eval scores the eval rows)
# One row per prompt: prompt (the user's message), split (train | eval); other columns are ignored.
"""
RUBRIC_HEADER = f"""# Your rubric, a copy of hmx's hmx_feel to edit (reference: hmx's docs/rubrics.md).
# Lint: hmx rubric lint rubrics/{NAME}.yaml      Train: {TRAIN}
"""
README = f"""# My hmx project

Written by `hmx init`. From this folder:

```bash
hmx rubric lint rubrics/{NAME}.yaml               # check the rubric
hmx rubric show rubrics/{NAME}.yaml               # the judge prompt it renders
{TRAIN}     # train: tiny model on CPU; runs in outputs/runs/
{TRAIN} model=qwen3-0.6b trainer=gpu_lora         # hmx's groups combine with yours
hmx eval --config-dir conf rubric={NAME} data={NAME} run_dir=outputs/runs/<run>
```

- `conf/experiment/{NAME}.yaml`: the experiment preset (a diff over hmx's `train.yaml`)
- `conf/rubric/{NAME}.yaml`, `conf/data/{NAME}.yaml`: config nodes pointing at the files below
- `rubrics/{NAME}.yaml`: the rubric the model grades itself with
- `data/prompts.yaml`: the prompts (train and eval rows)
"""


def starter_files() -> dict[str, str]:
    """Relative path → text of every file ``hmx init`` writes."""
    rubric = RUBRICS_DIR / "hmx_feel.yaml"
    body = [line for line in rubric.read_text(encoding="utf-8").splitlines(keepends=True) if not line.startswith("#")]
    body = [f"name: {NAME}\n" if line.startswith("name:") else line for line in body]
    rows = [json.loads(line) for line in PROMPTS_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]
    chosen = [r for r in rows if r["split"] == "train"][:TRAIN_PROMPTS] + [r for r in rows if r["split"] == "eval"][
        :EVAL_PROMPTS
    ]
    prompts = [{"prompt": r["prompt"], "split": r["split"]} for r in chosen]
    return {
        f"conf/experiment/{NAME}.yaml": EXPERIMENT,
        f"conf/rubric/{NAME}.yaml": RUBRIC_NODE,
        f"conf/data/{NAME}.yaml": DATA_NODE,
        f"rubrics/{NAME}.yaml": RUBRIC_HEADER + "".join(body),
        "data/prompts.yaml": PROMPTS_HEADER + yaml.safe_dump(prompts, sort_keys=False, allow_unicode=True, width=100),
        "README.md": README,
    }


def write_starter(project: Path) -> list[Path]:
    """Write the starter files under ``project``; refuses (writing nothing) if any already exists."""
    files = {project / rel: text for rel, text in starter_files().items()}
    taken = [path for path in files if path.exists()]
    if taken:
        raise FileExistsError(f"{taken[0]}: already exists; hmx init writes only new files (choose another DIR)")
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return list(files)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="hmx init", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("project", metavar="DIR", type=Path, help="the project folder (created if absent)")
    return parser.parse_args(argv)


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    with command_errors("init"):
        check_destination(args.project, "", "dir", allow_nonempty=True)  # a file there, under a file, unwritable
        try:
            written = write_starter(args.project)
        except FileExistsError as err:
            raise InputError(str(err)) from None
    print("\n".join(f"  {path}" for path in written))
    print(f"\nhmx: starter project → {args.project}\nnext: cd {shlex.quote(str(args.project))} && {TRAIN}")
