#!/usr/bin/env bash
# docs/rubrics.md, "A third test, and one head fitted on every register", step 3: each judge measured once, in the
# registered order, into out/ (JSON on stdout, progress and notes on stderr). Then `python table.py`.
#   bash docs/results/judges/pooled/measure.sh
set -euo pipefail
cd "$(dirname "$0")/../../../.."
HMX=${HMX:-hmx}; O=docs/results/judges/pooled/out; B=rubrics/hmx_feel.blind2.pairs.jsonl
HEAD=docs/results/judges/pooled/hmx_feel.smollm2-135m.pooled.safetensors
THIRD=(--pairs "$B" --split minimal --split shift --split swap)
mkdir -p "$O"
measure() {  # measure NAME ARGS...: one validation, its JSON and its log
  local name=$1; shift
  echo "$(date -u +%T) $name"
  $HMX rubric validate --model smollm2-135m --json "$@" >"$O/$name.json" 2>"$O/$name.log"
}
measure pooled --judge probe_style --probe-head "$HEAD" "${THIRD[@]}"
measure pooled.main_test --judge probe_style --probe-head "$HEAD" --pairs rubrics/hmx_feel.pairs.jsonl --split test
for judge in probe_style probe_minimal probe; do measure "$judge" --judge "$judge" "${THIRD[@]}"; done
echo "$(date -u +%T) done"
