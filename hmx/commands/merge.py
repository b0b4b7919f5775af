"""``hmx merge``: fold a run's LoRA adapter into the base weights and save a standalone model.

hmx merge outputs/runs/RUN --out merged/RUN                 # safetensors + tokenizer + chat template
hmx merge path/to/adapter --base Qwen/Qwen3-4B --out merged/qwen3-4b-hmx --dtype bfloat16
python -c "from transformers import AutoModelForCausalLM as M; M.from_pretrained('merged/RUN')"
vllm serve merged/RUN                                        # loads like any other model

The result is written to a temporary sibling of ``--out`` and renamed into place when
complete, so a failed merge leaves nothing behind. ``--out`` is checked before the merge runs
(:mod:`hmx.destinations`): a non-empty folder is refused unless ``--force`` is given, and a regular file,
a path under one, or a place hmx cannot write are refused even with it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

from hmx.config import ConfigError
from hmx.destinations import check_destination
from hmx.errors import command_errors
from hmx.runs import TrainedRun, load_adapter_model, load_run_tokenizer, locate_run

PROVENANCE = "hmx_merge.json"


def merge(run: TrainedRun, out: Path, force: bool = False) -> Path:
    """Merge ``run``'s adapter into its base model and save it to ``out``; returns ``out``."""
    out = out.expanduser().resolve()
    for source in (run.run_dir, run.adapter_dir):
        if source is not None and (out == source or out in source.parents or source in out.parents):
            raise ConfigError(
                f"--out {out}: overlaps the run being merged ({source}); write the merged model somewhere else"
            )
    check_destination(out, "--out", "dir", force=force)  # before the merge: a file there, under a file, unwritable
    tokenizer = load_run_tokenizer(run)
    merged = load_adapter_model(run).merge_and_unload()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.merging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        merged.save_pretrained(staging)  # safetensors (transformers writes nothing else)
        tokenizer.save_pretrained(staging)  # includes the chat template (chat_template.jinja)
        provenance = {"adapter": str(run.adapter_dir), "base": run.model.name_or_path, "run": str(run.run_dir or "")}
        (staging / PROVENANCE).write_text(json.dumps(provenance, indent=2) + "\n", encoding="utf-8")
        if out.is_dir():  # --force: a folder replaces a folder (check_destination refused a file)
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="hmx merge", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("source", metavar="RUN_DIR|ADAPTER", help="a run directory from hmx train, or an adapter")
    parser.add_argument("--out", required=True, type=Path, help="directory for the merged model")
    parser.add_argument("--base", help="base model (hub id, local path or tiny); default: the run's model")
    parser.add_argument(
        "--dtype",
        choices=["auto", "float32", "bfloat16", "float16"],
        help="dtype to merge and save in; default: the run's model.dtype (auto: bf16 on a GPU, else float32)",
    )
    parser.add_argument("--force", action="store_true", help="replace a non-empty --out")
    return parser.parse_args(argv)


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    with command_errors("merge"):
        run = locate_run(args.source, base=args.base, dtype=args.dtype)
        out = merge(run, args.out, force=args.force)
    print(f"hmx merge: {run.adapter_dir} + {run.model.name_or_path} → {out}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
